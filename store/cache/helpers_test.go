package cache

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// wait bounds every wait in these tests: long enough for a loaded CI
// machine under -race, short enough that a hang fails instead of stalling.
const wait = 5 * time.Second

// testContext returns a context that ends with the test and within a bound.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newCache returns a Cache of the given kind, closed when the test ends.
func newCache(t testing.TB, kind, addr, prefix string) Cache {
	t.Helper()
	var c Cache
	switch kind {
	case "memory":
		c = NewMemory(MemoryOptions{})
	case "redis":
		c = newRedis(t, addr, prefix)
	default:
		t.Fatalf("unknown cache kind %q", kind)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s cache: %v", kind, err)
		}
	})
	return c
}

// newRedis connects one more "node" to the test Redis; the caller closes it
// (newCache registers the close).
func newRedis(t testing.TB, addr, prefix string) *Redis {
	t.Helper()
	r, err := NewRedis(testContext(t), RedisOptions{
		Addr:   addr,
		Prefix: prefix,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	return r
}

func subscribe(t testing.TB, ctx context.Context, c Cache) *Subscription {
	t.Helper()
	s, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func publish(t testing.TB, ctx context.Context, c Cache, ev Event) {
	t.Helper()
	if err := c.Publish(ctx, ev); err != nil {
		t.Fatalf("Publish(%+v): %v", ev, err)
	}
}

// recv returns the next event on s, failing the test if none comes within
// the bound or the channel is closed.
func recv(t testing.TB, s *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if !ok {
			t.Fatal("subscription channel closed, want an event")
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
	}
	panic("unreachable")
}

// expectClosed fails unless s's channel is closed within the bound; events
// still in flight before the close are skipped.
func expectClosed(t testing.TB, s *Subscription) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-s.C():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("subscription channel not closed within %v", wait)
		}
	}
}

// eventually polls cond until it holds, failing the test after the bound.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testsupport.WaitFor(t, wait, what, cond)
}
