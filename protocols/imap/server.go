package imap

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"basalt/protocols/listener"
	bsession "basalt/session"
	"basalt/store"
)

// Authenticator checks logins; *session.Service is one. ip is the
// client's host:port.
type Authenticator interface {
	Authenticate(ctx context.Context, login, password, ip string) (*bsession.Auth, error)
	AuthenticateCRAM(ctx context.Context, login, challenge, digest, ip string) (*bsession.Auth, error)
	// CRAMMD5 reports whether CRAM-MD5 (RFC 2195) may be offered.
	CRAMMD5() bool
	// Open registers a logged-in connection, which end ends when its
	// user may no longer have it (suspended, locked, IMAP turned off, a
	// new password, renamed, deleted, revoked); the session closes the
	// returned Conn when it logs out or ends.
	Open(auth *bsession.Auth, remote string, end func(reason string)) *bsession.Conn
}

// Config tunes a Server. Zero fields take the defaults (WithDefaults).
type Config struct {
	// Hostname names the server in CRAM-MD5 challenges.
	Hostname string
	// TLS is the certificate for STARTTLS and ServeTLS; nil offers
	// neither.
	TLS *tls.Config
	// AllowPlaintextAuth allows LOGIN and AUTHENTICATE on connections that
	// are not secure (listener.Secure: TLS, loopback, unix socket).
	// Without it such connections advertise LOGINDISABLED until STARTTLS.
	AllowPlaintextAuth bool

	MaxConnections      int // at once over every listener; default 1000
	MaxConnectionsPerIP int // at once from one address (IPv6: its /64); default 20
	// LoginTimeout bounds the wait for each command before login; the
	// library's own limit there is 30s, so it can only shorten that.
	// Default 30s.
	LoginTimeout time.Duration
	// IdleTimeout is the autologout after login: the longest wait for a
	// command, IDLE included. RFC 9051 5.4 asks for at least 30 minutes.
	// Default 30m.
	IdleTimeout time.Duration
	// MaxLineLength bounds a command line outside its literals; the
	// library refuses commands over 50 KiB itself, and a client that goes
	// on past this limit is disconnected. Default 64 KiB.
	MaxLineLength int
	// MaxBadCommands is how many BAD responses in a row a connection may
	// get before it is closed with BYE. Default 10.
	MaxBadCommands int
	// MaxAppendSize caps APPENDLIMIT, which is otherwise the user's
	// receive size limit. Default 50 MiB.
	MaxAppendSize int64
	// IdleRecheck is how long an IDLE session waits for the change bus
	// before it reads the store anyway: a change whose announcement was
	// lost (a failed publish, a cache restart) is found within it.
	// Default 5s.
	IdleRecheck time.Duration
}

// WithDefaults returns c with every unset field at its default; the
// configuration layer shows these, so they are stated only here.
func (c Config) WithDefaults() Config {
	c.Hostname = cmp.Or(c.Hostname, "localhost")
	c.MaxConnections = cmp.Or(c.MaxConnections, 1000)
	c.MaxConnectionsPerIP = cmp.Or(c.MaxConnectionsPerIP, 20)
	c.MaxLineLength = cmp.Or(c.MaxLineLength, 64<<10)
	c.MaxBadCommands = cmp.Or(c.MaxBadCommands, 10)
	c.LoginTimeout = cmp.Or(c.LoginTimeout, 30*time.Second)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, 30*time.Minute) // RFC 9051 5.4
	c.MaxAppendSize = cmp.Or(c.MaxAppendSize, 50<<20)
	if c.IdleRecheck <= 0 {
		c.IdleRecheck = 5 * time.Second
	}
	return c
}

// capabilities are what the server advertises beyond what the library
// adds on its own (SASL-IR, LITERAL-, UNSELECT, ENABLE, IDLE,
// UTF8=ACCEPT, STARTTLS, AUTH=, LOGINDISABLED, APPENDLIMIT=). Each works
// fully; see the package's tests. Not here because the library release
// dispatches no command for them: QUOTA, ACL, SORT, THREAD,
// CONDSTORE/QRESYNC (the store keeps a modseq per message, ready for the
// last two). ID the guard answers (commandline.go), but cannot offer:
// the library advertises only capabilities of its own fixed lists (quirks.go).
var capabilities = imap.CapSet{
	imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
	imap.CapLiteralPlus: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {},
	imap.CapESearch: {}, imap.CapSearchRes: {}, imap.CapListExtended: {},
	imap.CapListStatus: {}, imap.CapMove: {}, imap.CapStatusSize: {},
	imap.CapBinary: {}, imap.CapChildren: {}, imap.CapSpecialUse: {},
	imap.CapCreateSpecialUse: {}, imap.CapUnauthenticate: {},
}

// Server serves IMAP over the store. Serve and ServeTLS may be called for
// any number of listeners.
type Server struct {
	cfg   Config
	store *store.Store
	auth  Authenticator
	log   *slog.Logger
	// set is the connections: accept, limits, shutdown; every store call
	// runs on the context of the connection it serves.
	set *listener.Set

	// The library decides per server instance whether a connection may
	// log in without TLS and whether STARTTLS is offered, so there is one
	// instance per kind of connection, each fed by a listener of its own.
	plainSecure, plainInsecure, implicit *engine

	// pending is the buffers guards keep responses back in (pendingBuf).
	pending sync.Pool

	// sessions counts the sessions not closed yet: Shutdown returns once
	// each has logged out, so that none leaves its listing in the shared
	// cache, or logs, after the server is gone (under mu while closing
	// may still change).
	sessions sync.WaitGroup

	mu      sync.Mutex
	closing bool
	done    chan struct{} // closed by Shutdown
	// trustLoopback counts loopback clients as secure; only tests turn it
	// off, to see what a remote client sees.
	trustLoopback bool
	// beforeSearch, when set, runs before a SEARCH's store call, on its
	// context; tests see there what becomes of the context.
	beforeSearch func(ctx context.Context)
}

// engine is one imapserver.Server and the listener it accepts from.
type engine struct {
	srv    *imapserver.Server
	ln     *chanListener
	served chan struct{} // closed when srv.Serve has returned
}

// New returns a server over st, checking logins with auth.
func New(cfg Config, st *store.Store, auth Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg: cfg.WithDefaults(), store: st, auth: auth, log: log.With("proto", "imap"),
		done: make(chan struct{}), trustLoopback: true,
	}
	s.set = listener.NewSet(context.Background(), listener.Config{
		Name: "imap", Max: s.cfg.MaxConnections, PerIP: s.cfg.MaxConnectionsPerIP, Log: s.log,
		// RFC 9051 7.1.5: a server may greet with BYE and close.
		Refusal: func(err error) string { return "* BYE [UNAVAILABLE] " + err.Error() },
	})
	s.plainSecure = s.newEngine(s.cfg.TLS, true)
	s.plainInsecure = s.newEngine(s.cfg.TLS, false)
	// The library would offer STARTTLS again on a TLS connection it does
	// not see as one (it sees the guard), so implicit TLS gets no TLS
	// config: the connection is secure already.
	s.implicit = s.newEngine(nil, true)
	return s
}

func (s *Server) newEngine(tlsCfg *tls.Config, plaintextAuth bool) *engine {
	e := &engine{ln: &chanListener{ch: make(chan net.Conn), done: s.done}, served: make(chan struct{})}
	e.srv = imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         capabilities,
		Logger:       libLogger{s.log},
		TLSConfig:    tlsCfg,
		InsecureAuth: plaintextAuth,
	})
	go func() {
		defer close(e.served)
		e.srv.Serve(e.ln)
	}()
	return e
}

// Serve accepts plain connections on ln until Shutdown; STARTTLS is
// offered when the Config has TLS.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts connections on ln that speak TLS from the first byte
// (port 993, RFC 8314).
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imap: implicit TLS needs a TLS config")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	if s.set.Draining() {
		return errors.New("imap: server shut down")
	}
	var tlsCfg *tls.Config
	if implicitTLS {
		tlsCfg = s.cfg.TLS
	}
	l := s.set.Listener(ln, tlsCfg)
	for {
		c, err := l.Accept()
		if err != nil {
			if s.set.Draining() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("imap: accept on %s: %w", ln.Addr(), err)
		}
		s.accept(c.(*listener.Conn), implicitTLS)
	}
}

// accept hands an admitted connection to the engine for its kind.
func (s *Server) accept(c *listener.Conn, implicitTLS bool) {
	// The library sets read deadlines only once it has greeted the
	// client, and over implicit TLS the greeting waits for the handshake:
	// without this a client that never says hello holds its place.
	c.SetReadDeadline(time.Now().Add(s.cfg.LoginTimeout))
	secure := listener.Secure(c) && (s.trustLoopback || isTLS(c))
	var inner net.Conn = c
	if implicitTLS {
		inner = tls.Server(c, s.cfg.TLS)
		secure = true
	}
	g := s.newGuard(inner, c)
	e := s.plainInsecure
	switch {
	case implicitTLS:
		e = s.implicit
	case secure || s.cfg.AllowPlaintextAuth:
		e = s.plainSecure
	}
	select {
	case e.ln.ch <- g:
	case <-s.done:
		g.Close()
	}
}

// newGuard puts a guard over inner, which is lc or TLS over it, and has a
// shutdown end it with BYE (RFC 9051 7.1.5).
func (s *Server) newGuard(inner net.Conn, lc *listener.Conn) *guard {
	g := newGuard(inner, lc, s)
	lc.OnDrain(func() { go g.bye("Server shutting down") })
	return g
}

func isTLS(c net.Conn) bool { _, ok := c.(*tls.Conn); return ok }

// upgrade carries on a connection whose client the library told to begin
// TLS (RFC 9051 6.2.1): the socket goes under TLS and a new guard, with
// the bytes the client sent after STARTTLS and the count of its bad
// commands, to the implicit-TLS engine, which sees a secure connection
// that is not yet logged in, as the library's own STARTTLS would leave it.
// Its greeting is dropped: after STARTTLS the client expects none.
func (s *Server) upgrade(old *guard, held []byte, bad int) {
	raw := old.Conn
	if len(held) > 0 {
		raw = &prefixConn{Conn: raw, r: io.MultiReader(bytes.NewReader(held), raw)}
	}
	raw.SetReadDeadline(time.Now().Add(s.cfg.LoginTimeout))
	// The old guard may have left its last write deadline in place
	// (guard.SetWriteDeadline); the handshake has none, as before it.
	raw.SetWriteDeadline(time.Time{})
	g := s.newGuard(tls.Server(raw, s.cfg.TLS), old.lc)
	g.bad, g.quiet = bad, true
	select {
	case s.implicit.ln.ch <- g:
	case <-s.done:
		g.Close()
	}
}

// prefixConn reads what was read ahead of the TLS handshake first.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Open returns the number of open connections.
func (s *Server) Open() int { return s.set.Open() }

// Shutdown stops accepting, lets each connection finish the store
// operation it is in, says BYE to it (RFC 9051 7.1.5) and closes it. When
// ctx ends first, the remaining connections are cut.
//
// IMAP marks no command busy in the Set (listener.Conn.Begin): the library
// runs the command loop, and a command's store operation is marked by the
// session's opMu instead. Every connection is drained as idle, through
// OnDrain, whose BYE waits for that operation to end: a shutdown lets it
// finish as Begin and End would.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.done)
	s.mu.Unlock()
	err := s.set.Shutdown(ctx)
	for _, e := range []*engine{s.plainSecure, s.plainInsecure, s.implicit} {
		// The library's Close must not race its Serve starting up; with
		// s.done closed, Serve returns at once.
		<-e.served
		e.srv.Close() // closes what is left
	}
	// The library closes a session after its connection: wait for that.
	closed := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("imap shutdown: sessions still closing: %w", ctx.Err())
		}
	}
	return err
}

// Close stops accepting and cuts every connection at once, in the middle
// of whatever it does: what Shutdown does when its context has ended.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	s.mu.Unlock()
	err := s.set.Close()
	for _, e := range []*engine{s.plainSecure, s.plainInsecure, s.implicit} {
		<-e.served
		e.srv.Close()
	}
	return err
}

// chanListener hands the engine the connections Serve accepted.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// libLogger passes the library's messages to slog. A client that goes away
// or times out is routine, so those are debug messages.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	level := slog.LevelWarn
	for _, routine := range []string{"i/o timeout", "use of closed network connection", "connection reset by peer", "broken pipe", "EOF", "bad number set"} {
		if strings.Contains(msg, routine) {
			level = slog.LevelDebug
			break
		}
	}
	l.log.Log(context.Background(), level, "imapserver: "+strings.TrimSpace(msg))
}
