package rpc

import (
	"errors"
	"fmt"

	"basalt/delivery"
	"basalt/session"
	"basalt/store"
	"basalt/store/webmail"
)

// The standard JSON-RPC 2.0 error codes (JSON-RPC 2.0 section 5.1).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
)

// Server conditions, in the range JSON-RPC 2.0 reserves for
// implementation-defined server errors (-32000 to -32099).
const (
	CodeNotAuthenticated = -32001 // no session cookie, or the call needs one
	CodeSessionExpired   = -32002 // the cookie names a session that ended
	CodeRateLimited      = -32003 // too many calls in the session's window
	CodeTooLarge         = -32004 // request body or batch over the limit
	CodeForbidden        = -32005 // missing or wrong CSRF token, foreign Origin
	CodeUnavailable      = -32006 // a service this server needs did not answer
)

// Domain errors use codes outside the reserved range; their data says
// which kind in "type", so clients branch on data.type, not on messages.
const (
	CodeInvalid       = 400 // "invalid": a value the method cannot use
	CodeForbiddenFrom = 403 // "forbiddenFrom", "forbidden"
	CodeNotFound      = 404 // "notFound"
	CodeConflict      = 409 // "exists", "notEmpty", "stateMismatch"
	CodeDomainTooBig  = 413 // "tooLarge"
	CodeLimit         = 429 // "dailyLimit"
	CodeRefused       = 502 // "recipientRefused", "sendFailed"
	CodeOverQuota     = 507 // "overQuota"
)

// Error is a JSON-RPC error object. Methods return it (or any error, which
// is mapped by asError) and the engine writes it as the response's error.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
	// cause is logged, never sent.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Message, e.cause)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.cause }

// ErrorData is the data of a domain error.
type ErrorData struct {
	Type string `json:"type"`
	// Field names the parameter at fault, when one is.
	Field string `json:"field,omitempty"`
	// Recipients lists refused recipients (recipientRefused).
	Recipients []RecipientError `json:"recipients,omitempty"`
	// RetryAfter is in seconds (rate limits).
	RetryAfter int `json:"retryAfter,omitempty"`
}

// RecipientError is one recipient a message could not be sent to.
type RecipientError struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

func domainErr(code int, typ, msg string) *Error {
	return &Error{Code: code, Message: msg, Data: ErrorData{Type: typ}}
}

// Domain errors methods return.
var (
	errNotFound      = domainErr(CodeNotFound, "notFound", "no such object")
	errExists        = domainErr(CodeConflict, "exists", "an object of that name exists")
	errNotEmpty      = domainErr(CodeConflict, "notEmpty", "the folder has sub-folders")
	errStateMismatch = domainErr(CodeConflict, "stateMismatch", "the state is unknown or too old; load everything again")
	errOverQuota     = domainErr(CodeOverQuota, "overQuota", "the mailbox is over its quota")
	errTooLarge      = domainErr(CodeDomainTooBig, "tooLarge", "too large")
	errForbiddenFrom = domainErr(CodeForbiddenFrom, "forbiddenFrom", "the sender address is not one of yours")
	errForbidden     = domainErr(CodeForbiddenFrom, "forbidden", "not allowed")
	errDailyLimit    = domainErr(CodeLimit, "dailyLimit", "the daily sending limit is reached")
)

// invalid is a domain error about a value, naming the field when known.
func invalid(field, msg string) *Error {
	return &Error{Code: CodeInvalid, Message: msg, Data: ErrorData{Type: "invalid", Field: field}}
}

func serverErr(code int, msg string) *Error { return &Error{Code: code, Message: msg} }

// asError maps what a method returned to the error the client sees.
// Errors of the services become domain errors by kind; anything else is
// internal, and its text (which may name hosts, paths or SQL) is logged,
// not sent.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	with := func(tmpl *Error) *Error {
		c := *tmpl
		c.cause = err
		return &c
	}
	if de, ok := errors.AsType[*delivery.Error](err); ok {
		// The agent hands out copies of its replies carrying causes, so
		// they are told apart by what they say.
		switch {
		case sameReply(de, delivery.ErrForbiddenFrom), sameReply(de, delivery.ErrBadHeaderFrom),
			sameReply(de, delivery.ErrOneFrom), sameReply(de, delivery.ErrBadHeaderSender):
			return with(errForbiddenFrom)
		case sameReply(de, delivery.ErrTooLarge), sameReply(de, delivery.ErrHeaderTooLarge):
			return with(errTooLarge)
		case sameReply(de, delivery.ErrDailyLimit):
			return with(errDailyLimit)
		case de.Enhanced[1] == 2 && de.Enhanced[2] == 2: // X.2.2 mailbox full, RFC 3463 3.3
			return with(errOverQuota)
		}
		return &Error{Code: CodeRefused, Message: de.Message, Data: ErrorData{Type: "sendFailed"}, cause: err}
	}
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrForbidden):
		// Another user's ids (and mail shared without the right) look
		// exactly like ids that do not exist.
		return with(errNotFound)
	case errors.Is(err, webmail.ErrStateUnknown), errors.Is(err, webmail.ErrTooManyChanges):
		return with(errStateMismatch)
	case errors.Is(err, store.ErrExists):
		return with(errExists)
	case errors.Is(err, store.ErrNotEmpty):
		return with(errNotEmpty)
	case errors.Is(err, store.ErrOverQuota):
		return with(errOverQuota)
	case errors.Is(err, store.ErrTooLarge):
		return with(errTooLarge)
	case errors.Is(err, store.ErrDailyLimit):
		return with(errDailyLimit)
	case errors.Is(err, store.ErrLocked):
		// A secure user's key is needed and the session has none.
		return &Error{Code: CodeSessionExpired, Message: "the session cannot open this mail; log in again", cause: err}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Code: CodeInvalid, Message: invalidMessage(err), Data: ErrorData{Type: "invalid"}, cause: err}
	case errors.Is(err, session.ErrWeakPass):
		return &Error{Code: CodeInvalid, Message: err.Error(), Data: ErrorData{Type: "invalid", Field: "new"}}
	case errors.Is(err, session.ErrNoSession):
		return serverErr(CodeSessionExpired, "session expired")
	case store.IsNoSpace(err):
		return &Error{Code: CodeUnavailable, Message: "the server's storage is full; try again later", cause: err}
	case store.IsUnavailable(err):
		return &Error{Code: CodeUnavailable, Message: "storage temporarily unavailable; try again later", cause: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error", cause: err}
}

func sameReply(a, b *delivery.Error) bool {
	return a.Code == b.Code && a.Enhanced == b.Enhanced && a.Message == b.Message
}

// invalidMessage returns the store's explanation of an invalid argument:
// the text after ErrInvalid, which the store writes for people and which
// names values the caller gave, not server internals.
func invalidMessage(err error) string {
	msg := err.Error()
	const marker = "invalid argument: "
	for i := 0; i+len(marker) <= len(msg); i++ {
		if msg[i:i+len(marker)] == marker {
			return msg[i+len(marker):]
		}
	}
	return "invalid argument"
}
