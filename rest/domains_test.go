package rest_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/rest"
	"basalt/store"
	"basalt/store/admin"
)

// TestDomains: create, read, list, patch with If-Match, rename, domain
// aliases, catch-all, DNS and delete, with their failures, on both
// databases.
func TestDomains(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnv(t, db, rest.Config{})
		k := v.root
		v.do(req{method: "POST", path: "/plans", key: k, body: map[string]any{"name": "basic", "limits": map[string]any{"quotaBytes": 1000}}}).want(t, 201)

		r := v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "Example.ORG", "limits": map[string]any{"maxUsers": 2, "defaultPlan": "basic"}}}).want(t, 201)
		var d rest.Domain
		r.decode(t, &d)
		if d.Name != "example.org" || d.Limits.MaxUsers != 2 || d.Limits.DefaultPlan != "basic" || r.header.Get("Location") != "/api/v1/domains/example.org" {
			t.Fatalf("created %+v at %q", d, r.header.Get("Location"))
		}
		if p := v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "example.org"}}).want(t, 409).problem(t); p.Type != rest.ProblemBase+"exists" {
			t.Errorf("duplicate: %+v", p)
		}
		if p := v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "bad domain"}}).want(t, 422).problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "name" {
			t.Errorf("bad name: %+v", p)
		}
		if p := v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "x.org", "limits": map[string]any{"defaultPlan": "nope"}}}).want(t, 422).problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "limits.defaultPlan" {
			t.Errorf("unknown plan: %+v", p)
		}

		// Read with an ETag; a patch with a stale ETag is refused.
		r = v.do(req{method: "GET", path: "/domains/example.org", key: k}).want(t, 200)
		tag := r.header.Get("ETag")
		if tag == "" {
			t.Fatal("no ETag")
		}
		r = v.do(req{method: "PATCH", path: "/domains/example.org", key: k, header: map[string]string{"If-Match": tag}, body: map[string]any{"limits": map[string]any{"maxAliases": 5}}}).want(t, 200)
		r.decode(t, &d)
		if d.Limits.MaxAliases != 5 || d.Limits.MaxUsers != 2 || d.Limits.DefaultPlan != "basic" {
			t.Errorf("patched: %+v", d.Limits)
		}
		if r.header.Get("ETag") == tag {
			t.Error("ETag unchanged by a change")
		}
		v.do(req{method: "PATCH", path: "/domains/example.org", key: k, header: map[string]string{"If-Match": tag}, body: map[string]any{"limits": map[string]any{"maxAliases": 6}}}).want(t, 412).problem(t)
		// null removes a member of a merge patch: the default plan goes.
		r = v.do(req{method: "PATCH", path: "/domains/example.org", key: k, body: map[string]any{"limits": map[string]any{"defaultPlan": nil}}}).want(t, 200)
		r.decode(t, &d)
		if d.Limits.DefaultPlan != "" || d.Limits.MaxAliases != 5 {
			t.Errorf("after null: %+v", d.Limits)
		}
		v.do(req{method: "PATCH", path: "/domains/example.org", key: k, body: map[string]any{"name": "x"}, badRequest: true}).want(t, 422)
		v.do(req{method: "PATCH", path: "/domains/nope.org", key: k, body: map[string]any{}}).want(t, 404)

		// The limits are enforced where users are created.
		for i := range 3 {
			_, err := v.e.Store.CreateUser(context.Background(), store.NewUser{Address: fmt.Sprintf("u%d@example.org", i), Password: store.Password{Hash: "x"}})
			if i < 2 && err != nil {
				t.Fatal(err)
			}
			if i == 2 && !strings.Contains(fmt.Sprint(err), store.ErrDomainLimit.Error()) {
				t.Errorf("third user of a domain of 2: %v", err)
			}
		}

		// Domain aliases and the catch-all.
		r = v.do(req{method: "POST", path: "/domains/example.org/aliases", key: k, body: map[string]any{"name": "example.com"}}).want(t, 201)
		r.decode(t, &d)
		if len(d.Aliases) != 1 || d.Aliases[0] != "example.com" {
			t.Errorf("aliases %v", d.Aliases)
		}
		v.do(req{method: "POST", path: "/domains/example.org/aliases", key: k, body: map[string]any{"name": "example.com"}}).want(t, 409)
		v.do(req{method: "DELETE", path: "/domains/example.org/aliases/example.net", key: k}).want(t, 404)
		v.do(req{method: "PUT", path: "/domains/example.org/catchall", key: k, body: map[string]any{"targets": []string{"u0@example.org"}}}).want(t, 200)
		var ca rest.CatchAll
		v.do(req{method: "GET", path: "/domains/example.org/catchall", key: k}).want(t, 200).decode(t, &ca)
		if len(ca.Targets) != 1 || ca.Targets[0] != "u0@example.org" {
			t.Errorf("catch-all %v", ca)
		}
		if res, err := v.e.Store.Resolve(context.Background(), "nobody@example.org"); err != nil || len(res.Users) != 1 {
			t.Errorf("catch-all resolves to %+v, %v", res, err)
		}
		if p := v.do(req{method: "PUT", path: "/domains/example.org/catchall", key: k, body: map[string]any{"targets": []string{"not an address"}}}).want(t, 422).problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "targets[0]" {
			t.Errorf("bad target: %+v", p)
		}
		v.do(req{method: "DELETE", path: "/domains/example.org/catchall", key: k}).want(t, 204)
		v.do(req{method: "DELETE", path: "/domains/example.org/catchall", key: k}).want(t, 404)

		var dns struct {
			Records []rest.DNSRecord `json:"records"`
		}
		v.do(req{method: "GET", path: "/domains/example.org/dns", key: k}).want(t, 200).decode(t, &dns)
		types := map[string]int{}
		for _, rec := range dns.Records {
			types[rec.Type]++
		}
		if types["MX"] != 2 || types["SRV"] == 0 || types["TXT"] != 4 {
			t.Errorf("dns records %v", types)
		}

		// Rename: the users' addresses follow.
		r = v.do(req{method: "POST", path: "/domains/example.org/rename", key: k, body: map[string]any{"newName": "example.net"}}).want(t, 200)
		r.decode(t, &d)
		if d.Name != "example.net" {
			t.Errorf("renamed to %s", d.Name)
		}
		if _, err := v.e.Store.UserByAddress(context.Background(), "u1@example.net"); err != nil {
			t.Errorf("user after rename: %v", err)
		}
		v.do(req{method: "GET", path: "/domains/example.org", key: k}).want(t, 404)
		v.do(req{method: "POST", path: "/domains/example.net/rename", key: k, body: map[string]any{"newName": "example.com"}}).want(t, 409)

		// Delete: refused while users exist; purge runs as a job.
		if p := v.do(req{method: "DELETE", path: "/domains/example.net", key: k}).want(t, 409).problem(t); p.Type != rest.ProblemBase+"not-empty" {
			t.Errorf("delete with users: %+v", p)
		}
		r = v.do(req{method: "DELETE", path: "/domains/example.net?purge=true", key: k}).want(t, 202)
		var j rest.JobView
		r.decode(t, &j)
		loc := strings.TrimPrefix(r.header.Get("Location"), "/api/v1")
		deadline := time.Now().Add(10 * time.Second)
		for j.State != "done" && j.State != "failed" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			v.do(req{method: "GET", path: loc, key: k}).want(t, 200).decode(t, &j)
		}
		if j.State != "done" || j.Progress != 2 {
			t.Fatalf("purge job: %+v", j)
		}
		v.do(req{method: "GET", path: "/domains/example.net", key: k}).want(t, 404)
		v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "empty.org"}}).want(t, 201)
		v.do(req{method: "DELETE", path: "/domains/empty.org", key: k, header: map[string]string{"If-Match": `"stale"`}}).want(t, 412)
		v.do(req{method: "DELETE", path: "/domains/empty.org", key: k}).want(t, 204)

		// Every change is in the audit log, with the key that made it.
		var audit struct {
			Items []rest.AuditView `json:"items"`
		}
		v.do(req{method: "GET", path: "/audit?action=domain.", key: k}).want(t, 200).decode(t, &audit)
		actions := map[string]bool{}
		for _, a := range audit.Items {
			actions[a.Action] = true
			if a.Key != v.rootP.Key.ID && a.Actor != "system" && !strings.HasPrefix(a.Actor, "job:") {
				t.Errorf("audit record by %q key %d", a.Actor, a.Key)
			}
		}
		for _, want := range []string{"domain.create", "domain.update", "domain.rename", "domain.delete", "domain.alias.create"} {
			if !actions[want] {
				t.Errorf("no %s in the audit log: %v", want, actions)
			}
		}
	})
}

// TestDomainPaging: pages follow each other without overlap in every
// sort, the cursor is bound to its filters and cannot be forged, and the
// next page is in the Link header.
func TestDomainPaging(t *testing.T) {
	v := newEnv(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, rest.Config{RatePerMinute: 100000})
	ctx := context.Background()
	const n = 23
	for i := range n {
		if _, err := v.e.Store.CreateDomain(ctx, fmt.Sprintf("d%02d.test", i), store.DomainLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sort := range []string{"name", "-name", "createdAt", "-createdAt"} {
		var names []string
		path := "/domains?limit=5&sort=" + sort
		for range n {
			r := v.do(req{method: "GET", path: path, key: v.root}).want(t, 200)
			var page struct {
				Items []rest.Domain `json:"items"`
				Next  string        `json:"next"`
			}
			r.decode(t, &page)
			for _, d := range page.Items {
				names = append(names, d.Name)
			}
			if page.Next == "" {
				if r.header.Get("Link") != "" {
					t.Errorf("last page with a Link")
				}
				break
			}
			if want := `</api/v1/domains?cursor=` + url.QueryEscape(page.Next) + `&limit=5&sort=` + url.QueryEscape(sort) + `>; rel="next"`; r.header.Get("Link") != want {
				t.Errorf("Link %q, want %q", r.header.Get("Link"), want)
			}
			path = "/domains?limit=5&sort=" + sort + "&cursor=" + page.Next
		}
		if len(names) != n {
			t.Fatalf("sort %s: %d domains: %v", sort, len(names), names)
		}
		for i := 1; i < n; i++ {
			if (sort == "name" || sort == "createdAt") != (names[i-1] < names[i]) {
				t.Fatalf("sort %s out of order at %d: %v", sort, i, names)
			}
		}
	}
	r := v.do(req{method: "GET", path: "/domains?limit=5", key: v.root}).want(t, 200)
	var page struct {
		Next string `json:"next"`
	}
	r.decode(t, &page)
	// Under other filters, or altered, the cursor is refused.
	v.do(req{method: "GET", path: "/domains?limit=5&sort=-name&cursor=" + page.Next, key: v.root}).want(t, 400)
	forged := "eyJuIjoiZDEwLnRlc3QifQ" + page.Next[strings.Index(page.Next, "."):]
	v.do(req{method: "GET", path: "/domains?limit=5&cursor=" + forged, key: v.root}).want(t, 400)
	v.do(req{method: "GET", path: "/domains?limit=0", key: v.root, badRequest: true}).want(t, 422)
	v.do(req{method: "GET", path: "/domains?q=d1", key: v.root}).want(t, 200).decode(t, &struct{}{})
	var f struct {
		Items []rest.Domain `json:"items"`
	}
	v.do(req{method: "GET", path: "/domains?q=d1", key: v.root}).want(t, 200).decode(t, &f)
	if len(f.Items) != 10 {
		t.Errorf("q=d1: %d domains", len(f.Items))
	}
	// A key limited to two domains lists those two only.
	lim := v.mint("two", admin.Authority{Scopes: []string{"domains:read"}, Domains: []string{"d03.test", "d17.test"}})
	v.do(req{method: "GET", path: "/domains", key: lim}).want(t, 200).decode(t, &f)
	if len(f.Items) != 2 || f.Items[0].Name != "d03.test" || f.Items[1].Name != "d17.test" {
		t.Errorf("a limited key lists %+v", f.Items)
	}
	v.do(req{method: "GET", path: "/domains?domain=d03.test", key: lim}).want(t, 200).decode(t, &f)
	if len(f.Items) != 1 {
		t.Errorf("a limited key's own domain: %+v", f.Items)
	}
}

// TestBadInput: malformed JSON, unknown members, wrong types, oversized
// bodies, wrong content types and missing keys each get their problem and
// change nothing.
func TestBadInput(t *testing.T) {
	v := newEnv(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, rest.Config{MaxBody: 1024})
	k := v.root
	cases := []struct {
		name   string
		r      req
		status int
		slug   string
	}{
		{"malformed", req{method: "POST", path: "/domains", key: k, body: `{"name": "a.org"`}, 400, "malformed"},
		{"two values", req{method: "POST", path: "/domains", key: k, body: `{"name": "a.org"} {}`}, 400, "malformed"},
		{"unknown member", req{method: "POST", path: "/domains", key: k, body: `{"name": "a.org", "owner": "x"}`}, 422, "validation"},
		{"wrong type", req{method: "POST", path: "/domains", key: k, body: `{"name": 5}`}, 422, "validation"},
		{"too large", req{method: "POST", path: "/domains", key: k, body: `{"name": "` + strings.Repeat("a", 2000) + `.org"}`}, 413, "too-large"},
		{"wrong content type", req{method: "POST", path: "/domains", key: k, body: `{"name": "a.org"}`, ctype: "text/plain"}, 415, "unsupported-media-type"},
		{"patch as json", req{method: "PATCH", path: "/domains/a.org", key: k, body: `{}`, ctype: "application/json"}, 415, "unsupported-media-type"},
		{"no key", req{method: "GET", path: "/domains"}, 401, "unauthorized"},
		{"wrong key", req{method: "GET", path: "/domains", key: "bsk_000000000000_nope"}, 401, "unauthorized"},
		{"no such route", req{method: "GET", path: "/domains/a.org/nothing", key: k}, 404, "not-found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name != "no such route" {
				c.r.badRequest = true
				if c.name == "no key" || c.name == "wrong key" || c.name == "malformed" || c.name == "two values" || c.name == "too large" {
					c.r.anyRequest = true
				}
				p := v.do(c.r).want(t, c.status).problem(t)
				if p.Type != rest.ProblemBase+c.slug || p.Status != c.status {
					t.Errorf("problem %+v", p)
				}
				return
			}
			r := v.do2(c.r)
			if r.status != c.status {
				t.Errorf("status %d", r.status)
			}
		})
	}
	var list struct {
		Items []rest.Domain `json:"items"`
	}
	v.do(req{method: "GET", path: "/domains", key: k}).want(t, 200).decode(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("bad requests made %v", list.Items)
	}
}
