package imap

import (
	"errors"
	"math"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"basalt/protocols/saslserver"
	bsession "basalt/session"
)

// Login is the LOGIN command; the library has checked that the
// connection may send a password (LOGINDISABLED otherwise).
func (s *session) Login(username, password string) error {
	a, err := s.srv.auth.Authenticate(s.ctx(), username, password, s.remote)
	return s.loggedIn(a, err)
}

// loggedIn finishes a login attempt: refused with the RFC 5530 code that
// fits, or the session becomes the user's.
func (s *session) loggedIn(a *bsession.Auth, err error) error {
	switch {
	case errors.Is(err, bsession.ErrAuthFailed):
		return imapserver.ErrAuthFailed
	case errors.Is(err, bsession.ErrThrottled):
		return no(imap.ResponseCodeUnavailable, "Too many failed logins; try again later")
	case errors.Is(err, bsession.ErrUserLocked):
		return no(imap.ResponseCodeContactAdmin, "Account locked")
	case err != nil:
		s.srv.log.Error("login", "remote", s.remote, "err", err)
		return no(imap.ResponseCodeUnavailable, "Temporary failure; try again later")
	}
	w, err := s.srv.store.Watch(s.ctx(), a.User.ID)
	if err != nil {
		s.srv.log.Error("login: watch changes", "user", a.User.ID, "err", err)
		return no(imap.ResponseCodeUnavailable, "Temporary failure; try again later")
	}
	lim, err := s.srv.store.Limits(s.ctx(), a.User)
	if err != nil {
		w.Close()
		s.srv.log.Error("login: limits", "user", a.User.ID, "err", err)
		return no(imap.ResponseCodeUnavailable, "Temporary failure; try again later")
	}
	limit := s.srv.cfg.MaxAppendSize
	if lim.MaxRecvSize > 0 && lim.MaxRecvSize < limit {
		limit = lim.MaxRecvSize
	}
	s.appendLimit.Store(uint32(min(limit, math.MaxUint32)))
	s.auth, s.acct, s.watch = a, a.Account(s.srv.store), w
	// A change that no longer allows the user this connection ends it as
	// a shutdown does: after the store write in progress (an APPEND is
	// stored whole or not at all), with BYE (RFC 9051 7.1.5), which an
	// IDLE client reads as well.
	s.live = s.srv.auth.Open(a, s.remote, func(reason string) {
		s.shutdown("Session ended: " + reason)
	})
	s.authed.Store(true)
	s.srv.log.Info("login", "user", a.User.ID, "remote", s.remote)
	return nil
}

// AuthenticateMechanisms lists the SASL mechanisms of AUTHENTICATE.
func (s *session) AuthenticateMechanisms() []string {
	mechs := []string{sasl.Plain, saslserver.Login}
	if s.srv.auth.CRAMMD5() {
		mechs = append(mechs, saslserver.CRAMMD5)
	}
	return mechs
}

// Authenticate starts an AUTHENTICATE exchange (RFC 9051 6.2.2).
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	var srv sasl.Server
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		srv = sasl.NewPlainServer(func(identity, username, password string) error {
			// Logging in as someone else (RFC 4616 authorization
			// identity) is not something a user may do.
			if identity != "" && identity != username {
				return no(imap.ResponseCodeAuthorizationFailed, "Authorization identity must be the login")
			}
			return s.Login(username, password)
		})
	case saslserver.Login:
		srv = saslserver.NewLogin(s.Login)
	case saslserver.CRAMMD5:
		if !s.srv.auth.CRAMMD5() {
			return nil, errNoMechanism
		}
		srv = saslserver.NewCRAMMD5(s.srv.cfg.Hostname, func(login, challenge, digest string) error {
			a, err := s.srv.auth.AuthenticateCRAM(s.ctx(), login, challenge, digest, s.remote)
			return s.loggedIn(a, err)
		}, func() error { return imapserver.ErrAuthFailed })
	default:
		return nil, errNoMechanism
	}
	return saslAdapter{srv}, nil
}

var errNoMechanism = no(imap.ResponseCodeCannot, "Unsupported authentication mechanism")

// saslAdapter fits a go-sasl exchange to the library: an empty challenge
// goes out as "+ " rather than "+ =" ("=" stands for an empty initial
// response, RFC 4959, not for an empty challenge, and some clients do not
// decode it), and an exchange out of sequence is BAD rather than a
// server failure.
type saslAdapter struct{ sasl.Server }

func (a saslAdapter) Next(response []byte) ([]byte, bool, error) {
	ch, done, err := a.Server.Next(response)
	if len(ch) == 0 {
		ch = nil
	}
	var ie *imap.Error
	if err != nil && !errors.As(err, &ie) {
		err = &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unexpected SASL response"}
	}
	return ch, done, err
}
