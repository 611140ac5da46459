package rest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/store/admin"
)

// TestBodyDomainNormalized: a domain in a body is read as the locator
// checked it (case, a final dot): the dry run finds the domain's users,
// and the job a domain-limited key started is one it may read. A
// domain-limited key's bulletin is sent from one of its domains.
func TestBodyDomainNormalized(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	v.do(req{method: "POST", path: "/users", key: v.root, body: map[string]any{"address": "u1@a.test", "password": "a long enough password"}}).want(t, 201)
	aKey := v.mint("a-ops", admin.Authority{Scopes: []string{"maintenance:write", "bulletins:write", "jobs:read"}, Domains: []string{"a.test"}})
	var dry struct {
		Users []rest.InactiveView `json:"users"`
	}
	// Inactive since a second after u1 was made.
	time.Sleep(1100 * time.Millisecond)
	now := time.Now().UTC().Format(time.RFC3339)
	v.do(req{method: "POST", path: "/maintenance/inactive-users", key: aKey, body: map[string]any{"since": now, "domain": "A.Test.", "dryRun": true}}).want(t, 200).decode(t, &dry)
	if len(dry.Users) != 1 || dry.Users[0].Address != "u1@a.test" {
		t.Fatalf("dry run over A.Test.: %+v", dry.Users)
	}
	// A bulletin goes out from one of the key's domains.
	v.do(req{method: "POST", path: "/bulletins", key: aKey, body: map[string]any{"domain": "a.test", "from": "ceo@b.test", "subject": "s", "body": "b"}}).want(t, 403)
	r := v.do(req{method: "POST", path: "/bulletins", key: aKey, body: map[string]any{"domain": "A.TEST", "from": "p@a.test", "subject": "s", "body": "b"}}).want(t, 202)
	var j rest.JobView
	v.do(req{method: "GET", path: strings.TrimPrefix(r.header.Get("Location"), "/api/v1"), key: aKey}).want(t, 200).decode(t, &j)
	if j.Domain != "a.test" {
		t.Fatalf("job %+v", j)
	}
}

// TestShareGranteeDomain: a domain-limited key shares only with users of
// its domains, however the grantee is named: a login name, or an address
// in its domain that is the login name of another domain's user, is the
// user the store would grant to. A domain-wide share with another domain
// is a 403 (it was a 500).
func TestShareGranteeDomain(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnv(t, db, rest.Config{RatePerMinute: 100000})
		ctx := context.Background()
		for _, d := range []string{"a.test", "b.test"} {
			v.do(req{method: "POST", path: "/domains", key: v.root, body: map[string]any{"name": d}}).want(t, 201)
		}
		for _, a := range []string{"al@a.test", "bo@a.test", "x@b.test"} {
			v.do(req{method: "POST", path: "/users", key: v.root, body: map[string]any{"address": a, "password": "a long enough password"}}).want(t, 201)
		}
		x, err := v.e.Store.UserByAddress(ctx, "x@b.test")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"xlogin", "legacy@a.test"} {
			if err := v.e.Store.AddIdentifier(ctx, x.ID, n); err != nil {
				t.Fatal(err)
			}
		}
		aKey := v.mint("a-shares", admin.Authority{Scopes: []string{"shares:write"}, Domains: []string{"a.test"}})
		for _, g := range []string{"xlogin", "legacy@a.test", "x@b.test"} {
			v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: aKey, body: map[string]any{"mailbox": "INBOX", "grantee": g, "rights": "lr"}}).want(t, 403)
		}
		v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: aKey, body: map[string]any{"mailbox": "INBOX", "grantee": "b.test", "rights": "lr"}}).want(t, 403)
		v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: v.root, body: map[string]any{"mailbox": "INBOX", "grantee": "b.test", "rights": "lr"}}).want(t, 403)
		// Within its domain, by address, login name or the domain itself.
		bo, _ := v.e.Store.UserByAddress(ctx, "bo@a.test")
		if err := v.e.Store.AddIdentifier(ctx, bo.ID, "bologin"); err != nil {
			t.Fatal(err)
		}
		for g, want := range map[string]rest.ShareView{
			"bo@a.test": {Mailbox: "INBOX", Grantee: "bo@a.test", Rights: "lr"},
			"bologin":   {Mailbox: "INBOX", Grantee: "bo@a.test", Rights: "lrs"},
			"a.test":    {Mailbox: "INBOX", Grantee: "a.test", Domain: true, Rights: "lr"},
		} {
			var got rest.ShareView
			v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: aKey, body: map[string]any{"mailbox": "INBOX", "grantee": g, "rights": want.Rights}}).want(t, 200).decode(t, &got)
			if got != want {
				t.Errorf("share with %s: %+v, want %+v", g, got, want)
			}
		}
		if ms, err := v.e.Store.Account(x.ID, nil).SharedMailboxes(ctx); err != nil || len(ms) != 0 {
			t.Fatalf("x@b.test sees %d shared mailboxes: %v", len(ms), err)
		}
		// A key over every domain may share across domains.
		v.do(req{method: "PUT", path: "/users/al@a.test/shares", key: v.root, body: map[string]any{"mailbox": "INBOX", "grantee": "xlogin", "rights": "lr"}}).want(t, 200)
	})
}

// TestDomainAliasReach: the store reads a domain alias as its domain, so a
// key given the alias's name does not reach the domain behind it through
// that name: a listing filtered by the alias is the domain's, refused
// unless the key holds the domain too.
func TestDomainAliasReach(t *testing.T) {
	v := opsEnv(t, storetest.Options{})
	v.do(req{method: "POST", path: "/domains/b.test/aliases", key: v.root, body: map[string]any{"name": "alias.test"}}).want(t, 201)
	v.do(req{method: "POST", path: "/users", key: v.root, body: map[string]any{"address": "u@b.test", "password": "a long enough password"}}).want(t, 201)
	aliasOnly := v.mint("alias-only", admin.Authority{Scopes: []string{"users:read", "aliases:read"}, Domains: []string{"alias.test"}})
	for _, path := range []string{"/users?domain=alias.test", "/aliases?domain=alias.test"} {
		v.do(req{method: "GET", path: path, key: aliasOnly}).want(t, 403)
	}
	both := v.mint("both", admin.Authority{Scopes: []string{"users:read"}, Domains: []string{"alias.test", "b.test"}})
	var list struct {
		Items []rest.UserSummary `json:"items"`
	}
	v.do(req{method: "GET", path: "/users?domain=alias.test", key: both}).want(t, 200).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Address != "u@b.test" {
		t.Fatalf("users of alias.test: %+v", list.Items)
	}
}
