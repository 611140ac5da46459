package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sort"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Engine is JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over
// registered methods. Each method is registered once with typed params
// and result (Register); the params' JSON Schema, reflected from the Go
// type, both checks every call before the method runs (so bad params are
// -32602 naming the field, with no checks written in the methods) and is
// what the OpenRPC document publishes, so the two cannot drift.
type Engine struct {
	methods  map[string]*method
	maxBatch int
	// maxReply bounds a batch's results (Config.MaxReplyBytes).
	maxReply int
	log      *slog.Logger
	// guard runs before every method that is not public: authentication,
	// CSRF and rate limits (server.go).
	guard func(ctx context.Context, c *Call) error
}

type method struct {
	name        string
	summary     string
	description string
	public      bool
	params      reflect.Type
	result      reflect.Type
	// paramsSchema is the reflected schema of the params; check
	// validates against it.
	paramsSchema map[string]any
	resultSchema map[string]any
	check        *jsonschema.Schema
	invoke       func(ctx context.Context, c *Call, params []byte) (any, error)
}

func newEngine(maxBatch, maxReply int, log *slog.Logger) *Engine {
	return &Engine{methods: map[string]*method{}, maxBatch: maxBatch, maxReply: maxReply, log: log}
}

// Spec describes a method to Register.
type Spec struct {
	Name    string
	Summary string
	// Description, when there is more to say than the summary, is
	// published with it.
	Description string
	// Public methods run without a session (auth).
	Public bool
}

// Register adds a method taking params P and returning R. P must be a
// struct: JSON-RPC named params (section 4.2, by-name) are its fields.
// Fields whose json tag lacks omitempty are required; jsonschema tags
// add bounds and enumerations. It panics on a duplicate name or a P the
// schema reflector cannot describe: both are programming errors found at
// start.
func Register[P, R any](e *Engine, spec Spec, fn func(ctx context.Context, c *Call, p P) (R, error)) {
	if _, dup := e.methods[spec.Name]; dup {
		panic("rpc: method registered twice: " + spec.Name)
	}
	pt := reflect.TypeFor[P]()
	if pt.Kind() != reflect.Struct {
		panic("rpc: params of " + spec.Name + " must be a struct")
	}
	m := &method{name: spec.Name, summary: spec.Summary, description: spec.Description, public: spec.Public, params: pt, result: reflect.TypeFor[R]()}
	m.paramsSchema = reflectSchema(pt)
	m.resultSchema = reflectSchema(m.result)
	var err error
	if m.check, err = compileSchema(spec.Name, m.paramsSchema); err != nil {
		panic(fmt.Sprintf("rpc: schema of %s: %v", spec.Name, err))
	}
	m.invoke = func(ctx context.Context, c *Call, raw []byte) (any, error) {
		var p P
		if err := json.Unmarshal(raw, &p); err != nil {
			// The schema let it through, so this is a value Go cannot
			// hold (an integer past int64): still the caller's params.
			return nil, paramsError(err)
		}
		return fn(ctx, c, p)
	}
	e.methods[spec.Name] = m
}

// names returns the registered method names in order.
func (e *Engine) names() []string {
	out := make([]string, 0, len(e.methods))
	for n := range e.methods {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// request is one JSON-RPC request object as received. Members are kept
// raw so that a missing id (a notification) can be told from "id": null
// and so that a numeric id goes back exactly as it came.
type request struct {
	JSONRPC json.RawMessage
	Method  json.RawMessage
	Params  json.RawMessage
	ID      json.RawMessage
}

// parseRequest reads a request object. Member names are matched exactly:
// encoding/json would take "ID" or "Method" for "id" and "method", and a
// request whose only id is "Id" is a notification (section 4.1), which
// must not be answered.
func parseRequest(raw []byte) (request, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return request{}, err
	}
	return request{JSONRPC: members["jsonrpc"], Method: members["method"], Params: members["params"], ID: members["id"]}, nil
}

// response is one JSON-RPC response object (section 5): exactly one of
// Result and Error; Result is written even when it is null.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

var nullID = json.RawMessage("null")

func errorResponse(id json.RawMessage, e *Error) *response {
	if id == nil {
		id = nullID
	}
	return &response{JSONRPC: "2.0", Error: e, ID: id}
}

// serve answers a request body: one request or a batch (section 6). It
// returns the JSON to send, or nil when there is nothing to send (a
// notification, or a batch of only notifications).
func (e *Engine) serve(ctx context.Context, c *Call, body []byte) []byte {
	body = bytes.TrimSpace(body)
	// RFC 8259 8.1: JSON text is UTF-8; encoding/json would quietly turn
	// bad bytes into U+FFFD instead.
	if !json.Valid(body) || !utf8.Valid(body) {
		return encode(errorResponse(nil, serverErr(CodeParseError, "parse error")))
	}
	if len(body) > 0 && body[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return encode(errorResponse(nil, serverErr(CodeParseError, "parse error")))
		}
		if len(items) == 0 {
			// Section 6: an empty array is one Invalid Request, not a batch.
			return encode(errorResponse(nil, serverErr(CodeInvalidRequest, "invalid request: empty batch")))
		}
		if len(items) > e.maxBatch {
			return encode(errorResponse(nil, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("batch of more than %d calls", e.maxBatch)}))
		}
		// Calls run in order: a client may rely on a batch's effects
		// following one another (section 6 allows any order).
		// A batch of calls that each return much (50 loads of a large
		// message) would otherwise build a reply of hundreds of MiB:
		// once the results pass maxReply, the calls left are not run
		// and are answered CodeTooLarge, to be sent again on their own.
		// A call is never run and then denied its result.
		var out []*response
		size := 0
		for _, it := range items {
			if e.maxReply > 0 && size >= e.maxReply {
				if r := tooMuch(it); r != nil {
					out = append(out, r)
				}
				continue
			}
			if r := e.one(ctx, c, it); r != nil {
				out = append(out, r)
				size += len(r.Result)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return encode(out)
	}
	if r := e.one(ctx, c, body); r != nil {
		return encode(r)
	}
	return nil
}

// tooMuch answers a batch's call that is not run because the batch's
// reply is full; nil for a notification, which gets no answer.
func tooMuch(raw json.RawMessage) *response {
	req, err := parseRequest(bytes.TrimSpace(raw))
	if err != nil {
		return errorResponse(nil, serverErr(CodeInvalidRequest, "invalid request"))
	}
	if req.ID == nil {
		return nil
	}
	id, ok := validID(req.ID)
	if !ok {
		return errorResponse(nil, serverErr(CodeInvalidRequest, "invalid request: id must be a string, a number or null"))
	}
	return errorResponse(id, &Error{Code: CodeTooLarge, Message: "the batch's reply is full; send this call again"})
}

func encode(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		// Results are the methods' own types; one that cannot be
		// encoded is a bug, reported as an internal error.
		b, _ = marshal(errorResponse(nil, serverErr(CodeInternal, "internal error")))
	}
	return b
}

// marshal is json.Marshal without its HTML escaping (<, > and & written
// as \u003c, \u003e, \u0026), which made sanitized HTML bodies a third
// larger. The escaping guards JSON pasted into an HTML page's <script>;
// these answers never are: they go out as application/json with
// X-Content-Type-Options: nosniff (serveRPC), which a browser neither
// renders as HTML nor runs as a script, and they are read by the app with
// JSON.parse. U+2028 and U+2029 are still escaped by encoding/json.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// one runs one request object and returns its response; nil for a
// notification (section 4.1: the server must not reply to one, not even
// with an error). A panic anywhere in the call (the guard, the method,
// encoding its result) is that call's internal error: the batch's other
// calls and the server go on.
func (e *Engine) one(ctx context.Context, c *Call, raw json.RawMessage) (resp *response) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errorResponse(nil, serverErr(CodeInvalidRequest, "invalid request: not an object"))
	}
	req, err := parseRequest(raw)
	if err != nil {
		return errorResponse(nil, serverErr(CodeInvalidRequest, "invalid request"))
	}
	id, idOK := validID(req.ID)
	if !idOK {
		return errorResponse(nil, serverErr(CodeInvalidRequest, "invalid request: id must be a string, a number or null"))
	}
	var version, name string
	if json.Unmarshal(req.JSONRPC, &version) != nil || version != "2.0" {
		return errorResponse(id, serverErr(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`))
	}
	if json.Unmarshal(req.Method, &name) != nil || len(req.Method) == 0 || req.Method[0] != '"' {
		return errorResponse(id, serverErr(CodeInvalidRequest, `invalid request: "method" must be a string`))
	}
	notification := req.ID == nil
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("rpc call panicked", "method", name, "panic", p, "stack", string(debug.Stack()))
			resp = nil
			if !notification {
				resp = errorResponse(id, serverErr(CodeInternal, "internal error"))
			}
		}
	}()
	res, rerr := e.call(ctx, c, name, req.Params)
	if notification {
		if rerr != nil && rerr.Code == CodeInternal {
			e.log.Error("rpc notification failed", "method", name, "err", rerr.cause)
		}
		return nil
	}
	if rerr != nil {
		if rerr.Code == CodeInternal {
			e.log.Error("rpc call failed", "method", name, "err", rerr.cause)
		}
		return errorResponse(id, rerr)
	}
	b, err := marshal(res)
	if err != nil {
		e.log.Error("rpc result not encodable", "method", name, "err", err)
		return errorResponse(id, serverErr(CodeInternal, "internal error"))
	}
	return &response{JSONRPC: "2.0", Result: b, ID: id}
}

// validID reports whether an id is absent or of a type section 4 allows
// (string, number, null), returning it as it is to be echoed.
func validID(id json.RawMessage) (json.RawMessage, bool) {
	if id == nil {
		return nil, true
	}
	id = bytes.TrimSpace(id)
	switch {
	case len(id) == 0:
		return nil, false
	case id[0] == '"', id[0] == '-', id[0] >= '0' && id[0] <= '9':
		return id, true
	case string(id) == "null":
		return id, true
	}
	return nil, false
}

// call finds, checks and runs a method.
func (e *Engine) call(ctx context.Context, c *Call, name string, params json.RawMessage) (any, *Error) {
	m, ok := e.methods[name]
	if !ok {
		return nil, &Error{Code: CodeMethodNotFound, Message: "method not found: " + name}
	}
	switch {
	case params == nil:
		// Section 4: params may be omitted.
		params = json.RawMessage("{}")
	case params[0] == '[':
		return nil, &Error{Code: CodeInvalidParams, Message: "invalid params: this server takes params by name (an object)"}
	case params[0] != '{':
		// Section 4: params, when present, is a structured value; null
		// is not one.
		return nil, serverErr(CodeInvalidRequest, `invalid request: "params" must be an object or an array`)
	}
	if !m.public && e.guard != nil {
		if err := e.guard(ctx, c); err != nil {
			return nil, asError(err)
		}
	}
	if err := validate(m.check, params); err != nil {
		return nil, err
	}
	out, err := m.invoke(ctx, c, params)
	if err != nil {
		return nil, asError(err)
	}
	return out, nil
}
