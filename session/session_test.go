package session_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

func open(t *testing.T, kind, addr, prefix string, cfg session.Config) *storetest.Env {
	o := storetest.Options{Session: cfg}
	if kind == "redis" {
		o.RedisAddr, o.RedisPrefix = addr, prefix
	}
	return storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, o)
}

func TestAuthenticate(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := context.Background()
		e := open(t, kind, addr, prefix, session.Config{})
		plain := e.NewUser(t, "plain@example.org", false)
		if plain.Key != nil {
			t.Fatal("a plain user got a key")
		}
		sec := e.NewUser(t, "sec@example.org", true)
		if sec.Key == nil || sec.Key.Recipient().String() != sec.User.PublicKey {
			t.Fatal("secure login did not unlock the user's own key")
		}
		for _, tc := range []struct{ login, pw string }{
			{"sec@example.org", "wrong"},
			{"sec@example.org", ""},
			{"sec@example.org", storetest.Password + "x"},
			{"nobody@example.org", storetest.Password},
		} {
			if a, err := e.Session.Authenticate(ctx, tc.login, tc.pw, "198.51.100.7"); !errors.Is(err, session.ErrAuthFailed) || a != nil {
				t.Errorf("Authenticate(%s, %q) = %v, %v; want ErrAuthFailed", tc.login, tc.pw, a, err)
			}
		}
		if err := e.Store.Lock(ctx, plain.User.ID, time.Now().Add(time.Hour), "abuse"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Session.Authenticate(ctx, "plain@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrUserLocked) {
			t.Fatalf("locked user: %v", err)
		}
	})
}

func TestThrottle(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := context.Background()
		e := open(t, kind, addr, prefix, session.Config{FailuresPerIP: 3, FailuresPerNet: 5})
		e.NewUser(t, "alice@example.org", false)
		for i := range 3 {
			if _, err := e.Session.Authenticate(ctx, "alice@example.org", "bad", "203.0.113.1"); !errors.Is(err, session.ErrAuthFailed) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		// The right password does not help a blocked IP.
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "203.0.113.1"); !errors.Is(err, session.ErrThrottled) {
			t.Fatalf("blocked IP: %v", err)
		}
		// Another IP of the /24 still may, until the subnet's count is reached.
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "203.0.113.2"); err != nil {
			t.Fatalf("neighbour IP: %v", err)
		}
		for i := range 2 {
			e.Session.Authenticate(ctx, "alice@example.org", "bad", fmt.Sprintf("203.0.113.%d", 10+i))
		}
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "203.0.113.50"); !errors.Is(err, session.ErrThrottled) {
			t.Fatalf("blocked subnet: %v", err)
		}
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "203.0.114.1"); err != nil {
			t.Fatalf("other subnet: %v", err)
		}
		// IPv6 counts a /64 as one host and a /48 as its network.
		for i := range 3 {
			e.Session.Authenticate(ctx, "alice@example.org", "bad", fmt.Sprintf("2001:db8:1:2::%x", i+1))
		}
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "2001:db8:1:2::99"); !errors.Is(err, session.ErrThrottled) {
			t.Fatalf("blocked /64: %v", err)
		}
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "[2001:db8:1:3::1]:4321"); err != nil {
			t.Fatalf("another /64 of the /48, given as host:port: %v", err)
		}
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "not an address"); err == nil || errors.Is(err, session.ErrAuthFailed) {
			t.Fatalf("unparseable client address: %v", err)
		}
	})
}

// TestThrottleParallel: attempts made at once cannot all slip in while
// the first ones are still hashing.
func TestThrottleParallel(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := context.Background()
		e := open(t, kind, addr, prefix, session.Config{FailuresPerIP: 3, FailuresPerNet: 1000})
		e.NewUser(t, "alice@example.org", false)
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[error]int{}
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.Session.Authenticate(ctx, "alice@example.org", "wrong", "198.51.100.9")
				mu.Lock()
				counts[err]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if counts[session.ErrAuthFailed] != 3 || counts[session.ErrThrottled] != 37 {
			t.Fatalf("40 parallel attempts: %v", counts)
		}
	})
}

func TestPasswordChangeReseals(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{})
	auth := e.NewUser(t, "sec@example.org", true)
	a := e.Account(auth)
	raw := storetest.Message("x@example.org", "sec@example.org", "s", "kept across the change")
	res := storetest.Append(t, a, storetest.Inbox(t, a), raw, store.AppendOptions{})

	if err := e.Session.ChangePassword(ctx, auth.User.ID, "wrong old", "new password 1"); !errors.Is(err, session.ErrAuthFailed) {
		t.Fatalf("change with wrong old password: %v", err)
	}
	if err := e.Session.ChangePassword(ctx, auth.User.ID, storetest.Password, "short"); !errors.Is(err, session.ErrWeakPass) {
		t.Fatalf("short password: %v", err)
	}
	if err := e.Session.ChangePassword(ctx, auth.User.ID, storetest.Password, "new password 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session.Authenticate(ctx, "sec@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrAuthFailed) {
		t.Fatalf("old password still works: %v", err)
	}
	again, err := e.Session.Authenticate(ctx, "sec@example.org", "new password 1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.Account(again).Open(ctx, res.ID)
	if err != nil {
		t.Fatalf("old mail after a password change: %v", err)
	}
	rc.Close()

	// An administrator's reset of a secure user needs consent to new keys.
	if err := e.Session.ResetPassword(ctx, auth.User.ID, "reset password", false); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("reset without new keys: %v", err)
	}
	if err := e.Session.ResetPassword(ctx, auth.User.ID, "reset password", true); err != nil {
		t.Fatal(err)
	}
	reset, err := e.Session.Authenticate(ctx, "sec@example.org", "reset password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if reset.Key.Recipient().String() == again.Key.Recipient().String() {
		t.Fatal("reset kept the old key")
	}
	if _, err := e.Account(reset).Open(ctx, res.ID); err == nil {
		t.Fatal("a new key opened mail sealed to the old one")
	}
}

// TestWebSessions: a web session lives in SQL, so a Redis restart (no
// persistence) ends none; its record there opens nothing without the
// cookie's secret.
func TestWebSessions(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		rs := testsupport.StartRedis(t)
		e := storetest.Open(t, db, storetest.Options{RedisAddr: rs.Addr, RedisPrefix: "t:"})
		auth := e.NewUser(t, "sec@example.org", true)
		token, w, err := e.Session.StartWeb(ctx, auth)
		if err != nil {
			t.Fatal(err)
		}
		rs.Restart()
		got, err := e.Session.Web(ctx, token)
		if err != nil || got.UserID != auth.User.ID || got.CSRF != w.CSRF || got.Key == nil || got.Key.Secret() != auth.Key.Secret() {
			t.Fatalf("Web after a Redis restart = %+v, %v", got, err)
		}
		// The server-side record alone opens nothing: the key in it is sealed.
		rec, err := e.Store.WebSession(ctx, w.ID)
		if err != nil {
			t.Fatalf("session record not found: %v", err)
		}
		entry := struct{ Value []byte }{bytes.Join([][]byte{[]byte(rec.CSRF), rec.SecretHash, rec.SealedKey}, nil)}
		if len(rec.SealedKey) == 0 {
			t.Fatal("a secure user's session keeps no sealed key")
		}
		// Nor does it give the CSRF token away.
		if w.CSRF == "" || bytes.Contains(entry.Value, []byte(w.CSRF)) {
			t.Fatalf("the session record holds the CSRF token %q", w.CSRF)
		}
		if bytes.Contains(entry.Value, []byte(auth.Key.Secret())) || bytes.Contains(entry.Value, []byte("AGE-SECRET-KEY")) {
			t.Fatal("the session record holds the key in the clear")
		}
		// A cookie with the right id and a wrong secret is no session.
		id, _, _ := bytes.Cut([]byte(token), []byte("."))
		forged := string(id) + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if _, err := e.Session.Web(ctx, forged); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("forged secret: %v", err)
		}
		for _, bad := range []string{"", "x", "x.y", token + "x"} {
			if _, err := e.Session.Web(ctx, bad); !errors.Is(err, session.ErrNoSession) {
				t.Errorf("Web(%q) = %v", bad, err)
			}
		}
		secret, _ := base64.RawURLEncoding.DecodeString(token[33:])
		if bytes.Contains(entry.Value, []byte(token[33:])) || bytes.Contains(entry.Value, secret) {
			t.Fatal("the session record holds the cookie's secret")
		}
		// Ending needs the secret as much as opening does.
		if err := e.Session.EndWeb(ctx, forged); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("logout with a forged secret: %v", err)
		}
		if _, err := e.Session.Web(ctx, token); err != nil {
			t.Fatalf("a forged logout ended the session: %v", err)
		}
		if err := e.Session.EndWeb(ctx, token); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Session.Web(ctx, token); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("after logout: %v", err)
		}
		// A plain user's session needs the secret too.
		plain := e.NewUser(t, "plain@example.org", false)
		ptoken, pw, err := e.Session.StartWeb(ctx, plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Session.Web(ctx, pw.ID+".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("plain user's session without its secret: %v", err)
		}
		if _, err := e.Session.Web(ctx, ptoken); err != nil {
			t.Fatal(err)
		}
		// Ended sessions and those of deleted users are pruned.
		if err := e.Store.DeleteUser(ctx, plain.User.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := e.Store.PruneWebSessions(ctx); err != nil || n != 1 {
			t.Fatalf("PruneWebSessions = %d, %v; want the deleted user's one", n, err)
		}
		if _, err := e.Store.WebSession(ctx, pw.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted user's session after pruning: %v", err)
		}
	})
}

// TestWebSessionRevoked: locking a user or changing the password ends the
// user's sessions.
func TestWebSessionRevoked(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{})
	auth := e.NewUser(t, "alice@example.org", false)
	t1, _, _ := e.Session.StartWeb(ctx, auth)
	t2, _, _ := e.Session.StartWeb(ctx, auth)
	if err := e.Session.ChangePassword(ctx, auth.User.ID, storetest.Password, "another password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session.Web(ctx, t1); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("session after password change: %v", err)
	}
	again, err := e.Session.Authenticate(ctx, "alice@example.org", "another password", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t3, _, _ := e.Session.StartWeb(ctx, again)
	if _, err := e.Session.Web(ctx, t3); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.Lock(ctx, auth.User.ID, time.Now().Add(time.Hour), "abuse"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{t2, t3} {
		if _, err := e.Session.Web(ctx, tok); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("session of a locked user: %v", err)
		}
	}
}

func TestWebSessionExpires(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{SessionIdle: time.Second, SessionMaxAge: time.Hour})
	auth := e.NewUser(t, "plain@example.org", false)
	token, _, err := e.Session.StartWeb(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session.Web(ctx, token); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := e.Session.Web(ctx, token); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("idle session alive after its idle timeout: %v", err)
	}
}

// TestThrottleOutage: a login the store could not check (the database
// away) is not a failed login. Without the count given back, an outage
// would spend every address's tries and lock its users out after it.
func TestThrottleOutage(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := context.Background()
		e := open(t, kind, addr, prefix, session.Config{FailuresPerIP: 3, FailuresPerNet: 5})
		e.NewUser(t, "alice@example.org", false)
		e.DB.Close()
		for i := range 10 {
			_, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "203.0.113.9")
			if err == nil || errors.Is(err, session.ErrAuthFailed) || errors.Is(err, session.ErrThrottled) {
				t.Fatalf("attempt %d with the database closed: %v, want the store's error", i+1, err)
			}
		}
	})
}
