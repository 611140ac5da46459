package rpc

import (
	"context"
	"encoding/json"
	"errors"
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
		resp, _ := c.get("/rpc", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /rpc: HTTP %d", resp.StatusCode)
		}
	})
}

// TestAuthentication covers auth, the cookie, the CSRF token, the Origin
// check, logout, the login throttle and the rate limit.
func TestAuthentication(t *testing.T) {
	forEachBackend(t, fixtureOptions{cfg: Config{RateLimit: 30}, session: session.Config{FailuresPerIP: 3}}, func(t *testing.T, fx *fixture) {
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
			Name   string `json:"name"`
			Params []struct {
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
