package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"basalt/crypt"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
)

// TestLoginCache: a second login with the same password costs no hash; a
// wrong password is never taken from the cache; a password changed on
// another node, a lock and a deletion all take effect at once; secure
// users are not cached.
func TestLoginCache(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		// A throttle that stays out of the way: this is about the cache.
		o := storetest.Options{Session: session.Config{FailuresPerAccount: 100}}
		e := storetest.Open(t, db, o)
		o.BlobDir = e.BlobDir
		other := storetest.Open(t, db, o) // a second node
		alice := e.NewUser(t, "alice@example.org", false)
		svc := e.Session
		login := func(pw string) error {
			_, err := svc.Authenticate(ctx, "alice@example.org", pw, "127.0.0.1")
			return err
		}
		// NewUser logged in once, so the password is cached already.
		for _, tc := range []struct {
			name   string
			pw     string
			want   error
			hashes int64 // verifications this login costs
		}{
			{"cached", storetest.Password, nil, 0},
			{"cached again", storetest.Password, nil, 0},
			{"wrong", "wrong password", session.ErrAuthFailed, 1},
			{"wrong again", "wrong password", session.ErrAuthFailed, 1},
			{"differs by a byte", storetest.Password + " ", session.ErrAuthFailed, 1},
			{"still cached", storetest.Password, nil, 0},
		} {
			before := svc.Verifications()
			if err := login(tc.pw); !errors.Is(err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
			}
			if got := svc.Verifications() - before; got != tc.hashes {
				t.Fatalf("%s: %d hashes, want %d", tc.name, got, tc.hashes)
			}
		}

		// A password change on another node: the old password fails here.
		if err := other.Session.ChangePassword(ctx, alice.User.ID, storetest.Password, "a new password"); err != nil {
			t.Fatal(err)
		}
		if err := login(storetest.Password); !errors.Is(err, session.ErrAuthFailed) {
			t.Fatalf("old password after a change elsewhere: %v", err)
		}
		if err := login("a new password"); err != nil {
			t.Fatal(err)
		}
		before := svc.Verifications()
		if err := login("a new password"); err != nil || svc.Verifications() != before {
			t.Fatalf("new password, second time: %v, %d hashes", err, svc.Verifications()-before)
		}

		// A lock, set on another node, refuses the cached login.
		if err := other.Store.Lock(ctx, alice.User.ID, time.Now().Add(time.Hour), "abuse"); err != nil {
			t.Fatal(err)
		}
		if err := login("a new password"); !errors.Is(err, session.ErrUserLocked) {
			t.Fatalf("cached login of a locked user: %v", err)
		}
		if err := other.Store.Lock(ctx, alice.User.ID, time.Time{}, ""); err != nil {
			t.Fatal(err)
		}
		if err := login("a new password"); err != nil {
			t.Fatalf("after unlocking: %v", err)
		}
		// Deleted: no login, cached or not.
		if err := other.Store.DeleteUser(ctx, alice.User.ID); err != nil {
			t.Fatal(err)
		}
		if err := login("a new password"); !errors.Is(err, session.ErrAuthFailed) {
			t.Fatalf("cached login of a deleted user: %v", err)
		}

		// A secure user's login unlocks the key from the password every
		// time: nothing of it is cached.
		sec := e.NewUser(t, "sec@example.org", true)
		before = svc.Verifications()
		a, err := svc.Authenticate(ctx, "sec@example.org", storetest.Password, "127.0.0.1")
		if err != nil || a.Key == nil || a.Key.Secret() != sec.Key.Secret() {
			t.Fatalf("secure login: %v", err)
		}
		if svc.Verifications() != before+1 {
			t.Fatalf("secure login cost %d hashes, want 1", svc.Verifications()-before)
		}
	})
}

// TestLoginCacheExpires: an entry lasts the configured time; off is off.
func TestLoginCacheExpires(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		wait   time.Duration
		hashes int64
	}{
		{"within", time.Hour, 0, 0},
		{"expired", 200 * time.Millisecond, 300 * time.Millisecond, 1},
		{"off", -1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := open(t, "memory", "", "", session.Config{LoginCache: tc.ttl})
			e.NewUser(t, "alice@example.org", false)
			time.Sleep(tc.wait)
			before := e.Session.Verifications()
			if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			if got := e.Session.Verifications() - before; got != tc.hashes {
				t.Fatalf("%d hashes, want %d", got, tc.hashes)
			}
		})
	}
}

// TestLoginCacheConcurrent: a client opening many connections at once
// with the same password costs one hash, not one per connection; a wrong
// password at once from many is still checked by each.
func TestLoginCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{FailuresPerAccount: 100})
	e.NewUser(t, "alice@example.org", false)
	for _, tc := range []struct {
		pw     string
		want   error
		hashes int64
	}{
		{storetest.Password, nil, 1},
		{"wrong password", session.ErrAuthFailed, 10},
	} {
		svc := session.New(e.Store, e.Cache, session.Config{KDF: crypt.TestKDF(), FailuresPerAccount: 100}, nil) // an empty cache
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.Authenticate(ctx, "alice@example.org", tc.pw, "127.0.0.1")
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, tc.want) {
				t.Fatalf("%q: %v, want %v", tc.pw, err, tc.want)
			}
		}
		if got := svc.Verifications(); got != tc.hashes {
			t.Fatalf("10 logins at once with %q: %d hashes, want %d", tc.pw, got, tc.hashes)
		}
	}
}

// TestLoginBurst: clients that open their connections at once (Thunderbird
// opens several, imaptest ten; 200 here) log in on all of them under the default
// limits. The logins waiting for one hash used to be counted together
// once it was done, past the per-account limit, and most were refused.
func TestLoginBurst(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{})
	alice := e.NewUser(t, "alice@example.org", false)
	// A hash that takes a while, as real ones do, so that the logins
	// pile up waiting for it.
	slow := crypt.KDFParams{Time: 2, MemoryKiB: 8 * 1024, Threads: 1}
	svc := session.New(e.Store, e.Cache, session.Config{KDF: slow}, nil)
	if err := svc.ResetPassword(ctx, alice.User.ID, storetest.Password, false); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Authenticate(ctx, "alice@example.org", storetest.Password, "192.0.2.7")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("one of 200 logins at once: %v", err)
		}
	}
	// The guesses after them are still bounded.
	if got := guesses(t, svc, "alice@example.org", 50, func(int) string { return "192.0.2.7" }); got != 5 {
		t.Fatalf("50 guesses after the burst tried %d, want the default 5", got)
	}
}
