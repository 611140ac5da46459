package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// reflectSchema returns the JSON Schema (draft 2020-12) of a Go type as
// plain JSON values: structs inline, unknown members refused, fields
// without omitempty required.
func reflectSchema(t reflect.Type) map[string]any {
	r := &invopop.Reflector{DoNotReference: true, Anonymous: true}
	s := r.ReflectFromType(t)
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("rpc: schema of %v: %v", t, err))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("rpc: schema of %v: %v", t, err))
	}
	delete(m, "$id")
	return m
}

// compileSchema makes a validator of a reflected schema. Formats
// (date-time, email) are asserted, as the Go types behind them need them.
func compileSchema(name string, schema map[string]any) (*jsonschema.Schema, error) {
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := "urn:basalt:rpc:" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// validate checks params against a method's schema. The error names the
// first field at fault, in data.field, as a JSON pointer-like dotted path.
func validate(s *jsonschema.Schema, params []byte) *Error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(params))
	if err != nil {
		return &Error{Code: CodeInvalidParams, Message: "invalid params: not JSON"}
	}
	err = s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &Error{Code: CodeInvalidParams, Message: "invalid params"}
	}
	leaf := firstLeaf(ve)
	field := strings.Join(leaf.InstanceLocation, ".")
	switch k := leaf.ErrorKind.(type) {
	case *kind.Required:
		field = join(field, k.Missing[0])
	case *kind.AdditionalProperties:
		field = join(field, k.Properties[0])
	}
	// A Printer is not for concurrent use; this is the error path only.
	msg := leaf.ErrorKind.LocalizedString(message.NewPrinter(language.English))
	if field != "" {
		msg = field + ": " + msg
	}
	return &Error{Code: CodeInvalidParams, Message: "invalid params: " + msg, Data: ErrorData{Type: "invalidParams", Field: field}}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// firstLeaf follows the first cause down to the error that says what is
// wrong (the outer ones only say "validation failed").
func firstLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	return ve
}

// paramsError reports params that passed the schema but not decoding.
func paramsError(err error) *Error {
	var te *json.UnmarshalTypeError
	field := ""
	if errors.As(err, &te) {
		field = te.Field
	}
	msg := "invalid params"
	if field != "" {
		msg += ": " + field + ": value out of range"
	}
	return &Error{Code: CodeInvalidParams, Message: msg, Data: ErrorData{Type: "invalidParams", Field: field}}
}

// OpenRPC is the method list as an OpenRPC 1.3 document
// (https://spec.open-rpc.org), built from the registered methods.
func (e *Engine) OpenRPC(title, version string) map[string]any {
	var methods []any
	for _, name := range e.names() {
		m := e.methods[name]
		var params []any
		props, _ := m.paramsSchema["properties"].(map[string]any)
		required := map[string]bool{}
		if rs, ok := m.paramsSchema["required"].([]any); ok {
			for _, r := range rs {
				required[fmt.Sprint(r)] = true
			}
		}
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		// Required first, then the rest, each group by name.
		sortParams(keys, required)
		for _, k := range keys {
			params = append(params, map[string]any{"name": k, "required": required[k], "schema": props[k]})
		}
		if params == nil {
			params = []any{}
		}
		rs := maps.Clone(m.resultSchema)
		delete(rs, "$schema")
		entry := map[string]any{
			"name": name, "summary": m.summary, "paramStructure": "by-name", "params": params,
			"result": map[string]any{"name": "result", "schema": rs},
		}
		if m.description != "" {
			entry["description"] = m.description
		}
		if !m.public {
			entry["x-authentication"] = "session cookie and X-CSRF-Token header"
		}
		methods = append(methods, entry)
	}
	return map[string]any{
		"openrpc": "1.3.2",
		"info":    map[string]any{"title": title, "version": version},
		"servers": []any{map[string]any{"name": "webmail", "url": "/rpc"}},
		"methods": methods,
		"components": map[string]any{"errors": map[string]any{
			"parseError":       map[string]any{"code": CodeParseError, "message": "parse error"},
			"invalidRequest":   map[string]any{"code": CodeInvalidRequest, "message": "invalid request"},
			"methodNotFound":   map[string]any{"code": CodeMethodNotFound, "message": "method not found"},
			"invalidParams":    map[string]any{"code": CodeInvalidParams, "message": "invalid params"},
			"internal":         map[string]any{"code": CodeInternal, "message": "internal error"},
			"notAuthenticated": map[string]any{"code": CodeNotAuthenticated, "message": "not authenticated"},
			"sessionExpired":   map[string]any{"code": CodeSessionExpired, "message": "session expired"},
			"rateLimited":      map[string]any{"code": CodeRateLimited, "message": "rate limited"},
			"tooLarge":         map[string]any{"code": CodeTooLarge, "message": "request too large"},
			"forbidden":        map[string]any{"code": CodeForbidden, "message": "missing CSRF token or foreign origin"},
			"unavailable": map[string]any{"code": CodeUnavailable, "message": "a service the server needs is unavailable or full; " +
				"try again later (data.type sendFailed: nothing was sent)"},
			"domain": map[string]any{"code": CodeNotFound, "message": "domain errors carry data.type: notFound (404), " +
				"exists, notEmpty, stateMismatch, alreadySent (409), overQuota (507), tooLarge (413), forbiddenFrom, forbidden (403), " +
				"dailyLimit (429), recipientRefused, sendFailed (502), invalid (400)"},
		}},
	}
}

func sortParams(keys []string, required map[string]bool) {
	slices.SortFunc(keys, func(a, b string) int {
		if required[a] != required[b] {
			if required[a] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
}
