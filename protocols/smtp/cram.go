package smtp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"basalt/session"
)

// CRAM-MD5 (RFC 2195): this file runs the exchange; the check is the
// session service's (AuthenticateCRAM), against the HMAC states it keeps
// beside the password hash when the operator allows CRAM-MD5, under the
// same login throttle as passwords. Without a verifier the mechanism is
// not offered.

const cramMD5 = "CRAM-MD5"

// CRAMVerifier checks a CRAM-MD5 answer: digest is the client's
// HMAC-MD5 of challenge under its password, in lower-case hex; ip is the
// client's host:port. Its errors are those of session.Authenticate
// (session.ErrAuthFailed, ErrThrottled, ErrUserLocked).
type CRAMVerifier interface {
	AuthenticateCRAM(ctx context.Context, login, challenge, digest, ip string) (*session.Auth, error)
}

// cramServer runs one exchange: a challenge in the form of a message id
// (RFC 2195 2), then the answer "login digest".
type cramServer struct {
	challenge string
	done      bool
	verify    func(login, challenge, digest string) error
	malformed func() error
}

func (s *smtpSession) cramServer() sasl.Server {
	var b [12]byte
	rand.Read(b[:])
	return &cramServer{
		challenge: fmt.Sprintf("<%s.%d@%s>", hex.EncodeToString(b[:]), time.Now().Unix(), s.srv.cfg.Hostname),
		verify: func(login, challenge, digest string) error {
			a, err := s.srv.cfg.CRAM.AuthenticateCRAM(s.ctx(), login, challenge, digest, s.remote)
			return s.authResult(login, a, err)
		},
		malformed: func() error { return s.authRefused(errAuthFailed) },
	}
}

func (c *cramServer) Next(response []byte) ([]byte, bool, error) {
	if c.done {
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
	if response == nil {
		return []byte(c.challenge), false, nil
	}
	c.done = true
	// "login SP digest", the digest 16 bytes in hex; a login may itself
	// hold spaces, so the digest is what follows the last one.
	resp := string(response)
	i := strings.LastIndexByte(resp, ' ')
	if i <= 0 || len(resp)-i-1 != 32 {
		return nil, true, c.malformed()
	}
	return nil, true, c.verify(resp[:i], c.challenge, strings.ToLower(resp[i+1:]))
}
