package imap

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// startTLS runs STARTTLS and continues over TLS.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.ok("STARTTLS")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// A remote client may not send a password in the clear: LOGINDISABLED
// until STARTTLS (RFC 9051 6.2.1, 6.2.3).
func TestPlaintextLoginRefused(t *testing.T) {
	h := start(t, setup{remote: true})
	h.user("alice@example.org", false)
	c := h.dial(t)
	if !strings.Contains(c.greeting, "LOGINDISABLED") || strings.Contains(c.greeting, "AUTH=") || !strings.Contains(c.greeting, "STARTTLS") {
		t.Errorf("greeting to a remote plaintext client: %q", c.greeting)
	}
	c.expect(fmt.Sprintf("LOGIN alice@example.org %q", storetest.Password), "NO [PRIVACYREQUIRED]")
	c.expect("AUTHENTICATE PLAIN "+b64("\x00alice@example.org\x00"+storetest.Password), "NO [PRIVACYREQUIRED]")
	c.startTLS(h.tls)
	caps := must(t, c.ok("CAPABILITY"), "* CAPABILITY")
	if strings.Contains(caps, "LOGINDISABLED") || strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %q", caps)
	}
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	// RFC 9051 6.2.1 says BAD; after STARTTLS the connection is served
	// as an implicit-TLS one, to which the library answers NO (quirks.go).
	c.expect("STARTTLS", "NO")

	// The operator may allow it.
	h2 := start(t, setup{remote: true, cfg: Config{AllowPlaintextAuth: true}})
	h2.user("alice@example.org", false)
	c2 := h2.dial(t)
	if strings.Contains(c2.greeting, "LOGINDISABLED") || !strings.Contains(c2.greeting, "AUTH=PLAIN") {
		t.Errorf("greeting with allow_plaintext_auth: %q", c2.greeting)
	}
	c2.login("alice@example.org")
}

func TestImplicitTLS(t *testing.T) {
	h := start(t, setup{remote: true})
	h.user("alice@example.org", false)
	c := h.dialTLS(t)
	if strings.Contains(c.greeting, "STARTTLS") || strings.Contains(c.greeting, "LOGINDISABLED") || !strings.Contains(c.greeting, "AUTH=PLAIN") {
		t.Errorf("greeting over TLS: %q", c.greeting)
	}
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	c.expect("STARTTLS", "NO")
	// The guard works above TLS here: bad commands still count.
	c.expect("FROB", "BAD")
}

// After STARTTLS the connection keeps every check of the guard, which the
// library's own STARTTLS would have left below TLS, seeing ciphertext:
// the line and literal limits, the bad-command cutoff and the timeouts.
// No greeting comes after STARTTLS, and what a client sent in the clear
// after STARTTLS is not run as a command under TLS (the STARTTLS command
// injection of CVE-2011-0411).
func TestStartTLSKeepsGuard(t *testing.T) {
	h := start(t, setup{remote: true, cfg: Config{MaxBadCommands: 3, IdleTimeout: 700 * time.Millisecond}})
	alice := h.user("alice@example.org", false)
	tlsClient := func(t *testing.T) *client {
		c := h.dial(t)
		c.startTLS(h.tls)
		// The first response over TLS answers the first command.
		if u := c.ok("CAPABILITY"); len(u) != 1 || !strings.HasPrefix(u[0], "* CAPABILITY ") {
			t.Fatalf("first responses over TLS: %q", u)
		}
		c.login("alice@example.org")
		return c
	}
	for _, tc := range []struct {
		name, send, bye string
	}{
		{"line too long", "a1 SELECT " + strings.Repeat("x", 70000), "* BYE Command line too long"},
		{"literal too large", "a1 APPEND INBOX {60000000+}\r\n" + strings.Repeat("z", 10000), "* BYE [TOOBIG]"},
		{"bad commands", "a1 FROB\r\na2 FROB\r\na3 FROB\r\n", "* BYE Too many invalid commands"},
		{"orphaned literal", "a1 SEARCH NOSUCHKEY {16+}\r\nx1 DELETE Keep\r\n", "* BYE [CLIENTBUG]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsClient(t)
			c.ok("CREATE Keep")
			c.send(tc.send)
			got, closed := c.closed()
			if !closed {
				t.Fatalf("connection still open; got %q", got)
			}
			if _, ok := find(got, tc.bye); !ok {
				t.Errorf("got %q, want %q", got, tc.bye)
			}
			mustNot(t, got, "x1 ")
			d := tlsClient(t)
			must(t, d.ok(`LIST "" Keep`), `"Keep"`)
			d.ok("DELETE Keep")
		})
	}
	t.Run("autologout", func(t *testing.T) {
		c := tlsClient(t)
		start := time.Now()
		got, closed := c.closed()
		if !closed || time.Since(start) > 3*time.Second {
			t.Fatalf("closed %v after %v", closed, time.Since(start))
		}
		must(t, got, "* BYE Autologout")
	})
	t.Run("injection", func(t *testing.T) {
		c := h.dial(t)
		c.send("a1 STARTTLS\r\na2 LOGIN alice@example.org " + fmt.Sprintf("%q", storetest.Password) + "\r\na3 DELETE Archive\r\n")
		if l := c.line(); !strings.HasPrefix(l, "a1 OK") {
			t.Fatalf("STARTTLS: %q", l)
		}
		// The bytes after STARTTLS are the start of the TLS stream, which
		// they are not: the handshake fails and nothing was run.
		tc := tls.Client(c.conn, h.tls)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err == nil {
			t.Fatal("a handshake after injected plaintext succeeded")
		}
		h.waitOpen(t, 0)
		ms, err := h.env.Account(alice).Mailboxes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ms, func(m store.Mailbox) bool { return m.Name == "Archive" }) {
			t.Errorf("the DELETE sent in the clear after STARTTLS ran: %+v", ms)
		}
	})
}

// waitOpen waits until the server has n connections open.
func (h *harness) waitOpen(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.srv.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", h.srv.Open(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A non-synchronizing literal whose command the library refuses before it
// reaches the literal is not read as commands (the library would discard
// only the rest of the line): the connection ends instead, and nothing
// the literal held is run. Before login, and after it.
func TestOrphanedLiteral(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
	inject := "x1 DELETE Keep\r\nx2 STORE 1 +FLAGS (\\Deleted)\r\nx3 EXPUNGE\r\n"
	message := "Subject: hi\r\n\r\n" + inject
	for _, tc := range []struct{ name, cmd, want string }{
		// go-imap answers these NO [SERVERBUG] (quirks.go).
		{"search key", fmt.Sprintf("SEARCH NOSUCHKEY {%d+}\r\n%s", len(inject), inject), "NO [SERVERBUG]"},
		{"append date", fmt.Sprintf(`APPEND INBOX "32-Jan-2026 10:00:00 +0000" {%d+}`+"\r\n%s", len(message), message), "NO [SERVERBUG]"},
		{"append flag", fmt.Sprintf(`APPEND INBOX (\Seen" {%d+}`+"\r\n%s", len(message), message), "BAD"},
		{"fetch", fmt.Sprintf("FETCH 1 (BODY[HEADER.FIELDS {%d+}\r\n%s)]", len(inject), inject), "BAD"},
		{"after the literal", fmt.Sprintf("SEARCH NOSUCHKEY SUBJECT {1+}\r\nx %s", inject), "NO [SERVERBUG]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			c.login("alice@example.org")
			c.ok("CREATE Keep")
			c.ok("SELECT INBOX")
			tag := c.next()
			c.send(tag + " " + tc.cmd + "\r\n")
			got, closed := c.closed()
			if !closed {
				t.Fatalf("connection still open; got %q", got)
			}
			if len(got) != 2 || !strings.HasPrefix(got[0], tag+" "+tc.want) || !strings.HasPrefix(got[1], "* BYE [CLIENTBUG] ") {
				t.Errorf("got %q, want %s %s and BYE [CLIENTBUG]", got, tag, tc.want)
			}
			d := h.dial(t)
			d.login("alice@example.org")
			must(t, d.ok(`LIST "" Keep`), `"Keep"`)
			d.ok("DELETE Keep")
			must(t, d.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 1")
		})
	}
	// A literal the command takes is given to it as before.
	c := h.dial(t)
	c.ok(fmt.Sprintf("LOGIN {17+}\r\nalice@example.org {%d+}\r\n%s", len(storetest.Password), storetest.Password))
	c.ok("SELECT INBOX")
	must(t, c.ok("SEARCH SUBJECT {3+}\r\none"), "* SEARCH 1")
	c.ok("CREATE Keep")
}

func TestAuthenticate(t *testing.T) {
	h := start(t, setup{cram: true})
	h.user("alice@example.org", false)
	c := h.dial(t)
	if !strings.Contains(c.greeting, "AUTH=CRAM-MD5") {
		t.Errorf("greeting %q lacks AUTH=CRAM-MD5", c.greeting)
	}
	// PLAIN with an initial response (SASL-IR, RFC 4959).
	c.ok("AUTHENTICATE PLAIN " + b64("\x00alice@example.org\x00"+storetest.Password))
	c.ok("UNAUTHENTICATE")
	c.expect("SELECT INBOX", "BAD")

	// PLAIN after a continuation; a wrong password; another identity.
	tag := c.next()
	c.send(tag + " AUTHENTICATE PLAIN\r\n")
	if l := c.line(); l != "+ " {
		t.Fatalf("AUTHENTICATE PLAIN: %q", l)
	}
	c.send(b64("\x00alice@example.org\x00wrong") + "\r\n")
	if _, st := c.until(tag); !strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password: %q", st)
	}
	c.expect("AUTHENTICATE PLAIN "+b64("bob@example.org\x00alice@example.org\x00"+storetest.Password), "NO [AUTHORIZATIONFAILED]")
	// Cancelled by the client.
	tag = c.next()
	c.send(tag + " AUTHENTICATE PLAIN\r\n")
	c.line()
	c.send("*\r\n")
	if _, st := c.until(tag); !strings.HasPrefix(st, "BAD") {
		t.Errorf("cancelled AUTHENTICATE: %q", st)
	}
	c.expect("AUTHENTICATE FOO", "NO")
	// The library answers a malformed initial response NO [SERVERBUG].
	c.expect("AUTHENTICATE PLAIN %%%", "NO")

	// LOGIN (the user name may come as an initial response).
	tag = c.next()
	c.send(tag + " AUTHENTICATE LOGIN " + b64("alice@example.org") + "\r\n")
	if l := c.line(); l != "+ "+b64("Password:") {
		t.Fatalf("AUTHENTICATE LOGIN: %q", l)
	}
	c.send(b64(storetest.Password) + "\r\n")
	if _, st := c.until(tag); !strings.HasPrefix(st, "OK") {
		t.Fatalf("AUTHENTICATE LOGIN: %q", st)
	}
	c.ok("UNAUTHENTICATE")

	// CRAM-MD5 (RFC 2195).
	tag = c.next()
	c.send(tag + " AUTHENTICATE CRAM-MD5\r\n")
	l := c.line()
	ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
	if err != nil || !strings.HasSuffix(string(ch), "@"+testHost+">") {
		t.Fatalf("CRAM-MD5 challenge %q", l)
	}
	mac := hmac.New(md5.New, []byte(storetest.Password))
	mac.Write(ch)
	c.send(b64("alice@example.org "+hex.EncodeToString(mac.Sum(nil))) + "\r\n")
	if _, st := c.until(tag); !strings.HasPrefix(st, "OK") {
		t.Fatalf("AUTHENTICATE CRAM-MD5: %q", st)
	}
	c.ok("SELECT INBOX")
	c.expect("AUTHENTICATE PLAIN "+b64("\x00alice@example.org\x00"+storetest.Password), "BAD")
}

func TestLiteralLimits(t *testing.T) {
	h := start(t, setup{})
	ctx := context.Background()
	h.env.Store.AddDomain(ctx, "example.org")
	small := int64(1000)
	if _, err := h.env.Session.CreateUser(ctx, bsessionNewUser("alice@example.org", store.LimitOverrides{MaxRecvSize: &small})); err != nil {
		t.Fatal(err)
	}
	c := h.dial(t)
	c.login("alice@example.org")
	// APPENDLIMIT is the user's receive size limit (RFC 7889).
	must(t, c.ok("CAPABILITY"), " APPENDLIMIT=1000")
	must(t, c.ok("STATUS INBOX (APPENDLIMIT)"), "APPENDLIMIT 1000")
	// A synchronizing literal over it is refused before it is sent.
	c.expect("APPEND INBOX {1001}", "NO [TOOBIG]")
	body := "Subject: x\r\n\r\n" + strings.Repeat("y", 900)
	c.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(body), body))
	// A non-synchronizing one comes with its data anyway: the server
	// refuses it and ends the connection without reading the data.
	c.send("a50 APPEND INBOX {50000000+}\r\n" + strings.Repeat("z", 10000))
	got, closed := c.closed()
	if !closed {
		t.Fatalf("connection still open after an oversized literal; got %q", got)
	}
	if _, ok := find(got, "a50 NO [TOOBIG]"); !ok {
		t.Errorf("oversized literal: got %q, want a50 NO [TOOBIG]", got)
	}
	if _, ok := find(got, "* BYE [TOOBIG]"); !ok {
		t.Errorf("oversized literal: got %q, want BYE [TOOBIG]", got)
	}
	if _, ok := find(got, "BAD"); ok {
		t.Errorf("the literal's data was read as commands: %q", got)
	}

	// Before login any APPEND literal is too big, and other commands take
	// literals of at most 4 KiB.
	c = h.dial(t)
	c.expect("APPEND INBOX {10}", "NO [TOOBIG]")
	c.send("a9 LOGIN {5000+}\r\n" + strings.Repeat("u", 5000) + " x\r\n")
	if got, closed := c.closed(); !closed {
		t.Fatalf("connection still open after a 5000-byte LOGIN literal; got %q", got)
	} else if _, ok := find(got, "* BYE [TOOBIG]"); !ok {
		t.Errorf("got %q, want BYE [TOOBIG]", got)
	}
	// Small literals work everywhere.
	c = h.dial(t)
	c.ok(fmt.Sprintf("LOGIN {17+}\r\nalice@example.org {%d+}\r\n%s", len(storetest.Password), storetest.Password))
}

func TestLineTooLong(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	c.login("alice@example.org")
	c.send("a1 SELECT " + strings.Repeat("x", 70000))
	got, closed := c.closed()
	if !closed {
		t.Fatal("connection still open after a 70,000-byte line")
	}
	if _, ok := find(got, "* BYE Command line too long"); !ok {
		t.Errorf("got %q, want BYE", got)
	}
}

func TestBadCommandCutoff(t *testing.T) {
	h := start(t, setup{cfg: Config{MaxBadCommands: 3}})
	h.user("alice@example.org", false)
	c := h.dial(t)
	c.login("alice@example.org")
	c.expect("FROB", "BAD")
	c.expect("FETCH", "BAD")
	c.ok("NOOP") // a good command starts the count again
	c.expect("SELECT", "BAD")
	c.expect("STORE", "BAD")
	c.send("a99 FROB\r\n")
	got, closed := c.closed()
	if !closed {
		t.Fatalf("still open after 3 bad commands in a row; got %q", got)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "a99 BAD") || got[1] != "* BYE Too many invalid commands" {
		t.Errorf("got %q", got)
	}
	// Before login a single unknown command ends the connection (the
	// library's guard against cross-protocol attacks).
	c = h.dial(t)
	c.send("GET / HTTP/1.1\r\n")
	if _, closed := c.closed(); !closed {
		t.Error("an HTTP request left the connection open")
	}
}

func TestTimeouts(t *testing.T) {
	h := start(t, setup{cfg: Config{LoginTimeout: 300 * time.Millisecond, IdleTimeout: 700 * time.Millisecond}})
	h.user("alice@example.org", false)
	c := h.dial(t)
	start := time.Now()
	got, closed := c.closed()
	if !closed || time.Since(start) > 3*time.Second {
		t.Fatalf("idle before login: closed %v after %v", closed, time.Since(start))
	}
	must(t, got, "* BYE Timed out")

	// A TLS client that never starts its handshake is dropped too.
	raw, err := net.Dial("tcp", h.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	start = time.Now()
	if _, err := raw.Read(make([]byte, 1)); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("silent TLS client: read %v after %v, want the server to close", err, time.Since(start))
	}

	// After login the autologout applies, IDLE included (RFC 9051 5.4).
	c = h.dial(t)
	c.login("alice@example.org")
	time.Sleep(400 * time.Millisecond) // past the login timeout
	c.ok("SELECT INBOX")
	c.idle()
	start = time.Now()
	got, closed = c.closed()
	if !closed || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("IDLE: closed %v after %v", closed, time.Since(start))
	}
	must(t, got, "* BYE Autologout")
}

func TestConnectionLimits(t *testing.T) {
	h := start(t, setup{cfg: Config{MaxConnections: 3, MaxConnectionsPerIP: 2}})
	a, b := h.dial(t), h.dial(t)
	// A third from the same address is refused with BYE.
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "* BYE [UNAVAILABLE]") {
		t.Errorf("third connection from one address: %q", line)
	}
	// Over implicit TLS the BYE comes after the handshake.
	tc, err := tls.Dial("tcp", h.tlsAddr, h.tls)
	if err != nil {
		t.Fatalf("third connection over TLS: %v", err)
	}
	defer tc.Close()
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(tc).ReadString('\n'); line != "* BYE [UNAVAILABLE] too many connections from your address\r\n" {
		t.Errorf("third connection over TLS: %q", line)
	}
	// Closing one makes room.
	a.ok("LOGOUT")
	a.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.srv.Open() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	h.dial(t)
	b.ok("NOOP")
}

// Shutdown ends every connection (idle, in IDLE, not logged in) with BYE
// (RFC 9051 7.1.5) and stops accepting; Close cuts them at once, without
// a word.
func TestShutdown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(*Server) error
		wantBye bool
	}{
		{"shutdown", func(srv *Server) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		}, true},
		{"close", (*Server).Close, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{})
			alice := h.user("alice@example.org", false)
			a := h.dial(t)
			a.login("alice@example.org")
			a.ok("SELECT INBOX")
			a.idle()
			b := h.dial(t)
			if err := tc.end(h.srv); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for _, c := range []*client{a, b} {
				got, closed := c.closed()
				if !closed {
					t.Errorf("connection open after %s", tc.name)
				}
				if _, ok := find(got, "* BYE Server shutting down"); ok != tc.wantBye {
					t.Errorf("got %q, want BYE %v", got, tc.wantBye)
				}
			}
			if conn, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("the listener still accepts after %s", tc.name)
			}
			if h.srv.Open() != 0 {
				t.Errorf("%d connections left open", h.srv.Open())
			}
			if tc.wantBye {
				// Shutdown returns once the sessions have logged out:
				// none is left listed in the shared cache.
				if live, err := h.env.Session.ProtocolSessions(context.Background(), alice.User.ID); err != nil || len(live) != 0 {
					t.Errorf("after shutdown, %d sessions listed (%v)", len(live), err)
				}
			}
		})
	}
}

// Commands in the wrong state are BAD, whatever they are.
func TestWrongState(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	for _, cmd := range []string{"SELECT INBOX", "LIST \"\" *", "STATUS INBOX (MESSAGES)", "IDLE", "NAMESPACE", "ENABLE IMAP4rev2", "UNAUTHENTICATE"} {
		c.expect(cmd, "BAD")
	}
	c.login("alice@example.org")
	for _, cmd := range []string{"FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "COPY 1 INBOX", "MOVE 1 INBOX", "EXPUNGE", "CLOSE", "UNSELECT", "UID FETCH 1 FLAGS"} {
		c.expect(cmd, "BAD")
	}
	c.ok("LOGOUT")
}

// The session service's login throttle applies to LOGIN and AUTHENTICATE
// alike: once an address has failed too often, even the right password is
// refused, with UNAVAILABLE rather than AUTHENTICATIONFAILED.
func TestLoginThrottle(t *testing.T) {
	h := start(t, setup{opts: storetest.Options{Session: bsessionConfig(3)}})
	h.user("alice@example.org", false)
	c := h.dial(t)
	for i := 0; i < 2; i++ {
		c.expect(`LOGIN alice@example.org wrong`, "NO [AUTHENTICATIONFAILED]")
	}
	c.expect("AUTHENTICATE PLAIN "+b64("\x00alice@example.org\x00wrong"), "NO [AUTHENTICATIONFAILED]")
	c.expect(fmt.Sprintf("LOGIN alice@example.org %q", storetest.Password), "NO [UNAVAILABLE]")
	c.expect("AUTHENTICATE PLAIN "+b64("\x00alice@example.org\x00"+storetest.Password), "NO [UNAVAILABLE]")
}

// refusedInjection checks that c, which sent a command smuggling in
// "DELETE Keep", was closed with BYE [CLIENTBUG] and that Keep is still
// there; it returns the session that looked.
func refusedInjection(t *testing.T, h *harness, c *client) *client {
	t.Helper()
	got, closed := c.closed()
	if !closed {
		t.Fatalf("connection still open; got %q", got)
	}
	if _, ok := find(got, "* BYE [CLIENTBUG] "); !ok {
		t.Errorf("got %q, want BYE [CLIENTBUG]", got)
	}
	d := h.dial(t)
	d.login("alice@example.org")
	must(t, d.ok(`LIST "" Keep`), `"Keep"`)
	return d
}

// The library takes a space before a literal announcement's CRLF ("{5+}
// \r\n", go-imap's Decoder.CRLF); the guard must see the literal there
// too, or its data reaches the library unguarded: run as commands after
// a refused command, and past the literal size limits.
func TestLiteralSpaceBeforeCRLF(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
	inject := "x1 DELETE Keep\r\n"

	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("CREATE Keep")
	c.ok("SELECT INBOX")
	tag := c.next()
	c.send(fmt.Sprintf("%s SEARCH NOSUCHKEY {%d+} \r\n%s", tag, len(inject), inject))
	refusedInjection(t, h, c)

	// Over the size limit: the connection ends without reading the data.
	c = h.dial(t)
	c.send("a9 LOGIN {5000+} \r\n" + strings.Repeat("u", 5000) + " x\r\n")
	if got, closed := c.closed(); !closed {
		t.Fatalf("connection still open after a 5000-byte LOGIN literal; got %q", got)
	} else if _, ok := find(got, "* BYE [TOOBIG]"); !ok {
		t.Errorf("got %q, want BYE [TOOBIG]", got)
	}

	// Literals so written that the command takes work as any other.
	c = h.dial(t)
	c.ok(fmt.Sprintf("LOGIN {17+} \r\nalice@example.org {%d+} \r\n%s", len(storetest.Password), storetest.Password))
	c.ok("SELECT INBOX")
	must(t, c.ok("SEARCH SUBJECT {3+} \r\none"), "* SEARCH 1")
	// A synchronizing one: its data is no command line for the guard
	// (here one the guard would otherwise answer itself).
	tag = c.next()
	c.send(tag + " SEARCH SUBJECT {10} \r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	c.send("t ID NIL\r\n\r\n")
	lines, last := c.until(tag)
	mustNot(t, lines, "* ID ")
	if !strings.HasPrefix(last, "OK") {
		t.Errorf("got %q %q, want %s OK", lines, last, tag)
	}
}

// The library reads a quoted string across line ends; the guard, which
// takes every line end for one, would then see literals and commands
// where the library has string bytes, and the other way round: here the
// data of what the guard takes for a literal of t2 is, for the library,
// the end of t1's string and then a command. A line end inside a quoted
// string ends the connection.
func TestQuotedLineBreak(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	data := "\"\r\nx1 DELETE Keep\r\n"
	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("CREATE Keep")
	c.ok("SELECT INBOX")
	tag := c.next()
	c.send(fmt.Sprintf("%s SEARCH SUBJECT \"a\r\nt2 SEARCH NOSUCHKEY {%d+}\r\n%s", tag, len(data), data))
	d := refusedInjection(t, h, c)
	// Quotes elsewhere than at a string's start are no strings.
	d.ok("SELECT INBOX")
	d.expect(`SEARCH SUBJECT a"b`, "BAD")
	d.ok(`SEARCH SUBJECT "a\"b\\" SUBJECT "{5}"`)
}

// writeLog is a listener whose connections record each write the server
// makes to them.
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, log: l}, nil
}

func (l *writeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

type loggedConn struct {
	net.Conn
	log *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, string(p))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

// A command's untagged responses go out with its tagged response, in one
// write (the library flushes at every line); in IDLE, where no tagged
// response follows, an update goes out at once.
func TestUntaggedResponsesCoalesced(t *testing.T) {
	h := start(t, setup{})
	a := h.user("alice@example.org", false)
	for i := range 5 {
		h.deliver(a, "INBOX", storetest.Message("x@example.org", "alice@example.org", fmt.Sprintf("m%d", i), "body"), store.AppendOptions{})
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &writeLog{Listener: raw}
	go h.srv.Serve(ln)
	t.Cleanup(func() { ln.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, conn)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	if got := c.ok("FETCH 1:5 (FLAGS)"); len(got) != 5 {
		t.Fatalf("FETCH answered %d untagged lines, want 5: %q", len(got), got)
	}
	var fetch string
	for _, w := range ln.all() {
		if strings.Contains(w, " FETCH (") {
			fetch = w
			break
		}
	}
	if strings.Count(fetch, " FETCH (") != 5 || !strings.Contains(fetch, " OK ") {
		t.Fatalf("the FETCH's first write was %q, want its 5 untagged responses and its tagged OK", fetch)
	}

	c.send("i IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE answered %q", l)
	}
	h.deliver(a, "INBOX", storetest.Message("x@example.org", "alice@example.org", "new", "body"), store.AppendOptions{})
	if l := c.line(); l != "* 6 EXISTS" {
		t.Fatalf("in IDLE, got %q, want * 6 EXISTS", l)
	}
	c.send("DONE\r\n")
	c.until("i")
}

// deadlineConn records the write deadlines set on it and takes every
// write.
type deadlineConn struct {
	net.Conn
	sets []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.sets = append(c.sets, t)
	return nil
}

func (c *deadlineConn) Write(p []byte) (int, error) { return len(p), nil }

func (c *deadlineConn) Read([]byte) (int, error) { return 0, io.EOF }

// The library sets a write deadline before each response and clears it
// after; the connection's timer changes only when the deadline moves by
// more than the slack or comes earlier, and a write the library set no
// deadline for goes out with none.
func TestWriteDeadlinesCoarse(t *testing.T) {
	c := &deadlineConn{}
	g := &guard{Conn: c, srv: &Server{}}
	now := time.Now()
	for i := range 100 {
		g.SetWriteDeadline(now.Add(30*time.Second + time.Duration(i)*time.Millisecond))
		if _, err := g.Write([]byte("* OK a line\r\n")); err != nil {
			t.Fatal(err)
		}
		g.SetWriteDeadline(time.Time{})
	}
	if len(c.sets) != 1 {
		t.Fatalf("100 responses set the deadline %d times, want once", len(c.sets))
	}
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"later by more than the slack", now.Add(32 * time.Second)},
		{"earlier", now.Add(10 * time.Second)},
	} {
		n := len(c.sets)
		g.SetWriteDeadline(tc.at)
		if len(c.sets) != n+1 || !c.sets[n].Equal(tc.at) {
			t.Errorf("%s: deadlines set %v", tc.name, c.sets[n:])
		}
	}
	g.SetWriteDeadline(time.Time{})
	if _, err := g.Write([]byte("* BYE going\r\n")); err != nil {
		t.Fatal(err)
	}
	if last := c.sets[len(c.sets)-1]; !last.IsZero() {
		t.Errorf("a write after the clear went out with deadline %v", last)
	}
}

// Under TLS a read that may wait first clears a write deadline the
// library cleared and the guard kept: TLS 1.3 answers a KeyUpdate from
// within Read, and on a connection idle past that deadline the answer
// would fail, and end the connection.
func TestWriteDeadlineClearedBeforeTLSRead(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		c := &deadlineConn{}
		var conn net.Conn = c
		if overTLS {
			conn = tls.Server(c, &tls.Config{})
		}
		g := &guard{Conn: conn, srv: &Server{}}
		g.SetWriteDeadline(time.Now().Add(30 * time.Second))
		g.SetWriteDeadline(time.Time{})
		g.fill(make([]byte, 16))
		cleared := len(c.sets) == 2 && c.sets[1].IsZero()
		if cleared != overTLS {
			t.Errorf("over TLS %v: deadlines set before the read %v", overTLS, c.sets)
		}
	}
}
