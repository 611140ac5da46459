package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// seedHash is a well-formed argon2id hash; the users seeded with it are
// listed and changed, never logged in.
const seedHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// seedUsers creates n users named u0000@dom... across domains, in one
// batched transaction, and returns them by address.
func seedUsers(t testing.TB, st *store.Store, n int, domains []string, plan func(i int) string) []string {
	t.Helper()
	ctx := context.Background()
	for _, d := range domains {
		if _, err := st.DomainByName(ctx, d); err != nil {
			if _, err := st.AddDomain(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	nus := make([]store.NewUser, n)
	addrs := make([]string, n)
	for i := range nus {
		addrs[i] = fmt.Sprintf("u%05d@%s", i, domains[i%len(domains)])
		nus[i] = store.NewUser{Address: addrs[i], Password: store.Password{Hash: seedHash}}
		if plan != nil {
			nus[i].Plan = plan(i)
		}
	}
	if _, err := st.CreateUsers(ctx, nus); err != nil {
		t.Fatalf("seed %d users: %v", n, err)
	}
	return addrs
}

// pageAll reads every page of a listing and returns the addresses in
// order, failing on a page larger than asked.
func pageAll(t *testing.T, st *store.Store, f store.UserFilter) []string {
	t.Helper()
	var out []string
	for range 10000 {
		p, err := st.ListUsers(context.Background(), f)
		if err != nil {
			t.Fatalf("list %+v: %v", f, err)
		}
		if len(p.Users) > f.Limit {
			t.Fatalf("page of %d, limit %d", len(p.Users), f.Limit)
		}
		for _, u := range p.Users {
			out = append(out, u.Address)
		}
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
	t.Fatal("paging did not end")
	return nil
}

// TestListUsers: every filter and sort, paged in small pages, returns
// exactly the users it should, in order, each once.
func TestListUsers(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		if _, err := st.SavePlan(ctx, "gold", store.Limits{QuotaBytes: 1 << 30}); err != nil {
			t.Fatal(err)
		}
		addrs := seedUsers(t, st, 120, []string{"a.example", "b.example"}, func(i int) string {
			if i%3 == 0 {
				return "gold"
			}
			return ""
		})
		suspended, locked := map[string]bool{}, map[string]bool{}
		for i, a := range addrs {
			u, err := st.UserByAddress(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if i%7 == 0 {
				if err := st.Suspend(ctx, u.ID, "test"); err != nil {
					t.Fatal(err)
				}
				suspended[a] = true
			}
			if i%11 == 0 {
				if err := st.Lock(ctx, u.ID, time.Now().Add(time.Hour), "test"); err != nil {
					t.Fatal(err)
				}
				locked[a] = true
			}
		}
		want := func(keep func(i int, a string) bool) []string {
			var out []string
			for i, a := range addrs {
				if keep(i, a) {
					out = append(out, a)
				}
			}
			sort.Strings(out)
			return out
		}
		for _, tc := range []struct {
			f    store.UserFilter
			want []string
		}{
			{store.UserFilter{}, want(func(int, string) bool { return true })},
			{store.UserFilter{Domain: "b.example"}, want(func(i int, _ string) bool { return i%2 == 1 })},
			{store.UserFilter{Plan: "gold"}, want(func(i int, _ string) bool { return i%3 == 0 })},
			{store.UserFilter{Status: store.StatusSuspended}, want(func(_ int, a string) bool { return suspended[a] })},
			{store.UserFilter{Status: store.StatusLocked}, want(func(_ int, a string) bool { return locked[a] })},
			{store.UserFilter{Status: store.StatusActive}, want(func(_ int, a string) bool { return !suspended[a] && !locked[a] })},
			{store.UserFilter{Q: "U001"}, want(func(_ int, a string) bool { return strings.HasPrefix(a, "u001") })},
			{store.UserFilter{Q: "u0010", Domain: "a.example", Status: store.StatusActive},
				want(func(i int, a string) bool {
					return strings.HasPrefix(a, "u0010") && i%2 == 0 && !suspended[a] && !locked[a]
				})},
		} {
			for _, limit := range []int{1, 7, 1000} {
				f := tc.f
				f.Limit = limit
				if got := pageAll(t, st, f); !slices.Equal(got, tc.want) {
					t.Errorf("%+v: got %d users %v, want %d", f, len(got), got, len(tc.want))
				}
				f.Sort = store.SortAddressDesc
				rev := slices.Clone(tc.want)
				slices.Reverse(rev)
				if got := pageAll(t, st, f); !slices.Equal(got, rev) {
					t.Errorf("%+v: got %d users, want %d in reverse", f, len(got), len(rev))
				}
			}
		}
		// By creation: all created within the same second or two, so the
		// id breaks ties and pages must not lose or repeat any.
		for _, s := range []store.UserSort{store.SortCreated, store.SortCreatedDesc} {
			got := pageAll(t, st, store.UserFilter{Sort: s, Limit: 9})
			w := slices.Clone(addrs) // seeded in id order = creation order
			if s == store.SortCreatedDesc {
				slices.Reverse(w)
			}
			if !slices.Equal(got, w) {
				t.Errorf("sort %s: got %v", s, got)
			}
		}
		p, err := st.ListUsers(ctx, store.UserFilter{Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []store.UserFilter{
			{Cursor: "!!"},
			{Cursor: p.Next, Sort: store.SortCreated}, // another sort's cursor
			{Status: "gone"},
			{Sort: "size"},
			{Limit: 1001},
		} {
			if _, err := st.ListUsers(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("ListUsers(%+v) = %v, want ErrInvalid", bad, err)
			}
		}
		if _, err := st.ListUsers(ctx, store.UserFilter{Domain: "nowhere.example"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown domain: %v", err)
		}
	})
}

// TestListUsers10000 pages through 10,000 users 100 at a time: each user
// once, in order, and a deep page costs what the first does.
func TestListUsers10000(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	st := e.Store
	start := time.Now()
	addrs := seedUsers(t, st, 10000, []string{"big.example"}, nil)
	t.Logf("seeded 10,000 users in %v", time.Since(start))
	start = time.Now()
	got := pageAll(t, st, store.UserFilter{Limit: 100})
	t.Logf("paged through them in %v", time.Since(start))
	if !slices.Equal(got, addrs) {
		t.Fatalf("got %d users, want %d in order", len(got), len(addrs))
	}
	// The first page and the last, timed over a few runs each: a listing
	// that skipped rows (OFFSET) would make the last page 100 times dearer.
	ctx := context.Background()
	first, err := st.ListUsers(ctx, store.UserFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	cur := store.UserFilter{Limit: 100, Cursor: first.Next}
	timeIt := func(f store.UserFilter) time.Duration {
		best := time.Hour
		for range 5 {
			s := time.Now()
			if _, err := st.ListUsers(ctx, f); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(s))
		}
		return best
	}
	deepCursor := pageCursorAt(t, st, 9900)
	shallow, deep := timeIt(cur), timeIt(store.UserFilter{Limit: 100, Cursor: deepCursor})
	t.Logf("page 2: %v, page 100: %v", shallow, deep)
	if deep > 10*shallow+5*time.Millisecond {
		t.Fatalf("a deep page took %v, the second %v: not O(page)", deep, shallow)
	}
}

// pageCursorAt returns the cursor after the first n users by address.
func pageCursorAt(t *testing.T, st *store.Store, n int) string {
	t.Helper()
	f := store.UserFilter{Limit: 100}
	for seen := 0; seen < n; seen += 100 {
		p, err := st.ListUsers(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		f.Cursor = p.Next
	}
	return f.Cursor
}

// TestCreateUsersAllOrNone: a bulk create with one bad row creates none.
func TestCreateUsersAllOrNone(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		seedUsers(t, st, 3, []string{"example.org"}, nil)
		_, err := st.CreateUsers(ctx, []store.NewUser{
			{Address: "new1@example.org", Password: store.Password{Hash: seedHash}},
			{Address: "u00001@example.org", Password: store.Password{Hash: seedHash}},
		})
		if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "u00001@example.org") {
			t.Fatalf("bulk create with a taken address: %v", err)
		}
		if _, err := st.UserByAddress(ctx, "new1@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a failed bulk create left a user: %v", err)
		}
		ids, err := st.CreateUsers(ctx, []store.NewUser{{Address: "new1@example.org", Password: store.Password{Hash: seedHash}}})
		if err != nil || len(ids) != 1 {
			t.Fatal(ids, err)
		}
		acct := st.Account(ids[0], nil)
		if _, err := acct.MailboxByName(ctx, "Trash"); err != nil {
			t.Fatalf("bulk-created user's default mailboxes: %v", err)
		}
	})
}

// TestRenameUser: the address and its login change, mail and other
// identifiers stay, a taken address or a foreign domain is refused.
func TestRenameUser(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		a := e.NewUser(t, "old@example.org", false)
		e.NewUser(t, "taken@example.org", false)
		if _, err := st.AddDomain(ctx, "example.net"); err != nil {
			t.Fatal(err)
		}
		if err := st.AddIdentifier(ctx, a.User.ID, "oldnick"); err != nil {
			t.Fatal(err)
		}
		acct := e.Account(a)
		storetest.Append(t, acct, storetest.Inbox(t, acct), storetest.Message("x@example.com", "old@example.org", "kept", "body"), store.AppendOptions{})
		if _, err := st.RenameUser(ctx, a.User.ID, "taken@example.org"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("rename to a taken address: %v", err)
		}
		if _, err := st.RenameUser(ctx, a.User.ID, "x@elsewhere.example"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rename into a foreign domain: %v", err)
		}
		u, err := st.RenameUser(ctx, a.User.ID, "New@Example.NET")
		if err != nil {
			t.Fatal(err)
		}
		if u.Address != "new@example.net" || u.ID != a.User.ID {
			t.Fatalf("renamed user %+v", u)
		}
		ids, _ := st.Identifiers(ctx, u.ID)
		if !slices.Equal(ids, []string{"new@example.net", "oldnick"}) {
			t.Fatalf("identifiers after rename: %v", ids)
		}
		if _, err := e.Session.Authenticate(ctx, "old@example.org", storetest.Password, "127.0.0.1"); err == nil {
			t.Fatal("the old address still logs in")
		}
		if _, err := e.Session.Authenticate(ctx, "new@example.net", storetest.Password, "127.0.0.1"); err != nil {
			t.Fatalf("the new address: %v", err)
		}
		if got := storetest.Messages(t, st.Account(u.ID, nil), "INBOX"); len(got) != 1 || !strings.Contains(got[0], "kept") {
			t.Fatalf("mail after rename: %d messages", len(got))
		}
		if r, err := st.Resolve(ctx, "new@example.net"); err != nil || !slices.Equal(r.Users, []int64{u.ID}) {
			t.Fatalf("resolve the new address: %+v, %v", r, err)
		}
	})
}

// TestRecalculateUsage: counters that drifted are set back to what the
// messages hold.
func TestRecalculateUsage(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		a := e.NewUser(t, "u@example.org", false)
		acct := e.Account(a)
		var size int64
		for i := range 3 {
			r := storetest.Append(t, acct, storetest.Inbox(t, acct), storetest.Message("x@example.com", "u@example.org", fmt.Sprint("m", i), "body"), store.AppendOptions{})
			size += r.Size
		}
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind("UPDATE users SET used_bytes = 7, message_count = 99 WHERE id = ?"), a.User.ID); err != nil {
			t.Fatal(err)
		}
		before, after, err := st.RecalculateUsage(ctx, a.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		if before != (store.Usage{Bytes: 7, Messages: 99}) || after != (store.Usage{Bytes: size, Messages: 3}) {
			t.Fatalf("recount: before %+v after %+v, want after %d bytes 3 messages", before, after, size)
		}
		info, err := st.Info(ctx, a.User.ID)
		if err != nil || info.UsedBytes != size || info.MessageCount != 3 {
			t.Fatalf("info after recount: %+v, %v", info.User, err)
		}
		if _, _, err := st.RecalculateUsage(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("recount of no user: %v", err)
		}
	})
}

// TestInactiveUsers: users not logged in since T (and created before it)
// are listed, the others not.
func TestInactiveUsers(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		addrs := seedUsers(t, st, 4, []string{"example.org"}, nil)
		ids := make([]int64, len(addrs))
		for i, a := range addrs {
			u, _ := st.UserByAddress(ctx, a)
			ids[i] = u.ID
		}
		since := time.Now().Add(time.Hour) // after every user's creation
		// u0: never; u1: long ago; u2: since T over IMAP; u3: since T over the web.
		if err := st.RecordLogin(ctx, ids[1], store.ProtoIMAP, "", since.Add(-48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLogin(ctx, ids[2], store.ProtoIMAP, "", since.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordLogin(ctx, ids[3], store.ProtoWebmail, "", since); err != nil {
			t.Fatal(err)
		}
		var got []int64
		for after := int64(0); ; {
			us, err := st.InactiveUsers(ctx, since, after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(us) == 0 {
				break
			}
			got = append(got, us[0].ID)
			after = us[0].ID
		}
		if !slices.Equal(got, ids[:2]) {
			t.Fatalf("inactive %v, want %v", got, ids[:2])
		}
		// A user created after T is not inactive since T.
		if us, _ := st.InactiveUsers(ctx, time.Now().Add(-time.Hour), 0, 10); len(us) != 0 {
			t.Fatalf("users created after T listed: %d", len(us))
		}
	})
}

// TestWebSessionsAdmin: an administrator lists a user's sessions without
// their secrets and revokes one, or all; another user's are untouched.
func TestWebSessionsAdmin(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		a := e.NewUser(t, "a@example.org", false)
		b := e.NewUser(t, "b@example.org", false)
		var tokens []string
		for range 3 {
			tok, _, err := e.Session.StartWeb(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, tok)
		}
		bt, _, _ := e.Session.StartWeb(ctx, b)
		ws, err := st.WebSessions(ctx, a.User.ID)
		if err != nil || len(ws) != 3 {
			t.Fatalf("sessions %+v, %v", ws, err)
		}
		if _, err := st.RevokeWebSessions(ctx, b.User.ID, ws[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke another user's session: %v", err)
		}
		if n, err := st.RevokeWebSessions(ctx, a.User.ID, ws[0].ID); err != nil || n != 1 {
			t.Fatalf("revoke one: %d, %v", n, err)
		}
		alive := 0
		for _, tok := range tokens {
			if _, err := e.Session.Web(ctx, tok); err == nil {
				alive++
			}
		}
		if alive != 2 {
			t.Fatalf("%d sessions alive after revoking one of 3", alive)
		}
		if n, err := st.RevokeWebSessions(ctx, a.User.ID, ""); err != nil || n != 2 {
			t.Fatalf("revoke all: %d, %v", n, err)
		}
		if _, err := e.Session.Web(ctx, bt); err != nil {
			t.Fatalf("the other user's session: %v", err)
		}
	})
}

// TestAliasGroups: patterns are checked, an alias holds several targets
// replaced as a whole, listings page by pattern, and delivery resolves
// the targets.
func TestAliasGroups(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		a := e.NewUser(t, "a@example.org", false)
		b := e.NewUser(t, "b@example.org", false)
		for _, bad := range []string{"", "x", "@example.org", "a@", "a b@example.org", "a@*.example.org", "a**@example.org",
			"a@example.org@x", strings.Repeat("?", 9) + "@example.org", "a<b@example.org"} {
			if _, err := st.SetAlias(ctx, bad, []string{"a@example.org"}, true); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("SetAlias(%q) = %v, want ErrInvalid", bad, err)
			}
		}
		if _, err := st.SetAlias(ctx, "x@example.org", []string{"not an address"}, true); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad target: %v", err)
		}
		if _, err := st.SetAlias(ctx, "x@example.org", nil, true); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("no target: %v", err)
		}
		if _, err := st.SetAlias(ctx, "x@nowhere.example", []string{"a@example.org"}, true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("foreign domain: %v", err)
		}
		g, err := st.SetAlias(ctx, "Team@example.org", []string{"b@example.org", "a@example.org", "B@example.org"}, true)
		if err != nil || g.Pattern != "team@example.org" || !slices.Equal(g.Targets, []string{"a@example.org", "b@example.org"}) || g.IsPattern {
			t.Fatalf("set alias: %+v, %v", g, err)
		}
		if _, err := st.SetAlias(ctx, "team@example.org", []string{"a@example.org"}, true); !errors.Is(err, store.ErrExists) {
			t.Fatalf("create over an existing alias: %v", err)
		}
		r, err := st.Resolve(ctx, "team@example.org")
		if err != nil || len(r.Users) != 2 {
			t.Fatalf("resolve team: %+v, %v", r, err)
		}
		if _, err := st.SetAlias(ctx, "team@example.org", []string{"b@example.org", "out@elsewhere.example"}, false); err != nil {
			t.Fatal(err)
		}
		r, _ = st.Resolve(ctx, "team@example.org")
		if !slices.Equal(r.Users, []int64{b.User.ID}) || !slices.Equal(r.External, []string{"out@elsewhere.example"}) {
			t.Fatalf("resolve after replace: %+v", r)
		}
		g, err = st.SetAlias(ctx, "*@example.org", []string{"a@example.org"}, true)
		if err != nil || !g.CatchAll || !g.IsPattern {
			t.Fatalf("catch-all: %+v, %v", g, err)
		}
		if _, err := st.SetAlias(ctx, "sales-??@example.org", []string{"b@example.org"}, true); err != nil {
			t.Fatal(err)
		}
		if r, _ := st.Resolve(ctx, "sales-eu@example.org"); !slices.Equal(r.Users, []int64{b.User.ID}) {
			t.Fatalf("? pattern: %+v", r)
		}
		if r, _ := st.Resolve(ctx, "whoever@example.org"); !slices.Equal(r.Users, []int64{a.User.ID}) {
			t.Fatalf("catch-all: %+v", r)
		}
		var pats []string
		f := store.AliasFilter{Domain: "example.org", Limit: 1}
		for range 10 {
			p, err := st.ListAliases(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range p.Aliases {
				pats = append(pats, g.Pattern+"="+strings.Join(g.Targets, ","))
			}
			if p.Next == "" {
				break
			}
			f.Cursor = p.Next
		}
		want := []string{"*@example.org=a@example.org", "sales-??@example.org=b@example.org", "team@example.org=b@example.org,out@elsewhere.example"}
		if !slices.Equal(pats, want) {
			t.Fatalf("paged aliases %q, want %q", pats, want)
		}
		if p, _ := st.ListAliases(ctx, store.AliasFilter{Q: "sa"}); len(p.Aliases) != 1 {
			t.Fatalf("q prefix: %+v", p)
		}
		if err := st.DeleteAlias(ctx, "team@example.org", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Alias(ctx, "team@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted alias: %v", err)
		}
	})
}

// TestDomainRoomOnChanges: raising a user's quota past its domain's
// bound, or an alias's targets past its domain's count, is refused.
func TestDomainRoomOnChanges(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		if _, err := st.AddDomain(ctx, "small.example"); err != nil {
			t.Fatal(err)
		}
		q := int64(1000)
		id, err := st.CreateUsers(ctx, []store.NewUser{{Address: "a@small.example", Password: store.Password{Hash: seedHash}, Overrides: store.LimitOverrides{QuotaBytes: &q}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.SavePlan(ctx, "tiny", store.Limits{QuotaBytes: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetDomainLimits(ctx, "small.example", store.DomainLimits{MaxUsers: 3, MaxAliases: 2, MaxQuotaBytes: 1500, DefaultPlan: "tiny"}); err != nil {
			t.Fatal(err)
		}
		// A bulk create past the domain's users makes none; within, each
		// new user gets the domain's default plan.
		bulk := func(names ...string) error {
			var nus []store.NewUser
			for _, n := range names {
				nus = append(nus, store.NewUser{Address: n + "@small.example", Password: store.Password{Hash: seedHash}})
			}
			_, err := st.CreateUsers(ctx, nus)
			return err
		}
		if err := bulk("b", "c", "d"); !errors.Is(err, store.ErrDomainLimit) {
			t.Fatalf("bulk past max users: %v", err)
		}
		if _, err := st.UserByAddress(ctx, "b@small.example"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused bulk create left a user: %v", err)
		}
		if err := bulk("b"); err != nil {
			t.Fatal(err)
		}
		if info, err := st.UserByAddress(ctx, "b@small.example"); err != nil || !info.PlanID.Valid {
			t.Fatalf("bulk-created user without the default plan: %+v, %v", info, err)
		}
		more := int64(2000)
		if err := st.SetLimits(ctx, id[0], "", store.LimitOverrides{QuotaBytes: &more}); !errors.Is(err, store.ErrDomainLimit) {
			t.Fatalf("quota past the domain's bound: %v", err)
		}
		if err := st.SetLimits(ctx, id[0], "", store.LimitOverrides{}); !errors.Is(err, store.ErrDomainLimit) {
			t.Fatalf("unlimited quota in a bounded domain: %v", err)
		}
		less := int64(1400)
		if err := st.SetLimits(ctx, id[0], "", store.LimitOverrides{QuotaBytes: &less}); err != nil {
			t.Fatalf("quota within the bound: %v", err)
		}
		if _, err := st.SetAlias(ctx, "l@small.example", []string{"x@a.example", "y@a.example", "z@a.example"}, true); !errors.Is(err, store.ErrDomainLimit) {
			t.Fatalf("three targets in a domain of two aliases: %v", err)
		}
		if _, err := st.SetAlias(ctx, "l@small.example", []string{"x@a.example", "y@a.example"}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetAlias(ctx, "l@small.example", []string{"z@a.example"}, false); err != nil {
			t.Fatalf("replacing targets within the bound: %v", err)
		}
	})
}

// TestPreconditionsUnderLock: UpdateUser, DeleteUserIf, SetAliasIf and
// DeleteAliasIf hand their check the row as it is in their transaction,
// so a change made after the caller read (here a suspension, another
// target) refuses the write and nothing changes.
func TestPreconditionsUnderLock(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		a := e.NewUser(t, "a@example.org", false)
		read, err := st.UserByID(ctx, a.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		changed := errors.New("changed since read")
		same := func(u store.User) error {
			if u.SuspendedAt != read.SuspendedAt {
				return changed
			}
			return nil
		}
		if err := st.Suspend(ctx, a.User.ID, "meanwhile"); err != nil {
			t.Fatal(err)
		}
		q := int64(5)
		up := store.UserUpdate{Overrides: store.LimitOverrides{QuotaBytes: &q}, Denied: store.ProtocolSet(0).With(store.ProtoIMAP, true)}
		if err := st.UpdateUser(ctx, a.User.ID, up, same); !errors.Is(err, changed) {
			t.Fatalf("update after a change: %v", err)
		}
		if err := st.DeleteUserIf(ctx, a.User.ID, same); !errors.Is(err, changed) {
			t.Fatalf("delete after a change: %v", err)
		}
		u, err := st.Info(ctx, a.User.ID)
		if err != nil || u.Overrides.QuotaBytes != nil || u.DeniedProtocols != 0 {
			t.Fatalf("a refused update changed the user: %+v, %v", u.User, err)
		}
		if err := st.UpdateUser(ctx, a.User.ID, up, nil); err != nil {
			t.Fatal(err)
		}
		if u, _ := st.Info(ctx, a.User.ID); u.Limits.QuotaBytes != 5 || !u.DeniedProtocols.Has(store.ProtoIMAP) {
			t.Fatalf("update: %+v", u.User)
		}
		if _, err := st.SetAlias(ctx, "x@example.org", []string{"a@example.org"}, true); err != nil {
			t.Fatal(err)
		}
		g, _ := st.Alias(ctx, "x@example.org")
		if _, err := st.SetAlias(ctx, "x@example.org", []string{"b@example.net"}, false); err != nil {
			t.Fatal(err)
		}
		stale := func(now store.AliasGroup) error {
			if !slices.Equal(now.Targets, g.Targets) {
				return changed
			}
			return nil
		}
		if _, err := st.SetAliasIf(ctx, "x@example.org", []string{"c@example.net"}, stale); !errors.Is(err, changed) {
			t.Fatalf("alias replace after a change: %v", err)
		}
		if err := st.DeleteAliasIf(ctx, "x@example.org", stale); !errors.Is(err, changed) {
			t.Fatalf("alias delete after a change: %v", err)
		}
		if now, _ := st.Alias(ctx, "x@example.org"); !slices.Equal(now.Targets, []string{"b@example.net"}) {
			t.Fatalf("alias after refusals: %+v", now)
		}
		if err := st.DeleteUserIf(ctx, a.User.ID, nil); err != nil {
			t.Fatal(err)
		}
	})
}
