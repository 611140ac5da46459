package admin_test

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/admin"
)

var local = netip.MustParseAddr("127.0.0.1")

// principal makes an admin granted a and a key of a, and authenticates it.
func principal(t *testing.T, s *admin.Store, name string, a admin.Authority) (*admin.Principal, string) {
	t.Helper()
	ctx := context.Background()
	ad, err := s.CreateAdmin(ctx, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddGrant(ctx, nil, ad.ID, admin.Authority{Scopes: a.Scopes, Domains: a.Domains}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := s.CreateKey(ctx, nil, admin.NewKey{AdminID: ad.ID, Authority: a})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, secret, local)
	if err != nil {
		t.Fatal(err)
	}
	return p, secret
}

// TestNoWiderKeys: whatever a key asks for, it never makes a key or a
// grant wider than itself (scopes, domains, networks, expiry), and the
// secret authenticates only as it is.
func TestNoWiderKeys(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		s := admin.New(e.Store)
		ctx := context.Background()
		exp := time.Now().Add(time.Hour).Unix()
		nets, _ := admin.ParseNetworks([]string{"127.0.0.0/8"})
		p, secret := principal(t, s, "panel", admin.Authority{Scopes: []string{"users:write", "keys:write", "admins:write"},
			Domains: []string{"a.test"}, Networks: nets, Expires: exp})
		wider := []admin.Authority{
			{Scopes: []string{"domains:write"}, Domains: []string{"a.test"}, Networks: nets, Expires: exp},         // scope
			{Scopes: []string{"*"}, Domains: []string{"a.test"}, Networks: nets, Expires: exp},                     // every scope
			{Scopes: []string{"users:*"}, Domains: []string{"a.test"}, Networks: nets, Expires: exp},               // users:* is more than users:write? no: equal
			{Scopes: []string{"users:write"}, Domains: []string{"b.test"}, Networks: nets, Expires: exp},           // domain
			{Scopes: []string{"users:write"}, Networks: nets, Expires: exp},                                        // every domain
			{Scopes: []string{"users:write"}, Domains: []string{"a.test", "b.test"}, Networks: nets, Expires: exp}, // one domain more
			{Scopes: []string{"users:write"}, Domains: []string{"a.test"}, Expires: exp},                           // every network
			{Scopes: []string{"users:write"}, Domains: []string{"a.test"}, Networks: mustNets("10.0.0.0/8"), Expires: exp},
			{Scopes: []string{"users:write"}, Domains: []string{"a.test"}, Networks: mustNets("0.0.0.0/0"), Expires: exp},
			{Scopes: []string{"users:write"}, Domains: []string{"a.test"}, Networks: nets},                    // never expires
			{Scopes: []string{"users:write"}, Domains: []string{"a.test"}, Networks: nets, Expires: exp + 60}, // outlives
		}
		for i, w := range wider {
			if i == 2 {
				// users:* stands for users:read and users:write, both held.
				if _, _, err := s.CreateKey(ctx, p, admin.NewKey{AdminID: p.Admin.ID, Authority: w}); err != nil {
					t.Errorf("users:* within users:write: %v", err)
				}
				continue
			}
			if _, _, err := s.CreateKey(ctx, p, admin.NewKey{AdminID: p.Admin.ID, Authority: w}); !errors.Is(err, admin.ErrWider) && !errors.Is(err, admin.ErrForbidden) {
				t.Errorf("key %d %+v: %v, want refused", i, w, err)
			}
			if _, err := s.AddGrant(ctx, p, p.Admin.ID, w); (i <= 5) && !errors.Is(err, admin.ErrWider) && !errors.Is(err, admin.ErrForbidden) {
				t.Errorf("grant %d %+v: %v, want refused", i, w, err)
			}
		}
		// As narrow or narrower: made.
		k, sec2, err := s.CreateKey(ctx, p, admin.NewKey{AdminID: p.Admin.ID, Authority: admin.Authority{Scopes: []string{"users:read"},
			Domains: []string{"a.test"}, Networks: mustNets("127.0.0.1/32"), Expires: exp - 60}})
		if err != nil {
			t.Fatal(err)
		}
		if k.CreatedBy != p.Key.ID {
			t.Errorf("created by %d", k.CreatedBy)
		}
		// An admin made by a key has no grants, so it widens nothing; a
		// domain-limited key cannot make one (admins:write over every
		// domain is needed).
		if _, err := s.CreateAdmin(ctx, p, "x"); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("a domain-limited key made an admin: %v", err)
		}
		// Secrets: only the exact one, from the key's networks, until
		// it is revoked.
		// The last character changed (to one it is not).
		last := "A"
		if secret[len(secret)-1] == 'A' {
			last = "B"
		}
		for _, bad := range []string{secret + "x", secret[:len(secret)-1] + last, "bsk_" + k.Prefix + "_x", ""} {
			if _, err := s.Authenticate(ctx, bad, local); !errors.Is(err, admin.ErrUnauthorized) {
				t.Errorf("secret %q: %v", bad, err)
			}
		}
		if _, err := s.Authenticate(ctx, sec2, netip.MustParseAddr("127.0.0.2")); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("from outside the key's network: %v", err)
		}
		if _, err := s.Authenticate(ctx, sec2, local); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeKey(ctx, p, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, sec2, local); !errors.Is(err, admin.ErrUnauthorized) {
			t.Errorf("revoked key: %v", err)
		}
		// An expired key.
		root, _ := principal(t, s, "root", admin.Authority{Scopes: []string{"*"}})
		// Expiry is in whole seconds: two ahead is in the future whenever
		// the check runs within the next one.
		expires := time.Now().Unix() + 2
		_, sec3, err := s.CreateKey(ctx, root, admin.NewKey{AdminID: root.Admin.ID, Authority: admin.Authority{Scopes: []string{"*"}, Expires: expires}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateKey(ctx, root, admin.NewKey{AdminID: p.Admin.ID, Authority: admin.Authority{Scopes: []string{"domains:write"}}}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a key beyond its admin's grants: %v", err)
		}
		if _, err := s.Authenticate(ctx, sec3, local); err != nil {
			t.Fatalf("the key before its expiry: %v", err)
		}
		for time.Now().Unix() < expires {
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := s.Authenticate(ctx, sec3, local); !errors.Is(err, admin.ErrUnauthorized) {
			t.Errorf("expired key: %v", err)
		}
	})
}

func mustNets(ss ...string) []netip.Prefix {
	n, err := admin.ParseNetworks(ss)
	if err != nil {
		panic(err)
	}
	return n
}

// TestIdempotency: a claim replays its response to the same request,
// refuses another, and is forgotten when abandoned.
func TestIdempotency(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	s := admin.New(e.Store)
	ctx := context.Background()
	if r, err := s.BeginIdempotent(ctx, 1, "k", []byte("h1")); r != nil || err != nil {
		t.Fatalf("first: %v %v", r, err)
	}
	if _, err := s.BeginIdempotent(ctx, 1, "k", []byte("h1")); !errors.Is(err, admin.ErrIdempotencyBusy) {
		t.Errorf("while running: %v", err)
	}
	if err := s.FinishIdempotent(ctx, 1, "k", admin.Response{Status: 201, ContentType: "application/json", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.BeginIdempotent(ctx, 1, "k", []byte("h1")); err != nil || r == nil || r.Status != 201 {
		t.Errorf("replay: %+v %v", r, err)
	}
	if _, err := s.BeginIdempotent(ctx, 1, "k", []byte("h2")); !errors.Is(err, admin.ErrIdempotencyReused) {
		t.Errorf("other body: %v", err)
	}
	if r, err := s.BeginIdempotent(ctx, 2, "k", []byte("h2")); r != nil || err != nil {
		t.Errorf("another key's: %v %v", r, err)
	}
	if err := s.AbandonIdempotent(ctx, 2, "k"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.BeginIdempotent(ctx, 2, "k", []byte("h3")); r != nil || err != nil {
		t.Errorf("after abandon: %v %v", r, err)
	}
}

// TestJobsSurviveRestart: a job whose runner stopped mid-way (as in a
// crash) is resumed by the next runner and finishes; one interrupted
// too often is failed.
func TestJobsSurviveRestart(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		s := admin.New(e.Store)
		ctx := context.Background()
		j, err := s.EnqueueJob(ctx, "count", "a.test", map[string]int{"to": 10})
		if err != nil {
			t.Fatal(err)
		}
		var done atomic.Int64
		started := make(chan struct{}, 1)
		// The first runner dies after 3 items.
		r1 := s.NewRunner(admin.RunnerConfig{Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond})
		c1, stop1 := context.WithCancel(ctx)
		r1.Handle("count", func(ctx context.Context, j admin.Job, p admin.Progress) (any, error) {
			for done.Load() < 10 {
				if done.Load() == 3 {
					started <- struct{}{}
					<-ctx.Done()
					return nil, ctx.Err()
				}
				done.Add(1)
				if err := p.Set(done.Load(), 10); err != nil {
					return nil, err
				}
			}
			return map[string]int64{"counted": done.Load()}, nil
		})
		end1 := make(chan struct{})
		go func() { defer close(end1); r1.Run(c1) }()
		<-started
		stop1()
		<-end1
		got, _ := s.Job(ctx, j.ID)
		if got.State != admin.JobRunning || got.Progress != 3 {
			t.Fatalf("after the crash: %+v", got)
		}
		// The next runner resumes it once its lease has run out.
		r2 := s.NewRunner(admin.RunnerConfig{Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond})
		r2.Handle("count", func(ctx context.Context, j admin.Job, p admin.Progress) (any, error) {
			for done.Load() < 10 {
				done.Add(1)
				if err := p.Set(done.Load(), 10); err != nil {
					return nil, err
				}
			}
			return map[string]int64{"counted": done.Load()}, nil
		})
		c2, stop2 := context.WithCancel(ctx)
		end2 := make(chan struct{})
		go func() { defer close(end2); r2.Run(c2) }()
		deadline := time.Now().Add(10 * time.Second)
		for got.State != admin.JobDone && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			got, _ = s.Job(ctx, j.ID)
		}
		stop2()
		<-end2
		if got.State != admin.JobDone || got.Progress != 10 || got.Attempts != 2 || got.Result != `{"counted":10}` {
			t.Fatalf("resumed job: %+v", got)
		}

		// A job interrupted MaxAttempts times is failed at the next start.
		j2, err := s.EnqueueJob(ctx, "hang", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			r := s.NewRunner(admin.RunnerConfig{Lease: 100 * time.Millisecond, Poll: 10 * time.Millisecond, MaxAttempts: 2})
			hung := make(chan struct{}, 1)
			r.Handle("hang", func(ctx context.Context, j admin.Job, p admin.Progress) (any, error) {
				hung <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			})
			c, stop := context.WithCancel(ctx)
			end := make(chan struct{})
			go func() { defer close(end); r.Run(c) }()
			<-hung
			stop()
			<-end
			time.Sleep(150 * time.Millisecond)
		}
		r3 := s.NewRunner(admin.RunnerConfig{Lease: 100 * time.Millisecond, MaxAttempts: 2})
		if err := r3.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Job(ctx, j2.ID)
		if got.State != admin.JobFailed || len(got.ErrorList()) != 1 {
			t.Errorf("job interrupted twice: %+v", got)
		}
	})
}

// TestKeyNetworks: a key's networks are matched against the client's
// address unmapped, whichever way either is written: an IPv4 network
// given IPv4-mapped (::ffff:10.0.0.0/104) is the IPv4 one, and a client
// on an IPv6 socket (::ffff:10.1.2.3) is its IPv4 address.
func TestKeyNetworks(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		s := admin.New(e.Store)
		ctx := context.Background()
		ad, err := s.CreateAdmin(ctx, nil, "panel")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddGrant(ctx, nil, ad.ID, admin.Authority{Scopes: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
		for _, given := range []string{"10.0.0.0/8", "::ffff:10.0.0.0/104", "::ffff:10.1.2.3"} {
			nets, err := admin.ParseNetworks([]string{given})
			if err != nil {
				t.Fatal(err)
			}
			k, secret, err := s.CreateKey(ctx, nil, admin.NewKey{AdminID: ad.ID, Name: given, Authority: admin.Authority{Scopes: []string{"*"}, Networks: nets}})
			if err != nil {
				t.Fatal(err)
			}
			if n := k.Authority.Networks[0]; !n.Addr().Is4() {
				t.Errorf("%s is kept as %s", given, n)
			}
			for from, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "10.9.9.9": given != "::ffff:10.1.2.3", "11.0.0.1": false, "::1": false} {
				_, err := s.Authenticate(ctx, secret, netip.MustParseAddr(from))
				if (err == nil) != want {
					t.Errorf("key of %s from %s: %v, want allowed=%v", given, from, err, want)
				}
			}
		}
	})
}

// TestKeyForAnotherAdmin: a key made for another admin acts as that admin
// and outlives the grants of the admin who made it: it needs admins:write
// over its domains, as a grant to that admin would, however narrow it is.
func TestKeyForAnotherAdmin(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		s := admin.New(e.Store)
		ctx := context.Background()
		root, _ := principal(t, s, "root", admin.Authority{Scopes: []string{"*"}})
		panel, _ := principal(t, s, "panel", admin.Authority{Scopes: []string{"keys:write", "users:write"}, Domains: []string{"a.test"}})
		delegate, _ := principal(t, s, "delegate", admin.Authority{Scopes: []string{"keys:write", "users:write", "admins:write"}, Domains: []string{"a.test"}})
		narrow := admin.Authority{Scopes: []string{"users:write"}, Domains: []string{"a.test"}}
		if _, _, err := s.CreateKey(ctx, panel, admin.NewKey{AdminID: root.Admin.ID, Authority: narrow}); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("a key for another admin without admins:write: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, panel, admin.NewKey{AdminID: panel.Admin.ID, Authority: narrow}); err != nil {
			t.Errorf("a key for its own admin: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, delegate, admin.NewKey{AdminID: root.Admin.ID, Authority: narrow}); err != nil {
			t.Errorf("a key for another admin with admins:write over its domain: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, delegate, admin.NewKey{AdminID: root.Admin.ID, Authority: admin.Authority{Scopes: []string{"users:write"}, Domains: []string{"b.test"}}}); err == nil {
			t.Error("a key over a domain the delegate does not hold")
		}
	})
}
