package rest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"basalt/store"
	"basalt/store/admin"
)

// Ctx is one request to a route: what its handler reads the request
// through and answers with.
type Ctx struct {
	W http.ResponseWriter
	R *http.Request
	// P is the authenticated key (nil on open routes).
	P     *admin.Principal
	Route *Route

	api *API
	// ctx carries the actor (store.WithActor) for the store's audit.
	ctx     context.Context
	body    []byte
	read    bool
	touched []string
}

// Context is the request's context, carrying the actor every audit
// record names.
func (c *Ctx) Context() context.Context { return c.ctx }

// Param returns a path parameter, unescaped.
func (c *Ctx) Param(name string) string {
	v := chi.URLParam(c.R, name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// ID returns a path parameter that must be a positive integer.
func (c *Ctx) ID(name string) (int64, error) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, NotFound("No such " + name + ".")
	}
	return n, nil
}

// Query returns a query parameter.
func (c *Ctx) Query(name string) string { return c.R.URL.Query().Get(name) }

// Touched returns the domains the route's locator found (its domain check
// passed for each).
func (c *Ctx) Touched() []string { return c.touched }

// Domains returns the domains the key reaches with the route's scope, or
// all true: what a Listed route filters its rows by.
func (c *Ctx) Domains() (ds []string, all bool) {
	if c.P == nil {
		return nil, true
	}
	return c.P.Domains(c.Route.Scope)
}

// CheckDomain refuses (403) a domain outside the key's reach with the
// route's scope: for a second domain a handler learns of itself (the
// new name of a rename, a target of an alias), and the domain it is an
// alias of, if it is one.
func (c *Ctx) CheckDomain(d string) error {
	if c.P == nil {
		return nil
	}
	// A domain alias's name stands for its domain (withCanonical).
	ds, err := c.withCanonical([]string{d})
	if err != nil {
		return err
	}
	for _, d := range ds {
		if !c.P.Allows(c.Route.Scope, d) {
			return Forbidden("The key does not hold " + c.Route.Scope + " over " + d + ".")
		}
	}
	return nil
}

// rawBody reads the body once: bounded (413), of a JSON content type
// (415; application/merge-patch+json for PATCH).
func (c *Ctx) rawBody() ([]byte, error) {
	if c.read {
		return c.body, nil
	}
	c.read = true
	b, err := io.ReadAll(http.MaxBytesReader(c.W, c.R.Body, c.api.cfg.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, NewProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
				"The body is larger than "+strconv.FormatInt(c.api.cfg.MaxBody, 10)+" bytes.")
		}
		return nil, BadRequest("malformed", "The body could not be read.")
	}
	if len(b) > 0 {
		want := "application/json"
		if c.R.Method == http.MethodPatch {
			want = "application/merge-patch+json"
		}
		mt, _, err := mime.ParseMediaType(c.R.Header.Get("Content-Type"))
		if err != nil || mt != want {
			p := NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "The body must be "+want+".")
			if c.R.Method == http.MethodPatch {
				p.header = map[string]string{"Accept-Patch": want}
			}
			return nil, p
		}
	}
	c.body = b
	return b, nil
}

// Decode reads the JSON body into v strictly: malformed JSON is 400, an
// unknown member or a member of the wrong type 422 naming the field. An
// empty body is a malformed one.
func (c *Ctx) Decode(v any) error {
	b, err := c.rawBody()
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return BadRequest("malformed", "A JSON body is required.")
	}
	return decodeStrict(b, v)
}

func decodeStrict(b []byte, v any) error {
	if err := checkMembers(b); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			f := te.Field
			if f == "" {
				return BadRequest("malformed", "The body must be a JSON object.")
			}
			return Invalid(f, "must be "+jsonKind(te.Type))
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return BadRequest("malformed", "The body is not well-formed JSON.")
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return Invalid(strings.Trim(f, `"`), "unknown field")
		}
		return BadRequest("malformed", "The body could not be decoded.")
	}
	if d.More() {
		return BadRequest("malformed", "The body holds more than one JSON value.")
	}
	return nil
}

// checkMembers refuses (400) a JSON text with an object that names a
// member twice, as encoding/json tells names apart: it matches a member to
// a struct field ignoring case (Unicode simple folding, so "ADDRESS" and
// "addreſſ" are "address"), and the last of several wins. The route's
// locator reads a member by its exact name; were {"address": "a@mine",
// "Address": "a@other"} let through, the locator would check mine while
// the handler acted on other. RFC 8259 section 4 leaves duplicate names'
// meaning open; refusing them leaves no two readings. A text that is not
// well-formed passes, for the decoder to refuse with its own answer.
func checkMembers(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	// One set of folded names per open object; nil for an open array.
	var open []map[string]bool
	key := false // the next string token in an object is a member name
	for {
		t, err := d.Token()
		if err != nil {
			return nil
		}
		switch t := t.(type) {
		case json.Delim:
			switch t {
			case '{':
				open = append(open, map[string]bool{})
				key = true
				continue
			case '[':
				open = append(open, nil)
			case '}', ']':
				open = open[:len(open)-1]
			}
		case string:
			if key {
				f := foldName(t)
				names := open[len(open)-1]
				if names[f] {
					return BadRequest("malformed", "The body names the member "+strconv.Quote(t)+" twice (member names are compared ignoring case).")
				}
				names[f] = true
				key = false
				continue
			}
		}
		// A value ended (or an array opened): in an object, a name comes next.
		key = len(open) > 0 && open[len(open)-1] != nil
	}
}

// foldName maps a member name to one representative of its case-folding
// class: two names fold alike exactly when strings.EqualFold (which
// encoding/json's field matching follows) says they are equal.
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// member returns the value of m's member that encoding/json would decode
// into a field named name (matched ignoring case); checkMembers has made
// sure there is at most one.
func member(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// Patch applies the JSON Merge Patch (RFC 7396) body to v, which holds the
// resource's editable members as they are: members the patch sets replace
// them, null removes (zeroes) them, and a member v does not have (an
// unknown or read-only one) is a 422.
func (c *Ctx) Patch(v any) error {
	b, err := c.rawBody()
	if err != nil {
		return err
	}
	if err := checkMembers(b); err != nil {
		return err
	}
	// Numbers are kept as their text: through float64 an integer above
	// 2^53 (a quota in bytes) would come back changed, in the patch or
	// in a member the patch does not touch.
	var patch any
	if err := unmarshalNumbers(b, &patch); err != nil {
		return BadRequest("malformed", "The body is not well-formed JSON.")
	}
	if _, ok := patch.(map[string]any); !ok {
		return BadRequest("malformed", "A merge patch must be a JSON object.")
	}
	cur, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var target any
	if err := unmarshalNumbers(cur, &target); err != nil {
		return err
	}
	merged, err := json.Marshal(mergePatch(target, patch))
	if err != nil {
		return err
	}
	// Decode into a fresh value: a member set to null must come out zero.
	fresh := reflect.New(reflect.TypeOf(v).Elem())
	if err := decodeStrict(merged, fresh.Interface()); err != nil {
		return err
	}
	reflect.ValueOf(v).Elem().Set(fresh.Elem())
	return nil
}

// unmarshalNumbers is json.Unmarshal into an any, numbers as json.Number.
func unmarshalNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// mergePatch is RFC 7396 section 2's MergePatch.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// JSON answers status with v as JSON.
func (c *Ctx) JSON(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", "application/json")
	c.W.WriteHeader(status)
	c.W.Write(append(b, '\n'))
	return nil
}

// ETag is the entity tag of a resource's stored state: a hash of its
// representation, so any change to what is stored changes it.
func ETag(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// Resource answers 200 with v and its ETag.
func (c *Ctx) Resource(v any) error {
	c.W.Header().Set("ETag", ETag(v))
	return c.JSON(http.StatusOK, v)
}

// Created answers 201 with v, its ETag and its Location (under /api/v1).
func (c *Ctx) Created(location string, v any) error {
	c.W.Header().Set("Location", "/api/v1"+location)
	c.W.Header().Set("ETag", ETag(v))
	return c.JSON(http.StatusCreated, v)
}

// NoContent answers 204.
func (c *Ctx) NoContent() error {
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

// IfMatch checks an If-Match header (RFC 9110 13.1.1) against the current
// state of the resource: 412 when it names none of its tags.
func (c *Ctx) IfMatch(current any) error {
	h := c.R.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	tag := ETag(current)
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == tag {
			return nil
		}
	}
	return NewProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
		"The resource changed since the ETag given in If-Match; read it again.")
}

// stillAsRead is the precondition of a change made on the strength of
// having read read: the store calls it with the resource as it finds it,
// its row locked, and it answers 412 when the resource's view is no longer
// what was read (someone changed it meanwhile). what names the resource.
func stillAsRead[T, V any](what string, read T, view func(T) V) func(T) error {
	want := ETag(view(read))
	return func(now T) error {
		if ETag(view(now)) != want {
			return NewProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
				"The "+what+" changed while the request was made; read it again.")
		}
		return nil
	}
}

// Audit records a change the store did not record itself (store methods
// that audit in their own transaction need none).
func (c *Ctx) Audit(e store.AuditEntry) { c.api.st.Audit(c.ctx, e) }

// StartJob queues a job of a kind the API registered (jobHandlers) and
// answers 202 with the job, Location its URL.
func (c *Ctx) StartJob(kind, domain string, params any) error {
	j, err := c.api.adm.EnqueueJob(c.ctx, kind, domain, params)
	if err != nil {
		return err
	}
	c.api.jobs.Wake()
	v := jobView(j)
	c.W.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	return c.JSON(http.StatusAccepted, v)
}

// RateLimit spends one of the key's n requests per window on the budget
// named name; over it, a 429 with Retry-After. Every request spends one
// on "api" (Config.RatePerMinute); an expensive route may spend on a
// budget of its own too.
func (c *Ctx) RateLimit(name string, n int64, per time.Duration) error {
	if c.P == nil {
		return nil
	}
	ok, after, err := c.api.adm.RateLimit(c.ctx, c.P.Key.ID, name, n, per)
	if err != nil {
		// The cache is away: serve rather than refuse everything.
		c.api.log.Warn("rate limit", "err", err)
		return nil
	}
	if !ok {
		return TooManyRequests(after)
	}
	return nil
}

// fail answers err as a problem.
func (c *Ctx) fail(err error) {
	p, server := problemOf(err)
	if server {
		c.api.log.Error("admin api", "method", c.R.Method, "path", c.R.URL.Path, "err", err)
	}
	writeProblem(c.W, p)
}

// Paging.

// MaxLimit bounds a page.
const MaxLimit = 500

// DefaultLimit is a page's size when limit is not given.
const DefaultLimit = 50

// Paging reads limit and cursor. When a cursor was given it is checked
// (it must be one this API made for this route and these filters) and its
// position decoded into after; given says whether there was one.
func (c *Ctx) Paging(after any) (limit int, given bool, err error) {
	limit = DefaultLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return 0, false, Invalid("limit", "an integer from 1 to "+strconv.Itoa(MaxLimit))
		}
		limit = n
	}
	cur := c.Query("cursor")
	if cur == "" {
		return limit, false, nil
	}
	payload, ok := c.openCursor(cur)
	if !ok || json.Unmarshal(payload, after) != nil {
		return 0, false, BadRequest("invalid-cursor", "The cursor is not one this listing gave, or its filters changed.")
	}
	return limit, true, nil
}

// cursorScope is what a cursor is bound to: the route and its query
// without the cursor and limit, so it cannot be replayed under other
// filters or another sort.
func (c *Ctx) cursorScope() []byte {
	q := c.R.URL.Query()
	q.Del("cursor")
	q.Del("limit")
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(c.Route.Method + " " + c.Route.Path + "\n")
	if c.P != nil {
		b.WriteString(strconv.FormatInt(c.P.Key.ID, 10) + "\n")
	}
	for _, k := range keys {
		b.WriteString(k + "=" + strings.Join(q[k], ",") + "\n")
	}
	return []byte(b.String())
}

func (c *Ctx) cursorMAC(payload []byte) []byte {
	key, err := c.api.adm.Secret(c.ctx, "cursor")
	if err != nil {
		c.api.log.Warn("cursor secret", "err", err)
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write(c.cursorScope())
	m.Write(payload)
	return m.Sum(nil)[:16]
}

// Cursor makes the opaque, tamper-evident cursor of a position: the
// keyset values of the last row shown, with a MAC over them and the
// listing's scope.
func (c *Ctx) Cursor(position any) string {
	payload, _ := json.Marshal(position)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(c.cursorMAC(payload))
}

func (c *Ctx) openCursor(s string) ([]byte, bool) {
	p64, m64, ok := strings.Cut(s, ".")
	if !ok {
		return nil, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	want := c.cursorMAC(payload)
	return payload, want != nil && hmac.Equal(mac, want)
}

// Page answers a page: {"items": [...], "next": cursor} with the next
// page's URL in a Link header (RFC 8288 rel="next"). rows holds up to
// limit+1 rows as the query returned them (one more than the page says
// there is a next page); position gives a row's keyset values; view
// renders a row.
func Page[T any, V any](c *Ctx, rows []T, limit int, position func(T) any, view func(T) V) error {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	items := make([]V, 0, len(rows))
	for _, r := range rows {
		items = append(items, view(r))
	}
	body := struct {
		Items []V     `json:"items"`
		Next  *string `json:"next,omitempty"`
	}{Items: items}
	if more {
		next := c.Cursor(position(rows[len(rows)-1]))
		body.Next = &next
		q := c.R.URL.Query()
		q.Set("cursor", next)
		q.Set("limit", strconv.Itoa(limit))
		// The path as the client sent it: the API may be mounted under
		// another prefix than /api.
		c.W.Header().Set("Link", "<"+c.R.URL.EscapedPath()+"?"+q.Encode()+`>; rel="next"`)
	}
	return c.JSON(http.StatusOK, body)
}
