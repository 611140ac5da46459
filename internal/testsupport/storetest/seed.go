package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"basalt/message"
)

// Seed fills one of a user's mailboxes with n message rows in bulk, for
// benchmarks over large mailboxes: the rows are what Append writes (a
// parsed envelope and body structure included) for the same plain-text
// message, UIDs 1..n, but without message files, so listing, searching by
// flags and FETCH of anything but body sections work, while opening a
// message does not. The mailbox must be empty; its counts are set to
// match. Rows are inserted 500 to a statement.
func Seed(tb testing.TB, e *Env, userID, mailboxID int64, n int) {
	tb.Helper()
	ctx := context.Background()
	raw := Message("Bob <bob@example.org>", "alice@example.org", "A subject of usual length", strings.Repeat("text ", 100))
	info, err := json.Marshal(message.Parse(raw))
	if err != nil {
		tb.Fatal(err)
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
				args = append(args, userID, mailboxID, i+1, i+1, len(raw), 1_600_000_000+i*60, fmt.Sprintf("seed%028x", i), info)
			}
			_, err := tx.ExecContext(ctx, e.DB.Rebind(sb.String()), args...)
			return err
		})
		if err != nil {
			tb.Fatalf("seed: %v", err)
		}
	}
	if _, err := e.DB.ExecContext(ctx, e.DB.Rebind(`UPDATE mailboxes SET uidnext = ?, highest_modseq = ?, message_count = ?,
		unseen_count = ?, size_bytes = ? WHERE id = ?`), n+1, n+1, n, n, int64(n)*int64(len(raw)), mailboxID); err != nil {
		tb.Fatal(err)
	}
	if e.DB.Dialect() == "mysql" {
		e.DB.ExecContext(ctx, "ANALYZE TABLE messages")
	} else {
		e.DB.ExecContext(ctx, "ANALYZE")
	}
}

// SeedExpunged gives one of a user's mailboxes a history of n expunged
// messages in bulk: n tombstones, each with a modseq of its own, as n
// messages appended after the mailbox's current ones and expunged one by
// one would leave; the mailbox's UIDNEXT and highest modseq move past
// them. For benchmarks of what a mailbox's history costs.
func SeedExpunged(tb testing.TB, e *Env, mailboxID int64, n int) {
	tb.Helper()
	ctx := context.Background()
	var mb struct {
		UIDNext uint32 `db:"uidnext"`
		ModSeq  uint64 `db:"highest_modseq"`
	}
	if err := e.DB.GetContext(ctx, &mb, e.DB.Rebind("SELECT uidnext, highest_modseq FROM mailboxes WHERE id = ?"), mailboxID); err != nil {
		tb.Fatalf("seed expunged: %v", err)
	}
	const batch = 500
	for start := 0; start < n; start += batch {
		var sb strings.Builder
		var args []any
		sb.WriteString("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES ")
		for i := start; i < min(start+batch, n); i++ {
			if i > start {
				sb.WriteString(",")
			}
			sb.WriteString("(?, ?, ?)")
			args = append(args, mailboxID, mb.UIDNext+uint32(i), mb.ModSeq+uint64(i)+1)
		}
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind(sb.String()), args...); err != nil {
			tb.Fatalf("seed expunged: %v", err)
		}
	}
	if _, err := e.DB.ExecContext(ctx, e.DB.Rebind("UPDATE mailboxes SET uidnext = ?, highest_modseq = ?, recent_uid = ? WHERE id = ?"),
		mb.UIDNext+uint32(n), mb.ModSeq+uint64(n), mb.UIDNext+uint32(n), mailboxID); err != nil {
		tb.Fatalf("seed expunged: %v", err)
	}
	if e.DB.Dialect() == "mysql" {
		e.DB.ExecContext(ctx, "ANALYZE TABLE expunged")
	} else {
		e.DB.ExecContext(ctx, "ANALYZE")
	}
}
