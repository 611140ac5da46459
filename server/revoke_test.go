package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	protosmtp "basalt/protocols/smtp"
	"basalt/session"
	"basalt/store"
	"basalt/store/admin"
)

// revokeNode is one basalt process of the revoke tests: its services, its
// admin API over HTTP and its IMAP, POP3 and SMTP submission listeners,
// all on 127.0.0.1.
type revokeNode struct {
	svc              *Services
	api              string // base URL of /api/v1
	imap, pop3, smtp string
}

// startRevokeNode opens a node over db, sharing Redis at redisAddr under
// prefix when given (the way several nodes share their change bus); auth
// is more of the [auth] section.
func startRevokeNode(t *testing.T, db testsupport.Database, redisAddr, prefix string, auth ...string) *revokeNode {
	t.Helper()
	conf := "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n" + strings.Join(auth, "") +
		fmt.Sprintf("[database]\ndriver = %q\ndsn = %q\n", db.Driver, db.DSN) +
		"[smtp]\nhostname = \"mx.test\"\nmx_listen = \"off\"\nsubmission_listen = \"127.0.0.1:0\"\nsubmissions_listen = \"off\"\nlmtp_listen = \"off\"\n" +
		"[pop3]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"off\"\n[imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"off\"\n"
	if redisAddr != "" {
		conf += fmt.Sprintf("[cache]\nredis_addr = %q\nprefix = %q\n", redisAddr, prefix)
	}
	cfg, err := LoadConfig(writeConfig(t, conf), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tlsCfg, err := cfg.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &revokeNode{svc: svc}
	var fes []frontEnd
	for _, listen := range []func(*tls.Config) (frontEnd, error){
		svc.listenIMAP, svc.listenPOP3,
		func(c *tls.Config) (frontEnd, error) { return svc.listenMail(c) },
	} {
		f, err := listen(tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		fes = append(fes, f)
		switch f := f.(type) {
		case *pairListeners:
			if f.proto == "imap" {
				n.imap = f.lns[0].ln.Addr().String()
			} else {
				n.pop3 = f.lns[0].ln.Addr().String()
			}
		case *mailListeners:
			for _, l := range f.lns {
				if l.role == protosmtp.RoleSubmission {
					n.smtp = l.ln.Addr().String()
				}
			}
		}
	}
	serveFrontEnds(t, fes...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: svc.Router(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	n.api = "http://" + ln.Addr().String() + "/api/v1"
	return n
}

// call makes one admin API request and returns its status and body.
func (n *revokeNode) call(t *testing.T, key, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.api+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

func (n *revokeNode) want(t *testing.T, key string, status int, method, path string, body any) []byte {
	t.Helper()
	code, b := n.call(t, key, method, path, body)
	if code != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, code, status, b)
	}
	return b
}

// sessionView is one item of GET /users/{a}/sessions.
type sessionView struct {
	ID, Protocol, RemoteAddress, Node string
	CreatedAt                         int64
}

// sessionsOf lists user's sessions through n's admin API.
func sessionsOf(t *testing.T, n *revokeNode, key, user string) []sessionView {
	t.Helper()
	var ss struct{ Items []sessionView }
	if err := json.Unmarshal(n.want(t, key, 200, "GET", "/users/"+user+"/sessions", nil), &ss); err != nil {
		t.Fatal(err)
	}
	return ss.Items
}

// lineClient is a client of a line protocol over a real socket.
type lineClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineClient{t: t, c: c, r: bufio.NewReader(c)}
}

func (l *lineClient) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.c, s+"\r\n"); err != nil {
		l.t.Fatalf("send %q: %v", s, err)
	}
}

// expect reads lines until one starts with prefix, within wait; a line
// starting with refuse (if set) fails the test.
func (l *lineClient) expect(prefix, refuse string, wait time.Duration) string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(wait))
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(line, prefix) {
			return strings.TrimRight(line, "\r\n")
		}
		if refuse != "" && strings.HasPrefix(line, refuse) {
			l.t.Fatalf("waiting for %q: %q", prefix, line)
		}
	}
}

// closed checks that the server closes the connection within wait,
// sending nothing more than lines starting with allow.
func (l *lineClient) closed(allow string, wait time.Duration) {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(wait))
	for {
		line, err := l.r.ReadString('\n')
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset")) {
			return
		}
		if err != nil {
			l.t.Fatalf("waiting for the server to close: %v (read %q)", err, line)
		}
		if allow == "" || !strings.HasPrefix(line, allow) {
			l.t.Fatalf("waiting for the server to close: %q", line)
		}
	}
}

// open checks that nothing comes and the connection stays open for wait.
func (l *lineClient) open(wait time.Duration) {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(wait))
	line, err := l.r.ReadString('\n')
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		l.t.Fatalf("connection should stay open and quiet: %q, %v", line, err)
	}
}

const revokePassword = "password one"

// imapIdle logs in over IMAP, selects INBOX and IDLEs.
func imapIdle(t *testing.T, n *revokeNode, user string) *lineClient {
	t.Helper()
	c := imapLogin(t, n, user)
	c.send("s SELECT INBOX")
	c.expect("s OK", "s ", 5*time.Second)
	c.send("i IDLE")
	c.expect("+ ", "i ", 5*time.Second)
	return c
}

// imapIdleUnselected IDLEs with no mailbox selected (RFC 9051 6.3.13
// allows it in the authenticated state): the deletion of a selected
// mailbox ends a session on its own, this one hears only of its user.
func imapIdleUnselected(t *testing.T, n *revokeNode, user string) *lineClient {
	t.Helper()
	c := imapLogin(t, n, user)
	c.send("i IDLE")
	c.expect("+ ", "i ", 5*time.Second)
	return c
}

func imapLogin(t *testing.T, n *revokeNode, user string) *lineClient {
	t.Helper()
	c := dialLine(t, n.imap)
	c.expect("* OK", "", 5*time.Second)
	c.send(fmt.Sprintf("l LOGIN %s %q", user, revokePassword))
	c.expect("l OK", "l ", 5*time.Second)
	return c
}

func pop3Login(t *testing.T, n *revokeNode, user string) *lineClient {
	t.Helper()
	c := dialLine(t, n.pop3)
	c.expect("+OK", "-ERR", 5*time.Second)
	c.send("USER " + user)
	c.expect("+OK", "-ERR", 5*time.Second)
	c.send("PASS " + revokePassword)
	c.expect("+OK", "-ERR", 5*time.Second)
	return c
}

func smtpLogin(t *testing.T, n *revokeNode, user string) *lineClient {
	t.Helper()
	c := dialLine(t, n.smtp)
	c.expect("220 ", "", 5*time.Second)
	c.send("EHLO client.test")
	c.expect("250 ", "5", 5*time.Second)
	c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+revokePassword)))
	c.expect("235 ", "5", 5*time.Second)
	return c
}

// cutWait bounds how long a cut may take to reach a connection: it is
// announced at once, so this is slack for a loaded machine.
const cutWait = 3 * time.Second

// TestRevokeReachesOpenConnections: what the admin API does to a user
// reaches the IMAP, POP3 and SMTP submission connections the user has
// open, not only its next logins. With MariaDB the API and the
// connections are on two nodes sharing the database and Redis, so every
// cut crosses the change bus.
func TestRevokeReachesOpenConnections(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		var a, b *revokeNode
		if db.Driver == "sqlite" {
			a = startRevokeNode(t, db, "", "")
			b = a
		} else {
			addr, prefix := testsupport.Redis(t)
			a = startRevokeNode(t, db, addr, prefix)
			b = startRevokeNode(t, db, addr, prefix)
		}
		ctx := context.Background()
		if _, err := a.svc.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		newUser := func(t *testing.T, name string) string {
			t.Helper()
			addr := name + "@example.org"
			if _, err := a.svc.Session.CreateUser(ctx, session.NewUser{Address: addr, Password: revokePassword}); err != nil {
				t.Fatal(err)
			}
			return addr
		}
		ad, err := a.svc.Admin.CreateAdmin(ctx, nil, "panel")
		if err != nil {
			t.Fatal(err)
		}
		auth := admin.Authority{Scopes: []string{"*"}}
		if _, err := a.svc.Admin.AddGrant(ctx, nil, ad.ID, auth); err != nil {
			t.Fatal(err)
		}
		_, key, err := a.svc.Admin.CreateKey(ctx, nil, admin.NewKey{AdminID: ad.ID, Name: "panel", Authority: auth})
		if err != nil {
			t.Fatal(err)
		}

		t.Run("suspend cuts imap pop3 smtp", func(t *testing.T) {
			u := newUser(t, "suspended")
			im, pop, sm := imapIdle(t, b, u), pop3Login(t, b, u), smtpLogin(t, b, u)
			start := time.Now()
			a.want(t, key, 200, "POST", "/users/"+u+"/suspend", map[string]string{"reason": "unpaid"})
			// RFC 9051 7.1.5: BYE, then the close; the IDLE client reads it.
			im.expect("* BYE", "i ", cutWait)
			t.Logf("IMAP BYE %v after the request was sent", time.Since(start))
			im.closed("", cutWait)
			// RFC 1939 has no reply a server may send unasked.
			pop.closed("", cutWait)
			// RFC 5321 3.8: 421, then the close.
			sm.expect("421 ", "", cutWait)
			sm.closed("", cutWait)
		})

		t.Run("smtp over starttls gets its 421 under tls", func(t *testing.T) {
			u := newUser(t, "tlssender")
			c := dialLine(t, b.smtp)
			c.expect("220 ", "", 5*time.Second)
			c.send("EHLO client.test")
			c.expect("250 ", "5", 5*time.Second)
			c.send("STARTTLS")
			c.expect("220 ", "", 5*time.Second)
			tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			c.c, c.r = tc, bufio.NewReader(tc)
			c.send("EHLO client.test")
			c.expect("250 ", "5", 5*time.Second)
			c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+u+"\x00"+revokePassword)))
			c.expect("235 ", "5", 5*time.Second)
			a.want(t, key, 204, "DELETE", "/users/"+u+"/sessions", nil)
			c.expect("421 ", "", cutWait)
			c.closed("", cutWait)
		})

		t.Run("pop3 off cuts pop3 only", func(t *testing.T) {
			u := newUser(t, "nopop")
			im, pop := imapIdle(t, b, u), pop3Login(t, b, u)
			a.want(t, key, 200, "PUT", "/users/"+u+"/access", map[string]bool{"imap": true, "pop3": false, "smtp": true, "webmail": true})
			pop.closed("", cutWait)
			im.open(300 * time.Millisecond)
			im.send("DONE")
			im.expect("i OK", "i ", 5*time.Second)
			im.send("n NOOP")
			im.expect("n OK", "n ", 5*time.Second)
		})

		// The API node lists the connection open on the other node, and
		// ends it by its id (204; the bus carries the cut); an id no node
		// lists for the user is 404.
		t.Run("sessions list and revoke one", func(t *testing.T) {
			u := newUser(t, "listed")
			im := imapLogin(t, b, u)
			ss := sessionsOf(t, a, key, u)
			if len(ss) != 1 || ss[0].Protocol != "imap" || ss[0].RemoteAddress != im.c.LocalAddr().String() || ss[0].Node == "" ||
				time.Since(time.Unix(ss[0].CreatedAt, 0)) > time.Minute {
				t.Fatalf("sessions: %+v, want the IMAP connection from %s", ss, im.c.LocalAddr())
			}
			id := ss[0].ID
			// Another user's session is not this one's to end.
			other := newUser(t, "other")
			a.want(t, key, 404, "DELETE", "/users/"+other+"/sessions/"+id, nil)
			im.send("n NOOP")
			im.expect("n OK", "n ", 5*time.Second)
			a.want(t, key, 204, "DELETE", "/users/"+u+"/sessions/"+id, nil)
			im.expect("* BYE", "", cutWait)
			im.closed("", cutWait)
			testsupport.WaitFor(t, cutWait, "the revoked connection to leave the list", func() bool {
				return len(sessionsOf(t, a, key, u)) == 0
			})
			a.want(t, key, 404, "DELETE", "/users/"+u+"/sessions/"+id, nil)
		})

		// A node that stops without ending its connections (its process
		// killed: here its renewals stop) drops out of the list once
		// their lease runs out, while a live node's renewals keep its
		// own listed past it.
		if a != b {
			t.Run("a dead node's sessions run out", func(t *testing.T) {
				addr, prefix := testsupport.Redis(t)
				api := startRevokeNode(t, db, addr, prefix, "conn_lease = \"1s\"\n")
				live := startRevokeNode(t, db, addr, prefix, "conn_lease = \"1s\"\n")
				dying := startRevokeNode(t, db, addr, prefix, "conn_lease = \"1s\"\n")
				u := newUser(t, "twonodes")
				kept := imapLogin(t, live, u)
				imapLogin(t, dying, u)
				if ss := sessionsOf(t, api, key, u); len(ss) != 2 {
					t.Fatalf("sessions: %+v, want the two IMAP connections", ss)
				}
				time.Sleep(1500 * time.Millisecond)
				if ss := sessionsOf(t, api, key, u); len(ss) != 2 {
					t.Fatalf("sessions past the lease: %+v, want both, renewed", ss)
				}
				dying.svc.Session.Close()
				testsupport.WaitFor(t, 5*time.Second, "the dead node's session to run out", func() bool {
					ss := sessionsOf(t, api, key, u)
					return len(ss) == 1 && ss[0].RemoteAddress == kept.c.LocalAddr().String()
				})
			})
		}

		// Each change that no longer allows the user its connection
		// ends it; IDLE is where a client sits for days.
		for _, tc := range []struct {
			name   string
			method string
			path   string
			body   any
		}{
			{"lock", "POST", "/lock", map[string]any{"until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "reason": "abuse"}},
			{"imap off", "PUT", "/access", map[string]bool{"imap": false, "pop3": true, "smtp": true, "webmail": true}},
			{"password", "POST", "/password", map[string]string{"password": "another long password"}},
			{"rename", "POST", "/rename", map[string]string{"newAddress": "renamed@example.org"}},
			{"delete", "DELETE", "", nil},
			{"revoke all", "DELETE", "/sessions", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := newUser(t, strings.ReplaceAll(tc.name, " ", ""))
				im := imapIdleUnselected(t, b, u)
				code, body := a.call(t, key, tc.method, "/users/"+u+tc.path, tc.body)
				if code/100 != 2 {
					t.Fatalf("%s: %d %s", tc.name, code, body)
				}
				im.expect("* BYE", "i ", cutWait)
				im.closed("", cutWait)
			})
		}

		t.Run("a message taken before the cut stays", func(t *testing.T) {
			u := newUser(t, "sender")
			sm := smtpLogin(t, b, u)
			sm.send("MAIL FROM:<" + u + ">")
			sm.expect("250 ", "", 5*time.Second)
			sm.send("RCPT TO:<" + u + ">")
			sm.expect("250 ", "", 5*time.Second)
			sm.send("DATA")
			sm.expect("354 ", "", 5*time.Second)
			sm.send("From: <" + u + ">\r\nTo: <" + u + ">\r\nSubject: half\r\n\r\nwritten before the cut")
			// An APPEND whose literal is half sent when the cut comes.
			im := imapLogin(t, b, u)
			im.send("a APPEND INBOX {40}")
			im.expect("+ ", "a ", 5*time.Second)
			io.WriteString(im.c, "Subject: x\r\n\r\n")
			// A revoke, not a suspension: a suspended user's mail would
			// be refused at the end of DATA (delivery's rule), which is not
			// what is shown here.
			a.want(t, key, 204, "DELETE", "/users/"+u+"/sessions", nil)
			im.expect("* BYE", "a ", cutWait)
			im.closed("", cutWait)
			// The DATA under way is taken whole and answered, then 421.
			sm.send("and the rest after it\r\n.")
			if line := sm.expect("", "", cutWait); !strings.HasPrefix(line, "250 ") {
				t.Fatalf("end of DATA: %q, want 250", line)
			}
			sm.expect("421 ", "", cutWait)
			sm.closed("", cutWait)
			uid, err := a.svc.Store.UserByAddress(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			acct := a.svc.Store.Account(uid.ID, nil)
			inbox, err := acct.MailboxByName(ctx, "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := acct.List(ctx, inbox.ID, store.ListQuery{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			// The APPEND's 14 octets of 40 made nothing; DATA's message
			// is there whole.
			if len(msgs) != 1 || msgs[0].Size < int64(len("Subject: half\r\n\r\nwritten before the cut\r\nand the rest after it\r\n")) {
				t.Fatalf("INBOX after the cut: %+v, want the one message DATA took", msgs)
			}
		})
	})
}
