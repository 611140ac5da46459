package smtp

import (
	"context"

	"basalt/session"
)

// CRAM-MD5 (RFC 2195): this file runs the exchange; the check is the
// session service's (AuthenticateCRAM), against the HMAC states it keeps
// beside the password hash when the operator allows CRAM-MD5, under the
// same login throttle as passwords. Without a verifier the mechanism is
// not offered.

// CRAMVerifier checks a CRAM-MD5 answer: digest is the client's
// HMAC-MD5 of challenge under its password, in lower-case hex; ip is the
// client's host:port. Its errors are those of session.Authenticate
// (session.ErrAuthFailed, ErrThrottled, ErrUserLocked).
type CRAMVerifier interface {
	AuthenticateCRAM(ctx context.Context, login, challenge, digest, ip string) (*session.Auth, error)
}
