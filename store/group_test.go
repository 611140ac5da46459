package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

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
