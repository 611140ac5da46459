package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/message"
	"basalt/store"
	"basalt/store/sqldb"
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

// SeedCopies fills one of a user's mailboxes, empty or not, with n more
// messages in a few statements: the first is appended through the store
// (its file, its row and its full-text row are the store's own), and the
// other n-1 are copies of its row, as COPY makes them (store/copy.go):
// one message file referenced once per message, one full-text row
// (text_id), the same metadata and sort keys (the store keeps one parse
// per file, so copies cannot differ in subject or sender). Each copy has
// what an append would give it besides: the next UID and modseq, an
// arrival (and, the message having no Date header, a sent date) a minute
// after the one before, and a thread of its own named by its id (it has
// no Message-ID or references). The messages open, list, sort, thread,
// count, search and expunge like appended ones. It needs a statement per
// 25,000 rows on SQLite (per 1,000 on MariaDB) where Seed needs one per
// 500; under the race detector the embedded SQLite's index updates still
// cost about 2 ms a row.
func SeedCopies(tb testing.TB, e *Env, a *store.Account, mailboxID int64, n int) {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("seed copies: %d messages", n)
	}
	ctx := context.Background()
	raw := []byte("From: Sender <sender@example.net>\r\nTo: reader@example.org\r\n" +
		"Subject: Seeded message\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.Repeat("A line of text in a seeded message.\r\n", 12))
	first := time.Now().Add(-time.Duration(n) * time.Minute).Truncate(time.Second)
	app, err := a.Append(ctx, mailboxID, raw, store.AppendOptions{InternalDate: first})
	if err != nil {
		tb.Fatalf("seed copies: append the first: %v", err)
	}
	if n == 1 {
		return
	}
	chunk := 25_000
	if e.DB.Dialect() == sqldb.MySQL {
		// A recursive CTE may be held to 1000 rounds here (MySQL's
		// cte_max_recursion_depth, MariaDB's max_recursive_iterations in
		// some versions).
		chunk = 1000
	}
	err = e.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		var base int64
		if err := tx.GetContext(ctx, &base, "SELECT MAX(id) FROM messages"); err != nil {
			return fmt.Errorf("last message id: %w", err)
		}
		// Copy i (1..n-1): id base+i, which names its thread.
		for lo := 1; lo < n; lo += chunk {
			hi := min(lo+chunk-1, n-1)
			q := `INSERT INTO messages (id, user_id, mailbox_id, uid, modseq, flags, keywords, size, internal_date,
				blob_id, info, info_sealed, search_from, search_to, search_subject, msgid_hash, thread_id, has_attachments,
				created_at, sent_date, sort_from, sort_subject, parent_hash, text_id)
				SELECT ? + s.i, t.user_id, t.mailbox_id, t.uid + s.i, t.modseq + s.i, t.flags, t.keywords, t.size, t.internal_date + 60 * s.i,
				t.blob_id, t.info, t.info_sealed, t.search_from, t.search_to, t.search_subject, t.msgid_hash, ? + s.i, t.has_attachments,
				t.created_at, t.sent_date + 60 * s.i, t.sort_from, t.sort_subject, t.parent_hash, t.text_id
				FROM (WITH RECURSIVE seq (i) AS (SELECT ` + strconv.Itoa(lo) + ` UNION ALL SELECT i + 1 FROM seq WHERE i < ` + strconv.Itoa(hi) + `)
				SELECT i FROM seq) s, messages t WHERE t.id = ?`
			if _, err := tx.ExecContext(ctx, e.DB.Rebind(q), base, base, app.ID); err != nil {
				return fmt.Errorf("copy rows %d to %d: %w", lo, hi, err)
			}
		}
		k := n - 1
		if _, err := tx.ExecContext(ctx, e.DB.Rebind(`UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + ?,
			message_count = message_count + ?, unseen_count = unseen_count + ?, size_bytes = size_bytes + ? WHERE id = ?`),
			k, k, k, k, int64(k)*app.Size, mailboxID); err != nil {
			return fmt.Errorf("count the copies: %w", err)
		}
		if _, err := tx.ExecContext(ctx, e.DB.Rebind("UPDATE users SET used_bytes = used_bytes + ?, message_count = message_count + ? WHERE id = ?"),
			int64(k)*app.Size, k, a.UserID()); err != nil {
			return fmt.Errorf("charge the copies: %w", err)
		}
		if _, err := tx.ExecContext(ctx, e.DB.Rebind("UPDATE blobs SET refs = refs + ? WHERE id = (SELECT blob_id FROM messages WHERE id = ?)"), k, app.ID); err != nil {
			return fmt.Errorf("reference the file: %w", err)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed copies: %v", err)
	}
	if e.DB.Dialect() == sqldb.MySQL {
		e.DB.ExecContext(ctx, "ANALYZE TABLE messages")
	} else {
		e.DB.ExecContext(ctx, "ANALYZE")
	}
}
