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

func TestIMAPConfig(t *testing.T) {
	c, err := LoadConfig("", "")
	if err != nil {
		t.Fatal(err)
	}
	p := c.IMAP
	if p.Listen != "127.0.0.1:2143" || p.TLSListen != "127.0.0.1:2993" || p.AllowPlaintextAuth ||
		p.MaxConnections != 1000 || p.MaxConnectionsPerIP != 20 || p.MaxBadCommands != 10 || p.MaxLineLength != 65536 ||
		p.MaxAppendSize != 50<<20 || p.LoginTimeout != 30*time.Second || p.IdleTimeout != 30*time.Minute {
		t.Fatalf("imap defaults: %+v", p)
	}
	ex, err := LoadConfig(filepath.Join("..", "basalt.example.toml"), "")
	if err != nil {
		t.Fatal(err)
	}
	if ex.IMAP != p {
		t.Fatalf("the example's [imap] %+v differs from the defaults %+v", ex.IMAP, p)
	}
	for _, tc := range []struct{ body, want string }{
		{"[imap]\nmax_line_length = 1000\n", "imap.max_line_length"},
		{"[imap]\nidle_timeout = \"10m\"\n", "imap.idle_timeout"},
		{"[imap]\nlogin_timeout = \"-1s\"\n", "imap.login_timeout"},
		{"[imap]\nlisten_tls = \"x\"\n", "unknown keys: imap.listen_tls"},
	} {
		_, err := LoadConfig(writeConfig(t, tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}

// TestIMAPWiring: the daemon's IMAP listeners run over the services Open
// builds, with the server's TLS certificate on the implicit TLS one.
func TestIMAPWiring(t *testing.T) {
	data := t.TempDir()
	cfgPath := writeConfig(t, "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n"+
		"[smtp]\nhostname = \"mx.test\"\n[imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\n")
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
	m, err := svc.listenIMAP(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(m.lns))
	m.serve(&wg, errc)
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := m.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("serve: %v", err)
		}
	}()
	if len(m.lns) != 2 || !m.lns[1].tls {
		t.Fatalf("listeners: %v", m.addrs())
	}
	nc, err := tls.Dial("tcp", m.lns[1].ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
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
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, want) {
				return
			}
			if !strings.HasPrefix(line, "* ") {
				t.Fatalf("%s: %q, want %q", cmd, line, want)
			}
		}
	}
	say("", "* OK [CAPABILITY IMAP4rev2")
	say(`a LOGIN bob@example.org "password one"`, "a OK")
	say("b SELECT INBOX", "* 1 EXISTS")
	say("", "b OK")
	say("c LOGOUT", "* BYE")

	// The plaintext listener answers too, and offers STARTTLS.
	pc, err := net.Dial("tcp", m.lns[0].ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	if line, _ := bufio.NewReader(pc).ReadString('\n'); !strings.Contains(line, "STARTTLS") {
		t.Fatalf("greeting %q", line)
	}
}
