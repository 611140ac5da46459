package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/session"
)

// TestConformance checks the JSON-RPC 2.0 rules through real HTTP,
// including the examples of section 7 of the specification.
func TestConformance(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{MaxBatch: 5}})
	type boom struct{}
	Register(fx.h.engine, Spec{Name: "test.fail", Public: true}, func(context.Context, *Call, empty) (boom, error) {
		return boom{}, errors.New("dial tcp 10.0.0.7:3306: secret detail")
	})
	Register(fx.h.engine, Spec{Name: "test.panic", Public: true}, func(context.Context, *Call, empty) (boom, error) {
		panic("boom")
	})
	Register(fx.h.engine, Spec{Name: "test.badresult", Public: true}, func(context.Context, *Call, empty) (panicky, error) {
		return panicky{}, nil
	})
	Register(fx.h.engine, Spec{Name: "test.echo", Public: true}, func(_ context.Context, _ *Call, p struct {
		N   int64    `json:"n" jsonschema:"minimum=1,maximum=10"`
		S   string   `json:"s,omitempty" jsonschema:"enum=a,enum=b"`
		Arr []string `json:"arr,omitempty"`
	}) (map[string]any, error) {
		return map[string]any{"n": p.N, "s": p.S}, nil
	})
	c := fx.client(t)

	tests := []struct {
		name   string
		body   string
		status int
		// want is the response: one object's error code (or 0 for a
		// result), or for a batch each element's, in order.
		want  []int
		batch bool
		ids   []string
	}{
		{"parse error", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`, 200, []int{CodeParseError}, false, []string{"null"}},
		{"invalid request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"wrong version", `{"jsonrpc": "1.0", "method": "test.echo", "params": {"n": 1}, "id": 7}`, 200, []int{CodeInvalidRequest}, false, []string{"7"}},
		{"missing version", `{"method": "test.echo", "params": {"n": 1}, "id": 7}`, 200, []int{CodeInvalidRequest}, false, []string{"7"}},
		{"object id", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": {"a": 1}}`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"string params", `{"jsonrpc": "2.0", "method": "test.echo", "params": "x", "id": 1}`, 200, []int{CodeInvalidRequest}, false, []string{"1"}},
		{"not an object", `"hello"`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"batch parse error", `[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method"]`, 200, []int{CodeParseError}, false, []string{"null"}},
		{"empty batch", `[]`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"batch of one invalid", `[1]`, 200, []int{CodeInvalidRequest}, true, []string{"null"}},
		{"batch of invalids", `[1,2,3]`, 200, []int{CodeInvalidRequest, CodeInvalidRequest, CodeInvalidRequest}, true, []string{"null", "null", "null"}},
		{"method not found", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`, 200, []int{CodeMethodNotFound}, false, []string{`"1"`}},
		{"result with string id", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 3}, "id": "abc"}`, 200, []int{0}, false, []string{`"abc"`}},
		{"numeric id kept as written", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 3}, "id": 1.50}`, 200, []int{0}, false, []string{"1.50"}},
		{"null id answered", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 3}, "id": null}`, 200, []int{0}, false, []string{"null"}},
		{"notification", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 3}}`, 204, nil, false, nil},
		{"notification of unknown method", `{"jsonrpc": "2.0", "method": "foobar"}`, 204, nil, false, nil},
		{"notification with bad params", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 99}}`, 204, nil, false, nil},
		{"batch of notifications", `[{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}}, {"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 2}}]`, 204, nil, false, nil},
		{"mixed batch (section 7)", `[
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": "1"},
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 7}},
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 42}, "id": "2"},
			{"foo": "boo"},
			{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 9}, "id": 9}
		]`, 200, nil, false, nil}, // over MaxBatch 5: one error
		{"mixed batch within limit", `[
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": "1"},
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 7}},
			{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 42}, "id": "2"},
			{"foo": "boo"},
			{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"}
		]`, 200, []int{0, CodeInvalidParams, CodeInvalidRequest, CodeMethodNotFound}, true, []string{`"1"`, `"2"`, "null", `"5"`}},
		{"positional params", `{"jsonrpc": "2.0", "method": "test.echo", "params": [1], "id": 1}`, 200, []int{CodeInvalidParams}, false, []string{"1"}},
		{"null params", `{"jsonrpc": "2.0", "method": "test.echo", "params": null, "id": 1}`, 200, []int{CodeInvalidRequest}, false, []string{"1"}},
		{"number params", `{"jsonrpc": "2.0", "method": "test.echo", "params": 3, "id": 1}`, 200, []int{CodeInvalidRequest}, false, []string{"1"}},
		{"empty body", ``, 200, []int{CodeParseError}, false, []string{"null"}},
		{"whitespace body", " \r\n\t ", 200, []int{CodeParseError}, false, []string{"null"}},
		{"not JSON", `hello`, 200, []int{CodeParseError}, false, []string{"null"}},
		{"two values", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": 1} {}`, 200, []int{CodeParseError}, false, []string{"null"}},
		{"invalid UTF-8", "{\"jsonrpc\": \"2.0\", \"method\": \"test.echo\", \"params\": {\"n\": 1, \"s\": \"\xff\"}, \"id\": 1}", 200, []int{CodeParseError}, false, []string{"null"}},
		{"numeric version", `{"jsonrpc": 2.0, "method": "test.echo", "params": {"n": 1}, "id": 7}`, 200, []int{CodeInvalidRequest}, false, []string{"7"}},
		{"version 2.00", `{"jsonrpc": "2.00", "method": "test.echo", "params": {"n": 1}, "id": 7}`, 200, []int{CodeInvalidRequest}, false, []string{"7"}},
		{"members in capitals are not the members", `{"JSONRPC": "2.0", "METHOD": "test.echo", "PARAMS": {"n": 1}, "ID": 1}`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"Id is not id: a notification", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "Id": 1}`, 204, nil, false, nil},
		{"boolean id", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": true}`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"array id", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": [1]}`, 200, []int{CodeInvalidRequest}, false, []string{"null"}},
		{"negative and exponent ids kept", `[{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": -3}, {"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": 1e3}]`,
			200, []int{0, 0}, true, []string{"-3", "1e3"}},
		{"empty string id", `{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": ""}`, 200, []int{0}, false, []string{`""`}},
		{"nested arrays", `[[]]`, 200, []int{CodeInvalidRequest}, true, []string{"null"}},
		{"nested batch with a call", `[[{"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 1}, "id": 1}], {"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 2}, "id": 2}]`,
			200, []int{CodeInvalidRequest, 0}, true, []string{"null", "2"}},
		{"batch of invalid elements", `[1, "x", null, {}, {"foo": "boo"}]`, 200,
			[]int{CodeInvalidRequest, CodeInvalidRequest, CodeInvalidRequest, CodeInvalidRequest, CodeInvalidRequest}, true, []string{"null", "null", "null", "null", "null"}},
		{"batch with notifications and a panic", `[{"jsonrpc": "2.0", "method": "test.panic", "id": 1}, {"jsonrpc": "2.0", "method": "test.panic"}, {"jsonrpc": "2.0", "method": "test.echo", "params": {"n": 2}, "id": 2}]`,
			200, []int{CodeInternal, 0}, true, []string{"1", "2"}},
		{"panic while encoding the result", `{"jsonrpc": "2.0", "method": "test.badresult", "id": 1}`, 200, []int{CodeInternal}, false, []string{"1"}},
		{"notification that panics", `{"jsonrpc": "2.0", "method": "test.panic"}`, 204, nil, false, nil},
		{"internal error", `{"jsonrpc": "2.0", "method": "test.fail", "id": 1}`, 200, []int{CodeInternal}, false, []string{"1"}},
		{"panic is internal", `{"jsonrpc": "2.0", "method": "test.panic", "id": 1}`, 200, []int{CodeInternal}, false, []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			resp, b := c.post(tt.body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.status == 204 {
				if len(b) != 0 {
					t.Fatalf("a notification got a reply: %s", b)
				}
				return
			}
			if tt.name == "mixed batch (section 7)" {
				r := decode[testResponse](t, b)
				if r.Error == nil || r.Error.Code != CodeTooLarge {
					t.Fatalf("batch over the limit: %s", b)
				}
				return
			}
			var rs []testResponse
			if tt.batch {
				rs = decode[[]testResponse](t, b)
			} else {
				if strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
					t.Fatalf("an array answered a single request: %s", b)
				}
				rs = []testResponse{decode[testResponse](t, b)}
			}
			if len(rs) != len(tt.want) {
				t.Fatalf("%d responses, want %d: %s", len(rs), len(tt.want), b)
			}
			for i, r := range rs {
				if r.JSONRPC != "2.0" {
					t.Errorf("response %d: jsonrpc %q", i, r.JSONRPC)
				}
				if string(r.ID) != tt.ids[i] {
					t.Errorf("response %d: id %s, want %s", i, r.ID, tt.ids[i])
				}
				switch {
				case tt.want[i] == 0 && (r.Error != nil || r.Result == nil):
					t.Errorf("response %d: want a result: %s", i, b)
				case tt.want[i] != 0 && (r.Error == nil || r.Error.Code != tt.want[i] || r.Result != nil):
					t.Errorf("response %d: want error %d: %s", i, tt.want[i], b)
				}
			}
			if strings.Contains(string(b), "10.0.0.7") || strings.Contains(string(b), "boom") {
				t.Errorf("an internal error leaked its cause: %s", b)
			}
		})
	}
	c.t = t

	t.Run("params name the field", func(t *testing.T) {
		c.t = t
		for _, tt := range []struct {
			params, field string
		}{
			{`{}`, "n"},
			{`{"n": "x"}`, "n"},
			{`{"n": 11}`, "n"},
			{`{"n": 1.5}`, "n"},
			{`{"n": 1, "s": "c"}`, "s"},
			{`{"n": 1, "arr": [1]}`, "arr.0"},
			{`{"n": 1, "extra": true}`, "extra"},
		} {
			_, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"test.echo","params":`+tt.params+`}`, nil)
			r := decode[testResponse](t, b)
			if r.Error == nil || r.Error.Code != CodeInvalidParams || r.Error.Data.Field != tt.field || !strings.Contains(r.Error.Message, tt.field) {
				t.Errorf("params %s: %s, want -32602 naming %q", tt.params, b, tt.field)
			}
		}
	})

	t.Run("HTTP conditions", func(t *testing.T) {
		c.t = t
		resp, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"test.echo","params":{"n":1}}`, map[string]string{"Content-Type": "application/json; charset=utf-8"})
		if resp.StatusCode != 200 || decode[testResponse](t, b).Error != nil {
			t.Errorf("application/json with a charset: HTTP %d %s", resp.StatusCode, b)
		}
		big := `{"jsonrpc":"2.0","id":1,"method":"test.echo","params":{"n":1,"s":"` + strings.Repeat("a", 2<<20) + `"}}`
		for _, tt := range []struct {
			name   string
			body   string
			hdr    map[string]string
			status int
			code   int
		}{
			{"too large", big, nil, http.StatusRequestEntityTooLarge, CodeTooLarge},
			{"not JSON content", `{"jsonrpc":"2.0","id":1,"method":"test.echo","params":{"n":1}}`, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, CodeInvalidRequest},
			{"form content", `a=b`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, CodeInvalidRequest},
			{"foreign origin", `{"jsonrpc":"2.0","id":1,"method":"test.echo","params":{"n":1}}`, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden, CodeForbidden},
		} {
			resp, b := c.post(tt.body, tt.hdr)
			if resp.StatusCode != tt.status {
				t.Errorf("%s: HTTP %d, want %d", tt.name, resp.StatusCode, tt.status)
				continue
			}
			if r := decode[testResponse](t, b); r.Error == nil || r.Error.Code != tt.code {
				t.Errorf("%s: %s, want error %d", tt.name, b, tt.code)
			}
		}
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			req, _ := http.NewRequest(m, fx.srv.URL+"/rpc", nil)
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
				t.Errorf("%s /rpc: HTTP %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
			}
			if r := decode[testResponse](t, b); r.Error == nil || r.Error.Code != CodeInvalidRequest {
				t.Errorf("%s /rpc: %s", m, b)
			}
		}
	})

	// The body limit is applied to the declared length before any of
	// the body is read: the sender of a huge body is answered at once,
	// not after the server has read its first megabyte.
	t.Run("declared length over the limit", func(t *testing.T) {
		c.t = t
		if status := c.declared("/rpc", "application/json", 64<<20); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d", status)
		}
	})
}

// panicky is a result whose encoding panics.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom in MarshalJSON") }

// TestAuthentication covers auth, the cookie, the CSRF token, the Origin
// check, logout, the login throttle and the rate limit.
func TestAuthentication(t *testing.T) {
	forEachBackend(t, fixtureOptions{cfg: Config{RateLimit: 30}, session: session.Config{FailuresPerIP: 3, FailuresPerAccount: 3}}, func(t *testing.T, fx *fixture) {
		fx.env.NewUser(t, "alice@example.org", true)
		c := fx.client(t)

		t.Run("needs a session", func(t *testing.T) {
			c.t = t
			c.fail("meta", nil, CodeNotAuthenticated, "")
			c.fail("folders.list", nil, CodeNotAuthenticated, "")
		})
		t.Run("wrong password", func(t *testing.T) {
			c.t = t
			var res authResult
			c.must("auth", map[string]any{"username": "alice@example.org", "password": "wrong password"}, &res)
			if res.Auth != "failed" || res.CSRF != "" {
				t.Fatalf("wrong password: %+v", res)
			}
			c.must("auth", map[string]any{"username": "nobody@example.org", "password": "wrong password"}, &res)
			if res.Auth != "failed" {
				t.Fatalf("unknown user: %+v", res)
			}
			c.fail("auth", map[string]any{"username": "alice@example.org"}, CodeInvalidParams, "invalidParams")
		})
		t.Run("success sets the cookie", func(t *testing.T) {
			c.t = t
			resp, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"auth","params":{"username":"alice@example.org","password":"`+storetest.Password+`"}}`, nil)
			r := decode[testResponse](t, b)
			res := decode[authResult](t, r.Result)
			if res.Auth != "success" || res.CSRF == "" || res.Address != "alice@example.org" {
				t.Fatalf("login: %s", b)
			}
			c.csrf = res.CSRF
			var ck *http.Cookie
			for _, k := range resp.Cookies() {
				if k.Name == "basalt_session" {
					ck = k
				}
			}
			if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/rpc" {
				t.Fatalf("session cookie %+v", ck)
			}
			if strings.Contains(string(b), ck.Value) {
				t.Fatal("the result carries the cookie's secret")
			}
			var m metaResult
			c.must("meta", nil, &m)
			if m.User.Address != "alice@example.org" || !m.User.Secure {
				t.Fatalf("meta: %+v", m)
			}
		})
		t.Run("CSRF and Origin", func(t *testing.T) {
			c.t = t
			for _, hdr := range []map[string]string{
				{"X-CSRF-Token": ""},
				{"X-CSRF-Token": "wrong"},
				{"X-CSRF-Token": c.csrf + "x"},
			} {
				_, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"meta"}`, hdr)
				if r := decode[testResponse](t, b); r.Error == nil || r.Error.Code != CodeForbidden {
					t.Errorf("header %v: %s", hdr, b)
				}
			}
			resp, _ := c.post(`{"jsonrpc":"2.0","id":1,"method":"meta"}`, map[string]string{"Origin": "http://evil.example"})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("foreign origin: HTTP %d", resp.StatusCode)
			}
			resp, _ = c.post(`{"jsonrpc":"2.0","id":1,"method":"meta"}`, map[string]string{"Origin": ""})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("no Origin: HTTP %d", resp.StatusCode)
			}
		})
		t.Run("logout ends the session on the server", func(t *testing.T) {
			c.t = t
			u := mustParse(t, fx.srv.URL+"/rpc")
			old := c.hc.Jar.Cookies(u)
			c.must("logout", nil, nil)
			c.fail("meta", nil, CodeNotAuthenticated, "")
			// The old cookie, kept by someone who copied it, opens nothing.
			c.hc.Jar.SetCookies(u, old)
			c.fail("meta", nil, CodeSessionExpired, "")
		})
		t.Run("rate limit", func(t *testing.T) {
			c.t = t
			c.login("alice@example.org", storetest.Password)
			var last *testError
			for range 31 {
				if _, e := c.call("meta", nil); e != nil {
					last = e
					break
				}
			}
			if last == nil || last.Code != CodeRateLimited || last.Data.RetryAfter <= 0 {
				t.Fatalf("31 calls in a minute with a limit of 30: %+v", last)
			}
		})
		t.Run("login throttle", func(t *testing.T) {
			c.t = t
			other := fx.client(t)
			var res authResult
			for range 3 {
				other.must("auth", map[string]any{"username": "alice@example.org", "password": "wrong password"}, &res)
			}
			other.must("auth", map[string]any{"username": "alice@example.org", "password": storetest.Password}, &res)
			if res.Auth != "locked" || res.Reason == "" || res.CSRF != "" {
				t.Fatalf("after 3 failures: %+v", res)
			}
		})
	})
}

func TestLockedUser(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	auth := fx.env.NewUser(t, "bob@example.org", false)
	c := fx.client(t)
	c.login("bob@example.org", storetest.Password)
	if err := fx.env.Store.Lock(context.Background(), auth.User.ID, fx.h.now().Add(3600e9), "abuse report"); err != nil {
		t.Fatal(err)
	}
	c.fail("meta", nil, CodeSessionExpired, "")
	var res authResult
	c.must("auth", map[string]any{"username": "bob@example.org", "password": storetest.Password}, &res)
	if res.Auth != "locked" || !strings.Contains(res.Reason, "abuse report") {
		t.Fatalf("locked user: %+v", res)
	}
}

func TestSecureCookieOnTLS(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{tls: true})
	fx.env.NewUser(t, "carol@example.org", false)
	c := fx.client(t)
	resp, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"auth","params":{"username":"carol@example.org","password":"`+storetest.Password+`"}}`, nil)
	if !strings.Contains(string(b), `"success"`) {
		t.Fatalf("login: %s", b)
	}
	for _, k := range resp.Cookies() {
		if k.Name == "basalt_session" && !k.Secure {
			t.Fatal("the session cookie is not Secure on TLS")
		}
	}
}

// TestOpenRPC checks that the published document lists every registered
// method, with its params, so that it cannot drift from the engine.
func TestOpenRPC(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c := fx.client(t)
	resp, b := c.get("/rpc/openrpc.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET openrpc.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenRPC string `json:"openrpc"`
		Methods []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Params      []struct {
				Name     string         `json:"name"`
				Required bool           `json:"required"`
				Schema   map[string]any `json:"schema"`
			} `json:"params"`
			Result struct {
				Schema map[string]any `json:"schema"`
			} `json:"result"`
		} `json:"methods"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range doc.Methods {
		names = append(names, m.Name)
		if m.Result.Schema == nil {
			t.Errorf("%s has no result schema", m.Name)
		}
		if m.Name == "messages.list" && (!strings.Contains(m.Description, "OFFSET") || !strings.Contains(m.Description, "after")) {
			t.Errorf("messages.list does not say what a page costs: %q", m.Description)
		}
		if m.Name == "auth" {
			if len(m.Params) != 2 || m.Params[0].Name != "password" || !m.Params[0].Required || m.Params[1].Name != "username" {
				t.Errorf("auth params: %+v", m.Params)
			}
		}
	}
	if !slices.Equal(names, fx.h.engine.names()) {
		t.Fatalf("document lists %v, engine has %v", names, fx.h.engine.names())
	}
	for _, want := range []string{"auth", "logout", "meta", "aliases"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing from the document", want)
		}
	}
}

// TestAuthHardening: one password check per request however many auth
// calls a batch holds; a login always makes a new session and ends the
// one the browser had; a cookie that does not open its session ends
// nothing; every Origin but the server's own is refused.
func TestAuthHardening(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{session: session.Config{FailuresPerIP: 3, FailuresPerAccount: 3}})
	fx.env.NewUser(t, "alice@example.org", false)
	fx.env.NewUser(t, "mallory@example.org", false)

	t.Run("one auth per request", func(t *testing.T) {
		c := fx.client(t)
		auth := func(id int, pass string) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"auth","params":{"username":"alice@example.org","password":%q}}`, id, pass)
		}
		var calls []string
		for i := range 10 {
			calls = append(calls, auth(i, fmt.Sprint("guess ", i)))
		}
		calls = append(calls, auth(10, storetest.Password))
		_, b := c.post("["+strings.Join(calls, ",")+"]", nil)
		rs := decode[[]testResponse](t, b)
		if len(rs) != 11 || rs[0].Error != nil || decode[authResult](t, rs[0].Result).Auth != "failed" {
			t.Fatalf("batch of auth calls: %s", b)
		}
		for _, r := range rs[1:] {
			if r.Error == nil || r.Error.Code != CodeRateLimited {
				t.Fatalf("a second auth call in the request was tried: %s", b)
			}
		}
		// Only the one attempt counted: two more failures are allowed
		// before the throttle (3 per address) locks the login.
		for range 2 {
			var res authResult
			c.must("auth", map[string]any{"username": "alice@example.org", "password": "wrong"}, &res)
			if res.Auth != "failed" {
				t.Fatalf("throttled too early: %+v", res)
			}
		}
		var res authResult
		c.must("auth", map[string]any{"username": "alice@example.org", "password": "wrong"}, &res)
		if res.Auth != "locked" {
			t.Fatalf("after 3 failures: %+v", res)
		}
	})

	// The throttle is per address; the next tests log in from another.
	fx2 := newFixture(t, sqlite(t), fixtureOptions{})
	fx2.env.NewUser(t, "alice@example.org", false)
	fx2.env.NewUser(t, "mallory@example.org", false)
	u := mustParse(t, fx2.srv.URL+"/rpc")
	cookie := func(c *client) string {
		for _, k := range c.hc.Jar.Cookies(u) {
			if k.Name == "basalt_session" {
				return k.Value
			}
		}
		return ""
	}

	t.Run("a login makes a new session", func(t *testing.T) {
		c := fx2.client(t)
		c.login("alice@example.org", storetest.Password)
		first, firstCSRF := cookie(c), c.csrf
		c.login("alice@example.org", storetest.Password)
		if second := cookie(c); second == "" || second == first || c.csrf == firstCSRF {
			t.Fatalf("the second login kept the session: %q %q", first, second)
		}
		c.must("meta", nil, nil)
		// The session the browser held before is over on the server.
		old := fx2.client(t)
		old.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "basalt_session", Value: first, Path: "/rpc"}})
		old.csrf = firstCSRF
		old.fail("meta", nil, CodeSessionExpired, "")
	})

	t.Run("a planted cookie ends nothing", func(t *testing.T) {
		alice := fx2.client(t)
		alice.login("alice@example.org", storetest.Password)
		id, _, _ := strings.Cut(cookie(alice), ".")
		// Mallory knows the id of Alice's session but not its secret,
		// and logs in with a cookie made of them.
		m := fx2.client(t)
		m.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "basalt_session", Value: id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Path: "/rpc"}})
		m.login("mallory@example.org", storetest.Password)
		alice.must("meta", nil, nil)
	})

	t.Run("origins", func(t *testing.T) {
		c := fx2.client(t)
		c.login("alice@example.org", storetest.Password)
		host := strings.TrimPrefix(fx2.srv.URL, "http://")
		for _, o := range []string{"null", "https://evil.example", "http://evil.example", "https://" + host, fx2.srv.URL + "/rpc",
			"http://" + host + ".evil.example", "http://evil.example@" + host, "file://", fx2.srv.URL + ":1"} {
			resp, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"meta"}`, map[string]string{"Origin": o})
			if resp.StatusCode != http.StatusForbidden || decode[testResponse](t, b).Error.Code != CodeForbidden {
				t.Errorf("Origin %q: HTTP %d %s", o, resp.StatusCode, b)
			}
		}
		for _, o := range []string{fx2.srv.URL, strings.ToUpper(fx2.srv.URL)} {
			if resp, b := c.post(`{"jsonrpc":"2.0","id":1,"method":"meta"}`, map[string]string{"Origin": o}); resp.StatusCode != 200 {
				t.Errorf("Origin %q: HTTP %d %s", o, resp.StatusCode, b)
			}
		}
	})
}
