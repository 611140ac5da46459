package rest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/store"
	"basalt/store/admin"
	"basalt/store/cache"
)

func sqliteEnv(t *testing.T, cfg rest.Config) *env {
	return newEnv(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, cfg)
}

// TestKeysAndAdmins: admins, grants and keys through the API; a key's
// secret is shown once and works; a key cannot mint a wider one; revoked
// keys stop working.
func TestKeysAndAdmins(t *testing.T) {
	v := sqliteEnv(t, rest.Config{})
	k := v.root
	var ad rest.AdminView
	v.do(req{method: "POST", path: "/admins", key: k, body: map[string]any{"name": "panel"}}).want(t, 201).decode(t, &ad)
	v.do(req{method: "POST", path: "/admins", key: k, body: map[string]any{"name": "panel"}}).want(t, 409)
	v.do(req{method: "POST", path: "/admins", key: k, body: map[string]any{"name": "has space"}}).want(t, 422)
	var g rest.GrantView
	v.do(req{method: "POST", path: "/admins/panel/grants", key: k, body: map[string]any{"scopes": []string{"domains:write", "keys:write"}, "domains": []string{"a.test"}}}).want(t, 201).decode(t, &g)
	if p := v.do(req{method: "POST", path: "/admins/panel/grants", key: k, body: map[string]any{"scopes": []string{"nope:read"}}}).want(t, 422).problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "scopes[0]" {
		t.Errorf("bad scope: %+v", p)
	}
	var nk rest.NewKeyView
	r := v.do(req{method: "POST", path: "/keys", key: k, body: map[string]any{"admin": "panel", "name": "whmcs", "scopes": []string{"domains:write", "keys:write"}, "domains": []string{"a.test"}}}).want(t, 201)
	r.decode(t, &nk)
	if !strings.HasPrefix(nk.Secret, "bsk_"+nk.Prefix+"_") {
		t.Fatalf("secret %q", nk.Secret)
	}
	// Shown once: reading the key gives no secret.
	got := v.do(req{method: "GET", path: "/keys/" + strconv.FormatInt(nk.ID, 10), key: k}).want(t, 200)
	if strings.Contains(string(got.body), nk.Secret[len(nk.Secret)-20:]) || strings.Contains(string(got.body), "secret") {
		t.Errorf("the key's secret is shown again: %s", got.body)
	}
	// The new key works within its domain, and cannot mint wider.
	v.do(req{method: "POST", path: "/domains", key: nk.Secret, body: map[string]any{"name": "a.test"}}).want(t, 201)
	v.do(req{method: "POST", path: "/domains", key: nk.Secret, body: map[string]any{"name": "b.test"}}).want(t, 403)
	var used rest.KeyView
	v.do(req{method: "GET", path: "/keys/" + strconv.FormatInt(nk.ID, 10), key: k}).want(t, 200).decode(t, &used)
	if nk.LastUsedAt != nil || used.LastUsedAt == nil {
		t.Errorf("last used: new %v, after use %v", nk.LastUsedAt, used.LastUsedAt)
	}
	if p := v.do(req{method: "POST", path: "/keys", key: nk.Secret, body: map[string]any{"scopes": []string{"domains:write", "users:write"}, "domains": []string{"a.test"}}}).want(t, 403).problem(t); p.Type != rest.ProblemBase+"wider-than-key" {
		t.Errorf("wider key: %+v", p)
	}
	v.do(req{method: "POST", path: "/keys", key: nk.Secret, body: map[string]any{"scopes": []string{"domains:write"}}}).want(t, 403)
	var narrow rest.NewKeyView
	v.do(req{method: "POST", path: "/keys", key: nk.Secret, body: map[string]any{"scopes": []string{"domains:read"}, "domains": []string{"a.test"}, "expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}).want(t, 201).decode(t, &narrow)
	if narrow.Admin != "panel" || narrow.ExpiresAt == nil {
		t.Errorf("narrow key %+v", narrow.KeyView)
	}
	v.do(req{method: "GET", path: "/domains/a.test", key: narrow.Secret}).want(t, 200)
	v.do(req{method: "DELETE", path: "/keys/" + strconv.FormatInt(narrow.ID, 10), key: k}).want(t, 204)
	v.do(req{method: "GET", path: "/domains/a.test", key: narrow.Secret}).want(t, 401)
	var keys struct {
		Items []rest.KeyView `json:"items"`
	}
	v.do(req{method: "GET", path: "/keys?admin=panel", key: k}).want(t, 200).decode(t, &keys)
	if len(keys.Items) != 2 || keys.Items[1].RevokedAt == nil {
		t.Errorf("keys of panel: %+v", keys.Items)
	}
	v.do(req{method: "DELETE", path: "/admins/panel/grants/" + strconv.FormatInt(g.ID, 10), key: k}).want(t, 204)
	// Without its grant, the admin's key can do nothing.
	v.do(req{method: "GET", path: "/domains/a.test", key: nk.Secret}).want(t, 403)
	v.do(req{method: "GET", path: "/admins/panel", key: k}).want(t, 200).decode(t, &ad)
	if len(ad.Grants) != 0 {
		t.Errorf("grants %+v", ad.Grants)
	}
	v.do(req{method: "DELETE", path: "/admins/panel", key: k}).want(t, 204)
	v.do(req{method: "GET", path: "/domains/a.test", key: nk.Secret}).want(t, 401)
	v.do(req{method: "GET", path: "/admins/panel", key: k}).want(t, 404)
}

// TestIdempotencyKey: a retried create with the same key and body replays
// the first answer and makes nothing twice; another body is refused.
func TestIdempotencyKey(t *testing.T) {
	v := sqliteEnv(t, rest.Config{})
	h := map[string]string{"Idempotency-Key": "abc-1"}
	first := v.do(req{method: "POST", path: "/domains", key: v.root, header: h, body: map[string]any{"name": "a.test"}}).want(t, 201)
	again := v.do(req{method: "POST", path: "/domains", key: v.root, header: h, body: map[string]any{"name": "a.test"}}).want(t, 201)
	if string(first.body) != string(again.body) || again.header.Get("Idempotent-Replayed") != "true" || again.header.Get("Location") != first.header.Get("Location") {
		t.Errorf("replay %s / %s", first.body, again.body)
	}
	if p := v.do(req{method: "POST", path: "/domains", key: v.root, header: h, body: map[string]any{"name": "b.test"}}).want(t, 422).problem(t); p.Type != rest.ProblemBase+"idempotency-key-reused" {
		t.Errorf("reuse: %+v", p)
	}
	// Without the header the duplicate is a conflict, as it should be.
	v.do(req{method: "POST", path: "/domains", key: v.root, body: map[string]any{"name": "a.test"}}).want(t, 409)
	// A failure that is the client's is replayed too.
	h2 := map[string]string{"Idempotency-Key": "abc-2"}
	v.do(req{method: "POST", path: "/domains", key: v.root, header: h2, body: map[string]any{"name": "a.test"}}).want(t, 409)
	v.do(req{method: "POST", path: "/domains", key: v.root, header: h2, body: map[string]any{"name": "a.test"}}).want(t, 409)
	var list struct {
		Items []rest.Domain `json:"items"`
	}
	v.do(req{method: "GET", path: "/domains", key: v.root}).want(t, 200).decode(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("domains %+v", list.Items)
	}
}

// TestPlans: create, read, patch, apply to a user and to a domain (inline
// and, with many users, as a job), and delete only when unused.
func TestPlans(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnv(t, db, rest.Config{InlineUsers: 3})
		k := v.root
		ctx := context.Background()
		v.do(req{method: "POST", path: "/plans", key: k, body: map[string]any{"name": "basic", "limits": map[string]any{"quotaBytes": 1000}}}).want(t, 201)
		v.do(req{method: "POST", path: "/plans", key: k, body: map[string]any{"name": "basic", "limits": map[string]any{}}}).want(t, 409)
		if p := v.do(req{method: "POST", path: "/plans", key: k, body: map[string]any{"name": "neg", "limits": map[string]any{"quotaBytes": -1}}, badRequest: true}).want(t, 422).problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "limits.quotaBytes" {
			t.Errorf("negative: %+v", p)
		}
		r := v.do(req{method: "GET", path: "/plans/basic", key: k}).want(t, 200)
		var p rest.Plan
		v.do(req{method: "PATCH", path: "/plans/basic", key: k, header: map[string]string{"If-Match": r.header.Get("ETag")}, body: map[string]any{"limits": map[string]any{"maxSendSize": 5}}}).want(t, 200).decode(t, &p)
		if p.Limits.QuotaBytes != 1000 || p.Limits.MaxSendSize != 5 {
			t.Errorf("patched %+v", p)
		}
		v.do(req{method: "PATCH", path: "/plans/basic", key: k, header: map[string]string{"If-Match": r.header.Get("ETag")}, body: map[string]any{"limits": map[string]any{}}}).want(t, 412)
		v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "a.test"}}).want(t, 201)
		n := 6 // past InlineUsers: a job
		if db.Driver == "mysql" {
			n = 3 // within: done in the request
		}
		for i := range n {
			if _, err := v.e.Store.CreateUser(ctx, store.NewUser{Address: fmt.Sprintf("u%03d@a.test", i), Password: store.Password{Hash: "x"}}); err != nil {
				t.Fatal(err)
			}
		}
		var applied struct {
			Applied int `json:"applied"`
		}
		v.do(req{method: "POST", path: "/plans/basic/apply", key: k, body: map[string]any{"user": "u000@a.test"}}).want(t, 200).decode(t, &applied)
		if applied.Applied != 1 {
			t.Errorf("applied %d", applied.Applied)
		}
		v.do(req{method: "POST", path: "/plans/basic/apply", key: k, body: map[string]any{}}).want(t, 422)
		v.do(req{method: "POST", path: "/plans/basic/apply", key: k, body: map[string]any{"user": "nobody@a.test"}}).want(t, 404)
		r = v.do(req{method: "POST", path: "/plans/basic/apply", key: k, body: map[string]any{"domain": "a.test"}})
		if n > 3 {
			r.want(t, 202)
			var j rest.JobView
			r.decode(t, &j)
			j = waitJob(t, v, j.ID)
			if j.State != "done" || j.Progress != int64(n-1) {
				t.Fatalf("apply job %+v", j)
			}
		} else {
			r.want(t, 200).decode(t, &applied)
			if applied.Applied != n-1 {
				t.Errorf("applied %d", applied.Applied)
			}
		}
		u, _ := v.e.Store.UserByAddress(ctx, "u001@a.test")
		if lim, _ := v.e.Store.Limits(ctx, u); lim.QuotaBytes != 1000 {
			t.Errorf("limits after apply %+v", lim)
		}
		v.do(req{method: "DELETE", path: "/plans/basic", key: k}).want(t, 409)
		v.do(req{method: "POST", path: "/plans", key: k, body: map[string]any{"name": "spare", "limits": map[string]any{}}}).want(t, 201)
		v.do(req{method: "DELETE", path: "/plans/spare", key: k}).want(t, 204)
		v.do(req{method: "GET", path: "/plans/spare", key: k}).want(t, 404)
		var plans struct {
			Items []rest.Plan `json:"items"`
		}
		v.do(req{method: "GET", path: "/plans", key: k}).want(t, 200).decode(t, &plans)
		if len(plans.Items) != 1 {
			t.Errorf("plans %+v", plans.Items)
		}
		var audit struct {
			Items []rest.AuditView `json:"items"`
		}
		v.do(req{method: "GET", path: "/audit?limit=500", key: k}).want(t, 200).decode(t, &audit)
		seen := map[string]int{}
		for _, a := range audit.Items {
			seen[a.Action]++
		}
		if seen["plan.create"] != 2 || seen["plan.update"] != 1 || seen["plan.delete"] != 1 || seen["user.plan"] != n {
			t.Errorf("audit %v", seen)
		}
	})
}

func waitJob(t *testing.T, v *env, id int64) rest.JobView {
	t.Helper()
	var j rest.JobView
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		v.do(req{method: "GET", path: "/jobs/" + strconv.FormatInt(id, 10), key: v.root}).want(t, 200).decode(t, &j)
		if j.State == "done" || j.State == "failed" {
			break
		}
	}
	return j
}

// TestRecords: the audit log's filters and domain limits, jobs, stats and
// health.
func TestRecords(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) { records(t, db) })
}

func records(t *testing.T, db testsupport.Database) {
	v := newEnv(t, db, rest.Config{})
	k := v.root
	ctx := context.Background()
	v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "a.test"}}).want(t, 201)
	v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "b.test"}}).want(t, 201)
	v.do(req{method: "PATCH", path: "/domains/b.test", key: k, body: map[string]any{"limits": map[string]any{"maxUsers": 9}}}).want(t, 200)
	var audit struct {
		Items []rest.AuditView `json:"items"`
		Next  string           `json:"next"`
	}
	v.do(req{method: "GET", path: "/audit?domain=b.test", key: k}).want(t, 200).decode(t, &audit)
	if len(audit.Items) != 2 || audit.Items[0].Action != "domain.update" || audit.Items[0].Client != "127.0.0.1" {
		t.Fatalf("audit of b.test: %+v", audit.Items)
	}
	if !strings.Contains(string(audit.Items[0].Before), `"maxUsers":0`) || !strings.Contains(string(audit.Items[0].After), `"maxUsers":9`) {
		t.Errorf("before/after %s %s", audit.Items[0].Before, audit.Items[0].After)
	}
	v.do(req{method: "GET", path: "/audit?limit=1", key: k}).want(t, 200).decode(t, &audit)
	if len(audit.Items) != 1 || audit.Next == "" {
		t.Fatalf("a page of 1: %+v", audit)
	}
	first := audit.Items[0].ID
	v.do(req{method: "GET", path: "/audit?limit=1&cursor=" + audit.Next, key: k}).want(t, 200).decode(t, &audit)
	if len(audit.Items) != 1 || audit.Items[0].ID >= first {
		t.Errorf("second page %+v", audit.Items)
	}
	v.do(req{method: "GET", path: "/audit?since=yesterday", key: k, badRequest: true}).want(t, 422)
	// A key limited to a.test sees a.test's records only.
	lim := v.mint("lim", admin.Authority{Scopes: []string{"audit:read", "jobs:read"}, Domains: []string{"a.test"}})
	v.do(req{method: "GET", path: "/audit", key: lim}).want(t, 200).decode(t, &audit)
	for _, a := range audit.Items {
		if a.Domain != "a.test" {
			t.Errorf("a limited key sees %+v", a)
		}
	}
	if len(audit.Items) == 0 {
		t.Error("a limited key sees none of its domain's records")
	}
	v.do(req{method: "GET", path: "/audit?domain=b.test", key: lim}).want(t, 403)

	// Jobs.
	if _, err := v.e.Store.CreateUser(ctx, store.NewUser{Address: "u@b.test", Password: store.Password{Hash: "x"}}); err != nil {
		t.Fatal(err)
	}
	var j rest.JobView
	v.do(req{method: "DELETE", path: "/domains/b.test?purge=true", key: k}).want(t, 202).decode(t, &j)
	waitJob(t, v, j.ID)
	var jobs struct {
		Items []rest.JobView `json:"items"`
	}
	v.do(req{method: "GET", path: "/jobs?state=done", key: k}).want(t, 200).decode(t, &jobs)
	if len(jobs.Items) != 1 || jobs.Items[0].Kind != "domain.purge" {
		t.Errorf("jobs %+v", jobs.Items)
	}
	v.do(req{method: "GET", path: "/jobs", key: lim}).want(t, 200).decode(t, &jobs)
	if len(jobs.Items) != 0 {
		t.Errorf("a key of a.test sees b.test's jobs: %+v", jobs.Items)
	}
	v.do(req{method: "GET", path: "/jobs/" + strconv.FormatInt(j.ID, 10), key: lim}).want(t, 403)
	v.do(req{method: "GET", path: "/jobs/999", key: k}).want(t, 404)
	v.do(req{method: "GET", path: "/jobs?state=lost", key: k, badRequest: true}).want(t, 422)

	// Stats.
	acct := v.e.Account(v.e.NewUser(t, "x@a.test", false))
	msg := storetest.Message("a@b", "x@a.test", "hi", "body")
	storetest.Append(t, acct, storetest.Inbox(t, acct), msg, store.AppendOptions{Inbound: true, RemoteIP: "192.0.2.7"})
	var st struct {
		Counts store.Counts  `json:"counts"`
		Volume []rest.Volume `json:"volume"`
	}
	today := time.Now().UTC().Format(time.DateOnly)
	v.do(req{method: "GET", path: "/stats", key: k}).want(t, 200).decode(t, &st)
	if st.Counts.Domains != 1 || st.Counts.Users != 1 || st.Counts.Messages != 1 || st.Counts.UsedBytes == 0 {
		t.Errorf("server stats %+v", st.Counts)
	}
	// The bytes once, though they are counted by user and by address.
	if len(st.Volume) != 1 || st.Volume[0].Day != today || st.Volume[0].ReceivedBytes != st.Counts.UsedBytes {
		t.Errorf("server volume %+v, used %d", st.Volume, st.Counts.UsedBytes)
	}
	v.do(req{method: "GET", path: "/stats/domains/a.test", key: k}).want(t, 200).decode(t, &st)
	if st.Counts.Users != 1 || len(st.Volume) != 1 || st.Volume[0].ReceivedBytes != st.Counts.UsedBytes {
		t.Errorf("domain stats %+v", st)
	}
	v.do(req{method: "GET", path: "/stats/domains/zz.test", key: k}).want(t, 404)
	var us struct {
		Messages int64         `json:"messages"`
		Volume   []rest.Volume `json:"volume"`
	}
	v.do(req{method: "GET", path: "/stats/users/x@a.test", key: k}).want(t, 200).decode(t, &us)
	if us.Messages != 1 || len(us.Volume) != 1 || us.Volume[0].ReceivedBytes != st.Counts.UsedBytes {
		t.Errorf("user stats %+v", us)
	}

	// Health and the spec need no key.
	var h struct {
		Status string `json:"status"`
	}
	v.do(req{method: "GET", path: "/health"}).want(t, 200).decode(t, &h)
	if h.Status != "ok" {
		t.Errorf("health %+v", h)
	}
	if r := v.do(req{method: "GET", path: "/openapi.yaml"}).want(t, 200); !strings.HasPrefix(string(r.body), "openapi: 3.0.3") {
		t.Errorf("spec %.40s", r.body)
	}
}

// downCache is a cache that does not answer pings.
type downCache struct{ cache.Cache }

func (downCache) Ping(context.Context) error { return errors.New("connection refused") }

// TestHealthDown: health says which part is away, with 503, and still
// needs no key.
func TestHealthDown(t *testing.T) {
	v := newEnvWith(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, rest.Config{},
		storetest.Options{WrapCache: func(c cache.Cache) cache.Cache { return downCache{c} }})
	var h struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	v.do(req{method: "GET", path: "/health"}).want(t, 503).decode(t, &h)
	if h.Status != "degraded" || h.Checks["cache"] != "unavailable" || h.Checks["database"] != "ok" {
		t.Errorf("health %+v", h)
	}
}

// TestDocs: the reference page is rendered from the spec, lists every
// operation, loads nothing from elsewhere and runs no script.
func TestDocs(t *testing.T) {
	v := sqliteEnv(t, rest.Config{})
	res, err := http.Get(v.srv.URL + "/api/docs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
		t.Fatalf("docs: %d, CSP %q", res.StatusCode, csp)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, " style=") {
		t.Error("the page has a script, an inline style or something from elsewhere")
	}
	for _, rt := range v.api.Routes() {
		if !strings.Contains(page, `<code>`+rt.Path+`</code>`) {
			t.Errorf("the page does not show %s %s", rt.Method, rt.Path)
		}
	}
	res, err = http.Get(v.srv.URL + "/api/docs.css")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("css: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestRateLimit: past its budget a key gets 429 with Retry-After; another
// key is not held back.
func TestRateLimit(t *testing.T) {
	v := sqliteEnv(t, rest.Config{RatePerMinute: 3})
	for range 3 {
		v.do(req{method: "GET", path: "/domains", key: v.root}).want(t, 200)
	}
	r := v.do(req{method: "GET", path: "/domains", key: v.root}).want(t, 429)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	other := v.mint("other", admin.Authority{Scopes: []string{"domains:read"}})
	v.do(req{method: "GET", path: "/domains", key: other}).want(t, 200)
}
