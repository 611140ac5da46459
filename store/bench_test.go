package store_test

import (
	"context"
	"fmt"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// benchDatabases runs f on SQLite and on MariaDB (when configured).
func benchDatabases(b *testing.B, f func(b *testing.B, db testsupport.Database)) {
	b.Run("sqlite", func(b *testing.B) { f(b, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(b)}) })
	b.Run("mysql", func(b *testing.B) { f(b, testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(b)}) })
}

// benchInbox is a new user's account on db, its INBOX, and a 4 KB message.
func benchInbox(b *testing.B, db testsupport.Database) (*store.Account, int64, []byte) {
	e := storetest.Open(b, db, storetest.Options{})
	a := e.Account(e.NewUser(b, "alice@example.org", false))
	return a, storetest.Inbox(b, a), storetest.SizedMessage(4096)
}

// BenchmarkAppend4KB appends 4 KB messages one at a time, each durable
// (message file fsynced, transaction committed) before the next starts.
func BenchmarkAppend4KB(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		a, inbox, msg := benchInbox(b, db)
		ctx := context.Background()
		b.SetBytes(int64(len(msg)))
		b.ResetTimer()
		for b.Loop() {
			if _, err := a.Append(ctx, inbox, msg, store.AppendOptions{Inbound: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkList50 lists a 50-message page, newest first, from mailboxes of
// 1,000 and 100,000 messages: the two should cost about the same.
func BenchmarkList50(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		e := storetest.Open(b, db, storetest.Options{})
		a := e.Account(e.NewUser(b, "alice@example.org", false))
		ctx := context.Background()
		for _, n := range []int{1_000, 100_000} {
			mb, err := a.CreateMailbox(ctx, fmt.Sprintf("Box%d", n), "")
			if err != nil {
				b.Fatal(err)
			}
			storetest.Seed(b, e, a.UserID(), mb.ID, n)
			for _, q := range []struct {
				name string
				q    store.ListQuery
			}{
				{"date-desc", store.ListQuery{Sort: store.SortDateDesc, Limit: 50, WithInfo: true}},
				{"uid-keyset-middle", store.ListQuery{AfterUID: uint32(n / 2), Limit: 50, WithInfo: true}},
			} {
				b.Run(fmt.Sprintf("%s/%d", q.name, n), func(b *testing.B) {
					for b.Loop() {
						ms, err := a.List(ctx, mb.ID, q.q)
						if err != nil || len(ms) != 50 {
							b.Fatalf("list: %d, %v", len(ms), err)
						}
					}
				})
			}
		}
	})
}

// BenchmarkWriteCycle is what an IMAP client's mail costs the store's
// writer, which every write of a SQLite database waits for: one 4 KB
// message appended, marked \Deleted and expunged, each durable before
// the next. cpu-µs/op is the process's CPU time per cycle, steadier than
// the wall time on a shared machine. (No storetest.Seed: it runs ANALYZE,
// which Basalt never does, and with SQLite's statistics every statement
// with a range of UIDs is prepared again for each new value.)
func BenchmarkWriteCycle(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		a, inbox, msg := benchInbox(b, db)
		ctx := context.Background()
		cpu := testsupport.CPUTime(b)
		b.ResetTimer()
		for b.Loop() {
			ap, err := a.Append(ctx, inbox, msg, store.AppendOptions{})
			if err != nil {
				b.Fatal(err)
			}
			set := store.UIDSet{{Start: ap.UID, Stop: ap.UID}}
			if _, err := a.SetFlags(ctx, inbox, set, store.FlagAdd, store.FlagDeleted, nil); err != nil {
				b.Fatal(err)
			}
			if gone, err := a.Expunge(ctx, inbox, set); err != nil || len(gone) != 1 {
				b.Fatalf("expunge: %v, %v", gone, err)
			}
		}
		b.ReportMetric(float64(cpu().Microseconds())/float64(b.N), "cpu-µs/op")
	})
}
