package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"basalt/session"
	"basalt/store"
)

// TestFrontEndConfig: the POP3 and IMAP sections' defaults, that the
// example file states them, and what validation refuses.
func TestFrontEndConfig(t *testing.T) {
	def, err := LoadConfig("", "")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := LoadConfig(filepath.Join("..", "basalt.example.toml"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		defaultsOK  bool
		exampleSame bool
		refused     []struct{ body, want string }
	}{
		{
			name: "pop3",
			defaultsOK: def.POP3 == POP3Config{PairConfig: PairConfig{Listen: "127.0.0.1:2110", TLSListen: "127.0.0.1:2995",
				MaxConnections: 500, MaxConnectionsPerIP: 20, MaxBadCommands: 10, MaxLineLength: 512,
				LoginTimeout: time.Minute, IdleTimeout: 10 * time.Minute}, WriteTimeout: time.Minute},
			exampleSame: ex.POP3 == def.POP3,
			refused: []struct{ body, want string }{
				{"[pop3]\nmax_line_length = 100\n", "pop3.max_line_length"},
				{"[pop3]\nidle_timeout = \"5m\"\n", "pop3.idle_timeout"},
				{"[pop3]\nwrite_timeout = \"-1s\"\n", "pop3.login_timeout, write_timeout"},
				{"[pop3]\nlisten_tls = \"x\"\n", "unknown keys: pop3.listen_tls"},
			},
		},
		{
			name: "imap",
			defaultsOK: def.IMAP == IMAPConfig{PairConfig: PairConfig{Listen: "127.0.0.1:2143", TLSListen: "127.0.0.1:2993",
				MaxConnections: 1000, MaxConnectionsPerIP: 20, MaxBadCommands: 10, MaxLineLength: 65536,
				LoginTimeout: 30 * time.Second, IdleTimeout: 30 * time.Minute}, MaxAppendSize: 50 << 20, IdleRecheck: 5 * time.Second},
			exampleSame: ex.IMAP == def.IMAP,
			refused: []struct{ body, want string }{
				{"[imap]\nmax_line_length = 1000\n", "imap.max_line_length"},
				{"[imap]\nidle_timeout = \"10m\"\n", "imap.idle_timeout"},
				{"[imap]\nlogin_timeout = \"-1s\"\n", "imap.login_timeout"},
				{"[imap]\nidle_recheck = \"10ms\"\n", "imap.idle_recheck"},
				{"[imap]\nlisten_tls = \"x\"\n", "unknown keys: imap.listen_tls"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.defaultsOK {
				t.Errorf("defaults: pop3 %+v, imap %+v", def.POP3, def.IMAP)
			}
			if !tc.exampleSame {
				t.Errorf("basalt.example.toml's [%s] differs from the defaults", tc.name)
			}
			for _, r := range tc.refused {
				_, err := LoadConfig(writeConfig(t, r.body), "")
				if err == nil || !strings.Contains(err.Error(), r.want) {
					t.Errorf("config %q: error %v, want it to mention %q", r.body, err, r.want)
				}
			}
		})
	}
}

// TestFrontEndWiring: the daemon's POP3 and IMAP listeners run over the
// services Open builds, with the server's certificate on the implicit TLS
// listener, and the plaintext one answers too.
func TestFrontEndWiring(t *testing.T) {
	type step struct{ send, want string }
	for _, tc := range []struct {
		name    string
		section string
		listen  func(*Services, *tls.Config) (frontEnd, error)
		overTLS []step
		plain   string // in the plaintext listener's greeting
	}{
		{
			name: "pop3", section: "[pop3]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\nlogin_delay = \"15m\"\n",
			listen: (*Services).listenPOP3,
			overTLS: []step{
				{"", "+OK mx.test Basalt POP3"},
				{"CAPA", "LOGIN-DELAY 900"},
				{"USER bob@example.org", "+OK"},
				{"PASS password one", "+OK Logged in, maildrop has 1 messages (25 octets)"},
				{"QUIT", "+OK"},
			},
			plain: "+OK mx.test",
		},
		{
			name: "imap", section: "[imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\n",
			listen: (*Services).listenIMAP,
			overTLS: []step{
				{"", "* OK [CAPABILITY IMAP4rev2"},
				{`a LOGIN bob@example.org "password one"`, "a OK"},
				{"b SELECT INBOX", "* 1 EXISTS"},
				{"", "b OK"},
				{"c LOGOUT", "* BYE"},
			},
			plain: "STARTTLS",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, cfg := openWired(t, tc.section)
			tlsCfg, err := cfg.ServerTLS(nil)
			if err != nil {
				t.Fatal(err)
			}
			f, err := tc.listen(svc, tlsCfg)
			if err != nil {
				t.Fatal(err)
			}
			p := f.(*pairListeners)
			serveFrontEnds(t, f)
			if len(p.lns) != 2 || p.lns[0].tls || !p.lns[1].tls {
				t.Fatalf("listeners: %v", f.addrs())
			}
			nc, err := tls.Dial("tcp", p.lns[1].ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(nc)
			for _, s := range tc.overTLS {
				if s.send != "" {
					io.WriteString(nc, s.send+"\r\n")
				}
				// Lines before the awaited one (untagged data, CAPA's list)
				// are passed over; a refusal is not.
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("%s: %v", s.send, err)
					}
					if strings.HasPrefix(line, s.want) {
						break
					}
					if strings.HasPrefix(line, "-ERR") || strings.Contains(line, " NO ") || strings.Contains(line, " BAD ") {
						t.Fatalf("%s: %q, want %q", s.send, line, s.want)
					}
				}
			}
			pc, err := net.Dial("tcp", p.lns[0].ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(10 * time.Second))
			if line, _ := bufio.NewReader(pc).ReadString('\n'); !strings.Contains(line, tc.plain) {
				t.Fatalf("plaintext greeting %q, want %q in it", line, tc.plain)
			}
		})
	}
}

// openWired opens the services over a fresh data directory with the given
// configuration section, and a user bob with one message of 25 octets.
func openWired(t *testing.T, section string) (*Services, Config) {
	t.Helper()
	svc, cfg := openServices(t, "", section)
	ctx := context.Background()
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
	return svc, cfg
}
