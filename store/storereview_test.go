package store_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// groupOf makes the next group commit hold the deliveries start makes:
// the group led by lead's delivery waits, before it locks lead's row, until
// want deliveries are pending behind it.
func groupOf(t *testing.T, e *storetest.Env, lead int64, want int, start func()) {
	t.Helper()
	var once atomic.Bool
	prev := func(int64) {}
	store.SetBeforeGroupUser(e.Store, func(id int64) {
		if id != lead || !once.CompareAndSwap(false, true) {
			prev(id)
			return
		}
		start()
		deadline := time.Now().Add(20 * time.Second)
		for store.GroupPending(e.Store) < want {
			if time.Now().After(deadline) {
				t.Errorf("only %d of %d deliveries pending", store.GroupPending(e.Store), want)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	ctx := context.Background()
	if _, err := e.Store.Deliver(ctx, store.Delivery{UserID: lead, Raw: storetest.SizedMessage(500)}); err != nil {
		t.Fatalf("deliver the leading message: %v", err)
	}
}

// TestDeliverGroupLaterUserSeesCommittedCounters: in a group commit to
// two users, an Append for the second one that commits while the group
// holds only the first user's row is counted when the group checks the
// second user's daily limit. On MariaDB (REPEATABLE READ) the group's
// snapshot was taken at its first read, before that Append, so the
// counter it checked was stale and the day's limit was passed.
func TestDeliverGroupLaterUserSeesCommittedCounters(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		if db.Driver == "sqlite" {
			t.Skip("SQLite runs one write transaction at a time: no Append can commit inside a group")
		}
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		u0 := e.Account(e.NewUser(t, "u0@example.org", false))
		u1 := e.Account(e.NewUser(t, "u1@example.org", false))
		u2 := e.Account(e.NewUser(t, "u2@example.org", false))
		q := int64(10000)
		if err := e.Store.SetLimits(ctx, u2.UserID(), "", store.LimitOverrides{DailyRecvBytes: &q}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var err1, err2 error
		appended := false
		groupOf(t, e, u0.UserID(), 2, func() {
			// The group of u1 and u2, which locks u1, then (hook) lets an
			// Append to u2 commit, then locks u2.
			store.SetBeforeGroupUser(e.Store, func(id int64) {
				if id != u2.UserID() || appended {
					return
				}
				appended = true
				storetest.Append(t, u2, storetest.Inbox(t, u2), storetest.SizedMessage(7000), store.AppendOptions{Inbound: true})
			})
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err1 = e.Store.Deliver(ctx, store.Delivery{UserID: u1.UserID(), Raw: storetest.SizedMessage(4000)})
			}()
			go func() {
				defer wg.Done()
				_, err2 = e.Store.Deliver(ctx, store.Delivery{UserID: u2.UserID(), Raw: storetest.SizedMessage(4000), Opts: store.AppendOptions{Inbound: true}})
			}()
		})
		wg.Wait()
		if !appended {
			t.Fatal("the Append inside the group never ran")
		}
		if err1 != nil {
			t.Fatalf("delivery to u1: %v", err1)
		}
		got, err := u2.ReceivedToday(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err2, store.ErrDailyLimit) || got > q {
			t.Fatalf("delivery to u2: %v; u2 received %d bytes today, limit %d", err2, got, q)
		}
	})
}

// TestDeliverGroupLargeInlineMessages: a group of messages kept in their
// rows, together larger than MariaDB's max_allowed_packet (16 MiB by
// default), commits: the rows do not go in one statement.
func TestDeliverGroupLargeInlineMessages(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{InlineMax: 8 << 20})
		ctx := context.Background()
		u0 := e.Account(e.NewUser(t, "u0@example.org", false))
		u1 := e.Account(e.NewUser(t, "u1@example.org", false))
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		groupOf(t, e, u0.UserID(), n, func() {
			for i := range n {
				raw := make([]byte, 5<<20) // base64 of random bytes: ~7 MiB, ~5 MiB compressed
				if _, err := rand.Read(raw); err != nil {
					t.Fatal(err)
				}
				body := base64.StdEncoding.EncodeToString(raw)
				msg := storetest.Message("a@example.org", "u1@example.org", "big", "")
				msg = append(msg, body...)
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.Store.Deliver(ctx, store.Delivery{UserID: u1.UserID(), Raw: msg})
				}()
			}
		})
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("delivery %d: %v", i, err)
			}
		}
		if got := len(storetest.Messages(t, u1, "INBOX")); got != n {
			t.Fatalf("%d messages in INBOX, want %d", got, n)
		}
	})
}

// TestDomainCacheSeesOwnChanges: once AddDomain or DeleteDomain returns,
// lookups in the same process see the change, even while other lookups of
// the same name are running (one that read before the change must not
// cache what it read after the cache was cleared).
func TestDomainCacheSeesOwnChanges(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		const name = "race.example"
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_, _ = e.Store.DomainByName(ctx, name)
				}
			}()
		}
		defer func() { cancel(); wg.Wait() }()
		for i := range 100 {
			if _, err := e.Store.AddDomain(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Store.DomainByName(ctx, name); err != nil {
				t.Fatalf("round %d: right after AddDomain: %v", i, err)
			}
			if err := e.Store.DeleteDomain(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Store.DomainByName(ctx, name); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: right after DeleteDomain: %v", i, err)
			}
		}
	})
}
