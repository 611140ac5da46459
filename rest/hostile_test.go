package rest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/store/admin"
)

// TestBodyMemberNamedTwice: encoding/json matches a member to a field
// ignoring case and lets the last of several win, while a route's locator
// reads the member by its name. A body naming a member twice, in any case
// or folding ("ADDRESS", "addreſſ"), is refused before anything is done,
// so a key of a.test cannot have a.test checked and b.test acted on; a
// member in another case alone is read as the handler reads it.
func TestBodyMemberNamedTwice(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	ctx := context.Background()
	for _, a := range []string{"old@a.test", "old@b.test"} {
		v.do(req{method: "POST", path: "/users", key: v.root, body: map[string]any{"address": a, "password": "a long enough password"}}).want(t, 201)
	}
	aKey := v.mint("a-only", admin.Authority{Scopes: []string{"users:write", "maintenance:write", "bulletins:write"}, Domains: []string{"a.test"}})
	pw := `"password": "a long enough password"`
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"upper case", "POST", "/users", `{"address": "x@a.test", ` + pw + `, "ADDRESS": "x@b.test"}`},
		{"mixed case", "POST", "/users", `{"address": "x@a.test", ` + pw + `, "Address": "x@b.test"}`},
		{"long s folds to s", "POST", "/users", `{"address": "x@a.test", ` + pw + `, "addre\u017f\u017f": "x@b.test"}`},
		{"same name", "POST", "/users", `{"address": "x@a.test", ` + pw + `, "address": "x@b.test"}`},
		{"nested", "POST", "/users", `{"address": "y@a.test", ` + pw + `, "limits": {"quotaBytes": 1, "QUOTABYTES": 2}}`},
		// The domain emptied after the check: every inactive user of the server.
		{"emptied domain", "POST", "/maintenance/inactive-users", `{"since": "2000-01-01T00:00:00Z", "domain": "a.test", "Domain": "", "dryRun": true}`},
		{"other audience", "POST", "/bulletins", `{"domain": "a.test", "DOMAIN": "b.test", "from": "p@a.test", "subject": "s", "body": "b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := v.raw(tc.method, tc.path, aKey, "application/json", tc.body)
			if p := r.want(t, 400).problem(t); p.Type != rest.ProblemBase+"malformed" {
				t.Fatalf("problem %+v", p)
			}
		})
	}
	for _, a := range []string{"x@b.test", "x@a.test", "y@a.test"} {
		if _, err := v.e.Store.UserByAddress(ctx, a); err == nil {
			t.Errorf("%s was made", a)
		}
	}
	// One member in another case is that member, for the check too.
	v.do(req{method: "POST", path: "/users", key: aKey, body: `{"Address": "z@a.test", ` + pw + `}`, anyRequest: true}).want(t, 201)
	v.do(req{method: "POST", path: "/users", key: aKey, body: `{"Address": "z@b.test", ` + pw + `}`, anyRequest: true}).want(t, 403)
	// A merge patch too.
	v.raw("PATCH", "/users/z@a.test", aKey, "application/merge-patch+json", `{"plan": "gold", "Plan": null}`).want(t, 400)
}

// raw sends body as it is: the validating harness (do) decodes a body and
// sends it encoded anew, which merges members named twice.
func (v *env) raw(method, path, key, ctype, body string) resp {
	v.t.Helper()
	hr, err := http.NewRequest(method, v.srv.URL+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+key)
	hr.Header.Set("Content-Type", ctype)
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// TestPatchKeepsLargeIntegers: a merge patch keeps integers as written,
// in the patch and in the members it leaves alone, beyond 2^53 (where a
// float64 would round them).
func TestPatchKeepsLargeIntegers(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	const big = int64(1<<53 + 1)
	v.do(req{method: "POST", path: "/users", key: v.root, body: map[string]any{"address": "u@a.test", "password": "a long enough password"}}).want(t, 201)
	v.do(req{method: "PUT", path: "/users/u@a.test/quota", key: v.root, body: map[string]any{"quotaBytes": big}}).want(t, 200)
	var u rest.UserView
	v.do(req{method: "PATCH", path: "/users/u@a.test", key: v.root, body: map[string]any{"plan": "gold"}}).want(t, 200).decode(t, &u)
	if u.Plan != "gold" || u.Limits.QuotaBytes == nil || *u.Limits.QuotaBytes != big {
		t.Fatalf("after a patch of the plan: plan %q, quota %v, want %d", u.Plan, u.Limits.QuotaBytes, big)
	}
	v.do(req{method: "PATCH", path: "/users/u@a.test", key: v.root, body: map[string]any{"limits": map[string]any{"maxRecvSize": big + 2}}}).want(t, 200).decode(t, &u)
	if u.Limits.MaxRecvSize == nil || *u.Limits.MaxRecvSize != big+2 || *u.Limits.QuotaBytes != big {
		t.Fatalf("after a patch of a limit: %+v", u.Limits)
	}
}

// TestIdempotentReplayHidesSecrets: what a create shows once (a key's
// secret, a generated password) is not kept for a replay, which answers
// the same resource without it.
func TestIdempotentReplayHidesSecrets(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	h := map[string]string{"Idempotency-Key": "once"}
	body := map[string]any{"name": "panel", "scopes": []string{"users:read"}}
	var first, again rest.NewKeyView
	v.do(req{method: "POST", path: "/keys", key: v.root, header: h, body: body}).want(t, 201).decode(t, &first)
	r := v.do(req{method: "POST", path: "/keys", key: v.root, header: h, body: body}).want(t, 201)
	r.decode(t, &again)
	if first.Secret == "" || again.Secret != "" || strings.Contains(string(r.body), first.Secret) || again.ID != first.ID ||
		r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %+v, replay %s", first, r.body)
	}
	h = map[string]string{"Idempotency-Key": "twice"}
	ub := map[string]any{"address": "gen@a.test", "generatePassword": true}
	var u rest.UserCreated
	v.do(req{method: "POST", path: "/users", key: v.root, header: h, body: ub}).want(t, 201).decode(t, &u)
	r = v.do(req{method: "POST", path: "/users", key: v.root, header: h, body: ub}).want(t, 201)
	if u.GeneratedPassword == "" || strings.Contains(string(r.body), u.GeneratedPassword) || !strings.Contains(string(r.body), `"gen@a.test"`) {
		t.Fatalf("first %+v, replay %s", u, r.body)
	}
}

// TestBearerScheme: the scheme's name is matched ignoring case (RFC 9110
// 11.1); another scheme, or none, is a 401.
func TestBearerScheme(t *testing.T) {
	v := sqliteEnv(t, rest.Config{})
	for h, want := range map[string]int{
		"bearer " + v.root:     200,
		"BEARER  " + v.root:    200,
		"Basic " + v.root:      401,
		v.root:                 401,
		"Bearer":               401,
		"Bearer " + v.root[1:]: 401,
	} {
		v.do(req{method: "GET", path: "/domains", header: map[string]string{"Authorization": h}}).want(t, want)
	}
}
