package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// CRAMServer returns the server side of SASL CRAM-MD5 (RFC 2195) for the
// protocols (SMTP AUTH, IMAP AUTHENTICATE, POP3 AUTH): it sends a fresh
// challenge, checks the response through AuthenticateCRAM, and hands the
// login to done.
func (s *Service) CRAMServer(ctx context.Context, hostname, ip string, done func(*Auth) error) sasl.Server {
	return &cramServer{s: s, ctx: ctx, hostname: hostname, ip: ip, done: done}
}

type cramServer struct {
	s         *Service
	ctx       context.Context
	hostname  string
	ip        string
	done      func(*Auth) error
	challenge string
}

func (c *cramServer) Next(response []byte) ([]byte, bool, error) {
	if c.challenge == "" {
		// RFC 2195 2: a challenge unique to this exchange, in msg-id form.
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, false, fmt.Errorf("cram-md5 challenge: %w", err)
		}
		c.challenge = fmt.Sprintf("<%s.%d@%s>", hex.EncodeToString(r[:]), time.Now().Unix(), c.hostname)
		return []byte(c.challenge), false, nil
	}
	user, digest, ok := strings.Cut(string(response), " ")
	if !ok || user == "" || len(digest) != 32 {
		return nil, false, errors.New("cram-md5: malformed response")
	}
	auth, err := c.s.AuthenticateCRAM(c.ctx, user, c.challenge, digest, c.ip)
	if err != nil {
		return nil, false, err
	}
	return nil, true, c.done(auth)
}
