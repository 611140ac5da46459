package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	bsession "basalt/session"
	"basalt/store"
)

// setup varies a harness.
type setup struct {
	cfg Config
	db  testsupport.Database // zero: a fresh SQLite file
	// env reuses a store (another node's harness over the same database).
	opts storetest.Options
	// remote makes loopback clients count as remote ones for plaintext
	// login: the tests have only loopback to connect from.
	remote bool
	cram   bool
	// beforeSearch is the Server's hook (Server.beforeSearch).
	beforeSearch func(ctx context.Context)
}

// harness is a Server on real sockets on 127.0.0.1 over a real store.
type harness struct {
	t       testing.TB
	env     *storetest.Env
	srv     *Server
	addr    string // plain, STARTTLS offered
	tlsAddr string // implicit TLS
	tls     *tls.Config
	caFile  string
	logs    *testsupport.LogBuffer
}

const testHost = "imap.test"

func start(t testing.TB, su setup) *harness {
	t.Helper()
	db := su.db
	if db.Driver == "" {
		db = testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
	}
	if su.cram {
		su.opts.Session.CRAMMD5 = true
	}
	env := storetest.Open(t, db, su.opts)
	sh := testsupport.NewServerHarness(t, testHost)
	cfg := su.cfg
	cfg.Hostname = testHost
	cfg.TLS = sh.TLS
	srv := New(cfg, env.Store, env.Session.For(store.ProtoIMAP), sh.Log)
	srv.trustLoopback = !su.remote
	srv.beforeSearch = su.beforeSearch
	h := &harness{t: t, env: env, srv: srv, logs: sh.Logs, tls: sh.Client, caFile: sh.CAFile}
	for _, implicit := range []bool{false, true} {
		ln := sh.Listen()
		serve := srv.Serve
		if implicit {
			h.tlsAddr, serve = ln.Addr().String(), srv.ServeTLS
		} else {
			h.addr = ln.Addr().String()
		}
		sh.Serve(func() error { return serve(ln) })
	}
	sh.StopAtEnd(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return h
}

// user creates a user with the test password.
func (h *harness) user(addr string, secure bool) *bsession.Auth {
	h.t.Helper()
	return h.env.NewUser(h.t, addr, secure)
}

// deliver appends a message to a user's mailbox through the store, as
// another session would.
func (h *harness) deliver(a *bsession.Auth, mailbox string, msg []byte, o store.AppendOptions) store.Appended {
	h.t.Helper()
	acct := h.env.Account(a)
	return storetest.Append(h.t, acct, storetest.MailboxID(h.t, acct, mailbox), msg, o)
}

// client speaks IMAP line by line, for tests that must see exactly what
// the server says.
type client struct {
	t        testing.TB
	conn     net.Conn
	r        *bufio.Reader
	n        int
	greeting string
}

func (h *harness) dial(t testing.TB) *client {
	t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, c)
}

func (h *harness) dialTLS(t testing.TB) *client {
	t.Helper()
	c, err := tls.Dial("tcp", h.tlsAddr, h.tls)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, c)
}

func newClient(t testing.TB, c net.Conn) *client {
	t.Helper()
	cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	cl.greeting = cl.line()
	if !strings.HasPrefix(cl.greeting, "* OK") {
		t.Fatalf("greeting %q", cl.greeting)
	}
	return cl
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

var literalAtEnd = regexp.MustCompile(`~?\{(\d+)\}\r\n$`)

// line reads one response with its literals, CRLF removed.
func (c *client) line() string {
	c.t.Helper()
	s, err := c.readResponse(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	return s
}

func (c *client) readResponse(wait time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(wait))
	var b strings.Builder
	for {
		s, err := c.r.ReadString('\n')
		b.WriteString(s)
		if err != nil {
			return b.String(), err
		}
		m := literalAtEnd.FindStringSubmatch(s)
		if m == nil {
			return strings.TrimSuffix(b.String(), "\r\n"), nil
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			return b.String(), err
		}
		b.Write(lit)
	}
}

// next returns the next tag.
func (c *client) next() string {
	c.n++
	return fmt.Sprintf("a%d", c.n)
}

// do sends a command and returns the untagged responses and the tagged
// one (without its tag).
func (c *client) do(cmd string) ([]string, string) {
	c.t.Helper()
	tag := c.next()
	c.send(tag + " " + cmd + "\r\n")
	return c.until(tag)
}

// until reads responses up to the one tagged tag.
func (c *client) until(tag string) ([]string, string) {
	c.t.Helper()
	var untagged []string
	for {
		l := c.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed and returns its untagged responses.
func (c *client) ok(cmd string) []string {
	c.t.Helper()
	u, status := c.do(cmd)
	if !strings.HasPrefix(status, "OK") {
		c.t.Fatalf("%s: %s (untagged %q)", cmd, status, u)
	}
	return u
}

// expect runs a command whose tagged response must start with prefix.
func (c *client) expect(cmd, prefix string) []string {
	c.t.Helper()
	u, status := c.do(cmd)
	if !strings.HasPrefix(status, prefix) {
		c.t.Fatalf("%s: got %q, want %q... (untagged %q)", cmd, status, prefix, u)
	}
	return u
}

func (c *client) login(user string) {
	c.t.Helper()
	c.ok(fmt.Sprintf("LOGIN %s %q", user, storetest.Password))
}

// closed reports whether the server has closed the connection, after
// reading what it still had to say.
func (c *client) closed() ([]string, bool) {
	var got []string
	for {
		l, err := c.readResponse(5 * time.Second)
		if err != nil {
			if l != "" {
				got = append(got, l)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, false
			}
			return got, true
		}
		got = append(got, l)
	}
}

// find returns the first response containing sub.
func find(lines []string, sub string) (string, bool) {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return l, true
		}
	}
	return "", false
}

func must(t testing.TB, lines []string, sub string) string {
	t.Helper()
	l, ok := find(lines, sub)
	if !ok {
		t.Fatalf("no response with %q in %q", sub, lines)
	}
	return l
}

func mustNot(t testing.TB, lines []string, sub string) {
	t.Helper()
	if l, ok := find(lines, sub); ok {
		t.Fatalf("unexpected response %q", l)
	}
}

// msg is a small test message.
func msg(subject, body string) []byte {
	return storetest.Message("Bob Sender <bob@example.org>", "Alice <alice@example.org>", subject, body)
}

// bsessionNewUser is a user with the test password and its own limits.
func bsessionNewUser(addr string, o store.LimitOverrides) bsession.NewUser {
	return bsession.NewUser{Address: addr, Password: storetest.Password, Overrides: o}
}

// bsessionConfig is a session service that throttles an address after
// failures failed logins (the account's own from its network, as the
// test user logged in from loopback before, which spares it the address's).
func bsessionConfig(failures int64) bsession.Config {
	return bsession.Config{FailuresPerIP: failures, FailuresPerAccount: failures, FailuresPerNet: 100}
}
