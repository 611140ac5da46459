package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"basalt/session"
	"basalt/store"
)

func TestPOP3Config(t *testing.T) {
	c, err := LoadConfig("", "")
	if err != nil {
		t.Fatal(err)
	}
	p := c.POP3
	if p.Listen != "127.0.0.1:2110" || p.TLSListen != "127.0.0.1:2995" || p.AllowPlaintextAuth ||
		p.MaxConnections != 500 || p.MaxConnectionsPerIP != 20 || p.MaxBadCommands != 10 || p.MaxLineLength != 512 ||
		p.LoginTimeout != time.Minute || p.IdleTimeout != 10*time.Minute || p.WriteTimeout != time.Minute || p.LoginDelay != 0 {
		t.Fatalf("pop3 defaults: %+v", p)
	}
	ex, err := LoadConfig(filepath.Join("..", "basalt.example.toml"), "")
	if err != nil {
		t.Fatal(err)
	}
	if ex.POP3 != p {
		t.Fatalf("the example's [pop3] %+v differs from the defaults %+v", ex.POP3, p)
	}
	for _, tc := range []struct{ body, want string }{
		{"[pop3]\nmax_line_length = 100\n", "pop3.max_line_length"},
		{"[pop3]\nidle_timeout = \"5m\"\n", "pop3.idle_timeout"},
		{"[pop3]\nwrite_timeout = \"-1s\"\n", "pop3.login_timeout, write_timeout"},
		{"[pop3]\nlisten_tls = \"x\"\n", "unknown keys: pop3.listen_tls"},
	} {
		_, err := LoadConfig(writeConfig(t, tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}

// TestPOP3Wiring: the daemon's POP3 listeners run over the services Open
// builds, with the server's TLS certificate on the implicit TLS one.
func TestPOP3Wiring(t *testing.T) {
	data := t.TempDir()
	cfgPath := writeConfig(t, "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n"+
		"[smtp]\nhostname = \"mx.test\"\n[pop3]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\nlogin_delay = \"15m\"\n")
	cfg, err := LoadConfig(cfgPath, data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	u, err := svc.Session.CreateUser(ctx, session.NewUser{Address: "bob@example.org", Password: "password one"})
	if err != nil {
		t.Fatal(err)
	}
	a := svc.Store.Account(u.ID, nil)
	inbox, err := a.MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, inbox.ID, []byte("Subject: wired\r\n\r\nhello\r\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := cfg.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.listenPOP3(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(p.lns))
	p.serve(&wg, errc)
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := p.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("serve: %v", err)
		}
	}()
	if len(p.lns) != 2 || !p.lns[1].implicitTLS {
		t.Fatalf("listeners: %v", p.addrs())
	}
	nc, err := tls.Dial("tcp", p.lns[1].ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	say := func(cmd, want string) {
		t.Helper()
		if cmd != "" {
			io.WriteString(nc, cmd+"\r\n")
		}
		line, _ := r.ReadString('\n')
		if !strings.HasPrefix(line, want) {
			t.Fatalf("%s: %q, want %q", cmd, line, want)
		}
	}
	say("", "+OK mx.test Basalt POP3")
	say("CAPA", "+OK")
	var caps []string
	for line, _ := r.ReadString('\n'); line != ".\r\n" && line != ""; line, _ = r.ReadString('\n') {
		caps = append(caps, strings.TrimSpace(line))
	}
	if !strings.Contains(strings.Join(caps, ","), "LOGIN-DELAY 900") {
		t.Fatalf("CAPA: %v", caps)
	}
	say("USER bob@example.org", "+OK")
	say("PASS password one", "+OK Logged in, maildrop has 1 messages (25 octets)")
	say("QUIT", "+OK")

	// The plaintext listener answers too.
	pc, err := net.Dial("tcp", p.lns[0].ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	if line, _ := bufio.NewReader(pc).ReadString('\n'); !strings.HasPrefix(line, "+OK mx.test") {
		t.Fatalf("greeting %q", line)
	}
}
