package delivery

import (
	"errors"
	"fmt"

	"basalt/store"
)

// Error is a refusal with the SMTP reply it should be given (RFC 5321
// 4.2, enhanced codes RFC 3463). Front ends that are not SMTP use Code to
// tell temporary (4xx) from permanent (5xx) failures.
type Error struct {
	Code     int
	Enhanced [3]int
	Message  string
	Err      error // the cause, for logs; never shown to the client
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the client should try again later.
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

func reply(code int, a, b, c int, msg string, cause error) *Error {
	return &Error{Code: code, Enhanced: [3]int{a, b, c}, Message: msg, Err: cause}
}

// The refusals the agent gives, each with its reply code.
var (
	ErrNoRelay       = reply(554, 5, 7, 1, "Relay access denied", nil)
	ErrUnknownUser   = reply(550, 5, 1, 1, "No such user here", nil)
	ErrTooManyRcpts  = reply(452, 4, 5, 3, "Too many recipients", nil)
	ErrNullSender    = reply(550, 5, 7, 1, "Null sender not accepted from this host", nil)
	ErrForbiddenFrom = reply(553, 5, 7, 1, "Sender address is not one of yours", nil)
	ErrTooLarge      = reply(552, 5, 3, 4, "Message too big", nil)
	// ErrHeaderTooLarge: RFC 3463 3.4, X.3.4 "message too big for
	// system", as Postfix answers past header_size_limit.
	ErrHeaderTooLarge = reply(552, 5, 3, 4, "Message header too large", nil)
	ErrBadAddress     = reply(501, 5, 1, 3, "Bad address syntax", nil)
	ErrTemporary      = reply(451, 4, 3, 0, "Temporary failure, please try again later", nil)
	ErrNeedsAuth      = reply(530, 5, 7, 0, "Authentication required", nil)
	ErrDailyLimit     = reply(451, 4, 7, 1, "Daily limit reached, try again later", nil)
	ErrBadHeaderFrom  = reply(550, 5, 7, 1, "From header is not one of your addresses", nil)
	// ErrOneFrom: RFC 5322 3.6 allows exactly one From field.
	ErrOneFrom = reply(550, 5, 7, 1, "Message must have exactly one From header", nil)
	// ErrBadHeaderSender covers Sender, Resent-From and Resent-Sender.
	ErrBadHeaderSender = reply(550, 5, 7, 1, "Sender or Resent- header is not one of your addresses", nil)
	ErrNoValidRcpts    = reply(554, 5, 5, 1, "No valid recipients", nil)
	ErrMailboxLocked   = reply(450, 4, 2, 1, "Mailbox temporarily unavailable", nil)
	ErrTooManyHops     = reply(554, 5, 4, 6, "Too many hops: mail loop detected", nil)
	errQuotaTemporary  = reply(452, 4, 2, 2, "Mailbox full", nil)
	errQuotaPermanent  = reply(552, 5, 2, 2, "Mailbox full", nil)
)

// ErrSystemFull is RFC 5321's 452 "insufficient system storage" with RFC
// 3463's X.3.1 "mail system full": the server's disk, not the mailbox.
var ErrSystemFull = reply(452, 4, 3, 1, "Insufficient system storage, please try again later", nil)

// with returns a copy of e carrying cause.
func (e *Error) with(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// storeError maps a store error to the reply a client gets.
func (a *Agent) storeError(err error) *Error {
	var de *Error
	switch {
	case errors.As(err, &de):
		return de
	case errors.Is(err, store.ErrOverQuota):
		if a.cfg.QuotaPermanent {
			return errQuotaPermanent.with(err)
		}
		return errQuotaTemporary.with(err)
	case errors.Is(err, store.ErrHeaderTooLarge):
		return ErrHeaderTooLarge.with(err)
	case errors.Is(err, store.ErrTooLarge):
		return ErrTooLarge.with(err)
	case errors.Is(err, store.ErrDailyLimit):
		return ErrDailyLimit.with(err)
	case errors.Is(err, store.ErrUnknownLocal), errors.Is(err, store.ErrNotFound):
		return ErrUnknownUser.with(err)
	case errors.Is(err, store.ErrInvalid):
		return ErrBadAddress.with(err)
	case store.IsNoSpace(err):
		return ErrSystemFull.with(err)
	}
	return ErrTemporary.with(err)
}
