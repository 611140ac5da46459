package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/session"
	"basalt/store"
	"basalt/store/admin"
	"basalt/store/signup"
)

type banPage struct {
	Items []rest.BanView `json:"items"`
	Next  string         `json:"next"`
}

type invitePage struct {
	Items []rest.InviteView `json:"items"`
	Next  string            `json:"next"`
}

type pendingPage struct {
	Items []rest.PendingView `json:"items"`
	Next  string             `json:"next"`
}

// fields lists a validation problem's fields.
func fields(t *testing.T, r resp) []string {
	t.Helper()
	p := r.problem(t)
	var fs []string
	for _, e := range p.Errors {
		fs = append(fs, e.Field)
	}
	slices.Sort(fs)
	return fs
}

// TestBannedNetworks: bans made, replaced, paged and lifted through the
// API, each audited; what the API bans is what the site's registration
// check refuses, and a bad network changes nothing.
func TestBannedNetworks(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnv(t, db, rest.Config{})
		k := v.root
		ctx := context.Background()
		g := signup.New(v.e.Store)
		inside, outside := netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("192.0.3.1")

		var b rest.BanView
		r := v.do(req{method: "POST", path: "/banned-networks", key: k, body: map[string]any{"network": "192.0.2.77/24", "reason": "spam wave"}}).want(t, 201)
		r.decode(t, &b)
		if b.Network != "192.0.2.0/24" || b.Reason != "spam wave" || b.ExpiresAt != nil || r.header.Get("Location") != "/api/v1/banned-networks/"+strconv.FormatInt(b.ID, 10) {
			t.Fatalf("ban = %+v, Location %q", b, r.header.Get("Location"))
		}
		// The site's registration check now refuses the network.
		if err := g.CheckNetwork(ctx, inside, signup.Limit{}); !errors.Is(err, signup.ErrBanned) {
			t.Fatalf("registration from the banned network: %v", err)
		}
		if err := g.CheckNetwork(ctx, outside, signup.Limit{}); err != nil {
			t.Fatalf("registration from outside the ban: %v", err)
		}
		// Banning it again replaces reason and expiry: 200, the same ban.
		exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		var again rest.BanView
		v.do(req{method: "POST", path: "/banned-networks", key: k, body: map[string]any{"network": "192.0.2.0/24", "reason": "still spamming", "expiresAt": exp.Format(time.RFC3339)}}).want(t, 200).decode(t, &again)
		if again.ID != b.ID || again.Reason != "still spamming" || again.ExpiresAt == nil || *again.ExpiresAt != exp.Format(time.RFC3339) {
			t.Fatalf("ban replaced = %+v", again)
		}
		// One address is its own network.
		var one rest.BanView
		v.do(req{method: "POST", path: "/banned-networks", key: k, body: map[string]any{"network": "2001:db8::9", "reason": "x"}}).want(t, 201).decode(t, &one)
		if one.Network != "2001:db8::9/128" {
			t.Fatalf("one address banned as %q", one.Network)
		}
		if err := g.CheckNetwork(ctx, netip.MustParseAddr("2001:db8::a"), signup.Limit{}); err != nil {
			t.Fatalf("the address next to a banned one: %v", err)
		}

		// Bad input: each field named, nothing banned.
		for _, c := range []struct {
			body map[string]any
			want []string
		}{
			{map[string]any{"network": "10.0.0.300/8", "reason": "x"}, []string{"network"}},
			{map[string]any{"network": "example.org", "reason": "x"}, []string{"network"}},
			{map[string]any{"network": "10.0.0.0/33", "reason": "x"}, []string{"network"}},
			{map[string]any{"network": "fe80::1%eth0", "reason": "x"}, []string{"network"}},
			{map[string]any{"network": "nope", "reason": " ", "expiresAt": "2001-01-01T00:00:00Z"}, []string{"expiresAt", "network", "reason"}},
		} {
			if got := fields(t, v.do(req{method: "POST", path: "/banned-networks", key: k, body: c.body}).want(t, 422)); !slices.Equal(got, c.want) {
				t.Errorf("%v: fields %v, want %v", c.body, got, c.want)
			}
		}
		if got := fields(t, v.do(req{method: "POST", path: "/banned-networks", key: k, body: map[string]any{"network": "10.0.0.0/8", "reason": "x", "until": "soon"}, badRequest: true}).want(t, 422)); !slices.Equal(got, []string{"until"}) {
			t.Errorf("unknown member: fields %v", got)
		}
		v.do(req{method: "POST", path: "/banned-networks", key: k, body: `{"network": `, badRequest: true}).want(t, 400)
		// A retried create with an Idempotency-Key makes nothing twice.
		idem := map[string]string{"Idempotency-Key": "ban-203"}
		first := v.do(req{method: "POST", path: "/banned-networks", key: k, header: idem, body: map[string]any{"network": "203.0.113.0/24", "reason": "x"}}).want(t, 201)
		replay := v.do(req{method: "POST", path: "/banned-networks", key: k, header: idem, body: map[string]any{"network": "203.0.113.0/24", "reason": "x"}}).want(t, 201)
		if replay.header.Get("Idempotent-Replayed") != "true" || string(replay.body) != string(first.body) {
			t.Errorf("replay: %s, %s", replay.header.Get("Idempotent-Replayed"), replay.body)
		}

		// Paged by network, one at a time.
		var got []string
		path := "/banned-networks?limit=1"
		for i := 0; i < 10; i++ {
			var p banPage
			v.do(req{method: "GET", path: path, key: k}).want(t, 200).decode(t, &p)
			for _, it := range p.Items {
				got = append(got, it.Network)
			}
			if p.Next == "" {
				break
			}
			path = "/banned-networks?limit=1&cursor=" + url.QueryEscape(p.Next)
		}
		if want := []string{"192.0.2.0/24", "2001:db8::9/128", "203.0.113.0/24"}; !slices.Equal(got, want) {
			t.Errorf("bans paged = %v, want %v", got, want)
		}
		v.do(req{method: "GET", path: "/banned-networks?cursor=forged.cursor", key: k}).want(t, 400)

		// Lifted: If-Match holds, then the site lets the network in.
		id := "/banned-networks/" + strconv.FormatInt(b.ID, 10)
		v.do(req{method: "DELETE", path: id, key: k, header: map[string]string{"If-Match": `"stale"`}}).want(t, 412)
		if err := g.CheckNetwork(ctx, inside, signup.Limit{}); !errors.Is(err, signup.ErrBanned) {
			t.Fatalf("a refused unban lifted the ban: %v", err)
		}
		v.do(req{method: "DELETE", path: id, key: k}).want(t, 204)
		v.do(req{method: "DELETE", path: id, key: k}).want(t, 404)
		if err := g.CheckNetwork(ctx, inside, signup.Limit{}); err != nil {
			t.Fatalf("registration after the unban: %v", err)
		}

		// Audited with before and after.
		var audit struct{ Items []rest.AuditView }
		v.do(req{method: "GET", path: "/audit?action=signup.&limit=500", key: k}).want(t, 200).decode(t, &audit)
		var actions []string
		for _, a := range audit.Items {
			actions = append(actions, a.Action+" "+a.Target)
			if a.Action == "signup.ban" && a.Target == "192.0.2.0/24" && string(a.Before) != "null" {
				var before, after rest.BanView
				if json.Unmarshal(a.Before, &before) != nil || json.Unmarshal(a.After, &after) != nil || before.Reason != "spam wave" || after.Reason != "still spamming" {
					t.Errorf("replaced ban's audit: before %s after %s", a.Before, a.After)
				}
			}
			if a.Action == "signup.unban" && !strings.Contains(string(a.Before), "still spamming") {
				t.Errorf("unban's audit before = %s", a.Before)
			}
		}
		// Newest first; the refused requests left nothing.
		want := []string{"signup.unban 192.0.2.0/24", "signup.ban 203.0.113.0/24", "signup.ban 2001:db8::9/128", "signup.ban 192.0.2.0/24", "signup.ban 192.0.2.0/24"}
		if !slices.Equal(actions, want) {
			t.Errorf("audit = %v, want %v", actions, want)
		}
	})
}

// TestInvites: invite codes made, paged and withdrawn through the API;
// a code the API makes is one the registration takes, and a withdrawn
// one is refused.
func TestInvites(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnv(t, db, rest.Config{})
		k := v.root
		ctx := context.Background()
		g := signup.New(v.e.Store)

		exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
		var multi, single rest.InviteView
		r := v.do(req{method: "POST", path: "/invites", key: k, body: map[string]any{"uses": 3, "note": "conference", "expiresAt": exp}}).want(t, 201)
		r.decode(t, &multi)
		if multi.Code == "" || multi.UsesLeft != 3 || multi.Note != "conference" || multi.ExpiresAt == nil || *multi.ExpiresAt != exp ||
			r.header.Get("Location") != "/api/v1/invites/"+multi.Code {
			t.Fatalf("invite = %+v, Location %q", multi, r.header.Get("Location"))
		}
		v.do(req{method: "POST", path: "/invites", key: k, body: map[string]any{}}).want(t, 201).decode(t, &single)
		if single.UsesLeft != 1 || single.ExpiresAt != nil {
			t.Fatalf("default invite = %+v", single)
		}
		if err := g.CheckInvite(ctx, strings.ToLower(multi.Code)); err != nil {
			t.Fatalf("the registration refuses the API's code: %v", err)
		}

		for _, c := range []struct {
			body map[string]any
			bad  bool // the spec's schema refuses it too
			want []string
		}{
			{map[string]any{"uses": 0}, true, []string{"uses"}},
			{map[string]any{"uses": 10001}, true, []string{"uses"}},
			{map[string]any{"note": strings.Repeat("n", 256)}, true, []string{"note"}},
			{map[string]any{"expiresAt": "2001-01-01T00:00:00Z"}, false, []string{"expiresAt"}},
			{map[string]any{"uses": "two"}, true, []string{"uses"}},
			{map[string]any{"code": "CHOSEN"}, true, []string{"code"}},
		} {
			if got := fields(t, v.do(req{method: "POST", path: "/invites", key: k, body: c.body, badRequest: c.bad}).want(t, 422)); !slices.Equal(got, c.want) {
				t.Errorf("%v: fields %v, want %v", c.body, got, c.want)
			}
		}

		// Paged by code.
		var got []string
		path := "/invites?limit=1"
		for i := 0; i < 10; i++ {
			var p invitePage
			v.do(req{method: "GET", path: path, key: k}).want(t, 200).decode(t, &p)
			for _, it := range p.Items {
				got = append(got, it.Code)
			}
			if p.Next == "" {
				break
			}
			path = "/invites?limit=1&cursor=" + url.QueryEscape(p.Next)
		}
		want := []string{multi.Code, single.Code}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("invites paged = %v, want %v", got, want)
		}

		v.do(req{method: "DELETE", path: "/invites/" + strings.ToLower(multi.Code), key: k}).want(t, 204)
		v.do(req{method: "DELETE", path: "/invites/" + multi.Code, key: k}).want(t, 404)
		if err := g.CheckInvite(ctx, multi.Code); !errors.Is(err, signup.ErrInvite) {
			t.Fatalf("a withdrawn code: %v", err)
		}

		// Audited; the log names a live code only by its start.
		var audit struct{ Items []rest.AuditView }
		v.do(req{method: "GET", path: "/audit?action=signup.invite.", key: k}).want(t, 200).decode(t, &audit)
		var actions []string
		for _, a := range audit.Items {
			actions = append(actions, a.Action)
			if a.Action == "signup.invite.create" && (strings.Contains(string(a.After), single.Code) || strings.Contains(a.Target, single.Code)) {
				t.Errorf("the audit log shows a live code: %+v", a)
			}
			if a.Action == "signup.invite.delete" && (a.Target != multi.Code || !strings.Contains(string(a.Before), `"usesLeft":3`)) {
				t.Errorf("withdrawal's audit = %+v", a)
			}
		}
		if !slices.Equal(actions, []string{"signup.invite.delete", "signup.invite.create", "signup.invite.create"}) {
			t.Errorf("audit = %v", actions)
		}
	})
}

// TestPendingSignups: accounts waiting for approval are listed (by
// domain for a domain-limited key) and approved through the API, after
// which they log in.
func TestPendingSignups(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnv(t, db, rest.Config{})
		k := v.root
		ctx := context.Background()
		for _, d := range []string{"a.test", "b.test"} {
			if _, err := v.e.Store.CreateDomain(ctx, d, store.DomainLimits{}); err != nil {
				t.Fatal(err)
			}
		}
		until, reason := signup.PendingLock()
		for _, addr := range []string{"p1@a.test", "p2@b.test", "p3@a.test"} {
			if _, err := v.e.Session.CreateUser(ctx, session.NewUser{Address: addr, Password: storetest.Password,
				UserOptions: store.UserOptions{LockedUntil: until, LockReason: reason}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.e.Session.CreateUser(ctx, session.NewUser{Address: "open@a.test", Password: storetest.Password}); err != nil {
			t.Fatal(err)
		}
		list := func(key, query string) []string {
			t.Helper()
			var out []string
			path := "/signups/pending?limit=2" + query
			for i := 0; i < 10; i++ {
				var p pendingPage
				v.do(req{method: "GET", path: path, key: key}).want(t, 200).decode(t, &p)
				for _, it := range p.Items {
					if it.Domain != it.Address[strings.IndexByte(it.Address, '@')+1:] || it.ID == 0 {
						t.Errorf("pending item %+v", it)
					}
					out = append(out, it.Address)
				}
				if p.Next == "" {
					break
				}
				path = "/signups/pending?limit=2" + query + "&cursor=" + url.QueryEscape(p.Next)
			}
			return out
		}
		if got := list(k, ""); !slices.Equal(got, []string{"p1@a.test", "p2@b.test", "p3@a.test"}) {
			t.Errorf("pending = %v", got)
		}
		if got := list(k, "&domain=b.test"); !slices.Equal(got, []string{"p2@b.test"}) {
			t.Errorf("pending of b.test = %v", got)
		}
		limited := v.mint("a-admin", admin.Authority{Scopes: []string{"signup:write"}, Domains: []string{"a.test"}})
		if got := list(limited, ""); !slices.Equal(got, []string{"p1@a.test", "p3@a.test"}) {
			t.Errorf("pending seen by a.test's key = %v", got)
		}
		v.do(req{method: "GET", path: "/signups/pending?domain=b.test", key: limited}).want(t, 403)
		v.do(req{method: "POST", path: "/signups/pending/p2@b.test/approve", key: limited}).want(t, 403)

		if _, err := v.e.Session.Authenticate(ctx, "p1@a.test", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrUserLocked) {
			t.Fatalf("pending login: %v", err)
		}
		var u rest.UserView
		v.do(req{method: "POST", path: "/signups/pending/p1@a.test/approve", key: limited}).want(t, 200).decode(t, &u)
		if u.Address != "p1@a.test" || u.LockReason != "" || u.LockedUntil != 0 {
			t.Fatalf("approved user = %+v", u)
		}
		if _, err := v.e.Session.Authenticate(ctx, "p1@a.test", storetest.Password, "127.0.0.1"); err != nil {
			t.Fatalf("approved login: %v", err)
		}
		if p := v.do(req{method: "POST", path: "/signups/pending/p1@a.test/approve", key: k}).want(t, 409).problem(t); p.Type != rest.ProblemBase+"not-pending" {
			t.Errorf("second approval: %+v", p)
		}
		v.do(req{method: "POST", path: "/signups/pending/open@a.test/approve", key: k}).want(t, 409)
		v.do(req{method: "POST", path: "/signups/pending/nobody@a.test/approve", key: k}).want(t, 404)
		if got := list(k, ""); !slices.Equal(got, []string{"p2@b.test", "p3@a.test"}) {
			t.Errorf("pending after the approval = %v", got)
		}

		var audit struct{ Items []rest.AuditView }
		v.do(req{method: "GET", path: "/audit?action=signup.approve", key: k}).want(t, 200).decode(t, &audit)
		if len(audit.Items) != 1 || audit.Items[0].Target != "p1@a.test" || audit.Items[0].Domain != "a.test" ||
			!strings.Contains(string(audit.Items[0].Before), signup.PendingReason) || !strings.Contains(string(audit.Items[0].After), `"lockedUntil":0`) {
			t.Errorf("approval's audit = %+v", audit.Items)
		}
	})
}

// TestTargetExistenceHidden: a domain-limited key gets the same answer,
// word for word, for a key, job or grant outside its domains and for one
// that does not exist, so it cannot probe ids; a key over every domain
// still gets 404 for what does not exist, and the limited key reaches
// its own domain's rows.
func TestTargetExistenceHidden(t *testing.T) {
	v := sqliteEnv(t, rest.Config{RatePerMinute: 100000})
	ctx := store.WithActor(context.Background(), store.Actor{Name: "test"})
	for _, d := range []string{mine, other} {
		if _, err := v.e.Store.CreateDomain(ctx, d, store.DomainLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	fx := fixtures(t, v)
	limited := v.mint("limited", admin.Authority{Scopes: []string{"keys:write", "jobs:read", "admins:write"}, Domains: []string{mine}})
	own, _, err := v.adm.CreateKey(ctx, nil, admin.NewKey{AdminID: v.rootP.Admin.ID, Name: "own",
		Authority: admin.Authority{Scopes: []string{"users:read"}, Domains: []string{mine}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, foreign, missing string
	}{
		{http.MethodGet, "/keys/" + fx["key"]["key"], "/keys/999999"},
		{http.MethodGet, "/keys/" + fx["key"]["key"], "/keys/0"},
		{http.MethodGet, "/jobs/" + fx["job"]["job"], "/jobs/999999"},
		{http.MethodDelete, "/admins/" + fx["grant"]["admin"] + "/grants/" + fx["grant"]["grant"], "/admins/" + fx["grant"]["admin"] + "/grants/999999"},
		{http.MethodDelete, "/admins/" + fx["grant"]["admin"] + "/grants/" + fx["grant"]["grant"], "/admins/nosuchadmin/grants/1"},
	} {
		f := v.do(req{method: c.method, path: c.foreign, key: limited}).want(t, 403).problem(t)
		m := v.do(req{method: c.method, path: c.missing, key: limited}).want(t, 403).problem(t)
		if f.Type != m.Type || f.Detail != m.Detail || f.Title != m.Title {
			t.Errorf("%s: outside the key %+v, missing %+v: told apart", c.missing, f, m)
		}
		if c.missing != "/keys/0" {
			v.do(req{method: c.method, path: c.missing, key: v.root}).want(t, 404)
		}
	}
	v.do(req{method: http.MethodGet, path: "/keys/" + strconv.FormatInt(own.ID, 10), key: limited}).want(t, 200)
	// The grant outside the key is still there.
	if ad, err := v.adm.AdminByName(ctx, fx["grant"]["admin"]); err != nil || len(ad.Grants) != 1 {
		t.Errorf("foreign grant after refusals: %+v, %v", ad, err)
	}
}
