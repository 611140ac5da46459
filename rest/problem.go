package rest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"basalt/store"
	"basalt/store/admin"
)

// ProblemBase is the stem of every problem type URI (RFC 9457 3.1.1): a
// relative reference, resolved against the server that answered. The
// slugs after it are part of the API's contract and never change.
const ProblemBase = "/api/v1/problems/"

// Problem is an RFC 9457 problem detail, the body of every failure
// (application/problem+json). A handler returns one as its error.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
	// retryAfter is sent as Retry-After (429, 503).
	retryAfter time.Duration
	// header adds response headers (WWW-Authenticate, Accept-Patch).
	header map[string]string
}

// FieldError is one invalid member of a request body or query
// (a JSON Pointer-ish dotted path, "limits.maxUsers", or a query name).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// NewProblem makes a problem of type slug ("validation", "not-found").
func NewProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

// Validation is a 422 listing what is wrong with which field.
func Validation(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", "One or more fields are invalid.")
	p.Errors = errs
	return p
}

// Invalid is a 422 about one field.
func Invalid(field, message string) *Problem {
	return Validation(FieldError{Field: field, Message: message})
}

// BadRequest is a 400 of the given slug (malformed, invalid-cursor, ...).
func BadRequest(slug, detail string) *Problem {
	return NewProblem(http.StatusBadRequest, slug, "Bad request", detail)
}

// NotFound is a 404.
func NotFound(detail string) *Problem {
	return NewProblem(http.StatusNotFound, "not-found", "Not found", detail)
}

// Conflict is a 409 of the given slug (exists, not-empty, domain-limit, ...).
func Conflict(slug, detail string) *Problem {
	return NewProblem(http.StatusConflict, slug, "Conflict", detail)
}

// Forbidden is a 403.
func Forbidden(detail string) *Problem {
	return NewProblem(http.StatusForbidden, "forbidden", "Forbidden", detail)
}

// TooManyRequests is a 429 with Retry-After.
func TooManyRequests(after time.Duration) *Problem {
	p := NewProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests", "The key's request budget is spent; retry after the time given.")
	p.retryAfter = after
	return p
}

// problemOf maps an error from a handler or the store to a problem. The
// boolean says the error was the server's (it is logged, and the client
// told no more than that).
func problemOf(err error) (*Problem, bool) {
	var p *Problem
	switch {
	case errors.As(err, &p):
		return p, false
	case errors.Is(err, admin.ErrUnauthorized):
		p = NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", "A valid API key is needed: Authorization: Bearer <key>.")
		p.header = map[string]string{"WWW-Authenticate": `Bearer realm="basalt"`}
		return p, false
	case errors.Is(err, admin.ErrWider):
		return NewProblem(http.StatusForbidden, "wider-than-key", "Forbidden", err.Error()), false
	case errors.Is(err, admin.ErrForbidden), errors.Is(err, store.ErrForbidden):
		// store.ErrForbidden: what the store refuses whoever asks (a
		// mailbox shared with another domain, a secure user's mailbox
		// shared at all).
		return Forbidden(err.Error()), false
	case errors.Is(err, admin.ErrIdempotencyReused):
		return NewProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused", err.Error()), false
	case errors.Is(err, admin.ErrIdempotencyBusy):
		return Conflict("idempotency-key-busy", err.Error()), false
	case errors.Is(err, store.ErrNotFound):
		return NotFound(err.Error()), false
	case errors.Is(err, store.ErrExists):
		return Conflict("exists", err.Error()), false
	case errors.Is(err, store.ErrNotEmpty):
		return Conflict("not-empty", err.Error()), false
	case errors.Is(err, store.ErrDomainLimit):
		return Conflict("domain-limit", err.Error()), false
	case errors.Is(err, store.ErrInvalid):
		return NewProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", err.Error()), false
	case store.IsUnavailable(err):
		p = NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The database is not answering; retry later.")
		p.retryAfter = 5 * time.Second
		return p, true
	}
	return NewProblem(http.StatusInternalServerError, "internal", "Internal server error", "The server failed; the failure is logged."), true
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.retryAfter+time.Second-1)/time.Second)))
	}
	for k, v := range p.header {
		h.Set(k, v)
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}
