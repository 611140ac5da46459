package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// setup varies a harness.
type setup struct {
	cfg Config
	db  testsupport.Database // zero: a fresh SQLite file
	// env reuses another harness's store: a second server on the same
	// database, blobs and cache (a second node when that is Redis).
	env  *storetest.Env
	opts storetest.Options
	// remote makes loopback clients count as remote ones, as far as
	// plaintext logins go: the tests have only loopback to connect from.
	remote  bool
	cram    bool // allow CRAM-MD5 in the session service and offer it
	noTLS   bool // no certificate: no STLS, no implicit TLS listener
	session session.Config
	// wrap, when set, stands between the plaintext listener and Serve.
	wrap func(net.Listener) net.Listener
}

// harness is a Server on real sockets on 127.0.0.1, over a real store.
type harness struct {
	t       testing.TB
	env     *storetest.Env
	srv     *Server
	addr    string // plaintext, with STLS
	tlsAddr string // implicit TLS
	caFile  string // the server certificate in PEM, for clients to trust
	tls     *tls.Config
	logs    *testsupport.LogBuffer
	sh      *testsupport.ServerHarness
}

const testHost = "pop.test"

func start(t testing.TB, su setup) *harness {
	t.Helper()
	env := su.env
	if env == nil {
		db := su.db
		if db.Driver == "" {
			db = testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
		}
		o := su.opts
		o.Session = su.session
		if su.cram {
			o.Session.CRAMMD5 = true
		}
		env = storetest.Open(t, db, o)
	}
	sh := testsupport.NewServerHarness(t, testHost)
	cfg := su.cfg
	cfg.Hostname = testHost
	if !su.noTLS {
		cfg.TLS = sh.TLS
	}
	if su.cram {
		cfg.CRAM = env.Session.For(store.ProtoPOP3)
	}
	srv := New(cfg, env.Store, env.Session.For(store.ProtoPOP3), sh.Log)
	srv.trustLoopback = !su.remote
	h := &harness{t: t, env: env, srv: srv, logs: sh.Logs, caFile: sh.CAFile, tls: sh.Client, sh: sh}
	for _, implicit := range []bool{false, true} {
		if implicit && su.noTLS {
			continue
		}
		ln := sh.Listen()
		serve := srv.Serve
		if implicit {
			h.tlsAddr = ln.Addr().String()
			serve = srv.ServeTLS
		} else {
			h.addr = ln.Addr().String()
			if su.wrap != nil {
				ln = su.wrap(ln)
			}
		}
		sh.Serve(func() error { return serve(ln) })
	}
	sh.StopAtEnd(func() { srv.Close() })
	return h
}

// user creates a user with the test password and returns its mail.
func (h *harness) user(addr string, secure bool) *store.Account {
	h.t.Helper()
	return h.env.Account(h.env.NewUser(h.t, addr, secure))
}

// deliver appends raw messages to an account's INBOX.
func (h *harness) deliver(a *store.Account, msgs ...string) {
	h.t.Helper()
	inbox := storetest.Inbox(h.t, a)
	for _, m := range msgs {
		storetest.Append(h.t, a, inbox, []byte(m), store.AppendOptions{})
	}
}

// inbox returns the messages in an account's INBOX, oldest first.
func (h *harness) inbox(a *store.Account) []store.Message {
	h.t.Helper()
	msgs, err := a.List(context.Background(), storetest.Inbox(h.t, a), store.ListQuery{})
	if err != nil {
		h.t.Fatal(err)
	}
	return msgs
}

// waitConnections waits until the server holds n connections.
func (h *harness) waitConnections(n int) {
	h.t.Helper()
	h.sh.WaitOpen(n, h.srv.set.Open)
}

// client is a raw POP3 client: it sends lines and reads answers as they
// come, so that every status can be checked.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func newClient(t testing.TB, nc net.Conn) *client {
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// dial connects to the plaintext listener and checks the greeting.
func (h *harness) dial() *client {
	h.t.Helper()
	nc, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	c := newClient(h.t, nc)
	if g := c.line(); !strings.HasPrefix(g, "+OK "+testHost+" ") {
		h.t.Fatalf("greeting %q", g)
	}
	return c
}

// dialTLS connects to the implicit TLS listener.
func (h *harness) dialTLS() *client {
	h.t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.tlsAddr, h.tls)
	if err != nil {
		h.t.Fatalf("dial TLS: %v", err)
	}
	c := newClient(h.t, nc)
	if g := c.line(); !strings.HasPrefix(g, "+OK ") {
		h.t.Fatalf("greeting %q", g)
	}
	return c
}

// line reads one line without its CRLF; a closed connection reads as
// "EOF: ...".
func (c *client) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		return "EOF: " + err.Error()
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("line not ended by CRLF: %q", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// send sends a command line and returns the first line of the answer.
func (c *client) send(line string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.line()
}

// expect sends a command and fails unless the answer starts with want.
func (c *client) expect(line, want string) string {
	c.t.Helper()
	r := c.send(line)
	if !strings.HasPrefix(r, want) {
		c.t.Fatalf("%s: got %q, want %q", line, r, want)
	}
	return r
}

// multi sends a command that answers +OK and a multi-line body, and
// returns the body as sent (dot-stuffed, CRLFs kept), without the final
// ".\r\n".
func (c *client) multi(line string) string {
	c.t.Helper()
	c.expect(line, "+OK")
	return c.body()
}

// body reads a multi-line body up to its terminating line.
func (c *client) body() string {
	c.t.Helper()
	var b strings.Builder
	for {
		s, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("multi-line answer cut off after %d octets (ending %q): %v", b.Len(), tail(b.String(), 80), err)
		}
		if s == ".\r\n" {
			return b.String()
		}
		b.WriteString(s)
	}
}

// unstuff undoes dot-stuffing (RFC 1939 3).
func unstuff(body string) string {
	lines := strings.SplitAfter(body, "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ".")
	}
	return strings.Join(lines, "")
}

// login logs in with USER and PASS.
func (c *client) login(user string) {
	c.t.Helper()
	c.expect("USER "+user, "+OK")
	c.expect("PASS "+storetest.Password, "+OK")
}

// startTLS sends STLS and upgrades the connection.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.expect("STLS", "+OK")
	c.nc = tlsHandshake(c.t, c.nc, cfg)
	c.r = bufio.NewReader(c.nc)
}

// tlsClient runs a client TLS handshake trusting h's certificate.
func tlsClient(t testing.TB, nc net.Conn, h *harness) net.Conn {
	t.Helper()
	return tlsHandshake(t, nc, h.tls)
}

func tlsHandshake(t testing.TB, nc net.Conn, cfg *tls.Config) net.Conn {
	t.Helper()
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	return tc
}

// expectClosed fails unless the server has closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if l := c.line(); !strings.HasPrefix(l, "EOF") {
		c.t.Fatalf("connection still open: read %q", l)
	}
}

// crlf is a message as POP3 sends it: every line ended by CRLF.
func crlf(raw string) string {
	s := strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n", "\r\n")
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
