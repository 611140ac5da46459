package signup_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
	"basalt/store/signup"
)

// register creates addr from ip as the site does, through
// signup.Registration in the creating transaction.
func register(ctx context.Context, e *storetest.Env, g *signup.Signup, addr string, ip netip.Addr, lim signup.Limit, invite string) error {
	_, err := e.Session.CreateUser(ctx, session.NewUser{Address: addr, Password: storetest.Password,
		UserOptions: store.UserOptions{InTx: g.Registration(ip, lim, invite)}})
	return err
}

// TestBansLimitsInvites: a banned network is refused and unbanned again;
// a network registers at most its day's share (IPv4 /24, IPv6 /64 and
// /48); an invite code is spent once per use, and a refused registration
// leaves no user behind.
func TestBansLimitsInvites(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		g := signup.New(e.Store)
		ip := netip.MustParseAddr("192.0.2.77")

		b, err := g.Ban(ctx, netip.MustParsePrefix("192.0.2.0/25"), "spam wave", time.Time{})
		if err != nil || b.Network != "192.0.2.0/25" {
			t.Fatalf("ban = %+v, %v", b, err)
		}
		if err := g.CheckNetwork(ctx, ip, signup.Limit{}); !errors.Is(err, signup.ErrBanned) {
			t.Fatalf("banned network: %v", err)
		}
		if err := g.CheckNetwork(ctx, netip.MustParseAddr("192.0.2.200"), signup.Limit{}); err != nil {
			t.Fatalf("outside the ban: %v", err)
		}
		if _, err := g.Ban(ctx, netip.MustParsePrefix("198.51.100.0/24"), "old", time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := g.CheckNetwork(ctx, netip.MustParseAddr("198.51.100.1"), signup.Limit{}); err != nil {
			t.Fatalf("expired ban still holds: %v", err)
		}
		if bs, err := g.Bans(ctx); err != nil || len(bs) != 1 {
			t.Fatalf("bans in force = %+v, %v", bs, err)
		}
		if err := g.Unban(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if err := g.Unban(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second unban: %v", err)
		}

		lim := signup.Limit{PerNetwork: 2, PerWide: 3}
		for i, addr := range []string{"a1@example.org", "a2@example.org"} {
			if err := register(ctx, e, g, addr, netip.MustParseAddr("192.0.2."+string(rune('1'+i))), lim, ""); err != nil {
				t.Fatalf("register %s: %v", addr, err)
			}
		}
		if err := g.CheckNetwork(ctx, ip, lim); !errors.Is(err, signup.ErrTooMany) {
			t.Fatalf("third from the /24, early check: %v", err)
		}
		if err := register(ctx, e, g, "a3@example.org", ip, lim, ""); !errors.Is(err, signup.ErrTooMany) {
			t.Fatalf("third from the /24: %v", err)
		}
		if _, err := e.Store.UserByAddress(ctx, "a3@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("refused registration left a user: %v", err)
		}
		// IPv6: two per /64, three per /48.
		for i, s := range []string{"2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:1:2::1"} {
			if err := register(ctx, e, g, "b"+string(rune('1'+i))+"@example.org", netip.MustParseAddr(s), lim, ""); err != nil {
				t.Fatalf("register from %s: %v", s, err)
			}
		}
		if err := g.CheckNetwork(ctx, netip.MustParseAddr("2001:db8:1:2::9"), lim); !errors.Is(err, signup.ErrTooMany) {
			t.Fatalf("fourth from the /48: %v", err)
		}
		if err := g.CheckNetwork(ctx, netip.MustParseAddr("2001:db8:2::1"), lim); err != nil {
			t.Fatalf("another /48: %v", err)
		}

		inv, err := g.CreateInvite(ctx, 1, "for carol", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		other := netip.MustParseAddr("203.0.113.5")
		if err := g.CheckInvite(ctx, inv.Code); err != nil {
			t.Fatalf("fresh invite: %v", err)
		}
		if err := register(ctx, e, g, "c1@example.org", other, lim, "WRONGCODE"); !errors.Is(err, signup.ErrInvite) {
			t.Fatalf("wrong invite: %v", err)
		}
		if _, err := e.Store.UserByAddress(ctx, "c1@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("wrong invite left a user: %v", err)
		}
		if err := register(ctx, e, g, "c1@example.org", other, lim, inv.Code); err != nil {
			t.Fatalf("with the invite: %v", err)
		}
		if err := g.CheckInvite(ctx, inv.Code); !errors.Is(err, signup.ErrInvite) {
			t.Fatalf("used-up invite: %v", err)
		}
		if err := register(ctx, e, g, "c2@example.org", other, lim, inv.Code); !errors.Is(err, signup.ErrInvite) {
			t.Fatalf("used-up invite spent again: %v", err)
		}
		multi, err := g.CreateInvite(ctx, 2, "", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if is, err := g.Invites(ctx); err != nil || len(is) != 1 || is[0].Code != multi.Code || is[0].UsesLeft != 2 {
			t.Fatalf("invites = %+v, %v", is, err)
		}
		if err := g.DeleteInvite(ctx, multi.Code); err != nil {
			t.Fatal(err)
		}
		if err := g.CheckInvite(ctx, multi.Code); !errors.Is(err, signup.ErrInvite) {
			t.Fatalf("deleted invite: %v", err)
		}
	})
}

// TestApproval: an account created pending cannot log in until approved.
func TestApproval(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		g := signup.New(e.Store)
		until, reason := signup.PendingLock()
		u, err := e.Session.CreateUser(ctx, session.NewUser{Address: "p@example.org", Password: storetest.Password,
			UserOptions: store.UserOptions{LockedUntil: until, LockReason: reason}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Session.Authenticate(ctx, "p@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrUserLocked) {
			t.Fatalf("pending login: %v", err)
		}
		if ps, err := g.Pending(ctx); err != nil || len(ps) != 1 || ps[0].ID != u.ID {
			t.Fatalf("pending = %+v, %v", ps, err)
		}
		if err := g.Approve(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Session.Authenticate(ctx, "p@example.org", storetest.Password, "127.0.0.1"); err != nil {
			t.Fatalf("approved login: %v", err)
		}
		if err := g.Approve(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second approval: %v", err)
		}
	})
}

// TestCaptchaOneUse: a captcha's answer is taken once; the second take,
// right or wrong, gets nothing. Making captchas is rate-limited.
func TestCaptchaOneUse(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{RedisAddr: addr, RedisPrefix: prefix})
		ctx := context.Background()
		g := signup.New(e.Store)
		if err := g.PutCaptcha(ctx, "id1", []byte{1, 2, 3}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if d, ok, err := g.Captcha(ctx, "id1"); err != nil || !ok || len(d) != 3 {
			t.Fatalf("captcha = %v %v %v", d, ok, err)
		}
		if d, ok, err := g.TakeCaptcha(ctx, "id1", time.Minute); err != nil || !ok || string(d) != "\x01\x02\x03" {
			t.Fatalf("first take = %v %v %v", d, ok, err)
		}
		if _, ok, err := g.TakeCaptcha(ctx, "id1", time.Minute); err != nil || ok {
			t.Fatalf("second take = %v %v", ok, err)
		}
		if _, ok, _ := g.Captcha(ctx, "id1"); ok {
			t.Fatal("a taken captcha can still be drawn")
		}
		// A guessed id writes nothing: no counter left in the cache.
		if _, ok, err := g.TakeCaptcha(ctx, "guessed", time.Minute); err != nil || ok {
			t.Fatalf("take of an unknown id = %v %v", ok, err)
		}
		// (Incr by 0 reads a counter.)
		if n, err := e.Cache.Incr(ctx, "signup:captcha-taken:guessed", 0, time.Minute); err != nil || n != 0 {
			t.Fatalf("an unknown id left a counter: %d %v", n, err)
		}
		if n, err := e.Cache.Incr(ctx, "signup:captcha-taken:id1", 0, time.Minute); err != nil || n != 1 {
			t.Fatalf("the counter is not where this test looks: %d %v", n, err)
		}
		for i := range 3 {
			if err := g.Admit(ctx, "captcha", "192.0.2.0/24", 3, time.Hour); err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
		if err := g.Admit(ctx, "captcha", "192.0.2.0/24", 3, time.Hour); !errors.Is(err, signup.ErrRateLimited) {
			t.Fatalf("fourth request: %v", err)
		}
	})
}

// TestMappedAddresses: an IPv4 client seen as an IPv4-mapped IPv6
// address (a dual-stack listener) is the IPv4 client: a ban written
// either way covers it, and its registrations count against its /24.
func TestMappedAddresses(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		g := signup.New(e.Store)
		b, err := g.Ban(ctx, netip.MustParsePrefix("::ffff:198.51.100.0/120"), "spam", time.Time{})
		if err != nil || b.Network != "198.51.100.0/24" {
			t.Fatalf("ban of a mapped network = %+v, %v", b, err)
		}
		for _, ip := range []string{"198.51.100.7", "::ffff:198.51.100.7"} {
			if err := g.CheckNetwork(ctx, netip.MustParseAddr(ip), signup.Limit{}); !errors.Is(err, signup.ErrBanned) {
				t.Errorf("%s under a mapped ban: %v", ip, err)
			}
		}
		if _, err := g.Ban(ctx, netip.MustParsePrefix("203.0.113.0/24"), "spam", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := g.CheckNetwork(ctx, netip.MustParseAddr("::ffff:203.0.113.9"), signup.Limit{}); !errors.Is(err, signup.ErrBanned) {
			t.Errorf("mapped client under an IPv4 ban: %v", err)
		}

		lim := signup.Limit{PerNetwork: 2, PerWide: 2}
		for i, ip := range []string{"::ffff:192.0.2.1", "192.0.2.2"} {
			if err := register(ctx, e, g, "m"+string(rune('1'+i))+"@example.org", netip.MustParseAddr(ip), lim, ""); err != nil {
				t.Fatalf("register from %s: %v", ip, err)
			}
		}
		for _, ip := range []string{"192.0.2.3", "::ffff:192.0.2.3"} {
			if err := g.CheckNetwork(ctx, netip.MustParseAddr(ip), lim); !errors.Is(err, signup.ErrTooMany) {
				t.Errorf("third from the /24 as %s: %v", ip, err)
			}
		}
	})
}

// TestPages: the admin API's pages (BansAfter, InvitesAfter,
// PendingAfter) walk their rows in key order, skip what is no longer in
// force, and PendingAfter keeps only the domains asked for; the single
// row look-ups find expired rows too and say store.ErrNotFound for none.
func TestPages(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		for _, d := range []string{"a.test", "b.test"} {
			if _, err := e.Store.AddDomain(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		g := signup.New(e.Store)
		for _, n := range []string{"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32", "203.0.113.0/24"} {
			if _, err := g.Ban(ctx, netip.MustParsePrefix(n), "r", time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		old, err := g.Ban(ctx, netip.MustParsePrefix("10.0.0.0/8"), "old", time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for after := ""; ; {
			bs, err := g.BansAfter(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				got = append(got, b.Network)
			}
			if len(bs) < 2 {
				break
			}
			after = bs[len(bs)-1].Network
		}
		if want := []string{"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32", "203.0.113.0/24"}; !slices.Equal(got, want) {
			t.Errorf("bans paged = %v, want %v", got, want)
		}
		if b, err := g.BanByID(ctx, old.ID); err != nil || b.Network != "10.0.0.0/8" {
			t.Errorf("expired ban by id = %+v, %v", b, err)
		}
		if _, err := g.BanByID(ctx, old.ID+100); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("no such ban: %v", err)
		}
		if b, ok, err := g.BanOn(ctx, netip.MustParsePrefix("192.0.2.9/24")); err != nil || !ok || b.Reason != "r" {
			t.Errorf("ban on a network given with host bits = %+v %v %v", b, ok, err)
		}
		if _, ok, err := g.BanOn(ctx, netip.MustParsePrefix("192.0.3.0/24")); err != nil || ok {
			t.Errorf("ban on an unbanned network: %v %v", ok, err)
		}

		var codes []string
		for range 3 {
			inv, err := g.CreateInvite(ctx, 1, "", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, inv.Code)
		}
		expired, err := g.CreateInvite(ctx, 1, "", time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(codes)
		first, err := g.InvitesAfter(ctx, "", 2)
		if err != nil || len(first) != 2 || first[0].Code != codes[0] || first[1].Code != codes[1] {
			t.Fatalf("first page of invites = %+v, %v (want %v)", first, err, codes)
		}
		if rest, err := g.InvitesAfter(ctx, first[1].Code, 2); err != nil || len(rest) != 1 || rest[0].Code != codes[2] {
			t.Fatalf("second page of invites = %+v, %v", rest, err)
		}
		if inv, err := g.InviteByCode(ctx, strings.ToLower(expired.Code)); err != nil || inv.Code != expired.Code {
			t.Errorf("expired invite by code = %+v, %v", inv, err)
		}
		if _, err := g.InviteByCode(ctx, "NOSUCHCODE"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("no such invite: %v", err)
		}

		until, reason := signup.PendingLock()
		var ids []int64
		for _, addr := range []string{"p1@a.test", "p2@b.test", "p3@a.test"} {
			u, err := e.Session.CreateUser(ctx, session.NewUser{Address: addr, Password: storetest.Password,
				UserOptions: store.UserOptions{LockedUntil: until, LockReason: reason}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		if _, err := e.Session.CreateUser(ctx, session.NewUser{Address: "open@a.test", Password: storetest.Password}); err != nil {
			t.Fatal(err)
		}
		addrs := func(us []store.User) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.Address)
			}
			return out
		}
		if us, err := g.PendingAfter(ctx, 0, nil, 2); err != nil || !slices.Equal(addrs(us), []string{"p1@a.test", "p2@b.test"}) {
			t.Errorf("first page of pending = %v, %v", addrs(us), err)
		}
		if us, err := g.PendingAfter(ctx, ids[1], nil, 2); err != nil || !slices.Equal(addrs(us), []string{"p3@a.test"}) {
			t.Errorf("second page of pending = %v, %v", addrs(us), err)
		}
		if us, err := g.PendingAfter(ctx, 0, []string{"a.test"}, 10); err != nil || !slices.Equal(addrs(us), []string{"p1@a.test", "p3@a.test"}) {
			t.Errorf("pending of a.test = %v, %v", addrs(us), err)
		}
	})
}
