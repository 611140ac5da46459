package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"basalt/crypt"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
)

// guesses makes n wrong-password attempts at login from the addresses
// addr(i) gives, eight at a time as a guesser with several connections
// would, and returns how many were tried (answered ErrAuthFailed rather
// than ErrThrottled).
func guesses(t *testing.T, svc *session.Service, login string, n int, addr func(i int) string) int {
	t.Helper()
	var tried atomic.Int64
	next := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := svc.Authenticate(context.Background(), login, fmt.Sprintf("guess %d", i), addr(i))
				switch {
				case errors.Is(err, session.ErrAuthFailed):
					tried.Add(1)
				case errors.Is(err, session.ErrThrottled):
				default:
					select {
					case errs <- fmt.Errorf("guess %d from %s: %w", i, addr(i), err):
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return int(tried.Load())
}

// TestThrottleBounds: a flood of guesses at one account gets the
// configured tries whichever way it spreads over addresses, while others
// behind the same addresses still log in.
func TestThrottleBounds(t *testing.T) {
	cfg := session.Config{FailuresPerAccount: 5, FailuresPerAccountAll: 12, FailuresPerIP: 8, FailuresPerNet: 16,
		BanTime: time.Hour, MaxBan: time.Hour}
	for _, tc := range []struct {
		name string
		addr func(i int) string
		n    int
		want int
	}{
		// One /24 (an office or carrier NAT): the account's count there.
		{"one /24", func(i int) string { return fmt.Sprintf("203.0.113.%d", 1+i%254) }, 1000, 5},
		{"one address", func(i int) string { return "203.0.113.7" }, 100, 5},
		// IPv6: a /48 is one network, however many /64s it holds.
		{"spread over a /48", func(i int) string { return fmt.Sprintf("2001:db8:5:%x::%x", i, i+1) }, 300, 5},
		// Every guess from a network of its own: the account-wide count.
		{"a /48 each", func(i int) string { return fmt.Sprintf("2001:db8:%x::1", i+16) }, 100, 12},
		{"a /24 each", func(i int) string { return fmt.Sprintf("10.%d.%d.1", i/256, i%256) }, 100, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
				e := open(t, kind, addr, prefix, cfg)
				e.NewUser(t, "alice@example.org", false)
				if got := guesses(t, e.Session, "alice@example.org", tc.n, tc.addr); got != tc.want {
					t.Fatalf("%d guesses tried %d times, want %d", tc.n, got, tc.want)
				}
				// The right password is no way around a ban.
				if _, err := e.Session.Authenticate(context.Background(), "alice@example.org", storetest.Password, tc.addr(0)); !errors.Is(err, session.ErrThrottled) {
					t.Fatalf("right password after the flood: %v, want ErrThrottled", err)
				}
			})
		})
	}
}

// TestThrottleNeighbours: after a flood from one address, a user who has
// logged in from that network before logs in at once; a user new to it
// waits out a short ban, not a day; an unknown account's guesses are
// bounded like a known one's.
func TestThrottleNeighbours(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := context.Background()
		ban := time.Second
		e := open(t, kind, addr, prefix, session.Config{FailuresPerAccount: 5, FailuresPerIP: 8, FailuresPerNet: 16,
			BanTime: ban, MaxBan: ban})
		e.NewUser(t, "alice@example.org", false)
		e.NewUser(t, "bob@example.org", false)
		e.NewUser(t, "carol@example.org", false)
		const nat = "198.51.100.20"
		if _, err := e.Session.Authenticate(ctx, "bob@example.org", storetest.Password, nat); err != nil {
			t.Fatalf("bob's earlier login: %v", err)
		}
		// A spray: many accounts, known and not, from the one address.
		began := time.Now()
		tried := 0
		for i := range 200 {
			login := fmt.Sprintf("user%d@example.org", i)
			if i%2 == 0 {
				login = "alice@example.org"
			}
			_, err := e.Session.Authenticate(ctx, login, "guess", nat)
			if errors.Is(err, session.ErrAuthFailed) {
				tried++
			} else if !errors.Is(err, session.ErrThrottled) {
				t.Fatal(err)
			}
		}
		// The address's 8, and one more per ban that passed meanwhile.
		if most := 8 + int(time.Since(began)/ban); tried < 8 || tried > most {
			t.Fatalf("a spray of 200 guesses from one address tried %d, want 8 to %d", tried, most)
		}
		if _, err := e.Session.Authenticate(ctx, "bob@example.org", storetest.Password, nat); err != nil {
			t.Fatalf("bob, who logged in from there before, behind the flooded address: %v", err)
		}
		if _, err := e.Session.Authenticate(ctx, "carol@example.org", storetest.Password, nat); !errors.Is(err, session.ErrThrottled) {
			t.Fatalf("carol, new to the flooded address, during its ban: %v", err)
		}
		testsupport.WaitFor(t, 10*ban, "carol to log in after the address's ban", func() bool {
			_, err := e.Session.Authenticate(ctx, "carol@example.org", storetest.Password, nat)
			if err != nil && !errors.Is(err, session.ErrThrottled) {
				t.Fatal(err)
			}
			return err == nil
		})
	})
}

// TestThrottleGrows: past the limit a scope gets one try per ban, and
// each ban is twice the last, up to MaxBan.
func TestThrottleGrows(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := context.Background()
		ban := 400 * time.Millisecond
		e := open(t, kind, addr, prefix, session.Config{FailuresPerAccount: 3, BanTime: ban, MaxBan: 2 * ban})
		e.NewUser(t, "alice@example.org", false)
		try := func() error {
			_, err := e.Session.Authenticate(ctx, "alice@example.org", "guess", "192.0.2.1")
			return err
		}
		for i := range 3 {
			if err := try(); !errors.Is(err, session.ErrAuthFailed) {
				t.Fatalf("guess %d within the limit: %v", i, err)
			}
		}
		steps := []struct {
			wait time.Duration
			want error
		}{
			{0, session.ErrThrottled},            // first ban: ban
			{ban + ban/4, session.ErrAuthFailed}, // one try, then a ban of 2*ban
			{ban + ban/4, session.ErrThrottled},  // still within it
			{ban, session.ErrAuthFailed},         // 2*ban passed
			{ban + ban/4, session.ErrThrottled},  // capped at MaxBan = 2*ban
			{ban, session.ErrAuthFailed},         // and no longer
		}
		for i, s := range steps {
			time.Sleep(s.wait)
			if err := try(); !errors.Is(err, s.want) {
				t.Fatalf("step %d (after %v): %v, want %v", i, s.wait, err, s.want)
			}
		}
		// The owner's right password, in its one try, lifts the account's ban.
		time.Sleep(2*ban + ban/4)
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "192.0.2.1"); err != nil {
			t.Fatalf("right password in the try after a ban: %v", err)
		}
		if _, err := e.Session.Authenticate(ctx, "alice@example.org", storetest.Password, "192.0.2.1"); err != nil {
			t.Fatalf("a second connection right after: %v", err)
		}
	})
}

// TestThrottleWithoutRedis: while Redis is down, logins go on, counted on
// the node alone (and still limited), with a warning; once it is back the
// shared counts are used again.
func TestThrottleWithoutRedis(t *testing.T) {
	ctx := context.Background()
	rs := testsupport.StartRedis(t)
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)},
		storetest.Options{RedisAddr: rs.Addr, RedisPrefix: "t:"})
	alice := e.NewUser(t, "alice@example.org", false)
	logs := &testsupport.LogBuffer{}
	svc := session.New(e.Store, e.Cache, session.Config{FailuresPerAccount: 3, KDF: crypt.TestKDF()}, slog.New(slog.NewTextHandler(logs, nil)))

	rs.Stop()
	if _, err := svc.Authenticate(ctx, "alice@example.org", storetest.Password, "192.0.2.9"); err != nil {
		t.Fatalf("login while Redis is down: %v", err)
	}
	if got := guesses(t, svc, "alice@example.org", 20, func(int) string { return "192.0.2.9" }); got != 3 {
		t.Fatalf("20 guesses while Redis is down tried %d, want 3", got)
	}
	if n := strings.Count(logs.String(), "counting on this node alone"); n != 1 {
		t.Fatalf("%d warnings about the shared cache, want 1 (rate-limited):\n%s", n, logs.String())
	}
	rs.Start()
	// A login marks its network trusted in the cache it was counted in:
	// once that is Redis again, the mark is there.
	mark := fmt.Sprintf("authok:u%d|198.18.0.0/24", alice.User.ID)
	testsupport.WaitFor(t, 20*time.Second, "logins counted in Redis again", func() bool {
		if _, err := svc.Authenticate(ctx, "alice@example.org", storetest.Password, "198.18.0.1"); err != nil {
			t.Fatal(err)
		}
		_, ok, err := e.Cache.Get(ctx, mark)
		return err == nil && ok
	})
}
