package rest_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/rest"
	"basalt/store"
	"basalt/store/admin"
)

// The domains of the scope test: a limited key holds mine.test; every
// request is aimed at other.test.
const (
	mine  = "mine.test"
	other = "other.test"
)

// fixtures make, for each kind of Target row, one in other.test and
// return the path parameters that name it. A route with a Target kind not
// here fails the test: add its fixture.
func fixtures(t *testing.T, v *env) map[string]map[string]string {
	ctx := context.Background()
	ctx = store.WithActor(ctx, store.Actor{Name: "test"})
	k, _, err := v.adm.CreateKey(ctx, nil, admin.NewKey{AdminID: v.rootP.Admin.ID, Name: "other",
		Authority: admin.Authority{Scopes: []string{"users:read"}, Domains: []string{other}}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := v.adm.EnqueueJob(ctx, "fixture", other, nil)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := v.adm.CreateAdmin(ctx, nil, "otheradmin")
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.adm.AddGrant(ctx, nil, ad.ID, admin.Authority{Scopes: []string{"users:read"}, Domains: []string{other}})
	if err != nil {
		t.Fatal(err)
	}
	fx := map[string]map[string]string{
		"key":   {"key": strconv.FormatInt(k.ID, 10)},
		"job":   {"job": strconv.FormatInt(j.ID, 10)},
		"grant": {"admin": ad.Name, "grant": strconv.FormatInt(g.ID, 10)},
	}
	for kind, vals := range opsFixtures(t, v) {
		fx[kind] = vals
	}
	return fx
}

var paramRE = regexp.MustCompile(`\{([^}]+)\}`)

// fill puts values into a route's path: those given, else dflt.
func fill(path string, vals map[string]string, dflt func(string) string) string {
	return paramRE.ReplaceAllStringFunc(path, func(m string) string {
		n := m[1 : len(m)-1]
		if v, ok := vals[n]; ok {
			return v
		}
		return dflt(n)
	})
}

// allScopesBut lists every scope that does not give need.
func allScopesBut(need string) []string {
	nr, na, _ := strings.Cut(need, ":")
	var out []string
	for _, r := range admin.Resources {
		for _, a := range admin.Actions {
			if r == nr && (a == na || a == "write") {
				continue
			}
			out = append(out, r+":"+a)
		}
	}
	return out
}

func readScopes() []string {
	var out []string
	for _, r := range admin.Resources {
		out = append(out, r+":read")
	}
	return out
}

// TestScopes is derived from the route table, so a new route is covered
// without being named here: for every route, a key without its scope, a
// key limited to another domain, and (for every change) a read-only key
// are refused with 403.
func TestScopes(t *testing.T) {
	v := newEnv(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, rest.Config{RatePerMinute: 100000})
	ctx := context.Background()
	for _, d := range []string{mine, other} {
		if _, err := v.e.Store.CreateDomain(ctx, d, store.DomainLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	fx := fixtures(t, v)
	limited := v.mint("limited", admin.Authority{Scopes: []string{"*"}, Domains: []string{mine}})
	readOnly := v.mint("readonly", admin.Authority{Scopes: readScopes()})
	lacking := map[string]string{}
	n := 0
	for _, rt := range v.api.Routes() {
		if rt.Scope == "" {
			continue
		}
		n++
		name := rt.Method + " " + rt.Path
		key, ok := lacking[rt.Scope]
		if !ok {
			key = v.mint("lacks"+strconv.Itoa(len(lacking)), admin.Authority{Scopes: allScopesBut(rt.Scope)})
			lacking[rt.Scope] = key
		}
		// Without the scope: refused whatever the request names.
		path := fill(rt.Path, fx[rt.Domain.TargetKind()], func(p string) string {
			if strings.Contains(p, "address") || p == "user" || p == "pattern" {
				return "a@" + mine
			}
			return mine
		})
		if got := v.do(req{method: rt.Method, path: path, key: key, body: map[string]any{}, anyRequest: true}); got.status != http.StatusForbidden {
			t.Errorf("%s without %s: %d, want 403: %s", name, rt.Scope, got.status, got.body)
		}
		// A key limited to mine.test, aimed at other.test.
		kind := rt.Domain.TargetKind()
		vals := fx[kind]
		if kind != "" && vals == nil {
			t.Errorf("%s: no fixture for target kind %q in scopes_test.go", name, kind)
			continue
		}
		opath := fill(rt.Path, vals, func(p string) string {
			if strings.Contains(p, "address") || p == "user" || p == "pattern" {
				return "a@" + other
			}
			return other
		})
		body := map[string]any{}
		for _, f := range []string{"domain", "name", "newName"} {
			body[f] = other
		}
		for _, f := range []string{"address", "user", "target", "pattern"} {
			body[f] = "a@" + other
		}
		body["domains"] = []string{other}
		if rt.Method == http.MethodGet {
			body = nil
			if rt.Domain.IsListed() {
				opath += "?domain=" + other
			}
		}
		got := v.do(req{method: rt.Method, path: opath, key: limited, body: body, anyRequest: true})
		switch {
		case rt.Domain.IsShared():
			// In no domain: readable by a key of any domain.
			if got.status == http.StatusForbidden {
				t.Errorf("%s (shared) by a key of %s: refused: %s", name, mine, got.body)
			}
		case got.status != http.StatusForbidden:
			t.Errorf("%s by a key of %s aimed at %s: %d, want 403: %s", name, mine, other, got.status, got.body)
		}
		if rt.Method != http.MethodGet {
			if got := v.do(req{method: rt.Method, path: path, key: readOnly, body: map[string]any{}, anyRequest: true}); got.status != http.StatusForbidden {
				t.Errorf("%s by a read-only key: %d, want 403: %s", name, got.status, got.body)
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d routes with scopes", n)
	}
	// Nothing changed in other.test.
	d, err := v.e.Store.DomainInfo(ctx, other)
	if err != nil || d.DomainLimits != (store.DomainLimits{}) || len(d.Names) != 0 {
		t.Errorf("other.test after the refusals: %+v, %v", d, err)
	}
}
