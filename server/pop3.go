package server

import (
	"crypto/tls"
	"errors"
	"time"

	protopop3 "basalt/protocols/pop3"
	"basalt/store"
)

// POP3Config is the POP3 listeners' configuration: plaintext with STLS,
// and TLS from the first byte.
type POP3Config struct {
	// In production: listen on 0.0.0.0:110 and 0.0.0.0:995.
	PairConfig
	WriteTimeout time.Duration `toml:"write_timeout"`
	// LoginDelay is advertised in CAPA (RFC 2449 LOGIN-DELAY) and kept;
	// 0: none.
	LoginDelay time.Duration `toml:"login_delay"`
}

func (c *POP3Config) setDefaults() {
	orDefault(&c.Listen, "127.0.0.1:2110")
	orDefault(&c.TLSListen, "127.0.0.1:2995")
	// The limits' defaults are the protocol package's, filled in here so
	// that validation and `basalt` see what will run.
	d := protopop3.Config{}.WithDefaults()
	orDefault(&c.MaxConnections, d.MaxConnections)
	orDefault(&c.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	orDefault(&c.MaxBadCommands, d.MaxBadCommands)
	orDefault(&c.MaxLineLength, d.MaxLineLength)
	orDefault(&c.LoginTimeout, d.LoginTimeout)
	orDefault(&c.IdleTimeout, d.IdleTimeout)
	orDefault(&c.WriteTimeout, d.WriteTimeout)
}

func (c POP3Config) validate() error {
	var errs []error
	if c.MaxLineLength < 255 {
		errs = append(errs, errors.New("pop3.max_line_length: must be at least 255 (RFC 2449 4)"))
	}
	if c.IdleTimeout < 10*time.Minute {
		errs = append(errs, errors.New("pop3.idle_timeout: must be at least 10m (RFC 1939 3)"))
	}
	if c.LoginTimeout < 0 || c.WriteTimeout < 0 || c.LoginDelay < 0 {
		errs = append(errs, errors.New("pop3.login_timeout, write_timeout, login_delay: must not be negative"))
	}
	return errors.Join(errs...)
}

// listenPOP3 binds the configured POP3 listeners, or none.
func (s *Services) listenPOP3(tlsCfg *tls.Config) (frontEnd, error) {
	c := s.Config.POP3
	pc := protopop3.Config{
		Hostname: s.Config.SMTP.Hostname, TLS: tlsCfg, AllowPlaintextAuth: c.AllowPlaintextAuth,
		MaxConnections: c.MaxConnections, MaxConnectionsPerIP: c.MaxConnectionsPerIP, MaxBadCommands: c.MaxBadCommands,
		MaxLineLength: c.MaxLineLength, LoginTimeout: c.LoginTimeout, IdleTimeout: c.IdleTimeout,
		WriteTimeout: c.WriteTimeout, LoginDelay: c.LoginDelay,
	}
	if s.Session.CRAMMD5() {
		pc.CRAM = s.Session.For(store.ProtoPOP3)
	}
	return listenPair("pop3", protopop3.New(pc, s.Store, s.Session.For(store.ProtoPOP3), s.Log), c.Listen, c.TLSListen, tlsCfg)
}
