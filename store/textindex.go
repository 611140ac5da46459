package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/message"
	"basalt/store/sqldb"
)

// The full-text index (table message_text: SQLite FTS5, InnoDB FULLTEXT on
// MariaDB) holds, for users whose mail is not sealed, each message's
// subject, senders, recipients and text. A secure user's mail never has a
// row: nothing readable of it may reach the disk (search.go scans it with
// the unlocked key instead). A row is shared by the copies of a message
// (messages.text_id), and removed with the last message that refers to it.
//
// On MariaDB the append's transaction writes the row. On SQLite, whose one
// writer every write of every user waits for, indexing a message's text
// was a fifth of an append's time there: the append notes the message in
// text_pending instead, in its transaction, and IndexPending writes the
// rows shortly after, a bounded batch to a transaction. A search first
// indexes what its user has pending (indexPendingOf), so it finds all the
// mail there is; a message expunged before its turn costs the index
// nothing; and the notes, being in the database, outlive a crash.

// maxIndexedText bounds the body text indexed per message: 256 KiB of
// decoded text, well past any letter, so that a huge text attachment
// mistaken for the body, or a mailing list digest, costs the index no
// more than that. Words past it are not found by a search.
const maxIndexedText = 256 << 10

// sortKeyMax bounds the sort_from and sort_subject columns, in octets.
const sortKeyMax = 100

// textDoc is what the full-text index holds of one message.
type textDoc struct {
	subject, sender, recipients, body string
}

// newTextDoc works out a message's row of the index from its parse.
func newTextDoc(raw []byte, info *message.Info) *textDoc {
	rcpt := info.SearchTo
	for _, a := range info.Envelope.Cc {
		if a.IsGroupStart() || a.IsGroupEnd() {
			continue
		}
		rcpt += ", " + strings.TrimSpace(a.Name+" "+a.Mailbox+"@"+a.Host)
	}
	return &textDoc{subject: info.Envelope.Subject, sender: info.SearchFrom, recipients: rcpt,
		body: message.IndexText(raw, &info.Body, maxIndexedText)}
}

// sortKeys are a message's sender and subject sort keys and its Date
// header (unix seconds, 0 when it has none).
func sortKeys(info *message.Info) (from, subject string, sent int64) {
	if !info.Envelope.Date.IsZero() {
		sent = info.Envelope.Date.Unix()
	}
	return message.SortFrom(&info.Envelope, sortKeyMax), message.SortSubject(info.Envelope.Subject, sortKeyMax), sent
}

// insertText writes the index row textID of a user's message.
func (s *Store) insertText(ctx context.Context, tx *sqlx.Tx, userID, textID int64, d *textDoc) error {
	q := "INSERT INTO message_text (id, user_id, subject, sender, recipients, body) VALUES (?, ?, ?, ?, ?, ?)"
	args := []any{textID, userID, d.subject, d.sender, d.recipients, d.body}
	if s.db.Dialect() == sqldb.SQLite {
		q = "INSERT INTO message_text (rowid, subject, sender, recipients, body) VALUES (?, ?, ?, ?, ?)"
		args = append(args[:1], args[2:]...)
	}
	if _, err := s.db.TxExec(ctx, tx, s.rebind(q), args...); err != nil {
		return fmt.Errorf("index message text: %w", err)
	}
	return nil
}

// deferText says whether appends leave their index rows to the indexer.
func (s *Store) deferText() bool { return s.db.Dialect() == sqldb.SQLite }

// textDelay is how long the indexer lets appends gather after one woke
// it, so that a burst of mail is indexed in one transaction, and mail
// expunged at once (a filter's, a client's) is never indexed.
const textDelay = 200 * time.Millisecond

// textRecheck is how often the indexer looks for pending rows unwoken: a
// wake that came before its append committed found nothing. It looks once
// at start too, for what a stop left.
const textRecheck = 30 * time.Second

// wakeIndexer tells IndexPending that an append has text for it.
func (s *Store) wakeIndexer() {
	select {
	case s.textWake <- struct{}{}:
	default:
	}
}

// IndexPending writes the index rows appends left to it, until ctx ends.
// It does nothing on MariaDB (deferText).
func (s *Store) IndexPending(ctx context.Context) {
	if !s.deferText() {
		return
	}
	t := time.NewTicker(textRecheck)
	defer t.Stop()
	s.wakeIndexer()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.textWake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(textDelay):
			}
		case <-t.C:
		}
		if err := s.indexPending(ctx, 0, 0); err != nil && ctx.Err() == nil {
			s.log.Warn("text index: pending messages", "err", err)
		}
	}
}

// indexPendingOf indexes what one user has pending, if anything: before
// a search of the user's mail. It indexes what was pending when it was
// called, not mail that keeps arriving meanwhile.
func (s *Store) indexPendingOf(ctx context.Context, userID int64) error {
	if !s.deferText() {
		return nil
	}
	var upto sql.NullInt64
	if err := s.db.GetContext(ctx, &upto, "SELECT MAX(text_id) FROM text_pending WHERE user_id = ?", userID); err != nil || !upto.Valid {
		return err
	}
	return s.indexPending(ctx, userID, upto.Int64)
}

// pendingBatch bounds the messages the indexer does per transaction, and
// pendingText their text: every other write waits while it runs.
const (
	pendingBatch = 100
	pendingText  = 2 << 20
)

// indexPending indexes the pending messages of userID up to text id upto,
// or of every user when userID is 0 (upto then unused), until none is
// left.
func (s *Store) indexPending(ctx context.Context, userID, upto int64) error {
	for {
		if done, err := s.indexPendingBatch(ctx, userID, upto); done || err != nil {
			return err
		}
	}
}

// indexPendingBatch indexes one batch of indexPending's and says whether
// none was left. One batch runs at a time: a search and the indexer would
// otherwise read and parse the same messages twice.
func (s *Store) indexPendingBatch(ctx context.Context, userID, upto int64) (bool, error) {
	s.textMu.Lock()
	defer s.textMu.Unlock()
	var rows []struct {
		UserID int64 `db:"user_id"`
		TextID int64 `db:"text_id"`
	}
	q, args := "SELECT user_id, text_id FROM text_pending ORDER BY user_id, text_id LIMIT "+strconv.Itoa(pendingBatch), []any(nil)
	if userID != 0 {
		q, args = "SELECT user_id, text_id FROM text_pending WHERE user_id = ? AND text_id <= ? ORDER BY text_id LIMIT "+strconv.Itoa(pendingBatch), []any{userID, upto}
	}
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return false, fmt.Errorf("pending texts: %w", err)
	}
	if len(rows) == 0 {
		return true, nil
	}
	// The texts are read and parsed before the transaction, which
	// then only writes: the writer waits for nothing else.
	var docs []*textDoc
	size := 0
	for _, r := range rows {
		d, err := s.pendingDoc(ctx, r.UserID, r.TextID)
		if err != nil {
			return false, err
		}
		docs = append(docs, d)
		if d != nil {
			size += len(d.subject) + len(d.sender) + len(d.recipients) + len(d.body)
		}
		if size >= pendingText {
			break
		}
	}
	rows = rows[:len(docs)]
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		for i, r := range rows {
			// A note gone since went with the last message of its text
			// (dropTexts): there is nothing to index.
			res, err := s.db.TxExec(ctx, tx, "DELETE FROM text_pending WHERE user_id = ? AND text_id = ?", r.UserID, r.TextID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 || docs[i] == nil {
				continue
			}
			if err := s.insertText(ctx, tx, r.UserID, r.TextID, docs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pending texts: %w", err)
	}
	return false, nil
}

// pendingDoc works out the index row of a pending text from a message
// that has it; nil when none has (the note is about to go).
func (s *Store) pendingDoc(ctx context.Context, userID, textID int64) (*textDoc, error) {
	// The message read may be moved away (its copy keeps the text) or
	// expunged between the two reads: then another that has the text is.
	for try := 0; ; try++ {
		var m struct {
			ID         int64  `db:"id"`
			InfoSealed bool   `db:"info_sealed"`
			Info       []byte `db:"info"`
		}
		err := s.db.GetContext(ctx, &m, "SELECT id, info_sealed, info FROM messages WHERE text_id = ? AND user_id = ? LIMIT 1", textID, userID)
		if errors.Is(err, sql.ErrNoRows) || err == nil && m.InfoSealed {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("pending text %d: %w", textID, err)
		}
		var info message.Info
		if err := json.Unmarshal(m.Info, &info); err != nil {
			s.log.Warn("text index: undecodable metadata", "message", m.ID, "err", err)
			return nil, nil
		}
		raw, err := s.Account(userID, nil).readRaw(ctx, m.ID)
		if errors.Is(err, ErrNotFound) && try < 3 {
			continue
		}
		if err != nil {
			// Unreadable: indexed without its body, as the backlog is.
			s.log.Warn("text index: message unreadable", "message", m.ID, "err", err)
		}
		return newTextDoc(raw, &info), nil
	}
}

// textShift places a user's index rows in a range of ids of their own:
// text ids are the user id times 2^36 plus a message id, so that SQLite's
// index finds a user's rows by a range of rowids (a seek), where a token
// of the user's ANDed with the words would read the user's every row.
const textShift = 36

// textIDOf is the text id of message id of a user.
func textIDOf(userID, id int64) int64 { return userID<<textShift | id }

// textRange is the range of a user's text ids.
func textRange(userID int64) (lo, hi int64) {
	return userID << textShift, userID<<textShift | (1<<textShift - 1)
}

// textKey is the message_text column that holds a row's text_id.
func (s *Store) textKey() string {
	if s.db.Dialect() == sqldb.SQLite {
		return "rowid"
	}
	return "id"
}

// dropTexts removes the index rows among ids that no message refers to
// any more: called in the transaction that deleted messages.
func (s *Store) dropTexts(ctx context.Context, tx *sqlx.Tx, userID int64, ids []any) error {
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		q, args, err := sqlx.In("DELETE FROM message_text WHERE "+s.textKey()+" IN (?) AND NOT EXISTS (SELECT 1 FROM messages WHERE user_id = ? AND text_id = message_text."+s.textKey()+")", chunk, userID)
		if err != nil {
			return err
		}
		if s.db.Dialect() == sqldb.SQLite {
			// FTS5 deletes by rowid only: the survivors are found first.
			q, args, err = sqlx.In("SELECT DISTINCT text_id FROM messages WHERE text_id IN (?)", chunk)
			if err != nil {
				return err
			}
			var alive []int64
			if err := s.sp.SelectFew(ctx, tx, len(chunk), &alive, q, args...); err != nil {
				return fmt.Errorf("drop message text: %w", err)
			}
			keep := make(map[int64]bool, len(alive))
			for _, id := range alive {
				keep[id] = true
			}
			var gone []any
			for _, id := range chunk {
				if !keep[id.(int64)] {
					gone = append(gone, id)
				}
			}
			// A text still waiting for the indexer has no index row: its
			// note goes instead (only where appends leave notes).
			if len(gone) > 0 && s.deferText() {
				q, args, err := sqlx.In("DELETE FROM text_pending WHERE user_id = ? AND text_id IN (?) RETURNING text_id", userID, gone)
				if err != nil {
					return err
				}
				var noted []int64
				if err := s.sp.SelectFew(ctx, tx, len(gone), &noted, q, args...); err != nil {
					return fmt.Errorf("drop pending text: %w", err)
				}
				gone = slices.DeleteFunc(gone, func(id any) bool { return slices.Contains(noted, id.(int64)) })
			}
			if len(gone) == 0 {
				continue
			}
			if q, args, err = sqlx.In("DELETE FROM message_text WHERE rowid IN (?)", gone); err != nil {
				return err
			}
		}
		if _, err := s.txExecFew(ctx, tx, len(args), s.rebind(q), args...); err != nil {
			return fmt.Errorf("drop message text: %w", err)
		}
	}
	return nil
}

// textIDs returns the distinct nonzero text ids of rows.
func textIDs(rows []messageRow) []any {
	seen := map[int64]bool{}
	var out []any
	for _, r := range rows {
		if r.TextID != 0 && !seen[r.TextID] {
			seen[r.TextID] = true
			out = append(out, r.TextID)
		}
	}
	return out
}

// indexBatch is how many messages the backlog indexer does per transaction.
const indexBatch = 100

// IndexBacklog indexes the messages stored before the full-text index
// existed (text_id 0): their text for users whose mail is not sealed, and
// for every message the sort keys and parent hash that appends now write.
// It goes by message id from where it last stopped (text_index_cursor), a
// transaction of at most 100 messages at a time, so that it can stop at
// any point and resume, and never holds the writers up for long; pause is
// waited between batches. It returns how many messages it indexed, when
// none are left or ctx ends.
func (s *Store) IndexBacklog(ctx context.Context, pause time.Duration) (int, error) {
	done := 0
	for {
		n, more, err := s.indexBatch(ctx, indexBatch)
		done += n
		if err != nil || !more {
			return done, err
		}
		select {
		case <-ctx.Done():
			return done, nil
		case <-time.After(pause):
		}
	}
}

// indexBatch indexes the next batch of at most size messages of the
// backlog; more says whether anything may be left.
func (s *Store) indexBatch(ctx context.Context, size int) (int, bool, error) {
	var last int64
	err := s.db.GetContext(ctx, &last, "SELECT COALESCE(MAX(last_id), 0) FROM text_index_cursor WHERE name = 'backlog'")
	if err != nil {
		return 0, false, fmt.Errorf("index backlog: %w", err)
	}
	var rows []struct {
		ID         int64  `db:"id"`
		UserID     int64  `db:"user_id"`
		InfoSealed bool   `db:"info_sealed"`
		Info       []byte `db:"info"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.rebind("SELECT id, user_id, info_sealed, info FROM messages WHERE id > ? AND text_id = 0 ORDER BY id LIMIT "+strconv.Itoa(size)), last); err != nil {
		return 0, false, fmt.Errorf("index backlog: %w", err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	type work struct {
		id, user              int64
		from, subject, parent string
		sent                  int64
		doc                   *textDoc
	}
	var ws []work
	for _, r := range rows {
		w := work{id: r.ID, user: r.UserID}
		if !r.InfoSealed {
			var info message.Info
			if err := json.Unmarshal(r.Info, &info); err != nil {
				s.log.Warn("index backlog: undecodable metadata", "message", r.ID, "err", err)
			} else {
				w.from, w.subject, w.sent = sortKeys(&info)
				w.parent = hashMessageID(info.ParentID())
				raw, err := s.Account(r.UserID, nil).readRaw(ctx, r.ID)
				if err != nil {
					// Gone since, or unreadable: indexed without its body.
					s.log.Warn("index backlog: message unreadable", "message", r.ID, "err", err)
				}
				w.doc = newTextDoc(raw, &info)
			}
		}
		ws = append(ws, w)
	}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		for _, w := range ws {
			text := textIDOf(w.user, w.id)
			q := "UPDATE messages SET text_id = ? WHERE id = ? AND text_id = 0"
			args := []any{text, w.id}
			if w.doc != nil {
				q = "UPDATE messages SET text_id = ?, sort_from = ?, sort_subject = ?, parent_hash = ?, sent_date = CASE WHEN ? > 0 THEN ? ELSE internal_date END WHERE id = ? AND text_id = 0"
				args = []any{text, w.from, w.subject, w.parent, w.sent, w.sent, w.id}
			}
			res, err := tx.ExecContext(ctx, s.rebind(q), args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 && w.doc != nil {
				if err := s.insertText(ctx, tx, w.user, text, w.doc); err != nil {
					return err
				}
			}
		}
		q := "INSERT INTO text_index_cursor (name, last_id) VALUES ('backlog', ?) ON DUPLICATE KEY UPDATE last_id = VALUES(last_id)"
		if s.db.Dialect() == sqldb.SQLite {
			q = "INSERT INTO text_index_cursor (name, last_id) VALUES ('backlog', ?) ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id"
		}
		_, err := tx.ExecContext(ctx, s.rebind(q), ws[len(ws)-1].id)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("index backlog: %w", err)
	}
	return len(ws), len(rows) == size, nil
}
