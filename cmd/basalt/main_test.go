package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/server"
)

// TestMain lets the tests run this binary as the real basalt command.
func TestMain(m *testing.M) {
	if os.Getenv("BASALT_TEST_MAIN") == "1" {
		os.Args = append([]string{"basalt"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// basalt runs a command in-process with the given standard input.
func basalt(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out)
	return out.String(), err
}

func mustBasalt(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := basalt(t, stdin, args...)
	if err != nil {
		t.Fatalf("basalt %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// kdfConfig keeps password hashing cheap in tests.
func kdfConfig(t *testing.T, extra string) string {
	p := filepath.Join(t.TempDir(), "basalt.toml")
	cfg := "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n" + extra
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdminCommands(t *testing.T) {
	data := t.TempDir()
	cfg := kdfConfig(t, "")
	d := []string{"-data", data, "-config", cfg}
	mustBasalt(t, "", append([]string{"domain", "add", "example.org"}, d...)...)
	mustBasalt(t, "", append([]string{"domain", "add"}, append(d, "example.net")...)...)
	if out := mustBasalt(t, "", append([]string{"domain", "list"}, d...)...); out != "example.net\nexample.org\n" {
		t.Fatalf("domain list = %q", out)
	}
	mustBasalt(t, "", append([]string{"plan", "set", "small", "--quota", "1000000", "--max-recv", "20000"}, d...)...)
	if out := mustBasalt(t, "", append([]string{"plan", "list"}, d...)...); !strings.HasPrefix(out, "small quota=1000000 max-recv=20000 ") {
		t.Fatalf("plan list = %q", out)
	}
	mustBasalt(t, "password zero\n", append([]string{"user", "add", "p@example.org", "--plan", "small", "--password-stdin"}, d...)...)
	if show := mustBasalt(t, "", append([]string{"user", "show", "p@example.org"}, d...)...); !strings.Contains(show, "max recv size:   20000") {
		t.Fatalf("plan not applied:\n%s", show)
	}
	mustBasalt(t, "", append([]string{"user", "del", "p@example.org"}, d...)...)
	// Flags before and after the address both work.
	mustBasalt(t, "password one\n", "user", "add", "-data", data, "-config", cfg, "--password-stdin", "alice@example.org")
	mustBasalt(t, "password two\n", "user", "add", "bob@example.org", "--password-stdin", "--secure", "--quota", "5000000", "-data", data, "-config", cfg)
	if _, err := basalt(t, "password three\n", "user", "add", "alice@example.org", "--password-stdin", "-data", data, "-config", cfg); err == nil {
		t.Fatal("adding an existing user succeeded")
	}
	if _, err := basalt(t, "short\n", "user", "add", "carol@example.org", "--password-stdin", "-data", data, "-config", cfg); err == nil {
		t.Fatal("a too-short password was accepted")
	}
	if _, err := basalt(t, "", "user", "add", "carol@example.org", "-data", data, "-config", cfg); err == nil {
		t.Fatal("user add without a terminal or --password-stdin succeeded")
	}
	if out := mustBasalt(t, "", append([]string{"user", "list"}, d...)...); out != "alice@example.org\nbob@example.org\n" {
		t.Fatalf("user list = %q", out)
	}
	show := mustBasalt(t, "", append([]string{"user", "show", "bob@example.org"}, d...)...)
	for _, want := range []string{"secure:          true", "quota bytes:     5000000", "mailbox          INBOX"} {
		if !strings.Contains(show, want) {
			t.Errorf("user show lacks %q:\n%s", want, show)
		}
	}
	mustBasalt(t, "", append([]string{"alias", "add", "sales@example.org", "alice@example.org"}, d...)...)
	mustBasalt(t, "", append([]string{"alias", "add", "*@example.org", "bob@example.org"}, d...)...)
	if out := mustBasalt(t, "", append([]string{"alias", "list"}, d...)...); out != "*@example.org bob@example.org\nsales@example.org alice@example.org\n" {
		t.Fatalf("alias list = %q", out)
	}
	mustBasalt(t, "", append([]string{"alias", "del", "sales@example.org", "alice@example.org"}, d...)...)

	// A secure user's password change needs the old one, or --reset-keys.
	if _, err := basalt(t, "wrong old pw\nnew password\n", append([]string{"user", "passwd", "bob@example.org", "--password-stdin"}, d...)...); err == nil {
		t.Fatal("passwd with a wrong old password succeeded")
	}
	mustBasalt(t, "password two\nnew password\n", append([]string{"user", "passwd", "bob@example.org", "--password-stdin"}, d...)...)
	mustBasalt(t, "another password\n", append([]string{"user", "passwd", "bob@example.org", "--password-stdin", "--reset-keys"}, d...)...)
	mustBasalt(t, "new alice pw\n", append([]string{"user", "passwd", "alice@example.org", "--password-stdin"}, d...)...)

	if _, err := basalt(t, "", append([]string{"domain", "del", "example.org"}, d...)...); err == nil {
		t.Fatal("deleting a domain with users succeeded")
	}
	mustBasalt(t, "", append([]string{"user", "del", "alice@example.org"}, d...)...)
	mustBasalt(t, "", append([]string{"user", "del", "bob@example.org"}, d...)...)
	mustBasalt(t, "", append([]string{"domain", "del", "example.org"}, d...)...)
	if out := mustBasalt(t, "", append([]string{"user", "list"}, d...)...); out != "" {
		t.Fatalf("users left: %q", out)
	}
	if out := mustBasalt(t, "", append([]string{"migrate"}, d...)...); !strings.HasPrefix(out, "schema version ") {
		t.Fatalf("migrate = %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"user"},
		{"user", "add"},
		{"user", "add", "a@b", "c@d"},
		{"domain", "add", "--nosuchflag", "x"},
		{"serve", "extra"},
	} {
		_, err := basalt(t, "", append(args, "-data", t.TempDir())...)
		ee, ok := err.(*exitError)
		if !ok || ee.code != 2 {
			t.Errorf("basalt %v = %v, want a usage error", args, err)
		}
	}
	if out := mustBasalt(t, "", "version"); !strings.HasPrefix(out, "basalt ") {
		t.Fatalf("version = %q", out)
	}
}

// TestServe runs the real daemon as a child process, checks its health
// endpoints, and stops it with SIGTERM: it must exit cleanly.
func TestServe(t *testing.T) {
	cases := []struct {
		name, banner string
		extra        func(t *testing.T) string
	}{
		{"defaults", "database=sqlite cache=memory", func(t *testing.T) string { return "" }},
		{"mariadb+redis", "database=mysql cache=redis", func(t *testing.T) string {
			addr, prefix := testsupport.Redis(t)
			return fmt.Sprintf("[database]\ndriver = \"mysql\"\ndsn = %q\n[cache]\nredis_addr = %q\nprefix = %q\n",
				testsupport.MySQLDSN(t), addr, prefix)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extra := tc.extra(t)
			data := t.TempDir()
			var httpAddr, metricsAddr, base string
			var done chan error
			var stderr *bytes.Buffer
			var cmd *exec.Cmd
			// A port found free may be taken by another test before the
			// daemon binds it (ten of them here): then it starts again
			// on others, a few times at most.
			for try := 1; ; try++ {
				httpAddr, metricsAddr = testsupport.FreePort(t), testsupport.FreePort(t)
				// The mail listeners too, on ports of the test's choosing.
				mail := fmt.Sprintf("[smtp]\nmx_listen = %q\nsubmission_listen = %q\nsubmissions_listen = %q\nlmtp_listen = %q\n"+
					"[pop3]\nlisten = %q\ntls_listen = %q\n[imap]\nlisten = %q\ntls_listen = %q\n",
					testsupport.FreePort(t), testsupport.FreePort(t), testsupport.FreePort(t), testsupport.FreePort(t), testsupport.FreePort(t), testsupport.FreePort(t), testsupport.FreePort(t), testsupport.FreePort(t))
				cfg := kdfConfig(t, extra+mail+fmt.Sprintf("[http]\nlisten = %q\nmetrics_listen = %q\n", httpAddr, metricsAddr))
				done, stderr, cmd = startDaemon(t, "-config", cfg, "-data", data)
				base = "http://" + httpAddr
				if try == 3 || !exitedInUse(base+"/healthz", done, stderr) {
					break
				}
				t.Logf("a port was taken meanwhile, start %d:\n%s", try+1, stderr.String())
			}
			waitUp(t, base+"/healthz", done, stderr)
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			var ready struct {
				Checks map[string]string `json:"checks"`
			}
			json.NewDecoder(resp.Body).Decode(&ready)
			resp.Body.Close()
			if resp.StatusCode != 200 || ready.Checks["database"] != "ok" || ready.Checks["cache"] != "ok" {
				t.Fatalf("readyz = %d %v", resp.StatusCode, ready.Checks)
			}
			if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("metrics: %v", err)
			} else {
				resp.Body.Close()
			}
			if resp, err := http.Get(base + "/metrics"); err != nil {
				t.Fatal(err)
			} else if resp.Body.Close(); resp.StatusCode != 404 {
				t.Fatalf("metrics on the user-facing listener: %d", resp.StatusCode)
			}
			if tc.name == "defaults" {
				ents, _ := os.ReadDir(data)
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				if !slices.Contains(names, "basalt.db") || !slices.Contains(names, "blobs") {
					t.Fatalf("data dir holds %v, want basalt.db and blobs", names)
				}
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no exit 20s after SIGTERM\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.banner) {
				t.Fatalf("not serving with %s:\n%s", tc.banner, stderr.String())
			}
			if !strings.Contains(stderr.String(), "shutting down") {
				t.Fatalf("no graceful shutdown logged:\n%s", stderr.String())
			}
		})
	}
}

// startDaemon runs `basalt serve args...` as a child process (this test
// binary, see TestMain). done receives its exit status; a daemon still
// running when the test ends is killed.
func startDaemon(t *testing.T, args ...string) (done chan error, stderr *bytes.Buffer, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "BASALT_TEST_MAIN=1")
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		ch <- cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
	return ch, stderr, cmd
}

// exitedInUse waits until the daemon answers url or exits, and reports
// whether it exited because an address was in use. A daemon that exited
// for another reason is left for waitUp to report.
func exitedInUse(url string, done chan error, stderr *bytes.Buffer) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			inUse := strings.Contains(stderr.String(), "address already in use")
			if !inUse {
				done <- err // back for waitUp, which fails the test with it
			}
			return inUse
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return false
		}
	}
	return false
}

func waitUp(t *testing.T, url string, done <-chan error, stderr *bytes.Buffer) {
	t.Helper()
	waitFor(t, "HTTP", done, stderr, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// waitFor polls ready for up to 30 seconds, failing the test if the
// daemon exits first or ready never holds.
func waitFor(t *testing.T, what string, done <-chan error, stderr *bytes.Buffer, ready func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("basalt exited early: %v\n%s", err, stderr.String())
		default:
		}
		if ready() {
			return
		}
	}
	t.Fatalf("%s did not come up\n%s", what, stderr.String())
}

// TestAdminKeyCommands: the first admin, its grant and a key from the
// command line; the secret is printed once and authenticates; a key
// beyond the admin's grants is refused.
func TestAdminKeyCommands(t *testing.T) {
	data := t.TempDir()
	cfg := kdfConfig(t, "")
	d := []string{"-data", data, "-config", cfg}
	mustBasalt(t, "", append([]string{"admin", "add", "root"}, d...)...)
	if _, err := basalt(t, "", append([]string{"admin", "key", "root"}, d...)...); err == nil {
		t.Fatal("a key for an admin with no grants")
	}
	mustBasalt(t, "", append([]string{"admin", "grant", "root", "domains:write", "users:read", "--domain", "a.test"}, d...)...)
	if _, err := basalt(t, "", append([]string{"admin", "grant", "root", "nope:read"}, d...)...); err == nil {
		t.Fatal("a grant of an unknown scope")
	}
	if _, err := basalt(t, "", append([]string{"admin", "key", "root", "--scopes", "domains:write", "--domain", "b.test"}, d...)...); err == nil {
		t.Fatal("a key beyond its admin's grants")
	}
	out := mustBasalt(t, "", append([]string{"admin", "key", "root", "--network", "127.0.0.0/8", "--expires", "30d", "--name", "panel"}, d...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "domains:write,users:read over a.test") || !strings.HasPrefix(lines[1], "bsk_") {
		t.Fatalf("admin key printed %q", out)
	}
	if out := mustBasalt(t, "", append([]string{"admin", "list"}, d...)...); out != "root domains:write,users:read over a.test\n" {
		t.Fatalf("admin list = %q", out)
	}
	c, err := server.LoadConfig(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	c.Log.Level = "warn"
	svc, err := server.Open(context.Background(), c, c.NewLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	p, err := svc.Admin.Authenticate(context.Background(), lines[1], netip.MustParseAddr("127.0.0.1"))
	if err != nil || p.Admin.Name != "root" || !p.Allows("domains:write", "a.test") || p.Allows("domains:write", "b.test") || p.Key.Authority.Expires == 0 {
		t.Fatalf("the printed key: %+v, %v", p, err)
	}
}
