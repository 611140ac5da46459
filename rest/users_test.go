package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/store"
	"basalt/store/admin"
)

// opsEnv is an API over SQLite with domains a.test and b.test and a plan.
func opsEnv(t *testing.T, o storetest.Options) *env {
	t.Helper()
	v := newEnvWith(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, rest.Config{RatePerMinute: 100000}, o)
	for _, d := range []string{"a.test", "b.test"} {
		v.do(req{method: "POST", path: "/domains", key: v.root, body: map[string]any{"name": d}}).want(t, 201)
	}
	v.do(req{method: "POST", path: "/plans", key: v.root, body: map[string]any{"name": "gold", "limits": map[string]any{"quotaBytes": 1 << 30}}}).want(t, 201)
	return v
}

// TestUsersResource: create in each of the three ways (and refusals),
// read, list, patch under If-Match, rename, password, quota, limits,
// access, suspend, lock, delete, each through the validating middleware.
func TestUsersResource(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	k := v.root
	ctx := context.Background()

	// Create: a password; a generated one (returned once); an imported hash.
	var u rest.UserView
	v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": "Alice@a.test", "password": "a long enough password", "plan": "gold"}}).want(t, 201).decode(t, &u)
	if u.Address != "alice@a.test" || u.Plan != "gold" || u.Status != "active" || u.Usage.QuotaBytes != 1<<30 || !u.Access.IMAP {
		t.Fatalf("created %+v", u)
	}
	var gen rest.UserCreated
	r := v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": "gen@a.test", "generatePassword": true, "access": map[string]bool{"imap": true, "pop3": false, "smtp": true, "webmail": true}}}).want(t, 201)
	r.decode(t, &gen)
	if len(gen.GeneratedPassword) != 20 || gen.Access.POP3 {
		t.Fatalf("generated %+v", gen)
	}
	if _, err := v.e.Session.For(store.ProtoIMAP).Authenticate(ctx, "gen@a.test", gen.GeneratedPassword, "127.0.0.1"); err != nil {
		t.Fatalf("login with the generated password: %v", err)
	}
	if _, err := v.e.Session.For(store.ProtoPOP3).Authenticate(ctx, "gen@a.test", gen.GeneratedPassword, "127.0.0.1"); err == nil {
		t.Fatal("pop3 login allowed with pop3 off")
	}
	if strings.Contains(string(v.do(req{method: "GET", path: "/users/gen@a.test", key: k}).want(t, 200).body), gen.GeneratedPassword) {
		t.Fatal("the generated password is shown again")
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("imported secret"), bcrypt.MinCost)
	v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": "mig@a.test", "passwordHash": string(bc)}}).want(t, 201)
	if _, err := v.e.Session.Authenticate(ctx, "mig@a.test", "imported secret", "127.0.0.1"); err != nil {
		t.Fatalf("login with the imported hash: %v", err)
	}
	for _, tc := range []struct {
		body  map[string]any
		code  int
		field string
		bad   bool // the spec refuses it too
	}{
		{map[string]any{"address": "sec@a.test", "passwordHash": string(bc), "secure": true}, 422, "passwordHash", false},
		{map[string]any{"address": "md5@a.test", "passwordHash": "$1$x$abcdefghijklmnopqrstuv"}, 422, "passwordHash", false},
		{map[string]any{"address": "two@a.test", "password": "long enough pw", "generatePassword": true}, 422, "password", false},
		{map[string]any{"address": "none@a.test"}, 422, "password", false},
		{map[string]any{"address": "short@a.test", "password": "short"}, 422, "password", false},
		{map[string]any{"address": "not an address", "password": "long enough pw"}, 422, "address", false},
		{map[string]any{"address": "p@a.test", "password": "long enough pw", "plan": "nope"}, 422, "plan", false},
		{map[string]any{"address": "q@a.test", "password": "long enough pw", "limits": map[string]any{"quotaBytes": -1}}, 422, "limits.quotaBytes", true},
		{map[string]any{"address": "alice@a.test", "password": "long enough pw"}, 409, "", false},
		{map[string]any{"address": "x@nowhere.test", "password": "long enough pw"}, 404, "", false},
	} {
		p := v.do(req{method: "POST", path: "/users", key: k, body: tc.body, badRequest: tc.bad}).want(t, tc.code).problem(t)
		if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
			t.Errorf("%v: problem %+v, want field %s", tc.body, p, tc.field)
		}
	}
	v.do(req{method: "POST", path: "/users", key: k, body: `{"address": "u@a.test", "password": "long enough pw", "colour": "red"}`, badRequest: true}).want(t, 422)
	v.do(req{method: "POST", path: "/users", key: k, body: `{"address": `, badRequest: true}).want(t, 400)
	v.do(req{method: "POST", path: "/users", key: k, body: `{"address": "u@a.test"}`, ctype: "text/plain", badRequest: true}).want(t, 415)
	if _, err := v.e.Store.UserByAddress(ctx, "u@a.test"); err == nil {
		t.Fatal("a refused create made a user")
	}

	// Read, and 404s.
	v.do(req{method: "GET", path: "/users/nobody@a.test", key: k}).want(t, 404)
	r = v.do(req{method: "GET", path: "/users/alice@a.test", key: k}).want(t, 200)
	etag := r.header.Get("ETag")

	// PATCH: plan, limits and access; a stale ETag is 412 and changes nothing.
	v.do(req{method: "PATCH", path: "/users/alice@a.test", key: k, body: map[string]any{"limits": map[string]any{"maxSendSize": 1000}}, header: map[string]string{"If-Match": `"stale"`}}).want(t, 412)
	v.do(req{method: "PATCH", path: "/users/alice@a.test", key: k, body: map[string]any{"limits": map[string]any{"maxSendSize": 1000}, "access": map[string]any{"pop3": false}}, header: map[string]string{"If-Match": etag}}).want(t, 200).decode(t, &u)
	if u.Limits.MaxSendSize == nil || *u.Limits.MaxSendSize != 1000 || u.Effective.MaxSendSize != 1000 || u.Access.POP3 || !u.Access.IMAP {
		t.Fatalf("patched %+v", u)
	}
	u = rest.UserView{}
	v.do(req{method: "PATCH", path: "/users/alice@a.test", key: k, body: map[string]any{"limits": map[string]any{"maxSendSize": nil}}}).want(t, 200).decode(t, &u)
	if u.Limits.MaxSendSize != nil {
		t.Fatalf("null did not remove the limit: %+v", u.Limits)
	}
	v.do(req{method: "PATCH", path: "/users/alice@a.test", key: k, body: map[string]any{"plan": "nope"}}).want(t, 422)
	v.do(req{method: "PATCH", path: "/users/alice@a.test", key: k, body: map[string]any{"address": "x@a.test"}, badRequest: true}).want(t, 422)

	// Quota, limits, access.
	var q rest.Quota
	v.do(req{method: "PUT", path: "/users/alice@a.test/quota", key: k, body: map[string]any{"quotaBytes": 5000}}).want(t, 200).decode(t, &q)
	if q.QuotaBytes == nil || *q.QuotaBytes != 5000 || q.Effective != 5000 {
		t.Fatalf("quota %+v", q)
	}
	v.do(req{method: "PUT", path: "/users/alice@a.test/quota", key: k, body: map[string]any{"quotaBytes": -5}, badRequest: true}).want(t, 422)
	q = rest.Quota{}
	v.do(req{method: "PUT", path: "/users/alice@a.test/quota", key: k, body: map[string]any{"quotaBytes": nil}}).want(t, 200).decode(t, &q)
	if q.QuotaBytes != nil || q.Effective != 1<<30 {
		t.Fatalf("quota back to the plan's: %+v", q)
	}
	var lim rest.LimitsView
	v.do(req{method: "PUT", path: "/users/alice@a.test/limits", key: k, body: map[string]any{"dailySendBytes": 77}}).want(t, 200).decode(t, &lim)
	if lim.Effective.DailySendBytes != 77 || lim.Plan != "gold" {
		t.Fatalf("limits %+v", lim)
	}
	v.do(req{method: "GET", path: "/users/alice@a.test/limits", key: k}).want(t, 200)
	v.do(req{method: "PUT", path: "/users/alice@a.test/access", key: k, body: map[string]any{"imap": false, "pop3": true, "smtp": true, "webmail": true}}).want(t, 200)
	if _, err := v.e.Session.For(store.ProtoIMAP).Authenticate(ctx, "alice@a.test", "a long enough password", "127.0.0.1"); err == nil {
		t.Fatal("imap login allowed with imap off")
	}
	v.do(req{method: "PUT", path: "/users/alice@a.test/access", key: k, body: map[string]any{"imap": true}, badRequest: true}).want(t, 422)
	v.do(req{method: "GET", path: "/users/alice@a.test/access", key: k}).want(t, 200)

	// Suspend: no login; unsuspend: login again.
	v.do(req{method: "POST", path: "/users/alice@a.test/suspend", key: k, body: map[string]any{"reason": "unpaid"}}).want(t, 200).decode(t, &u)
	if u.Status != "suspended" || u.SuspendNote != "unpaid" {
		t.Fatalf("suspended %+v", u)
	}
	if _, err := v.e.Session.Authenticate(ctx, "alice@a.test", "a long enough password", "127.0.0.1"); err == nil {
		t.Fatal("a suspended user logged in")
	}
	var page struct {
		Items []rest.UserSummary `json:"items"`
	}
	v.do(req{method: "GET", path: "/users?status=suspended", key: k}).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Address != "alice@a.test" || page.Items[0].Plan != "gold" || page.Items[0].Usage.QuotaBytes != 1<<30 {
		t.Fatalf("suspended listing %+v", page.Items)
	}
	v.do(req{method: "POST", path: "/users/alice@a.test/unsuspend", key: k}).want(t, 200).decode(t, &u)
	if u.Status != "active" {
		t.Fatalf("unsuspended %+v", u)
	}
	// Lock with a reason and an expiry.
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	v.do(req{method: "POST", path: "/users/alice@a.test/lock", key: k, body: map[string]any{"until": until.Format(time.RFC3339), "reason": "abuse"}}).want(t, 200).decode(t, &u)
	if u.Status != "locked" || u.LockedUntil != until.Unix() || u.LockReason != "abuse" {
		t.Fatalf("locked %+v", u)
	}
	v.do(req{method: "POST", path: "/users/alice@a.test/lock", key: k, body: map[string]any{"until": "2001-01-01T00:00:00Z"}}).want(t, 422)
	v.do(req{method: "DELETE", path: "/users/alice@a.test/lock", key: k}).want(t, 200).decode(t, &u)
	if u.Status != "active" {
		t.Fatalf("unlocked %+v", u)
	}

	// Password: set, generated; a secure user needs oldPassword or newKeys.
	v.do(req{method: "POST", path: "/users/alice@a.test/password", key: k, body: map[string]any{"password": "another long password"}}).want(t, 204)
	if _, err := v.e.Session.Authenticate(ctx, "alice@a.test", "another long password", "127.0.0.1"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	var pw struct {
		GeneratedPassword string `json:"generatedPassword"`
	}
	v.do(req{method: "POST", path: "/users/alice@a.test/password", key: k, body: map[string]any{"generate": true}}).want(t, 200).decode(t, &pw)
	if _, err := v.e.Session.Authenticate(ctx, "alice@a.test", pw.GeneratedPassword, "127.0.0.1"); err != nil {
		t.Fatalf("login with the generated password: %v", err)
	}
	v.do(req{method: "POST", path: "/users/alice@a.test/password", key: k, body: map[string]any{"password": "x"}}).want(t, 422)
	v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": "sec@a.test", "password": "secure long password", "secure": true}}).want(t, 201)
	if p := v.do(req{method: "POST", path: "/users/sec@a.test/password", key: k, body: map[string]any{"password": "new secure password"}}).want(t, 422).problem(t); p.Errors[0].Field != "newKeys" {
		t.Fatalf("secure reset without newKeys: %+v", p)
	}
	v.do(req{method: "POST", path: "/users/sec@a.test/password", key: k, body: map[string]any{"password": "new secure password", "oldPassword": "wrong"}}).want(t, 422)
	v.do(req{method: "POST", path: "/users/sec@a.test/password", key: k, body: map[string]any{"password": "new secure password", "oldPassword": "secure long password"}}).want(t, 204)
	a, err := v.e.Session.Authenticate(ctx, "sec@a.test", "new secure password", "127.0.0.1")
	if err != nil || a.Key == nil {
		t.Fatalf("secure login after a re-seal: %v", err)
	}

	// Rename: into a domain of the key; mail stays.
	v.do(req{method: "POST", path: "/users/alice@a.test/rename", key: k, body: map[string]any{"newAddress": "alice@b.test"}}).want(t, 200).decode(t, &u)
	if u.Address != "alice@b.test" {
		t.Fatalf("renamed %+v", u)
	}
	v.do(req{method: "POST", path: "/users/gen@a.test/rename", key: k, body: map[string]any{"newAddress": "alice@b.test"}}).want(t, 409)
	v.do(req{method: "GET", path: "/users/alice@a.test", key: k}).want(t, 404)

	// Delete under If-Match.
	r = v.do(req{method: "GET", path: "/users/alice@b.test", key: k}).want(t, 200)
	v.do(req{method: "DELETE", path: "/users/alice@b.test", key: k, header: map[string]string{"If-Match": `"old"`}}).want(t, 412)
	v.do(req{method: "DELETE", path: "/users/alice@b.test", key: k, header: map[string]string{"If-Match": r.header.Get("ETag")}}).want(t, 204)
	v.do(req{method: "DELETE", path: "/users/alice@b.test", key: k}).want(t, 404)

	// The audit log has the changes, with the key as the actor.
	recs, err := v.adm.Audit(ctx, admin.AuditQuery{Action: "user.", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Action] = true
		if r.KeyID == 0 {
			t.Errorf("audit record %s without its key", r.Action)
		}
	}
	for _, want := range []string{"user.create", "user.update", "user.quota", "user.limits", "user.access", "user.suspend", "user.unsuspend", "user.lock", "user.unlock", "user.password", "user.rename", "user.delete"} {
		if !seen[want] {
			t.Errorf("no audit record %s (have %v)", want, seen)
		}
	}
}

// TestUsersIdempotentCreate: a create retried with its Idempotency-Key
// makes one user and replays the first answer, without the generated
// password, which is shown once and never kept; the key with another body
// is refused.
func TestUsersIdempotentCreate(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	h := map[string]string{"Idempotency-Key": "create-bob-1"}
	body := map[string]any{"address": "bob@a.test", "generatePassword": true}
	var first, again rest.UserCreated
	v.do(req{method: "POST", path: "/users", key: v.root, body: body, header: h}).want(t, 201).decode(t, &first)
	r := v.do(req{method: "POST", path: "/users", key: v.root, body: body, header: h}).want(t, 201)
	r.decode(t, &again)
	if r.header.Get("Idempotent-Replayed") != "true" || first.GeneratedPassword == "" || again.GeneratedPassword != "" || again.ID != first.ID {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	v.do(req{method: "POST", path: "/users", key: v.root, body: map[string]any{"address": "carol@a.test", "generatePassword": true}, header: h}).want(t, 422)
	page, err := v.e.Store.ListUsers(context.Background(), store.UserFilter{Domain: "a.test"})
	if err != nil || len(page.Users) != 1 {
		t.Fatalf("users after the retries: %d, %v", len(page.Users), err)
	}
}

// TestUsersPaging: 10,000 users paged 500 at a time through the API, each
// once and in order; filters and sorts; a cursor replayed under other
// filters is refused; a domain-limited key sees only its domain.
func TestUsersPaging(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	ctx := context.Background()
	hash := "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	nus := make([]store.NewUser, 10000)
	for i := range nus {
		d := "a.test"
		if i%10 == 0 {
			d = "b.test"
		}
		nus[i] = store.NewUser{Address: fmt.Sprintf("u%05d@%s", i, d), Password: store.Password{Hash: hash}}
	}
	if _, err := v.e.Store.CreateUsers(ctx, nus); err != nil {
		t.Fatal(err)
	}
	list := func(key, query string, limit int) []string {
		t.Helper()
		var out []string
		path := "/users?limit=" + strconv.Itoa(limit) + query
		for range 1000 {
			var page struct {
				Items []rest.UserSummary `json:"items"`
				Next  string             `json:"next"`
			}
			r := v.do(req{method: "GET", path: path, key: key}).want(t, 200)
			r.decode(t, &page)
			for _, u := range page.Items {
				out = append(out, u.Address)
			}
			if page.Next == "" {
				if r.header.Get("Link") != "" {
					t.Fatal("a Link header on the last page")
				}
				return out
			}
			path = "/users?limit=" + strconv.Itoa(limit) + query + "&cursor=" + url.QueryEscape(page.Next)
		}
		t.Fatal("paging did not end")
		return nil
	}
	all := list(v.root, "", 500)
	if len(all) != 10000 || all[0] != "u00000@b.test" || all[9999] != "u09999@a.test" {
		t.Fatalf("paged %d users, first %s", len(all), all[0])
	}
	for i := 1; i < len(all); i++ {
		if all[i] <= all[i-1] {
			t.Fatalf("out of order at %d: %s after %s", i, all[i], all[i-1])
		}
	}
	if got := list(v.root, "&domain=b.test&sort=-created", 300); len(got) != 1000 || got[0] != "u09990@b.test" {
		t.Fatalf("b.test newest first: %d, first %v", len(got), got[:1])
	}
	if got := list(v.root, "&q=u0001", 7); len(got) != 10 {
		t.Fatalf("q prefix: %v", got)
	}
	// A cursor is bound to its filters.
	var page struct {
		Next string `json:"next"`
	}
	v.do(req{method: "GET", path: "/users?limit=5", key: v.root}).want(t, 200).decode(t, &page)
	v.do(req{method: "GET", path: "/users?limit=5&sort=-address&cursor=" + url.QueryEscape(page.Next), key: v.root}).want(t, 400)
	v.do(req{method: "GET", path: "/users?status=gone", key: v.root, badRequest: true}).want(t, 422)
	v.do(req{method: "GET", path: "/users?limit=0", key: v.root, badRequest: true}).want(t, 422)
	// A key of b.test sees b.test's users only, and no other domain's.
	bKey := v.mint("b-admin", admin.Authority{Scopes: []string{"users:read"}, Domains: []string{"b.test"}})
	if got := list(bKey, "", 500); len(got) != 1000 {
		t.Fatalf("a b.test key listed %d users", len(got))
	}
	v.do(req{method: "GET", path: "/users?domain=a.test", key: bKey}).want(t, 403)
	v.do(req{method: "GET", path: "/users/u00001@a.test", key: bKey}).want(t, 403)
}

// TestUserRulesSessionsShares: vacation, forwarding, web sessions and
// shares through the API.
func TestUserRulesSessionsShares(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	k := v.root
	ctx := context.Background()
	v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": "al@a.test", "password": "a long enough password"}}).want(t, 201)
	v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": "bo@a.test", "password": "a long enough password"}}).want(t, 201)

	var vac rest.VacationView
	r := v.do(req{method: "GET", path: "/users/al@a.test/vacation", key: k}).want(t, 200)
	r.decode(t, &vac)
	if vac.Enabled {
		t.Fatal("vacation on by default")
	}
	end := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	v.do(req{method: "PUT", path: "/users/al@a.test/vacation", key: k, header: map[string]string{"If-Match": r.header.Get("ETag")},
		body: map[string]any{"enabled": true, "subject": "Away", "body": "Back soon", "end": end.Format(time.RFC3339), "intervalSeconds": 3600}}).want(t, 200).decode(t, &vac)
	if !vac.Enabled || vac.End == nil || !vac.End.Equal(end) || vac.IntervalSeconds != 3600 {
		t.Fatalf("vacation %+v", vac)
	}
	v.do(req{method: "PUT", path: "/users/al@a.test/vacation", key: k, header: map[string]string{"If-Match": r.header.Get("ETag")},
		body: map[string]any{"enabled": false, "subject": "", "body": "", "intervalSeconds": 0}}).want(t, 412)
	v.do(req{method: "PUT", path: "/users/al@a.test/vacation", key: k, body: map[string]any{"enabled": true, "subject": "x", "body": "y", "intervalSeconds": -1}, badRequest: true}).want(t, 422)
	var fw rest.ForwardingView
	v.do(req{method: "PUT", path: "/users/al@a.test/forwarding", key: k, body: map[string]any{"to": []string{"Out@Elsewhere.example"}, "keepCopy": true}}).want(t, 200).decode(t, &fw)
	if len(fw.To) != 1 || fw.To[0] != "out@elsewhere.example" || !fw.KeepCopy {
		t.Fatalf("forwarding %+v", fw)
	}
	if p := v.do(req{method: "PUT", path: "/users/al@a.test/forwarding", key: k, body: map[string]any{"to": []string{"ok@x.example", "not an address"}, "keepCopy": false}}).want(t, 422).problem(t); p.Errors[0].Field != "to[1]" {
		t.Fatalf("bad forward: %+v", p)
	}
	u, _ := v.e.Store.UserByAddress(ctx, "al@a.test")
	vv, ff, err := v.e.Store.Account(u.ID, nil).Rules(ctx)
	if err != nil || !vv.Enabled || len(ff.To) != 1 {
		t.Fatalf("rules stored: %+v %+v %v", vv, ff, err)
	}

	// Sessions: two web logins, one revoked, then all.
	auth, err := v.e.Session.Authenticate(ctx, "al@a.test", "a long enough password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tok1, _, _ := v.e.Session.StartWeb(ctx, auth)
	tok2, _, _ := v.e.Session.StartWeb(ctx, auth)
	var ss struct {
		Items []rest.SessionView `json:"items"`
	}
	v.do(req{method: "GET", path: "/users/al@a.test/sessions", key: k}).want(t, 200).decode(t, &ss)
	if len(ss.Items) != 2 {
		t.Fatalf("sessions %+v", ss)
	}
	v.do(req{method: "DELETE", path: "/users/bo@a.test/sessions/" + ss.Items[0].ID, key: k}).want(t, 404)
	v.do(req{method: "DELETE", path: "/users/al@a.test/sessions/" + ss.Items[0].ID, key: k}).want(t, 204)
	alive := 0
	for _, tok := range []string{tok1, tok2} {
		if _, err := v.e.Session.Web(ctx, tok); err == nil {
			alive++
		}
	}
	if alive != 1 {
		t.Fatalf("%d sessions alive after revoking one", alive)
	}
	v.do(req{method: "DELETE", path: "/users/al@a.test/sessions", key: k}).want(t, 204)
	v.do(req{method: "GET", path: "/users/al@a.test/sessions", key: k}).want(t, 200).decode(t, &ss)
	if len(ss.Items) != 0 {
		t.Fatalf("sessions after revoking all: %+v", ss)
	}

	// Shares: grant bo, and the whole domain; revoke.
	var sh rest.ShareView
	v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: k, body: map[string]any{"mailbox": "INBOX", "grantee": "bo@a.test", "rights": "lr"}}).want(t, 200).decode(t, &sh)
	if sh.Grantee != "bo@a.test" || sh.Rights != "lr" || sh.Domain {
		t.Fatalf("share %+v", sh)
	}
	v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: k, body: map[string]any{"mailbox": "Archive", "grantee": "a.test", "rights": "lrs"}}).want(t, 200)
	v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: k, body: map[string]any{"mailbox": "Nope", "grantee": "bo@a.test", "rights": "lr"}}).want(t, 422)
	v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: k, body: map[string]any{"mailbox": "INBOX", "grantee": "bo@a.test", "rights": "lz"}}).want(t, 422)
	v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: k, body: map[string]any{"mailbox": "INBOX", "grantee": "ghost@a.test", "rights": "lr"}}).want(t, 422)
	var shs struct {
		Items []rest.ShareView `json:"items"`
	}
	v.do(req{method: "GET", path: "/users/al@a.test/shares", key: k}).want(t, 200).decode(t, &shs)
	if len(shs.Items) != 2 {
		t.Fatalf("shares %+v", shs)
	}
	bo, _ := v.e.Store.UserByAddress(ctx, "bo@a.test")
	if ms, err := v.e.Store.Account(bo.ID, nil).SharedMailboxes(ctx); err != nil || len(ms) != 2 {
		t.Fatalf("bo sees %d shared mailboxes: %v", len(ms), err)
	}
	v.do(req{method: "DELETE", path: "/users/al@a.test/shares?mailbox=INBOX&grantee=bo@a.test", key: k}).want(t, 204)
	v.do(req{method: "GET", path: "/users/al@a.test/shares", key: k}).want(t, 200).decode(t, &shs)
	if len(shs.Items) != 1 || !shs.Items[0].Domain {
		t.Fatalf("shares after revoke %+v", shs)
	}
	// A key of a.test cannot share with b.test's users.
	aKey := v.mint("a-shares", admin.Authority{Scopes: []string{"shares:write"}, Domains: []string{"a.test"}})
	v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: aKey, body: map[string]any{"mailbox": "INBOX", "grantee": "x@b.test", "rights": "lr"}}).want(t, 403)
}

// TestAliasesResource: create with several targets (idempotent), patterns
// and catch-all, list and page, replace under If-Match, delete; bad
// patterns and targets change nothing.
func TestAliasesResource(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	k := v.root
	h := map[string]string{"Idempotency-Key": "alias-1"}
	var al rest.AliasView
	body := map[string]any{"pattern": "Team@a.test", "targets": []string{"x@a.test", "y@elsewhere.example"}}
	v.do(req{method: "POST", path: "/aliases", key: k, body: body, header: h}).want(t, 201).decode(t, &al)
	if al.Pattern != "team@a.test" || len(al.Targets) != 2 || al.IsPattern {
		t.Fatalf("alias %+v", al)
	}
	v.do(req{method: "POST", path: "/aliases", key: k, body: body, header: h}).want(t, 201)
	v.do(req{method: "POST", path: "/aliases", key: k, body: body}).want(t, 409)
	v.do(req{method: "POST", path: "/aliases", key: k, body: map[string]any{"pattern": "sales-??@a.test", "targets": []string{"x@a.test"}}}).want(t, 201)
	v.do(req{method: "POST", path: "/aliases", key: k, body: map[string]any{"pattern": "*@b.test", "targets": []string{"x@a.test"}}}).want(t, 201).decode(t, &al)
	if !al.CatchAll {
		t.Fatalf("catch-all %+v", al)
	}
	for _, bad := range []map[string]any{
		{"pattern": "a@*.a.test", "targets": []string{"x@a.test"}},
		{"pattern": "a**@a.test", "targets": []string{"x@a.test"}},
		{"pattern": "no-at-sign", "targets": []string{"x@a.test"}},
		{"pattern": "ok@a.test", "targets": []string{"not an address"}},
		{"pattern": "ok@a.test", "targets": []string{}},
	} {
		v.do(req{method: "POST", path: "/aliases", key: k, body: bad, badRequest: len(bad["targets"].([]string)) == 0}).want(t, 422)
	}
	v.do(req{method: "POST", path: "/aliases", key: k, body: map[string]any{"pattern": "ok@nowhere.test", "targets": []string{"x@a.test"}}}).want(t, 404)
	var page struct {
		Items []rest.AliasView `json:"items"`
		Next  string           `json:"next"`
	}
	v.do(req{method: "GET", path: "/aliases?domain=a.test&limit=1", key: k}).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Pattern != "sales-??@a.test" || page.Next == "" {
		t.Fatalf("first page %+v", page)
	}
	next := page.Next
	page.Items, page.Next = nil, ""
	v.do(req{method: "GET", path: "/aliases?domain=a.test&limit=1&cursor=" + url.QueryEscape(next), key: k}).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Pattern != "team@a.test" || page.Next != "" {
		t.Fatalf("second page %+v", page)
	}
	r := v.do(req{method: "GET", path: "/aliases/" + url.PathEscape("sales-??@a.test"), key: k}).want(t, 200)
	v.do(req{method: "PUT", path: "/aliases/" + url.PathEscape("sales-??@a.test"), key: k, body: map[string]any{"targets": []string{"z@a.test"}}, header: map[string]string{"If-Match": `"nope"`}}).want(t, 412)
	v.do(req{method: "PUT", path: "/aliases/" + url.PathEscape("sales-??@a.test"), key: k, body: map[string]any{"targets": []string{"z@elsewhere.example"}}, header: map[string]string{"If-Match": r.header.Get("ETag")}}).want(t, 200).decode(t, &al)
	if len(al.Targets) != 1 || al.Targets[0] != "z@elsewhere.example" {
		t.Fatalf("replaced %+v", al)
	}
	if res, err := v.e.Store.Resolve(context.Background(), "sales-eu@a.test"); err != nil || len(res.External) != 1 || res.External[0] != "z@elsewhere.example" {
		t.Fatalf("resolve after replace: %+v %v", res, err)
	}
	v.do(req{method: "DELETE", path: "/aliases/team@a.test", key: k}).want(t, 204)
	v.do(req{method: "GET", path: "/aliases/team@a.test", key: k}).want(t, 404)
	// A key of a.test lists a.test's aliases by default, and no others.
	aKey := v.mint("a-aliases", admin.Authority{Scopes: []string{"aliases:read"}, Domains: []string{"a.test"}})
	v.do(req{method: "GET", path: "/aliases", key: aKey}).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("a.test key sees %+v", page.Items)
	}
	v.do(req{method: "GET", path: "/aliases?domain=b.test", key: aKey}).want(t, 403)
	// A key of both domains lists both.
	abKey := v.mint("ab-aliases", admin.Authority{Scopes: []string{"aliases:read"}, Domains: []string{"a.test", "b.test"}})
	page.Items = nil
	v.do(req{method: "GET", path: "/aliases", key: abKey}).want(t, 200).decode(t, &page)
	if len(page.Items) != 2 {
		t.Fatalf("a.test+b.test key sees %+v", page.Items)
	}
}

// TestQueueResource: list with filters, hold, release, retry, delete.
func TestQueueResource(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	k := v.root
	ctx := context.Background()
	for _, to := range [][]string{{"r1@far.example"}, {"r2@other.example", "r3@far.example"}} {
		if err := v.queue.Enqueue(ctx, "sender@a.test", to, []byte("Subject: q\r\n\r\nq\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	var page struct {
		Items []rest.QueueView `json:"items"`
		Next  string           `json:"next"`
	}
	v.do(req{method: "GET", path: "/queue?domain=far.example", key: k}).want(t, 200).decode(t, &page)
	if len(page.Items) != 2 {
		t.Fatalf("far.example entries %+v", page.Items)
	}
	first, second := page.Items[0].ID, page.Items[1].ID
	id1 := "/queue/" + strconv.FormatInt(first, 10)
	var e rest.QueueView
	v.do(req{method: "POST", path: id1 + "/hold", key: k}).want(t, 200).decode(t, &e)
	if !e.Held {
		t.Fatalf("held %+v", e)
	}
	v.do(req{method: "GET", path: "/queue?state=held", key: k}).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != first {
		t.Fatalf("held listing %+v", page.Items)
	}
	v.do(req{method: "GET", path: "/queue?recipient=r2@other.example&limit=1", key: k}).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != second || len(page.Items[0].Recipients) != 2 {
		t.Fatalf("recipient listing %+v", page.Items)
	}
	v.do(req{method: "POST", path: id1 + "/release", key: k}).want(t, 200).decode(t, &e)
	if e.Held {
		t.Fatalf("released %+v", e)
	}
	v.do(req{method: "POST", path: id1 + "/retry", key: k}).want(t, 200)
	v.do(req{method: "GET", path: "/queue?state=lost", key: k, badRequest: true}).want(t, 422)
	v.do(req{method: "GET", path: "/queue/999999", key: k}).want(t, 404)
	v.do(req{method: "POST", path: "/queue/999999/hold", key: k}).want(t, 404)
	r := v.do(req{method: "GET", path: id1, key: k}).want(t, 200)
	v.do(req{method: "DELETE", path: id1, key: k, header: map[string]string{"If-Match": `"x"`}}).want(t, 412)
	v.do(req{method: "DELETE", path: id1, key: k, header: map[string]string{"If-Match": r.header.Get("ETag")}}).want(t, 204)
	v.do(req{method: "GET", path: id1, key: k}).want(t, 404)
	// The queue is server-wide: a domain-limited key is refused.
	aKey := v.mint("a-queue", admin.Authority{Scopes: []string{"queue:read"}, Domains: []string{"a.test"}})
	v.do(req{method: "GET", path: "/queue", key: aKey}).want(t, 403)
}

// waitJob polls a job until it ends and returns it.
func (v *env) waitJob(t *testing.T, loc string) rest.JobView {
	t.Helper()
	var j rest.JobView
	testsupport.WaitFor(t, 20*time.Second, "job "+loc, func() bool {
		v.do(req{method: "GET", path: strings.TrimPrefix(loc, "/api/v1"), key: v.root}).want(t, 200).decode(t, &j)
		return j.State == admin.JobDone || j.State == admin.JobFailed
	})
	if j.State != admin.JobDone {
		t.Fatalf("job %s: %+v", loc, j)
	}
	return j
}

// TestBulletinsAndMaintenance: a bulletin to a domain reaches its users
// (a job); inactive users are listed with dryRun and deleted by a job;
// usage is recounted for a user and for a domain; a user's files move to
// another partition.
func TestBulletinsAndMaintenance(t *testing.T) {
	v := opsEnv(t, storetest.Options{InlineMax: -1, MorePartitions: []string{"disk2"}})
	k := v.root
	ctx := context.Background()
	for _, a := range []string{"u1@a.test", "u2@a.test", "u3@b.test"} {
		v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": a, "password": "a long enough password"}}).want(t, 201)
	}
	r := v.do(req{method: "POST", path: "/bulletins", key: k, body: map[string]any{"domain": "a.test", "from": "postmaster@a.test", "subject": "Wartung über Nacht", "body": "Der Server startet um 22 Uhr neu.\n"}}).want(t, 202)
	j := v.waitJob(t, r.header.Get("Location"))
	if j.Progress != 2 || j.Total != 2 {
		t.Fatalf("bulletin job %+v", j)
	}
	for _, a := range []string{"u1@a.test", "u2@a.test", "u3@b.test"} {
		u, _ := v.e.Store.UserByAddress(ctx, a)
		msgs := storetest.Messages(t, v.e.Store.Account(u.ID, nil), "INBOX")
		want := 1
		if a == "u3@b.test" {
			want = 0
		}
		if len(msgs) != want || (want == 1 && !strings.Contains(msgs[0], "Subject: =?utf-8?q?Wartung_=C3=BCber_Nacht?=")) {
			t.Fatalf("%s has %d messages: %q", a, len(msgs), msgs)
		}
	}
	v.do(req{method: "GET", path: "/bulletins/1", key: k}).want(t, 200)
	v.do(req{method: "POST", path: "/bulletins", key: k, body: map[string]any{"domain": "a.test", "plan": "gold", "from": "p@a.test", "subject": "s", "body": "b"}}).want(t, 422)
	v.do(req{method: "POST", path: "/bulletins", key: k, body: map[string]any{"plan": "nope", "from": "p@a.test", "subject": "s", "body": "b"}}).want(t, 422)
	v.do(req{method: "POST", path: "/bulletins", key: k, body: map[string]any{"all": true, "from": "p@a.test", "subject": "two\nlines", "body": "b"}}).want(t, 422)
	aKey := v.mint("a-bulletins", admin.Authority{Scopes: []string{"bulletins:write"}, Domains: []string{"a.test"}})
	v.do(req{method: "POST", path: "/bulletins", key: aKey, body: map[string]any{"all": true, "from": "p@a.test", "subject": "s", "body": "b"}}).want(t, 403)

	// Usage: drifted counters are recounted.
	u1, _ := v.e.Store.UserByAddress(ctx, "u1@a.test")
	if _, err := v.e.DB.ExecContext(ctx, "UPDATE users SET used_bytes = 1, message_count = 9"); err != nil {
		t.Fatal(err)
	}
	var rc struct {
		Before store.Usage `json:"before"`
		After  store.Usage `json:"after"`
	}
	v.do(req{method: "POST", path: "/maintenance/recalculate-usage", key: k, body: map[string]any{"user": "u1@a.test"}}).want(t, 200).decode(t, &rc)
	if rc.Before.Messages != 9 || rc.After.Messages != 1 || rc.After.Bytes < 50 {
		t.Fatalf("recount %+v", rc)
	}
	r = v.do(req{method: "POST", path: "/maintenance/recalculate-usage", key: k, body: map[string]any{"domain": "a.test"}}).want(t, 202)
	v.waitJob(t, r.header.Get("Location"))
	if u2, _ := v.e.Store.UserByAddress(ctx, "u2@a.test"); u2.MessageCount != 1 {
		t.Fatalf("u2 after the domain's recount: %d messages", u2.MessageCount)
	}
	if u3, _ := v.e.Store.UserByAddress(ctx, "u3@b.test"); u3.MessageCount != 9 {
		t.Fatalf("u3 of another domain recounted: %d", u3.MessageCount)
	}

	// Move u1's files to disk2.
	v.do(req{method: "POST", path: "/users/u1@a.test/move", key: k, body: map[string]any{"partition": "nowhere"}}).want(t, 422)
	r = v.do(req{method: "POST", path: "/users/u1@a.test/move", key: k, body: map[string]any{"partition": "disk2"}}).want(t, 202)
	j = v.waitJob(t, r.header.Get("Location"))
	var res map[string]any
	if err := json.Unmarshal(j.Result, &res); err != nil || res["moved"] != float64(1) {
		t.Fatalf("move result %s: %v", j.Result, err)
	}
	if msgs := storetest.Messages(t, v.e.Store.Account(u1.ID, nil), "INBOX"); len(msgs) != 1 {
		t.Fatal("u1's message unreadable after the move")
	}
	var moved rest.UserView
	v.do(req{method: "GET", path: "/users/u1@a.test", key: k}).want(t, 200).decode(t, &moved)
	if moved.Partition != "disk2" {
		t.Fatalf("partition after the move: %q", moved.Partition)
	}

	// Inactive users: since a second after every user was made, u2
	// logs in; u1 is inactive since then, u2 not.
	time.Sleep(1100 * time.Millisecond)
	sinceT := time.Now().Truncate(time.Second)
	since := sinceT.UTC().Format(time.RFC3339)
	if _, err := v.e.Session.For(store.ProtoIMAP).Authenticate(ctx, "u2@a.test", "a long enough password", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	v.do(req{method: "POST", path: "/maintenance/inactive-users", key: k, body: map[string]any{"since": "2999-01-01T00:00:00Z", "dryRun": true}}).want(t, 422)
	var dry struct {
		Users []rest.InactiveView `json:"users"`
	}
	v.do(req{method: "POST", path: "/maintenance/inactive-users", key: k, body: map[string]any{"since": since, "domain": "a.test", "dryRun": true}}).want(t, 200).decode(t, &dry)
	if len(dry.Users) != 1 || dry.Users[0].Address != "u1@a.test" {
		t.Fatalf("dry run %+v", dry.Users)
	}
	if _, err := v.e.Store.UserByAddress(ctx, "u1@a.test"); err != nil {
		t.Fatal("a dry run deleted a user")
	}
	past := time.Unix(u1.CreatedAt, 0).Add(-time.Hour).UTC().Format(time.RFC3339)
	v.do(req{method: "POST", path: "/maintenance/inactive-users", key: k, body: map[string]any{"since": past, "dryRun": true}}).want(t, 200).decode(t, &dry)
	if len(dry.Users) != 0 {
		t.Fatalf("users created after since listed: %+v", dry.Users)
	}
	r = v.do(req{method: "POST", path: "/maintenance/inactive-users", key: k, body: map[string]any{"since": since, "domain": "a.test"}}).want(t, 202)
	v.waitJob(t, r.header.Get("Location"))
	for a, want := range map[string]bool{"u1@a.test": false, "u2@a.test": true, "u3@b.test": true} {
		if _, err := v.e.Store.UserByAddress(ctx, a); (err == nil) != want {
			t.Errorf("%s exists=%v after the cleanup, want %v", a, err == nil, want)
		}
	}
}
