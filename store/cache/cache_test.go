package cache

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

func TestGetSetDelete(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)

		tests := []struct {
			name string
			key  string
			e    Entry
		}{
			{"plain", "user:1", Entry{Value: []byte(`{"name":"ann"}`), Serial: 7}},
			{"empty value", "empty", Entry{Value: []byte{}, Serial: 1}},
			{"binary value", "bin", Entry{Value: []byte{0, 1, 0xff, '\n', 0}, Serial: 2}},
			{"serial above 2^53", "big", Entry{Value: []byte("x"), Serial: 1<<53 + 1}},
			{"max serial", "max", Entry{Value: []byte("y"), Serial: math.MaxUint64}},
			{"zero serial", "zero", Entry{Value: []byte("z")}},
			{"odd key", "a key with spaces\x00and:colons", Entry{Value: []byte("w"), Serial: 3}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, ok, err := c.Get(ctx, tt.key); err != nil || ok {
					t.Fatalf("Get before Set = found %v, err %v; want not found", ok, err)
				}
				if err := c.Set(ctx, tt.key, tt.e, 0); err != nil {
					t.Fatalf("Set: %v", err)
				}
				got, ok, err := c.Get(ctx, tt.key)
				if err != nil || !ok {
					t.Fatalf("Get after Set = found %v, err %v; want found", ok, err)
				}
				if !bytes.Equal(got.Value, tt.e.Value) || got.Serial != tt.e.Serial {
					t.Fatalf("Get = {%q, %d}, want {%q, %d}", got.Value, got.Serial, tt.e.Value, tt.e.Serial)
				}
			})
		}

		// Overwrite replaces value and serial.
		if err := c.Set(ctx, "user:1", Entry{Value: []byte("new"), Serial: 8}, 0); err != nil {
			t.Fatalf("Set overwrite: %v", err)
		}
		if got, _, _ := c.Get(ctx, "user:1"); string(got.Value) != "new" || got.Serial != 8 {
			t.Fatalf("after overwrite Get = {%q, %d}, want {new, 8}", got.Value, got.Serial)
		}

		// Delete several keys at once, a missing one among them.
		if err := c.Delete(ctx, "user:1", "bin", "never-set"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		for _, k := range []string{"user:1", "bin"} {
			if _, ok, err := c.Get(ctx, k); err != nil || ok {
				t.Fatalf("Get(%q) after Delete = found %v, err %v; want not found", k, ok, err)
			}
		}
		if _, ok, _ := c.Get(ctx, "big"); !ok {
			t.Fatal("Delete removed a key it was not given")
		}
		if err := c.Delete(ctx); err != nil {
			t.Fatalf("Delete with no keys: %v", err)
		}
	})
}

// The cache must hold its own copy: callers reuse buffers.
func TestValuesAreCopied(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		buf := []byte("original")
		if err := c.Set(ctx, "k", Entry{Value: buf, Serial: 1}, 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
		copy(buf, "XXXXXXXX")
		got, _, err := c.Get(ctx, "k")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got.Value) != "original" {
			t.Fatalf("changing the Set buffer changed the cache: got %q", got.Value)
		}
		copy(got.Value, "YYYYYYYY")
		again, _, _ := c.Get(ctx, "k")
		if string(again.Value) != "original" {
			t.Fatalf("changing a Get result changed the cache: got %q", again.Value)
		}
	})
}

func TestTTL(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		if err := c.Set(ctx, "short", Entry{Value: []byte("s"), Serial: 1}, 50*time.Millisecond); err != nil {
			t.Fatalf("Set short: %v", err)
		}
		if err := c.Set(ctx, "long", Entry{Value: []byte("l"), Serial: 1}, time.Hour); err != nil {
			t.Fatalf("Set long: %v", err)
		}
		if err := c.Set(ctx, "forever", Entry{Value: []byte("f"), Serial: 1}, 0); err != nil {
			t.Fatalf("Set forever: %v", err)
		}
		eventually(t, "short-lived entry expires", func() bool {
			_, ok, err := c.Get(ctx, "short")
			if err != nil {
				t.Fatalf("Get short: %v", err)
			}
			return !ok
		})
		for _, k := range []string{"long", "forever"} {
			if _, ok, err := c.Get(ctx, k); err != nil || !ok {
				t.Fatalf("Get(%q) = found %v, err %v; want found", k, ok, err)
			}
		}
		// Overwriting with ttl 0 removes an expiry.
		if err := c.Set(ctx, "long", Entry{Value: []byte("l2")}, 0); err != nil {
			t.Fatalf("Set long again: %v", err)
		}
		if _, ok, _ := c.Get(ctx, "long"); !ok {
			t.Fatal("overwritten entry missing")
		}
	})
}

func TestNegativeTTLRejected(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		if err := c.Set(ctx, "k", Entry{}, -time.Second); err == nil {
			t.Error("Set with negative ttl: no error")
		}
		if _, err := c.Incr(ctx, "n", 1, -time.Second); err == nil {
			t.Error("Incr with negative ttl: no error")
		}
	})
}

// Entries and counters share the key space; mixing them up must be an
// error, not garbage.
func TestEntriesAndCountersDoNotMix(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		// 12345678 is eight digits: as text it is as long as a serial.
		if _, err := c.Incr(ctx, "counter", 12345678, 0); err != nil {
			t.Fatalf("Incr: %v", err)
		}
		if _, _, err := c.Get(ctx, "counter"); err == nil {
			t.Error("Get of a counter: no error")
		}
		if err := c.Set(ctx, "entry", Entry{Value: []byte("v"), Serial: 1}, 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if _, err := c.Incr(ctx, "entry", 1, 0); err == nil {
			t.Error("Incr of an entry: no error")
		}
		if err := c.Delete(ctx, "counter"); err != nil {
			t.Fatalf("Delete counter: %v", err)
		}
		if n, err := c.Incr(ctx, "counter", 1, 0); err != nil || n != 1 {
			t.Fatalf("Incr after Delete = %d, %v; want 1", n, err)
		}
		// Serial scopes are their own namespace.
		if err := c.RaiseSerial(ctx, "entry", 99); err != nil {
			t.Fatalf("RaiseSerial: %v", err)
		}
		if got, _, err := c.Get(ctx, "entry"); err != nil || string(got.Value) != "v" {
			t.Fatalf("Get after RaiseSerial on same name = %q, %v; want v", got.Value, err)
		}
	})
}

func TestSerial(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		if _, ok, err := c.Serial(ctx, "user:1"); err != nil || ok {
			t.Fatalf("Serial of a new scope = known %v, err %v; want unknown", ok, err)
		}
		steps := []struct {
			name  string
			raise uint64
			want  uint64
		}{
			{"first value", 5, 5},
			{"raise", 9, 9},
			{"lower is ignored", 3, 9},
			{"equal is a no-op", 9, 9},
			{"more digits", 10, 10},
			{"2^53", 1 << 53, 1 << 53},
			// Doubles cannot tell these apart; the serial must.
			{"2^53+1", 1<<53 + 1, 1<<53 + 1},
			{"2^53 again is lower", 1 << 53, 1<<53 + 1},
			{"same length, lexically smaller", 1<<53 - 1, 1<<53 + 1},
			{"near max", math.MaxUint64 - 1, math.MaxUint64 - 1},
			{"max", math.MaxUint64, math.MaxUint64},
			{"after max", 1 << 63, math.MaxUint64},
		}
		for _, s := range steps {
			if err := c.RaiseSerial(ctx, "user:1", s.raise); err != nil {
				t.Fatalf("%s: RaiseSerial(%d): %v", s.name, s.raise, err)
			}
			got, ok, err := c.Serial(ctx, "user:1")
			if err != nil || !ok || got != s.want {
				t.Fatalf("%s: after RaiseSerial(%d) Serial = %d, %v, %v; want %d", s.name, s.raise, got, ok, err, s.want)
			}
		}
		if _, ok, _ := c.Serial(ctx, "user:2"); ok {
			t.Fatal("raising one scope made another known")
		}
		if err := c.RaiseSerial(ctx, "user:3", 0); err != nil {
			t.Fatalf("RaiseSerial(0): %v", err)
		}
		if got, ok, _ := c.Serial(ctx, "user:3"); !ok || got != 0 {
			t.Fatalf("after RaiseSerial(0) Serial = %d, %v; want 0, known", got, ok)
		}
	})
}

func TestRaiseSerialConcurrent(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		const goroutines, perG = 20, 25
		base := uint64(1) << 60 // above 2^53 so rounding would show
		var want uint64
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := range goroutines {
			// Interleave so the maximum is raised by some goroutine in
			// the middle of the run, and every goroutine also tries
			// to lower the value.
			vals := make([]uint64, perG)
			for i := range perG {
				vals[i] = base + uint64((i*goroutines+g*7)%(goroutines*perG))
				want = max(want, vals[i])
			}
			wg.Go(func() {
				for _, v := range vals {
					if err := c.RaiseSerial(ctx, "scope", v); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("RaiseSerial: %v", err)
		}
		got, ok, err := c.Serial(ctx, "scope")
		if err != nil || !ok || got != want {
			t.Fatalf("Serial = %d, %v, %v; want %d", got, ok, err, want)
		}
	})
}

func TestIncrConcurrent(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		const goroutines, perG = 50, 20
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		seen := make([][]int64, goroutines)
		for g := range goroutines {
			wg.Go(func() {
				for range perG {
					n, err := c.Incr(ctx, "fails:192.0.2.1", 1, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					seen[g] = append(seen[g], n)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Incr: %v", err)
		}
		// Every value 1..total came back exactly once: no lost or
		// doubled increment.
		got := make(map[int64]bool)
		for _, s := range seen {
			for _, n := range s {
				if got[n] {
					t.Fatalf("Incr returned %d twice", n)
				}
				got[n] = true
			}
		}
		for n := int64(1); n <= goroutines*perG; n++ {
			if !got[n] {
				t.Fatalf("Incr never returned %d", n)
			}
		}
		if n, err := c.Incr(ctx, "fails:192.0.2.1", 0, time.Hour); err != nil || n != goroutines*perG {
			t.Fatalf("final count = %d, %v; want %d", n, err, goroutines*perG)
		}
	})
}

func TestIncrWindow(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		for i, delta := range []int64{1, 2, -1, 5} {
			want := []int64{1, 3, 2, 7}[i]
			if n, err := c.Incr(ctx, "day", delta, time.Hour); err != nil || n != want {
				t.Fatalf("Incr(%d) = %d, %v; want %d", delta, n, err, want)
			}
		}

		// The window is fixed when the counter is created: later calls
		// with a longer ttl do not extend it, so it resets on time.
		if n, err := c.Incr(ctx, "burst", 1, 50*time.Millisecond); err != nil || n != 1 {
			t.Fatalf("first Incr = %d, %v; want 1", n, err)
		}
		last := int64(1)
		eventually(t, "window resets", func() bool {
			n, err := c.Incr(ctx, "burst", 1, time.Hour)
			if err != nil {
				t.Fatalf("Incr: %v", err)
			}
			if n != 1 && n != last+1 {
				t.Fatalf("Incr = %d after %d: neither the next value nor a new window", n, last)
			}
			last = n
			return n == 1
		})

		// ttl 0: a counter that does not expire.
		if n, err := c.Incr(ctx, "total", 3, 0); err != nil || n != 3 {
			t.Fatalf("Incr without ttl = %d, %v; want 3", n, err)
		}
	})
}

func TestPubSubOrderToSeveralSubscribers(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		subs := []*Subscription{subscribe(t, ctx, c), subscribe(t, ctx, c), subscribe(t, ctx, c)}

		const n = 200
		want := make([]Event, n)
		kinds := []string{"append", "flags", "expunge", "mailbox", "user"}
		for i := range want {
			want[i] = Event{
				UserID: 42, MailboxID: int64(i % 3), Kind: kinds[i%len(kinds)],
				UID: uint32(i), ModSeq: 1<<53 + uint64(i), Serial: math.MaxUint64 - uint64(i),
			}
		}
		// Subscribers read concurrently while the publisher runs.
		var wg sync.WaitGroup
		got := make([][]Event, len(subs))
		for i, s := range subs {
			wg.Go(func() {
				for range n {
					select {
					case ev, ok := <-s.C():
						if !ok {
							return
						}
						got[i] = append(got[i], ev)
					case <-time.After(wait):
						return
					}
				}
			})
		}
		for _, ev := range want {
			publish(t, ctx, c, ev)
		}
		wg.Wait()
		for i := range subs {
			if len(got[i]) != n {
				t.Fatalf("subscriber %d got %d events, want %d", i, len(got[i]), n)
			}
			for j := range want {
				if got[i][j] != want[j] {
					t.Fatalf("subscriber %d event %d = %+v, want %+v", i, j, got[i][j], want[j])
				}
			}
		}
	})
}

func TestSubscriptionEnds(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		ev := Event{UserID: 1, Kind: "append", UID: 1}

		closed := subscribe(t, ctx, c)
		subCtx, cancel := context.WithCancel(ctx)
		cancelled := subscribe(t, subCtx, c)
		alive := subscribe(t, ctx, c)

		if err := closed.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Closed means closed by the time Close returns.
		select {
		case _, ok := <-closed.C():
			if ok {
				t.Fatal("event received after Close")
			}
		default:
			t.Fatal("channel still open after Close returned")
		}
		if err := closed.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		cancel()
		expectClosed(t, cancelled)

		publish(t, ctx, c, ev)
		if got := recv(t, alive); got != ev {
			t.Fatalf("remaining subscriber got %+v, want %+v", got, ev)
		}

		if _, err := c.Subscribe(subCtx); err == nil {
			t.Fatal("Subscribe with an ended context: no error")
		}

		// Closing the cache ends the remaining subscriptions and refuses
		// further use.
		if err := c.Close(); err != nil {
			t.Fatalf("cache Close: %v", err)
		}
		expectClosed(t, alive)
		if _, err := c.Subscribe(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
		}
		if err := c.Publish(ctx, ev); !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after Close = %v, want ErrClosed", err)
		}
		if _, _, err := c.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close = %v, want ErrClosed", err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second cache Close: %v", err)
		}
	})
}

// A subscriber that stops reading must block neither the publisher nor the
// other subscribers; it loses events and then gets one resync as soon as
// it catches up, without anything further being published.
func TestSlowSubscriberResync(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		slow := subscribe(t, ctx, c)
		fast := subscribe(t, ctx, c)

		const total, chunk = 3 * subscriptionBuffer, 256
		got := make(chan int, total)
		go func() {
			for ev := range fast.C() {
				got <- int(ev.UID)
			}
		}()
		for start := 0; start < total; start += chunk {
			// Publish from another goroutine so that a publisher blocked
			// by the slow subscriber fails the test instead of hanging it.
			published := make(chan error, 1)
			go func() {
				for i := start; i < start+chunk; i++ {
					if err := c.Publish(ctx, Event{UserID: 1, Kind: "append", UID: uint32(i)}); err != nil {
						published <- err
						return
					}
				}
				published <- nil
			}()
			select {
			case err := <-published:
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
			case <-time.After(wait):
				t.Fatalf("publisher blocked after uid %d", start)
			}
			// Pace the publisher by the fast subscriber only, so the
			// test cannot overflow the fast one by outrunning it.
			for i := start; i < start+chunk; i++ {
				select {
				case uid := <-got:
					if uid != i {
						t.Fatalf("fast subscriber got uid %d, want %d", uid, i)
					}
				case <-time.After(wait):
					t.Fatalf("fast subscriber stuck at uid %d", i)
				}
			}
		}

		// The slow one kept what fitted in its buffer, in order, and then
		// the resync; nothing of what was dropped.
		n := 0
		for {
			ev := recv(t, slow)
			if ev.Kind == KindResync {
				if ev != (Event{Kind: KindResync}) {
					t.Fatalf("resync event carries data: %+v", ev)
				}
				break
			}
			if int(ev.UID) != n {
				t.Fatalf("slow subscriber got uid %d, want %d", ev.UID, n)
			}
			n++
		}
		if n < subscriptionBuffer || n >= total {
			t.Fatalf("slow subscriber got %d events before the resync, want at least %d and fewer than %d", n, subscriptionBuffer, total)
		}
		select {
		case ev := <-slow.C():
			t.Fatalf("event after the resync with nothing published: %+v", ev)
		default:
		}

		// Once caught up it receives new events normally.
		next := Event{UserID: 1, Kind: "flags", UID: total}
		publish(t, ctx, c, next)
		if ev := recv(t, slow); ev != next {
			t.Fatalf("after resync got %+v, want %+v", ev, next)
		}
		if uid := <-got; uid != total {
			t.Fatalf("fast subscriber got uid %d, want %d", uid, total)
		}
	})
}

func TestPing(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		c := newCache(t, kind, addr, prefix)
		if err := c.Ping(testContext(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		c.Close()
		if err := c.Ping(testContext(t)); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Ping after Close = %v, want a closed error", err)
		}
	})
}
