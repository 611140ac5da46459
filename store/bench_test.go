package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/mimeinfo"
)

// benchDatabases runs f on SQLite and on MariaDB (when configured).
func benchDatabases(b *testing.B, f func(b *testing.B, db testsupport.Database)) {
	b.Run("sqlite", func(b *testing.B) { f(b, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(b)}) })
	b.Run("mysql", func(b *testing.B) { f(b, testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(b)}) })
}

// BenchmarkAppend4KB appends 4 KB messages one at a time, each durable
// (message file fsynced, transaction committed) before the next starts.
func BenchmarkAppend4KB(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		e := storetest.Open(b, db, storetest.Options{})
		a := e.Account(e.NewUser(b, "alice@example.org", false))
		inbox := storetest.Inbox(b, a)
		msg := storetest.SizedMessage(4096)
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
			seed(b, e, a.UserID(), mb.ID, n)
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

// seed fills a mailbox with n message rows in bulk. The rows are what
// Append writes, minus the files, which listing never reads.
func seed(b testing.TB, e *storetest.Env, userID, mailboxID int64, n int) {
	b.Helper()
	ctx := context.Background()
	raw := storetest.Message("Bob <bob@example.org>", "alice@example.org", "A subject of usual length", strings.Repeat("text ", 100))
	info, err := json.Marshal(mimeinfo.Parse(raw))
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	for start := 0; start < n; start += batch {
		err := e.DB.Tx(ctx, func(tx *sqlx.Tx) error {
			var sb strings.Builder
			var args []any
			sb.WriteString(`INSERT INTO messages (user_id, mailbox_id, uid, modseq, flags, keywords, size, internal_date,
				blob_id, info, info_sealed, search_from, search_to, search_subject, msgid_hash, thread_id, has_attachments, created_at) VALUES `)
			for i := start; i < min(start+batch, n); i++ {
				if i > start {
					sb.WriteString(",")
				}
				sb.WriteString("(?, ?, ?, ?, 0, '', ?, ?, ?, ?, 0, 'bob@example.org', 'alice@example.org', 'a subject', '', 0, 0, 0)")
				args = append(args, userID, mailboxID, i+1, i+1, len(raw), 1_600_000_000+i*60, fmt.Sprintf("%032x", i), info)
			}
			_, err := tx.ExecContext(ctx, e.DB.Rebind(sb.String()), args...)
			return err
		})
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	if _, err := e.DB.ExecContext(ctx, e.DB.Rebind("UPDATE mailboxes SET uidnext = ?, highest_modseq = ?, message_count = ? WHERE id = ?"), n+1, n+1, n, mailboxID); err != nil {
		b.Fatal(err)
	}
	if e.DB.Dialect() == "mysql" {
		e.DB.ExecContext(ctx, "ANALYZE TABLE messages")
	} else {
		e.DB.ExecContext(ctx, "ANALYZE")
	}
}
