package faults

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/server"
	"basalt/session"
)

// serveEnv names the configuration file the test binary serves with when
// it runs as the daemon.
const serveEnv = "BASALT_FAULTS_SERVE"

// TestMain serves when the test binary is started as the daemon: the
// daemon is the real one (server.Run over the configuration file, as
// `basalt serve` runs it), in a process of its own that a test can kill.
func TestMain(m *testing.M) {
	if path := os.Getenv(serveEnv); path != "" {
		os.Exit(serve(path))
	}
	os.Exit(m.Run())
}

func serve(path string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := server.LoadConfig(path, "")
	if err == nil {
		err = server.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "basalt:", err)
		return 1
	}
	return 0
}

// password is every test user's.
const password = "password one"

// node is one Basalt daemon with its configuration and its listeners'
// addresses.
type node struct {
	t       *testing.T
	cfgPath string
	cfg     server.Config
	smtp    string // MX
	imap    string
	http    string
	d       *testsupport.Daemon
}

// options say what a node runs over.
type options struct {
	dataDir   string
	driver    string // "sqlite" or "mysql"; empty: SQLite in the data directory
	dsn       string
	redisAddr string // empty: the in-process cache
	prefix    string
	extra     string // more TOML, appended
}

// newNode writes the configuration, creates the domain and the users
// (through the services, as `basalt user add` does), and prepares the
// daemon; Start runs it.
func newNode(t *testing.T, o options, users ...string) *node {
	t.Helper()
	n := &node{t: t, smtp: testsupport.FreePort(t), imap: testsupport.FreePort(t), http: testsupport.FreePort(t)}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n[log]\nlevel = \"warn\"\n", o.dataDir)
	if o.driver != "" {
		fmt.Fprintf(&b, "[database]\ndriver = %q\ndsn = %q\n", o.driver, o.dsn)
	}
	if o.redisAddr != "" {
		fmt.Fprintf(&b, "[cache]\nredis_addr = %q\nprefix = %q\n", o.redisAddr, o.prefix)
	}
	fmt.Fprintf(&b, "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n")
	fmt.Fprintf(&b, "[http]\nlisten = %q\nshutdown_timeout = \"5s\"\n", n.http)
	// The load comes from one address and one session each; the limits
	// that protect a server from one client are not what is tested here.
	fmt.Fprintf(&b, "[rpc]\nrate_limit = 1000000\n")
	fmt.Fprintf(&b, "[smtp]\nhostname = \"mx.test\"\nmx_listen = %q\nsubmission_listen = \"off\"\nsubmissions_listen = \"off\"\nlmtp_listen = \"off\"\n", n.smtp)
	fmt.Fprintf(&b, "[pop3]\nlisten = \"off\"\ntls_listen = \"off\"\n")
	fmt.Fprintf(&b, "[imap]\nlisten = %q\ntls_listen = \"off\"\n", n.imap)
	b.WriteString(o.extra)
	n.cfgPath = filepath.Join(t.TempDir(), "basalt.toml")
	if err := os.WriteFile(n.cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(n.cfgPath, "")
	if err != nil {
		t.Fatal(err)
	}
	n.cfg = cfg
	ctx := context.Background()
	svc, err := server.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := svc.Session.CreateUser(ctx, session.NewUser{Address: u, Password: password}); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	n.d = testsupport.SelfDaemon(t, serveEnv+"="+n.cfgPath)
	return n
}

// start runs the daemon and waits until its HTTP, SMTP and IMAP
// listeners accept, returning how long that took.
func (n *node) start() time.Duration {
	n.t.Helper()
	begin := time.Now()
	n.d.Start()
	n.d.WaitReady(60*time.Second, func() bool {
		for _, a := range []string{n.smtp, n.imap} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		resp, err := http.Get("http://" + n.http + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return time.Since(begin)
}

// stop shuts the daemon down gracefully; it must exit cleanly.
func (n *node) stop() {
	n.t.Helper()
	if err := n.d.Stop(30 * time.Second); err != nil {
		n.t.Errorf("daemon exit: %v\n%s", err, n.d.Log.String())
	}
	n.checkLog()
}

// checkLog fails the test if the daemon panicked or, built with -race as
// the test binary is, found a data race: a killed daemon exits with no
// status to tell.
func (n *node) checkLog() {
	n.t.Helper()
	log := n.d.Log.String()
	for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: "} {
		if i := strings.Index(log, bad); i >= 0 {
			n.t.Errorf("the daemon's log has %q:\n%s", bad, log[i:min(len(log), i+4000)])
		}
	}
}
