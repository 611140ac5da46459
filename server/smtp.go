package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"basalt/delivery"
	protosmtp "basalt/protocols/smtp"
	"basalt/store"
)

// SMTPConfig is the mail listeners' configuration: MX (inbound SMTP),
// submission with STARTTLS and with implicit TLS, and LMTP.
type SMTPConfig struct {
	// Hostname names this server in greetings, Received headers and the
	// self-signed certificate; default: the machine's host name.
	Hostname string `toml:"hostname"`
	// Addresses to listen on; "off" turns a listener off.
	MXListen          string `toml:"mx_listen"`
	SubmissionListen  string `toml:"submission_listen"`
	SubmissionsListen string `toml:"submissions_listen"`
	LMTPListen        string `toml:"lmtp_listen"`
	// LMTPSocket is a unix socket path for LMTP as well; empty: none.
	LMTPSocket string `toml:"lmtp_socket"`
	// AllowPlaintextAuth offers AUTH without TLS to clients other than
	// loopback ones.
	AllowPlaintextAuth  bool          `toml:"allow_plaintext_auth"`
	MaxRecipients       int           `toml:"max_recipients"`
	MaxConnections      int           `toml:"max_connections"`
	MaxConnectionsPerIP int           `toml:"max_connections_per_ip"`
	MaxMessagesPerConn  int           `toml:"max_messages_per_conn"`
	MaxErrors           int           `toml:"max_errors"`
	MaxLineLength       int           `toml:"max_line_length"`
	ReadTimeout         time.Duration `toml:"read_timeout"`
	WriteTimeout        time.Duration `toml:"write_timeout"`
	// QuotaPermanent answers a full mailbox 552 5.2.2 rather than 452 4.2.2.
	QuotaPermanent bool `toml:"quota_permanent"`
	// MaxConcurrentData bounds the messages held in memory at once (each
	// up to the message size limit); more wait at DATA. Default 64.
	MaxConcurrentData int `toml:"max_concurrent_data"`
}

// listenOff turns a listener off.
const listenOff = "off"

func (c *SMTPConfig) setDefaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Hostname = h
		}
	}
	orDefault(&c.MXListen, "127.0.0.1:2525")
	orDefault(&c.SubmissionListen, "127.0.0.1:2587")
	orDefault(&c.SubmissionsListen, "127.0.0.1:2465")
	orDefault(&c.LMTPListen, "127.0.0.1:2424")
	// The limits' defaults are the protocol package's and the agent's:
	// filled in here so that validation and `basalt` see what will run.
	d := protosmtp.Config{}.WithDefaults()
	orDefault(&c.MaxRecipients, delivery.DefaultMaxRecipients)
	orDefault(&c.MaxConnections, d.MaxConnections)
	orDefault(&c.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	orDefault(&c.MaxMessagesPerConn, d.MaxMessagesPerConn)
	orDefault(&c.MaxErrors, d.MaxErrors)
	orDefault(&c.MaxLineLength, d.MaxLineLength)
	orDefault(&c.ReadTimeout, d.ReadTimeout)
	orDefault(&c.WriteTimeout, d.WriteTimeout)
}

func (c SMTPConfig) validate() error {
	var errs []error
	if c.MaxRecipients < 1 {
		errs = append(errs, errors.New("smtp.max_recipients: must be at least 1"))
	}
	if c.MaxLineLength < 1000 {
		errs = append(errs, errors.New("smtp.max_line_length: must be at least 1000 (RFC 5321 4.5.3.1.6)"))
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("smtp.read_timeout, write_timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

// maxMessageSize is the largest message the agent takes at all (SIZE):
// the larger of the receive and send limits, which the agent and the store
// then apply per direction and per user.
func maxMessageSize(c Config) int64 {
	return max(c.Limits.MaxRecvSize, c.Limits.MaxSendSize)
}

// mailListeners are the bound SMTP and LMTP listeners and the server
// over them.
type mailListeners struct {
	srv *protosmtp.Server
	lns []mailListener
}

type mailListener struct {
	ln   net.Listener
	role protosmtp.Role
}

// listenMail binds every configured mail listener, or none: on an error
// the ones already bound are closed.
func (s *Services) listenMail(tlsCfg *tls.Config) (*mailListeners, error) {
	c := s.Config.SMTP
	pc := protosmtp.Config{
		Hostname: c.Hostname, TLS: tlsCfg, AllowPlaintextAuth: c.AllowPlaintextAuth,
		MaxConnections: c.MaxConnections, MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		MaxMessagesPerConn: c.MaxMessagesPerConn, MaxErrors: c.MaxErrors,
		ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, MaxLineLength: c.MaxLineLength,
		SendBounce: s.sendBounce,
	}
	if s.Session.CRAMMD5() {
		pc.CRAM = s.Session.For(store.ProtoSMTP)
	}
	m := &mailListeners{srv: protosmtp.New(pc, s.Agent, s.Session.For(store.ProtoSMTP), s.Log)}
	for _, l := range []struct {
		addr string
		role protosmtp.Role
	}{
		{c.MXListen, protosmtp.RoleMX},
		{c.SubmissionListen, protosmtp.RoleSubmission},
		{c.SubmissionsListen, protosmtp.RoleSubmissions},
		{c.LMTPListen, protosmtp.RoleLMTP},
	} {
		if l.addr == listenOff || l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("listen %s on %s: %w", l.role, l.addr, err)
		}
		m.lns = append(m.lns, mailListener{ln, l.role})
	}
	if c.LMTPSocket != "" {
		ln, err := listenUnix(c.LMTPSocket)
		if err != nil {
			m.close()
			return nil, err
		}
		m.lns = append(m.lns, mailListener{ln, protosmtp.RoleLMTP})
	}
	return m, nil
}

// sendBounce sends a DSN for recipients that failed after the message was
// accepted: to a local sender's mailbox, or through the outbound queue.
func (s *Services) sendBounce(ctx context.Context, to string, dsn []byte) error {
	return s.Agent.DeliverLocal(ctx, "", to, dsn)
}

// listenUnix listens on a unix socket at path, replacing a socket left by
// an earlier run (never any other kind of file). The MTA connecting must
// be in Basalt's group: the socket is 0660.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen lmtp on %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen lmtp on %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen lmtp on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen lmtp on %s: %w", path, err)
	}
	return ln, nil
}

func (m *mailListeners) count() int { return len(m.lns) }

func (m *mailListeners) close() {
	for _, l := range m.lns {
		l.ln.Close()
	}
}

// addrs lists the listeners for the start-up log line.
func (m *mailListeners) addrs() []string {
	var out []string
	for _, l := range m.lns {
		out = append(out, l.role.String()+"="+l.ln.Addr().String())
	}
	return out
}

// serve runs every listener until shutdown, reporting failures on errc.
func (m *mailListeners) serve(wg *sync.WaitGroup, errc chan<- error) {
	for _, l := range m.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.srv.Serve(l.ln, l.role); err != nil {
				errc <- err
			}
		}()
	}
}

// shutdown lets transactions in flight finish until ctx ends.
func (m *mailListeners) shutdown(ctx context.Context) error {
	return m.srv.Shutdown(ctx)
}
