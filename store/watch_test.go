package store_test

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/cache"
)

// watchEnv opens a store on SQLite with the given cache.
func watchEnv(t *testing.T, kind, addr, prefix string) *storetest.Env {
	t.Helper()
	o := storetest.Options{}
	if kind == "redis" {
		o.RedisAddr, o.RedisPrefix = addr, prefix
	}
	return storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, o)
}

func watch(t *testing.T, e *storetest.Env, userID int64) *store.Watch {
	t.Helper()
	w, err := e.Store.Watch(context.Background(), userID)
	if err != nil {
		t.Fatalf("watch user %d: %v", userID, err)
	}
	t.Cleanup(w.Close)
	return w
}

// next waits for the watch to have something and takes it.
func next(t *testing.T, w *store.Watch) ([]cache.Event, bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-w.C():
			if evs, resync := w.Take(); len(evs) > 0 || resync {
				return evs, resync
			}
		case <-deadline:
			t.Fatal("no change reached the watch within 5s")
		}
	}
}

// quiet fails when the watch has anything within a short while.
func quiet(t *testing.T, w *store.Watch) {
	t.Helper()
	select {
	case <-w.C():
		if evs, resync := w.Take(); len(evs) > 0 || resync {
			t.Fatalf("watch of user %d got %+v (resync %v), want nothing", w.UserID(), evs, resync)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		e := watchEnv(t, kind, addr, prefix)
		ctx := context.Background()
		alice := e.Account(e.NewUser(t, "alice@example.org", false))
		bob := e.Account(e.NewUser(t, "bob@example.org", false))
		a1, a2 := watch(t, e, alice.UserID()), watch(t, e, alice.UserID())
		b := watch(t, e, bob.UserID())
		inbox := storetest.Inbox(t, alice)

		// A delivery reaches both of alice's watches and not bob's.
		res := storetest.Append(t, alice, inbox, storetest.Message("x@example.org", "alice@example.org", "hi", "body"), store.AppendOptions{})
		for _, w := range []*store.Watch{a1, a2} {
			evs, resync := next(t, w)
			if resync || len(evs) != 1 {
				t.Fatalf("after an append got %+v (resync %v), want one event", evs, resync)
			}
			if ev := evs[0]; ev.UserID != alice.UserID() || ev.MailboxID != inbox || ev.Kind != "append" || ev.UID != res.UID || ev.ModSeq != res.ModSeq {
				t.Fatalf("append event = %+v, want user %d mailbox %d uid %d modseq %d", ev, alice.UserID(), inbox, res.UID, res.ModSeq)
			}
		}
		quiet(t, b)

		// Three flag changes of one message, taken at once, are one event
		// carrying the newest modseq.
		var last uint64
		for _, op := range []store.FlagOp{store.FlagAdd, store.FlagRemove, store.FlagAdd} {
			up, err := alice.SetFlags(ctx, inbox, store.UIDSet{{Start: res.UID, Stop: res.UID}}, op, store.FlagFlagged, nil)
			if err != nil {
				t.Fatal(err)
			}
			last = up[0].ModSeq
		}
		// Taken once they are all in, they are one event.
		select {
		case <-a1.C():
		case <-time.After(5 * time.Second):
			t.Fatal("the flag changes did not reach the watch")
		}
		time.Sleep(300 * time.Millisecond)
		evs, resync := a1.Take()
		if resync || len(evs) != 1 {
			t.Fatalf("three flag changes of one message gave %+v (resync %v), want them merged into one", evs, resync)
		}
		if evs[0].Kind != "flags" || evs[0].UID != res.UID || evs[0].ModSeq != last {
			t.Fatalf("merged flag event = %+v, want uid %d modseq %d", evs[0], res.UID, last)
		}
		next(t, a2) // drain

		// A closed watch hears nothing more; the others still do.
		a2.Close()
		a2.Close()
		storetest.Append(t, alice, inbox, storetest.Message("x@example.org", "alice@example.org", "again", "body"), store.AppendOptions{})
		if evs, _ := next(t, a1); len(evs) != 1 || evs[0].Kind != "append" {
			t.Fatalf("got %+v, want the second append", evs)
		}
		if evs, resync := a2.Take(); len(evs) > 0 || resync {
			t.Fatalf("closed watch got %+v (resync %v)", evs, resync)
		}

		// A watch ends with its context.
		cctx, cancel := context.WithCancel(ctx)
		w3, err := e.Store.Watch(cctx, bob.UserID())
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
		storetest.Append(t, bob, storetest.Inbox(t, bob), storetest.Message("x@example.org", "bob@example.org", "for bob", "body"), store.AppendOptions{})
		if evs, _ := next(t, b); len(evs) != 1 {
			t.Fatalf("bob's watch got %+v", evs)
		}
		if evs, resync := w3.Take(); len(evs) > 0 || resync {
			t.Fatalf("watch whose context ended got %+v (resync %v)", evs, resync)
		}
		if _, err := e.Store.Watch(cctx, bob.UserID()); err == nil {
			t.Fatal("Watch with an ended context succeeded")
		}
	})
}

// More events than a watch keeps turn into one resync; a resync on the bus
// reaches every watch of every user.
func TestWatchOverflowAndResync(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		e := watchEnv(t, kind, addr, prefix)
		ctx := context.Background()
		a, b := watch(t, e, 1), watch(t, e, 2)
		for i := 1; i <= 100; i++ {
			if err := e.Cache.Publish(ctx, cache.Event{UserID: 1, MailboxID: 7, Kind: "append", UID: uint32(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Cache.Publish(ctx, cache.Event{UserID: 1, MailboxID: 8, Kind: "mailbox"}); err != nil {
			t.Fatal(err)
		}
		// Taken once they are all in, they are one resync.
		select {
		case <-a.C():
		case <-time.After(5 * time.Second):
			t.Fatal("the events did not reach the watch")
		}
		time.Sleep(300 * time.Millisecond)
		if evs, resync := a.Take(); !resync || len(evs) != 0 {
			t.Fatalf("after 101 events the watch holds %d events (resync %v), want only a resync", len(evs), resync)
		}
		quiet(t, b)

		if err := e.Cache.Publish(ctx, cache.Event{Kind: cache.KindResync}); err != nil {
			t.Fatal(err)
		}
		for _, w := range []*store.Watch{a, b} {
			if evs, resync := next(t, w); !resync || len(evs) != 0 {
				t.Fatalf("after a bus resync user %d's watch got %+v (resync %v)", w.UserID(), evs, resync)
			}
		}
	})
}

// With Redis, every watch of a process shares one pub/sub connection, and
// when that connection is cut the watches are told to resync.
func TestWatchRedisSharedSubscription(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	e := watchEnv(t, "redis", addr, prefix)
	ctx := context.Background()
	var ws []*store.Watch
	for i := int64(1); i <= 50; i++ {
		ws = append(ws, watch(t, e, i%3+1))
	}
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	n, err := admin.PubSubNumSub(ctx, prefix+"events").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n[prefix+"events"] != 1 {
		t.Fatalf("50 watches hold %d subscriptions, want 1", n[prefix+"events"])
	}

	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := map[string]string{}
		for _, f := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == "basalt:"+prefix && fields["sub"] != "0" {
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections, want 1", killed)
	}
	for _, w := range ws[:3] {
		if _, resync := next(t, w); !resync {
			t.Fatalf("watch of user %d was not told to resync after the bus reconnected", w.UserID())
		}
	}
}
