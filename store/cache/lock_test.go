package cache

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// TestLock: one holder at a time; only the holder's token refreshes or
// releases the lock.
func TestLock(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)

		tok, ok, err := c.TryLock(ctx, "maildrop:1", time.Minute)
		if err != nil || !ok || tok == "" {
			t.Fatalf("first TryLock = %q, %v, %v; want a token", tok, ok, err)
		}
		if tok2, ok, err := c.TryLock(ctx, "maildrop:1", time.Minute); err != nil || ok || tok2 != "" {
			t.Fatalf("second TryLock = %q, %v, %v; want refused", tok2, ok, err)
		}
		// Other keys are other locks.
		other, ok, err := c.TryLock(ctx, "maildrop:2", time.Minute)
		if err != nil || !ok {
			t.Fatalf("TryLock of another key = %v, %v", ok, err)
		}
		if other == tok {
			t.Fatal("two locks got the same token")
		}

		if ok, err := c.RefreshLock(ctx, "maildrop:1", "not-the-token", time.Minute); err != nil || ok {
			t.Fatalf("RefreshLock with a wrong token = %v, %v; want false", ok, err)
		}
		if ok, err := c.RefreshLock(ctx, "maildrop:1", tok, time.Minute); err != nil || !ok {
			t.Fatalf("RefreshLock by the holder = %v, %v; want true", ok, err)
		}
		if err := c.Unlock(ctx, "maildrop:1", "not-the-token"); err != nil {
			t.Fatalf("Unlock with a wrong token: %v", err)
		}
		if _, ok, _ := c.TryLock(ctx, "maildrop:1", time.Minute); ok {
			t.Fatal("Unlock with a wrong token released the lock")
		}
		if err := c.Unlock(ctx, "maildrop:1", tok); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		next, ok, err := c.TryLock(ctx, "maildrop:1", time.Minute)
		if err != nil || !ok {
			t.Fatalf("TryLock after Unlock = %v, %v; want taken", ok, err)
		}
		// The old holder's token is worth nothing now: it can neither
		// keep nor release its successor's lock.
		if ok, err := c.RefreshLock(ctx, "maildrop:1", tok, time.Minute); err != nil || ok {
			t.Fatalf("RefreshLock with the old token = %v, %v; want false", ok, err)
		}
		if err := c.Unlock(ctx, "maildrop:1", tok); err != nil {
			t.Fatalf("Unlock with the old token: %v", err)
		}
		if _, ok, _ := c.TryLock(ctx, "maildrop:1", time.Minute); ok {
			t.Fatal("the old token released the new holder's lock")
		}
		if ok, err := c.RefreshLock(ctx, "maildrop:1", next, time.Minute); err != nil || !ok {
			t.Fatalf("RefreshLock by the new holder = %v, %v", ok, err)
		}
		// Unlocking what is not held is not an error.
		if err := c.Unlock(ctx, "never-locked", "x"); err != nil {
			t.Fatalf("Unlock of a free key: %v", err)
		}
	})
}

// TestLockExpires: a holder that stops refreshing (a crashed process)
// loses the lock when its ttl runs out; one that refreshes keeps it.
func TestLockExpires(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)

		dead, ok, err := c.TryLock(ctx, "crashed", 100*time.Millisecond)
		if err != nil || !ok {
			t.Fatalf("TryLock = %v, %v", ok, err)
		}
		eventually(t, "abandoned lock expires", func() bool {
			_, ok, err := c.TryLock(ctx, "crashed", time.Minute)
			if err != nil {
				t.Fatalf("TryLock: %v", err)
			}
			return ok
		})
		if ok, err := c.RefreshLock(ctx, "crashed", dead, time.Minute); err != nil || ok {
			t.Fatalf("RefreshLock of an expired lock = %v, %v; want false", ok, err)
		}

		live, ok, err := c.TryLock(ctx, "alive", 300*time.Millisecond)
		if err != nil || !ok {
			t.Fatalf("TryLock = %v, %v", ok, err)
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if ok, err := c.RefreshLock(ctx, "alive", live, 300*time.Millisecond); err != nil || !ok {
				t.Fatalf("RefreshLock = %v, %v; want the lock kept", ok, err)
			}
			if _, ok, err := c.TryLock(ctx, "alive", time.Minute); err != nil || ok {
				t.Fatalf("TryLock of a refreshed lock = %v, %v; want refused", ok, err)
			}
		}
	})
}

// TestLockConcurrent: of many callers racing for one lock, one wins.
func TestLockConcurrent(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		const n = 32
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for range n {
			wg.Go(func() {
				_, ok, err := c.TryLock(ctx, "contended", time.Minute)
				if err != nil {
					t.Errorf("TryLock: %v", err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d callers took the lock, want 1", wins)
		}
	})
}

// TestLockNamespace: a lock and an entry or counter under the same key
// do not touch each other.
func TestLockNamespace(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		if err := c.Set(ctx, "k", Entry{Value: []byte("v"), Serial: 1}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Incr(ctx, "n", 1, 0); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"k", "n"} {
			if _, ok, err := c.TryLock(ctx, k, time.Minute); err != nil || !ok {
				t.Fatalf("TryLock(%q) beside an entry = %v, %v", k, ok, err)
			}
		}
		if e, ok, err := c.Get(ctx, "k"); err != nil || !ok || string(e.Value) != "v" {
			t.Fatalf("entry after TryLock = %+v, %v, %v", e, ok, err)
		}
		if err := c.Delete(ctx, "k", "n"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := c.TryLock(ctx, "k", time.Minute); ok {
			t.Fatal("Delete released a lock")
		}
	})
}

func TestLockBadTTL(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
			if _, ok, err := c.TryLock(ctx, "k", ttl); err == nil || ok {
				t.Errorf("TryLock with ttl %v = %v, %v; want an error", ttl, ok, err)
			}
			if ok, err := c.RefreshLock(ctx, "k", "t", ttl); err == nil || ok {
				t.Errorf("RefreshLock with ttl %v = %v, %v; want an error", ttl, ok, err)
			}
		}
		// A refused ttl took nothing.
		if _, ok, err := c.TryLock(ctx, "k", time.Minute); err != nil || !ok {
			t.Fatalf("TryLock after refusals = %v, %v", ok, err)
		}
	})
}

func TestLockClosed(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		tok, _, err := c.TryLock(ctx, "k", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if _, _, err := c.TryLock(ctx, "k2", time.Minute); !errors.Is(err, ErrClosed) {
			t.Errorf("TryLock after Close: %v, want ErrClosed", err)
		}
		if _, err := c.RefreshLock(ctx, "k", tok, time.Minute); !errors.Is(err, ErrClosed) {
			t.Errorf("RefreshLock after Close: %v, want ErrClosed", err)
		}
		if err := c.Unlock(ctx, "k", tok); !errors.Is(err, ErrClosed) {
			t.Errorf("Unlock after Close: %v, want ErrClosed", err)
		}
	})
}

// Two nodes on one Redis see one lock.
func TestRedisLockCrossProcess(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	ctx := testContext(t)
	a := newCache(t, "redis", addr, prefix)
	b := newCache(t, "redis", addr, prefix)
	tok, ok, err := a.TryLock(ctx, "maildrop:7", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock on a = %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "maildrop:7", time.Minute); err != nil || ok {
		t.Fatalf("TryLock on b while a holds it = %v, %v; want refused", ok, err)
	}
	if err := a.Unlock(ctx, "maildrop:7", tok); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.TryLock(ctx, "maildrop:7", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock on b after a unlocked = %v, %v; want taken", ok, err)
	}
	// Another prefix is another installation, with locks of its own.
	other := newCache(t, "redis", addr, prefix+"other:")
	if _, ok, err := other.TryLock(ctx, "maildrop:7", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock under another prefix = %v, %v; want taken", ok, err)
	}
}

// The in-process cache forgets expired locks nobody asks for again, so
// their number stays bounded by the locks alive, not by all ever taken.
func TestMemoryLockSweep(t *testing.T) {
	ctx := testContext(t)
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	held, _, err := m.TryLock(ctx, "held", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for i := range 5000 {
		if _, ok, err := m.TryLock(ctx, fmt.Sprint("short:", i), time.Millisecond); err != nil || !ok {
			t.Fatalf("TryLock: %v %v", ok, err)
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond) // the last 50 expire
		}
		m.mu.Lock()
		most = max(most, len(m.locks))
		m.mu.Unlock()
	}
	// At most ~51 are alive at once; the sweep runs when the map has
	// doubled since the last one, and never below 64.
	if most > 256 {
		t.Fatalf("%d locks kept at once, want them swept", most)
	}
	if ok, _ := m.RefreshLock(ctx, "held", held, time.Minute); !ok {
		t.Fatal("the sweep dropped a held lock")
	}
}

// TestLocked: Locked sees a lock while it is held, and not after it is
// released or has expired; looking takes nothing.
func TestLocked(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		look := func(want bool, when string) {
			t.Helper()
			got, err := c.Locked(ctx, "l")
			if err != nil || got != want {
				t.Fatalf("Locked %s = %v, %v; want %v", when, got, err, want)
			}
		}
		look(false, "before any lock")
		token, ok, err := c.TryLock(ctx, "l", time.Minute)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		look(true, "while held")
		look(true, "when looked at again")
		if err := c.Unlock(ctx, "l", token); err != nil {
			t.Fatal(err)
		}
		look(false, "after Unlock")
		if _, ok, err := c.TryLock(ctx, "l", 50*time.Millisecond); err != nil || !ok {
			t.Fatal(ok, err)
		}
		time.Sleep(100 * time.Millisecond)
		look(false, "after expiry")
		// An entry of the same name is not a lock.
		if err := c.Set(ctx, "e", Entry{Value: []byte("x")}, 0); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Locked(ctx, "e"); err != nil || got {
			t.Fatalf("Locked of an entry's key = %v, %v", got, err)
		}
	})
}
