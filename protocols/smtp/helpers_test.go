package smtp

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// setup varies a harness.
type setup struct {
	cfg     Config
	agent   delivery.Config
	db      testsupport.Database // zero: a fresh SQLite file
	session session.Config
	// remote makes loopback clients count as remote ones, as far as AUTH
	// over plaintext goes: the tests have only loopback to connect from.
	remote bool
	socket bool // also serve LMTP on a unix socket
	cram   bool // allow CRAM-MD5 in the session service and offer it
	// bounces collects the bounces sent; nil: none are sent.
	bounces *bounces
	// queue gives the agent a real outbound queue, which stores what is
	// relayed (and sends nothing: it is not run).
	queue bool
}

// bounces are the DSNs the server sent, as Config.SendBounce.
type bounces struct {
	mu   sync.Mutex
	sent []bounce
}

type bounce struct {
	to  string
	dsn string
}

func (b *bounces) send(_ context.Context, to string, dsn []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, bounce{to, string(dsn)})
	return nil
}

func (b *bounces) all() []bounce {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bounce(nil), b.sent...)
}

// harness is a Server on real sockets on 127.0.0.1, over a real store.
type harness struct {
	t      *testing.T
	env    *storetest.Env
	agent  *delivery.Agent
	srv    *Server
	addr   map[Role]string
	socket string
	caFile string      // the server certificate in PEM, for clients to trust
	tls    *tls.Config // a client configuration trusting it
	logs   *testsupport.LogBuffer
	sh     *testsupport.ServerHarness
}

const testHost = "mx.test"

func start(t *testing.T, su setup) *harness {
	t.Helper()
	db := su.db
	if db.Driver == "" {
		db = testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
	}
	if su.cram {
		su.session.CRAMMD5 = true
	}
	env := storetest.Open(t, db, storetest.Options{Session: su.session})
	sh := testsupport.NewServerHarness(t, testHost)
	log := sh.Log
	ac := su.agent
	ac.Hostname = testHost
	var relay delivery.Relay
	if su.queue {
		relay = delivery.NewQueue(delivery.QueueConfig{Smarthost: "127.0.0.1:1"}, env.Store, nil, log)
	}
	agent := delivery.New(ac, env.Store, relay, log)
	cfg := su.cfg
	cfg.Hostname = testHost
	cfg.TLS = sh.TLS
	if su.bounces != nil {
		cfg.SendBounce = su.bounces.send
	}
	if su.cram {
		cfg.CRAM = env.Session.For(store.ProtoSMTP)
	}
	srv := New(cfg, agent, env.Session.For(store.ProtoSMTP), log)
	srv.trustLoopback = !su.remote
	h := &harness{
		t: t, env: env, agent: agent, srv: srv, addr: map[Role]string{},
		logs: sh.Logs, caFile: sh.CAFile, tls: sh.Client, sh: sh,
	}
	serve := func(ln net.Listener, r Role) { sh.Serve(func() error { return srv.Serve(ln, r) }) }
	for _, r := range []Role{RoleMX, RoleSubmission, RoleSubmissions, RoleLMTP} {
		ln := sh.Listen()
		h.addr[r] = ln.Addr().String()
		serve(ln, r)
	}
	if su.socket {
		h.socket = filepath.Join(t.TempDir(), "lmtp.sock")
		ln, err := net.Listen("unix", h.socket)
		if err != nil {
			t.Fatal(err)
		}
		serve(ln, RoleLMTP)
	}
	sh.StopAtEnd(func() { srv.Close() })
	return h
}

// user creates a user with the test password; quota 0 is unlimited.
func (h *harness) user(addr string, quota int64) {
	h.t.Helper()
	if quota == 0 {
		h.env.NewUser(h.t, addr, false)
		return
	}
	ctx := context.Background()
	_, domain, _ := strings.Cut(addr, "@")
	if _, err := h.env.Store.DomainByName(ctx, domain); err != nil {
		if _, err := h.env.Store.AddDomain(ctx, domain); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, err := h.env.Session.CreateUser(ctx, session.NewUser{Address: addr, Password: storetest.Password,
		Overrides: store.LimitOverrides{QuotaBytes: &quota}}); err != nil {
		h.t.Fatal(err)
	}
}

// account returns a user's mail.
func (h *harness) account(addr string) *store.Account {
	h.t.Helper()
	u, err := h.env.Store.UserByAddress(context.Background(), addr)
	if err != nil {
		h.t.Fatalf("user %s: %v", addr, err)
	}
	return h.env.Store.Account(u.ID, nil)
}

// inbox returns the raw messages in a user's INBOX, oldest first.
func (h *harness) inbox(addr string) []string {
	h.t.Helper()
	return storetest.Messages(h.t, h.account(addr), "INBOX")
}

// connections reports how many connections the server holds.
func (h *harness) connections() int {
	return h.srv.set.Open()
}

// waitConnections waits until the server holds n connections.
func (h *harness) waitConnections(n int) {
	h.t.Helper()
	h.sh.WaitOpen(n, h.connections)
}

// client is a raw SMTP client: it sends lines and reads replies as they
// come, so that every code can be checked.
type client struct {
	t  *testing.T
	nc net.Conn
	tp *textproto.Conn
}

// resp is one SMTP reply; text holds every line, joined by newlines.
type resp struct {
	code int
	text string
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.code, r.text) }

// dialRaw connects and returns the greeting.
func dialRaw(t *testing.T, network, addr string) (*client, resp) {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: t, nc: nc, tp: textproto.NewConn(nc)}
	return c, c.read()
}

// dial connects to a role's listener and checks the greeting.
func (h *harness) dial(r Role) *client {
	h.t.Helper()
	c, g := dialRaw(h.t, "tcp", h.addr[r])
	if g.code != 220 || !strings.HasPrefix(g.text, testHost+" ") {
		h.t.Fatalf("greeting %q", g)
	}
	return c
}

// dialTLS connects to the implicit TLS listener.
func (h *harness) dialTLS() *client {
	h.t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.addr[RoleSubmissions], h.tls)
	if err != nil {
		h.t.Fatalf("dial TLS: %v", err)
	}
	h.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: h.t, nc: nc, tp: textproto.NewConn(nc)}
	if g := c.read(); g.code != 220 {
		h.t.Fatalf("greeting %q", g)
	}
	return c
}

// read reads one reply; a closed connection reads as code 0, text "EOF".
func (c *client) read() resp {
	c.t.Helper()
	code, text, err := c.tp.ReadResponse(0)
	if err != nil {
		if _, ok := err.(*textproto.Error); !ok {
			return resp{0, "EOF: " + err.Error()}
		}
	}
	return resp{code, text}
}

// send sends a command and returns its reply.
func (c *client) send(line string) resp {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return resp{0, "EOF: " + err.Error()}
	}
	return c.read()
}

// expect sends a command and fails unless the reply starts with want
// ("550 5.1.1", say).
func (c *client) expect(line, want string) resp {
	c.t.Helper()
	r := c.send(line)
	if !strings.HasPrefix(r.String(), want) {
		c.t.Fatalf("%s: got %q, want %q", line, r, want)
	}
	return r
}

// data sends DATA and the message and returns the reply after the dot.
func (c *client) data(msg []byte) resp {
	c.t.Helper()
	c.expect("DATA", "354")
	return c.body(msg)
}

// body sends a message and its final dot and reads the reply.
func (c *client) body(msg []byte) resp {
	c.t.Helper()
	w := c.tp.DotWriter()
	w.Write(msg)
	w.Close()
	return c.read()
}

// startTLS upgrades the connection.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.expect("STARTTLS", "220 2.0.0")
	c.startTLSConn(cfg)
}

// startTLSConn starts TLS on the connection as it is.
func (c *client) startTLSConn(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc = tc
	c.tp = textproto.NewConn(tc)
}

// closed reports whether the server has closed the connection: the next
// read ends without a reply.
func (c *client) closed() bool {
	c.t.Helper()
	r := c.read()
	if r.code != 0 {
		c.t.Logf("after the close was expected: %q", r)
	}
	return r.code == 0
}

// expectClosed fails unless the server has closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if !c.closed() {
		c.t.Fatal("the connection is still open")
	}
}

var storeOpts = store.AppendOptions{}

// plainAuth is an AUTH PLAIN initial response (RFC 4616).
func plainAuth(user, pass string) string {
	return b64("\x00" + user + "\x00" + pass)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
