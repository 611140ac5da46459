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

// TestDeliverGroupCommit: many deliveries at once, to several users, some
// over quota, commit together with exact counts, and each gets its own
// result.
// Both ways a message is kept: in its row (small ones, by default) and in
// a file of its own, synced once per group.
func TestDeliverGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		inlineMax int64
	}{{"inline", 0}, {"files", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			eachWith(t, storetest.Options{InlineMax: tc.inlineMax}, func(t *testing.T, e *storetest.Env) {
				if tc.inlineMax < 0 && countFiles(t, e) != 0 {
					t.Fatal("files before any delivery")
				}
				testDeliverGroupCommit(t, e)
				if files := countFiles(t, e); (tc.inlineMax < 0) != (files > 0) {
					t.Fatalf("%d message files with inline max %d", files, tc.inlineMax)
				}
			})
		})
	}
}

func testDeliverGroupCommit(t *testing.T, e *storetest.Env) {
	{
		ctx := context.Background()
		alice := e.Account(e.NewUser(t, "alice@example.org", false))
		bob := e.Account(e.NewUser(t, "bob@example.org", false))
		sec := e.Account(e.NewUser(t, "sec@example.org", true))
		q := int64(10 * 1000)
		if err := e.Store.SetLimits(ctx, bob.UserID(), "", store.LimitOverrides{QuotaBytes: &q}); err != nil {
			t.Fatal(err)
		}
		msg := storetest.SizedMessage(1000)
		const n = 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, over := map[int64]int{}, map[int64]int{}
		for i := range n {
			for _, a := range []*store.Account{alice, bob, sec} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mailbox := ""
					if i%3 == 0 {
						mailbox = "Junk"
					}
					_, err := e.Store.Deliver(ctx, store.Delivery{UserID: a.UserID(), Mailbox: mailbox, Raw: msg, Opts: store.AppendOptions{Inbound: true}})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok[a.UserID()]++
					case errors.Is(err, store.ErrOverQuota):
						over[a.UserID()]++
					default:
						t.Errorf("deliver: %v", err)
					}
				}()
			}
		}
		wg.Wait()
		if ok[alice.UserID()] != n || ok[sec.UserID()] != n || ok[bob.UserID()] != 10 || over[bob.UserID()] != n-10 {
			t.Fatalf("delivered %v, over quota %v", ok, over)
		}
		for _, a := range []*store.Account{alice, bob, sec} {
			checkCounts(t, e, a)
		}
		if c := countBlobs(t, e); c != 2*n+10 {
			t.Fatalf("%d message files, want %d", c, 2*n+10)
		}
		junk, _ := alice.List(ctx, storetest.MailboxID(t, alice, "Junk"), store.ListQuery{})
		if len(junk) != n/3 {
			t.Fatalf("%d in Junk, want %d", len(junk), n/3)
		}
		// A secure user's delivery is sealed like an append.
		ms, _ := sec.List(ctx, storetest.Inbox(t, sec), store.ListQuery{Limit: 1})
		if !ms[0].Flags.Has(store.FlagEncrypted) {
			t.Fatal("secure delivery not encrypted")
		}
		if _, err := e.Store.Deliver(ctx, store.Delivery{UserID: 999999, Raw: msg}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delivery to a missing user: %v", err)
		}
	}
}

// BenchmarkDeliver4KB: durable deliveries of 4 KB from 10 concurrent
// senders, as an SMTP server with 10 connections makes them.
func BenchmarkDeliver4KB(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		e := storetest.Open(b, db, storetest.Options{})
		var users []int64
		for _, addr := range []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org"} {
			users = append(users, e.NewUser(b, addr, false).User.ID)
		}
		msg := storetest.SizedMessage(4096)
		ctx := context.Background()
		b.SetParallelism(5) // 10 goroutines on 2 CPUs
		b.ResetTimer()
		var next sync.Mutex
		i := 0
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				next.Lock()
				u := users[i%len(users)]
				i++
				next.Unlock()
				if _, err := e.Store.Deliver(ctx, store.Delivery{UserID: u, Raw: msg, Opts: store.AppendOptions{Inbound: true}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	})
}

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
