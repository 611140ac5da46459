package pop3

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"basalt/protocols/listener"
	"basalt/session"
	"basalt/store"
)

// Authenticator checks a user's password; *session.Service is one. ip is
// the client's address as host:port. Its errors are session's
// (ErrAuthFailed, ErrThrottled, ErrUserLocked) or failures of its own.
type Authenticator interface {
	Authenticate(ctx context.Context, login, password, ip string) (*session.Auth, error)
	// Open registers a logged-in connection, which end ends when its
	// user may no longer have it (suspended, locked, POP3 turned off, a
	// new password, renamed, deleted, revoked); the session closes the
	// returned Conn when it ends.
	Open(auth *session.Auth, remote string, end func(reason string)) *session.Conn
}

// CRAMVerifier checks a CRAM-MD5 answer (RFC 2195); *session.Service is
// one. digest is the client's HMAC-MD5 of challenge in lower-case hex.
type CRAMVerifier interface {
	AuthenticateCRAM(ctx context.Context, login, challenge, digest, ip string) (*session.Auth, error)
}

// Config tunes a Server. Zero fields take the defaults; a negative limit
// or timeout means none.
type Config struct {
	// Hostname is the name in the greeting and CRAM-MD5 challenges.
	Hostname string
	// TLS is the certificate for STLS (RFC 2595) and for ServeTLS; nil
	// offers neither.
	TLS *tls.Config
	// AllowPlaintextAuth allows USER/PASS and AUTH PLAIN and LOGIN on
	// connections that are not secure (listener.Secure: TLS, loopback or
	// a unix socket).
	AllowPlaintextAuth bool
	// CRAM verifies CRAM-MD5; nil: not offered.
	CRAM CRAMVerifier

	MaxConnections      int // at once, over every listener; default 500
	MaxConnectionsPerIP int // at once from one address (IPv6: one /64); default 20
	// MaxBadCommands is how many refused commands (unknown, malformed, in
	// the wrong state, failed logins) a connection may have before it is
	// closed; default 10.
	MaxBadCommands int
	// MaxLineLength bounds a command line, CRLF included; default 512,
	// twice RFC 2449 4's 255 octets. Longer lines are refused, not read
	// into memory.
	MaxLineLength int
	// LoginTimeout bounds the wait for each command before login and the
	// TLS handshake; default 1 minute.
	LoginTimeout time.Duration
	// IdleTimeout bounds the wait for each command after login; default
	// 10 minutes, the least RFC 1939 3 allows.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to the client; default 1 minute.
	WriteTimeout time.Duration
	// LoginDelay is advertised as CAPA LOGIN-DELAY (RFC 2449 6.5): the
	// least time clients must leave between a user's logins; a login
	// sooner is refused with [LOGIN-DELAY]. 0: none.
	LoginDelay time.Duration
}

// WithDefaults returns c with every unset limit at its default; the
// configuration layer shows these, so they are stated only here.
func (c Config) WithDefaults() Config {
	c.Hostname = cmp.Or(c.Hostname, "localhost")
	c.MaxConnections = cmp.Or(c.MaxConnections, 500)
	c.MaxConnectionsPerIP = cmp.Or(c.MaxConnectionsPerIP, 20)
	c.MaxBadCommands = cmp.Or(c.MaxBadCommands, 10)
	c.MaxLineLength = cmp.Or(c.MaxLineLength, 512)
	c.LoginTimeout = cmp.Or(c.LoginTimeout, time.Minute)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, 10*time.Minute) // RFC 1939 3
	c.WriteTimeout = cmp.Or(c.WriteTimeout, time.Minute)
	return c
}

// Server serves POP3 over one store. It is safe for concurrent use; Serve
// and ServeTLS are called once per listener.
type Server struct {
	cfg   Config
	store *store.Store
	auth  Authenticator
	log   *slog.Logger

	// set is the connections: accept, limits, shutdown; every store call
	// runs on the context of the connection it serves.
	set *listener.Set
	// trustLoopback counts loopback clients as secure for plaintext
	// logins; only tests turn it off, to see what a remote client sees.
	trustLoopback bool
}

// New returns a server over st, checking passwords with auth.
func New(cfg Config, st *store.Store, auth Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg.WithDefaults(), store: st, auth: auth, log: log, trustLoopback: true}
	s.set = listener.NewSet(context.Background(), listener.Config{
		Name: "pop3", Max: s.cfg.MaxConnections, PerIP: s.cfg.MaxConnectionsPerIP, Log: log,
		Refusal: func(err error) string {
			switch {
			case errors.Is(err, listener.ErrShuttingDown):
				return "-ERR [SYS/TEMP] Server shutting down, try again later"
			case errors.Is(err, listener.ErrTooManyFromIP):
				return "-ERR [SYS/TEMP] Too many connections from your address"
			}
			return "-ERR [SYS/TEMP] Too many connections, try again later"
		},
	})
	return s
}

// Serve accepts plaintext connections on ln, which may upgrade with STLS
// (port 110 in production), until Shutdown or Close, which make it return
// nil.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts connections that start with a TLS handshake (RFC 8314,
// port 995 in production).
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		ln.Close()
		return errors.New("pop3: implicit TLS needs a certificate")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	var tlsCfg *tls.Config
	if implicitTLS {
		tlsCfg = s.cfg.TLS
	}
	return s.set.Serve(ln, tlsCfg, func(c *listener.Conn) {
		s.handle(&conn{Conn: c, srv: s}, implicitTLS)
	})
}

// Shutdown stops accepting connections and closes the idle ones; a
// command in progress (a RETR being sent, the removals after QUIT) is
// finished and answered first. A session that did not QUIT deletes
// nothing (RFC 1939 6). When ctx ends first, whatever is left is cut off
// and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error { return s.set.Shutdown(ctx) }

// Close stops at once: listeners and connections are closed and the store
// calls running are cancelled.
func (s *Server) Close() error { return s.set.Close() }
