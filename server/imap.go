package server

import (
	"crypto/tls"
	"errors"
	"time"

	protoimap "basalt/protocols/imap"
	"basalt/store"
)

// IMAPConfig is the IMAP listeners' configuration: plaintext with
// STARTTLS, and TLS from the first byte.
type IMAPConfig struct {
	// Without allow_plaintext_auth, clients off loopback see LOGINDISABLED
	// until STARTTLS.
	PairConfig
	MaxAppendSize int64 `toml:"max_append_size"`
	// IdleRecheck is how often an IDLE session with nothing announced
	// reads its mailbox's state anyway: a change whose announcement on
	// the cache bus was lost still reaches it within this time.
	IdleRecheck time.Duration `toml:"idle_recheck"`
}

func (c *IMAPConfig) setDefaults() {
	orDefault(&c.Listen, "127.0.0.1:2143")
	orDefault(&c.TLSListen, "127.0.0.1:2993")
	// The limits' defaults are the protocol package's: filled in here so
	// that validation and the operator see what will run.
	d := protoimap.Config{}.WithDefaults()
	orDefault(&c.MaxConnections, d.MaxConnections)
	orDefault(&c.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	orDefault(&c.MaxBadCommands, d.MaxBadCommands)
	orDefault(&c.MaxLineLength, d.MaxLineLength)
	orDefault(&c.MaxAppendSize, d.MaxAppendSize)
	orDefault(&c.LoginTimeout, d.LoginTimeout)
	orDefault(&c.IdleTimeout, d.IdleTimeout)
	orDefault(&c.IdleRecheck, d.IdleRecheck)
}

func (c IMAPConfig) validate() error {
	var errs []error
	if c.MaxLineLength < 8192 {
		errs = append(errs, errors.New("imap.max_line_length: must be at least 8192 (RFC 2683 3.2.1.5)"))
	}
	if c.IdleTimeout < 30*time.Minute {
		errs = append(errs, errors.New("imap.idle_timeout: must be at least 30m (RFC 9051 5.4)"))
	}
	if c.IdleRecheck < time.Second {
		errs = append(errs, errors.New("imap.idle_recheck: must be at least 1s"))
	}
	if c.LoginTimeout < 0 || c.MaxAppendSize < 0 {
		errs = append(errs, errors.New("imap.login_timeout, max_append_size: must not be negative"))
	}
	return errors.Join(errs...)
}

// listenIMAP binds the configured IMAP listeners, or none.
func (s *Services) listenIMAP(tlsCfg *tls.Config) (frontEnd, error) {
	c := s.Config.IMAP
	srv := protoimap.New(protoimap.Config{
		Hostname: s.Config.SMTP.Hostname, TLS: tlsCfg, AllowPlaintextAuth: c.AllowPlaintextAuth,
		MaxConnections: c.MaxConnections, MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		LoginTimeout: c.LoginTimeout, IdleTimeout: c.IdleTimeout, MaxLineLength: c.MaxLineLength,
		MaxBadCommands: c.MaxBadCommands, MaxAppendSize: c.MaxAppendSize, IdleRecheck: c.IdleRecheck,
	}, s.Store, s.Session.For(store.ProtoIMAP), s.Log)
	return listenPair("imap", srv, c.Listen, c.TLSListen, tlsCfg)
}
