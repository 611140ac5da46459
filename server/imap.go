package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	protoimap "basalt/protocols/imap"
)

// IMAPConfig is the IMAP listeners' configuration: plaintext with
// STARTTLS, and TLS from the first byte.
type IMAPConfig struct {
	// Addresses to listen on; "off" turns a listener off.
	Listen    string `toml:"listen"`
	TLSListen string `toml:"tls_listen"`
	// AllowPlaintextAuth takes passwords without TLS from clients other
	// than loopback ones; otherwise they see LOGINDISABLED until STARTTLS.
	AllowPlaintextAuth  bool          `toml:"allow_plaintext_auth"`
	MaxConnections      int           `toml:"max_connections"`
	MaxConnectionsPerIP int           `toml:"max_connections_per_ip"`
	MaxBadCommands      int           `toml:"max_bad_commands"`
	MaxLineLength       int           `toml:"max_line_length"`
	MaxAppendSize       int64         `toml:"max_append_size"`
	LoginTimeout        time.Duration `toml:"login_timeout"`
	IdleTimeout         time.Duration `toml:"idle_timeout"`
}

func (c *IMAPConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:2143"
	}
	if c.TLSListen == "" {
		c.TLSListen = "127.0.0.1:2993"
	}
	// The limits' defaults are the protocol package's: filled in here so
	// that validation and the operator see what will run.
	d := protoimap.Config{}.WithDefaults()
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.MaxConnections, d.MaxConnections)
	defInt(&c.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	defInt(&c.MaxBadCommands, d.MaxBadCommands)
	defInt(&c.MaxLineLength, d.MaxLineLength)
	if c.MaxAppendSize == 0 {
		c.MaxAppendSize = d.MaxAppendSize
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = d.LoginTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
}

func (c IMAPConfig) validate() error {
	var errs []error
	if c.MaxLineLength < 8192 {
		errs = append(errs, errors.New("imap.max_line_length: must be at least 8192 (RFC 2683 3.2.1.5)"))
	}
	if c.IdleTimeout < 30*time.Minute {
		errs = append(errs, errors.New("imap.idle_timeout: must be at least 30m (RFC 9051 5.4)"))
	}
	if c.LoginTimeout < 0 || c.MaxAppendSize < 0 {
		errs = append(errs, errors.New("imap.login_timeout, max_append_size: must not be negative"))
	}
	return errors.Join(errs...)
}

// imapListeners are the bound IMAP listeners and the server over them.
type imapListeners struct {
	srv *protoimap.Server
	lns []imapListener
}

type imapListener struct {
	ln  net.Listener
	tls bool
}

// listenIMAP binds every configured IMAP listener, or none: on an error
// the ones already bound are closed.
func (s *Services) listenIMAP(tlsCfg *tls.Config) (*imapListeners, error) {
	c := s.Config.IMAP
	m := &imapListeners{srv: protoimap.New(protoimap.Config{
		Hostname: s.Config.SMTP.Hostname, TLS: tlsCfg, AllowPlaintextAuth: c.AllowPlaintextAuth,
		MaxConnections: c.MaxConnections, MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		LoginTimeout: c.LoginTimeout, IdleTimeout: c.IdleTimeout, MaxLineLength: c.MaxLineLength,
		MaxBadCommands: c.MaxBadCommands, MaxAppendSize: c.MaxAppendSize,
	}, s.Store, s.Session, s.Log)}
	for _, l := range []imapListener{{tls: false}, {tls: true}} {
		addr := c.Listen
		if l.tls {
			addr = c.TLSListen
		}
		if addr == listenOff || addr == "" || l.tls && tlsCfg == nil {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("listen imap on %s: %w", addr, err)
		}
		l.ln = ln
		m.lns = append(m.lns, l)
	}
	return m, nil
}

func (m *imapListeners) close() {
	for _, l := range m.lns {
		l.ln.Close()
	}
}

// addrs lists the listeners for the start-up log line.
func (m *imapListeners) addrs() []string {
	var out []string
	for _, l := range m.lns {
		name := "imap"
		if l.tls {
			name = "imaps"
		}
		out = append(out, name+"="+l.ln.Addr().String())
	}
	return out
}

// serve runs every listener until shutdown, reporting failures on errc.
func (m *imapListeners) serve(wg *sync.WaitGroup, errc chan<- error) {
	for _, l := range m.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve := m.srv.Serve
			if l.tls {
				serve = m.srv.ServeTLS
			}
			if err := serve(l.ln); err != nil {
				errc <- err
			}
		}()
	}
}

// shutdown lets store writes in flight finish, says BYE to every
// connection and closes it, until ctx ends.
func (m *imapListeners) shutdown(ctx context.Context) error {
	return m.srv.Shutdown(ctx)
}
