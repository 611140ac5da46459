package smtp

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"basalt/delivery"
	"basalt/protocols/listener"
	"basalt/session"
)

// Role is the service a listener offers.
type Role int

// Roles.
const (
	RoleMX          Role = iota // mail from other servers (RFC 5321), port 25 in production
	RoleSubmission              // users' clients with STARTTLS, port 587 (RFC 6409)
	RoleSubmissions             // users' clients over TLS from the first byte, port 465 (RFC 8314)
	RoleLMTP                    // an MTA handing mail over (RFC 2033)
)

func (r Role) String() string {
	switch r {
	case RoleMX:
		return "mx"
	case RoleSubmission:
		return "submission"
	case RoleSubmissions:
		return "submissions"
	case RoleLMTP:
		return "lmtp"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

func (r Role) submission() bool { return r == RoleSubmission || r == RoleSubmissions }

// source is how the agent knows where a message came from.
func (r Role) source() delivery.Source {
	switch {
	case r.submission():
		return delivery.SourceSubmission
	case r == RoleLMTP:
		return delivery.SourceLMTP
	}
	return delivery.SourceMX
}

// Authenticator checks a user's password; *session.Service is one. ip is
// the client's address as host:port.
type Authenticator interface {
	Authenticate(ctx context.Context, login, password, ip string) (*session.Auth, error)
	// Open registers a logged-in connection, which end ends when its
	// user may no longer have it (suspended, locked, SMTP turned off, a
	// new password, renamed, deleted, revoked); the session closes the
	// returned Conn when it ends.
	Open(auth *session.Auth, remote string, end func(reason string)) *session.Conn
}

// Config tunes a Server. Zero fields take the defaults; a negative limit
// means no limit.
type Config struct {
	// Hostname is the name in the greeting and the EHLO reply.
	Hostname string
	// TLS is the certificate for STARTTLS (RFC 3207) and RoleSubmissions;
	// nil offers neither.
	TLS *tls.Config
	// AllowPlaintextAuth offers AUTH on connections without TLS. Loopback
	// connections are taken as secure without it, as Dovecot does, since
	// nothing on the wire can be read there.
	AllowPlaintextAuth bool

	MaxConnections      int // at once, over every listener; default 500
	MaxConnectionsPerIP int // at once from one address (IPv6: one /64); default 20
	MaxMessagesPerConn  int // default 100
	// MaxErrors is how many refused commands (unknown recipients, refused
	// senders, failed logins) a connection may have before it is dropped
	// with 421; default 10.
	MaxErrors int
	// ReadTimeout bounds every read from the client, between commands and
	// inside DATA alike; default 5 minutes (RFC 5321 4.5.3.2.7).
	ReadTimeout time.Duration
	// WriteTimeout bounds every write to the client; default 1 minute.
	WriteTimeout time.Duration
	// MaxLineLength bounds a command or message line, CRLF included;
	// default 2000, twice RFC 5321 4.5.3.1.6's 1000, as go-smtp has it.
	MaxLineLength int

	// CRAM verifies CRAM-MD5 (RFC 2195) answers; nil: not offered. See cram.go.
	CRAM CRAMVerifier

	// SendBounce sends a delivery status notification (RFC 3464) from
	// the null sender to to: for recipients that failed after DATA, when
	// others did not and the message was answered 250. nil: the failures
	// are only logged. See bounceLater.
	SendBounce func(ctx context.Context, to string, dsn []byte) error
}

// WithDefaults returns c with every unset limit at its default; the
// configuration layer shows these, so they are stated only here.
func (c Config) WithDefaults() Config {
	c.Hostname = cmp.Or(c.Hostname, "localhost")
	c.MaxConnections = cmp.Or(c.MaxConnections, 500)
	c.MaxConnectionsPerIP = cmp.Or(c.MaxConnectionsPerIP, 20)
	c.MaxMessagesPerConn = cmp.Or(c.MaxMessagesPerConn, 100)
	c.MaxErrors = cmp.Or(c.MaxErrors, 10)
	c.MaxLineLength = cmp.Or(c.MaxLineLength, 2000)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, 5*time.Minute) // RFC 5321 4.5.3.2.7
	c.WriteTimeout = cmp.Or(c.WriteTimeout, time.Minute)
	return c
}

// Server serves SMTP, submission and LMTP over one delivery agent. It is
// safe for concurrent use; Serve is called once per listener.
type Server struct {
	cfg   Config
	agent *delivery.Agent
	auth  Authenticator
	log   *slog.Logger

	mx, submission, lmtp *smtp.Server

	// set is the connections: accept, limits, shutdown; every agent call
	// runs on the context of the connection it serves.
	set *listener.Set
	// inflight are the deliveries running, which a shutdown waits for
	// (the Set's Drain hook).
	inflight listener.Tasks
	// trustLoopback counts loopback clients as secure for AUTH; only
	// tests turn it off, to see what a remote client sees.
	trustLoopback bool
}

// New returns a server delivering through agent and checking passwords
// with auth (nil: no AUTH at all).
func New(cfg Config, agent *delivery.Agent, auth Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg.WithDefaults(), agent: agent, auth: auth, log: log, trustLoopback: true}
	s.set = listener.NewSet(context.Background(), listener.Config{
		Name: "smtp", Max: s.cfg.MaxConnections, PerIP: s.cfg.MaxConnectionsPerIP, Log: log,
		// RFC 5321 3.1 allows 421 in place of the greeting.
		Refusal: func(err error) string {
			e := errTooManyConns
			switch {
			case errors.Is(err, listener.ErrShuttingDown):
				e = errShuttingDown
			case errors.Is(err, listener.ErrTooManyFromIP):
				e = errTooManyFromIP
			}
			return fmt.Sprintf("%d %d.%d.%d %s %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], s.cfg.Hostname, e.Message)
		},
		Drain: s.inflight.Drain,
	})
	s.mx = s.newProto(false, s.cfg.TLS)
	s.submission = s.newProto(false, s.cfg.TLS)
	// LMTP is for an MTA beside Basalt (RFC 2033 4: not for use over the
	// wide area), on loopback or a unix socket; it offers no STARTTLS.
	s.lmtp = s.newProto(true, nil)
	return s
}

func (s *Server) newProto(lmtp bool, tlsCfg *tls.Config) *smtp.Server {
	p := smtp.NewServer(smtp.BackendFunc(s.newSession))
	p.Domain = s.cfg.Hostname
	p.LMTP = lmtp
	p.TLSConfig = tlsCfg
	p.MaxMessageBytes = s.agent.MaxSize() // SIZE (RFC 1870), and the DATA cutoff
	p.MaxRecipients = s.agent.MaxRecipients()
	p.MaxLineLength = s.cfg.MaxLineLength
	p.ReadTimeout = s.cfg.ReadTimeout
	p.WriteTimeout = s.cfg.WriteTimeout
	// go-smtp's own rule is TLS or nothing, for every client; the session
	// decides instead (loopback counts as secure), see authAllowed.
	p.AllowInsecureAuth = true
	p.EnableSMTPUTF8 = true // RFC 6531: addresses go through as UTF-8
	p.ErrorLog = errorLog{s.log}
	return p
}

func (s *Server) proto(r Role) *smtp.Server {
	switch {
	case r.submission():
		return s.submission
	case r == RoleLMTP:
		return s.lmtp
	}
	return s.mx
}

// Serve accepts connections on ln for role until Shutdown or Close, which
// make it return nil. ln is the caller's: a TCP listener, or for LMTP a
// unix socket.
func (s *Server) Serve(ln net.Listener, role Role) error {
	if role == RoleSubmissions && s.cfg.TLS == nil {
		ln.Close()
		return errors.New("smtp: submissions (implicit TLS) needs a certificate")
	}
	var tlsCfg *tls.Config
	if role == RoleSubmissions {
		tlsCfg = s.cfg.TLS
	}
	err := s.proto(role).Serve(&roleListener{Listener: s.set.Listener(ln, tlsCfg), srv: s, role: role})
	if err != nil {
		if s.set.Draining() && errors.Is(err, net.ErrClosed) {
			return nil // closed by Shutdown or Close
		}
		return fmt.Errorf("smtp: serve %s on %s: %w", role, ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections, closes the idle ones with 421 and
// lets each transaction in flight finish before its connection is closed.
// When ctx ends first, whatever is left is cut off and ctx's error
// returned; a message not yet answered 250 is then not acknowledged, so
// the client keeps it (RFC 5321 4.1.1.4).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.set.Shutdown(ctx)
	s.closeProtos()
	return err
}

// Close stops at once: listeners and connections are closed and the
// deliveries running are cancelled.
func (s *Server) Close() error {
	err := s.set.Close()
	s.closeProtos()
	return err
}

// closeProtos tells go-smtp its servers are done; the Set has closed
// their listeners and connections already.
func (s *Server) closeProtos() {
	for _, p := range []*smtp.Server{s.mx, s.submission, s.lmtp} {
		p.Close() // ErrServerClosed the second time: nothing to do
	}
}

// roleListener hands go-smtp the connections the Set admitted, in
// Basalt's conn, and starts TLS on those of RoleSubmissions (go-smtp
// handshakes any *tls.Conn it is given).
type roleListener struct {
	net.Listener
	srv  *Server
	role Role
}

func (l *roleListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := nc.(*listener.Conn)
	ip, _ := listener.ClientKey(lc.RemoteAddr())
	c := &conn{Conn: lc, srv: l.srv, role: l.role, ip: ip}
	if l.role == RoleSubmissions {
		return tls.Server(c, l.srv.cfg.TLS), nil
	}
	return c, nil
}

// errorLog takes go-smtp's own reports: connections that failed (TLS
// handshakes of scanners, mostly) at debug level, panics as errors.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) { l.print(fmt.Sprintf(format, v...)) }
func (l errorLog) Println(v ...any)               { l.print(fmt.Sprintln(v...)) }

func (l errorLog) print(msg string) {
	level := slog.LevelDebug
	if strings.Contains(msg, "panic") {
		level = slog.LevelError
	}
	l.log.Log(context.Background(), level, "smtp: "+strings.TrimSpace(msg))
}
