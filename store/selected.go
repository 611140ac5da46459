package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// What an IMAP session keeps of a selected mailbox besides its messages:
// which messages are recent to it (RFC 3501 2.3.2) and the keywords its
// FLAGS response must list (RFC 3501 7.2.6). Both live in the mailbox's
// row, so that they hold across processes and nodes and cost one indexed
// read.

// maxMailboxKeywords bounds the keywords one mailbox may come to use: they
// are all listed in every FLAGS response.
const maxMailboxKeywords = 1000

// ClaimRecent claims the messages of one of the account's mailboxes below
// UID upto that no session has claimed yet, for the caller's session: they
// are recent to it and to no other (RFC 3501 2.3.2). It returns from: the
// caller's messages are those with from <= UID < upto (none when from ==
// upto). The claim is a compare-and-set on the mailbox's row, so two
// sessions racing, on any node, never both get a message.
func (a *Account) ClaimRecent(ctx context.Context, mailboxID int64, upto uint32) (uint32, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return 0, fmt.Errorf("claim recent in mailbox %d: %w", mailboxID, err)
	}
	// Sessions of this process that see the same new mail take turns, so
	// that the first one's claim is what the others read, and they skip
	// the write: otherwise every session with the mailbox selected queued
	// an UPDATE behind SQLite's single writer at each poll after an
	// append (most of imaptest's steady-state latency). Other nodes race
	// through the compare-and-set below.
	mu := a.s.claims.lock(mailboxID)
	defer mu.Unlock()
	// Bounded: each lost race means another session claimed more, and
	// upto is soon reached.
	for range 20 {
		var cur uint32
		err := a.s.db.Get(ctx, &cur, a.s.rebind("SELECT recent_uid FROM mailboxes WHERE id = ? AND user_id = ?"), mailboxID, a.userID)
		if err != nil {
			return 0, fmt.Errorf("claim recent in mailbox %d: %w", mailboxID, notFound(err))
		}
		if cur >= upto {
			return upto, nil
		}
		res, err := a.s.db.ExecContext(ctx, a.s.rebind("UPDATE mailboxes SET recent_uid = ? WHERE id = ? AND user_id = ? AND recent_uid = ?"),
			upto, mailboxID, a.userID, cur)
		if err != nil {
			return 0, fmt.Errorf("claim recent in mailbox %d: %w", mailboxID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("claim recent in mailbox %d: %w", mailboxID, err)
		} else if n == 1 {
			return cur, nil
		}
	}
	return 0, fmt.Errorf("claim recent in mailbox %d: too many sessions racing", mailboxID)
}

// claimRecentTx is ClaimRecent inside a write transaction, which holds the
// user's row and so runs alone among the user's writers.
func (a *Account) claimRecentTx(ctx context.Context, tx *sqlx.Tx, mailboxID int64, upto uint32) (uint32, error) {
	var cur uint32
	if err := a.s.db.TxGet(ctx, tx, &cur, a.s.rebind("SELECT recent_uid FROM mailboxes WHERE id = ?"), mailboxID); err != nil {
		return 0, fmt.Errorf("claim recent in mailbox %d: %w", mailboxID, notFound(err))
	}
	if cur >= upto {
		return upto, nil
	}
	if _, err := a.s.db.TxExec(ctx, tx, a.s.rebind("UPDATE mailboxes SET recent_uid = ? WHERE id = ?"), upto, mailboxID); err != nil {
		return 0, fmt.Errorf("claim recent in mailbox %d: %w", mailboxID, err)
	}
	return cur, nil
}

// claimLocks stripes a mutex per mailbox over a fixed set, so that it
// needs no cleanup as mailboxes come and go; two mailboxes sharing a
// stripe only wait a little longer.
type claimLocks [64]sync.Mutex

func (c *claimLocks) lock(mailboxID int64) *sync.Mutex {
	mu := &c[uint64(mailboxID)%uint64(len(c))]
	mu.Lock()
	return mu
}

// RecentCount returns how many messages of one of the account's mailboxes
// no session has claimed as recent yet: STATUS RECENT, and what EXAMINE
// shows, which must not claim them (RFC 3501 6.3.2).
func (a *Account) RecentCount(ctx context.Context, mailboxID int64) (uint32, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return 0, fmt.Errorf("count recent in mailbox %d: %w", mailboxID, err)
	}
	var n uint32
	err := a.s.db.GetContext(ctx, &n, a.s.rebind(`SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		WHERE m.mailbox_id = ? AND b.user_id = ? AND m.uid >= b.recent_uid`), mailboxID, a.userID)
	if err != nil {
		return 0, fmt.Errorf("count recent in mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}

// Keywords returns the keywords in use in one of the account's mailboxes,
// sorted: every keyword a message there carries, and perhaps some that no
// message carries any more (the list only grows, as a client's FLAGS
// does). It reads the mailbox's row, not its messages; a mailbox made
// before the list was kept has it gathered from its messages once.
func (a *Account) Keywords(ctx context.Context, mailboxID int64) ([]string, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("keywords of mailbox %d: %w", mailboxID, err)
	}
	var kw sql.NullString
	err := a.s.db.GetContext(ctx, &kw, a.s.rebind("SELECT keywords FROM mailboxes WHERE id = ? AND user_id = ?"), mailboxID, a.userID)
	if err != nil {
		return nil, fmt.Errorf("keywords of mailbox %d: %w", mailboxID, notFound(err))
	}
	if kw.Valid {
		return splitKeywords(kw.String), nil
	}
	// Gathered under the user's write lock, so that no change adding a
	// keyword commits between the read of the messages and the write of
	// the list (writers leave a NULL list alone).
	var out []string
	err = a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, _ *spine.Change) error {
		if _, err := a.lockMailbox(ctx, tx, mailboxID); err != nil {
			return err
		}
		var kw sql.NullString
		if err := tx.GetContext(ctx, &kw, a.s.rebind("SELECT keywords FROM mailboxes WHERE id = ?"), mailboxID); err != nil {
			return err
		}
		if kw.Valid {
			out = splitKeywords(kw.String)
			return nil
		}
		var lists []string
		if err := tx.SelectContext(ctx, &lists, a.s.rebind("SELECT DISTINCT keywords FROM messages WHERE mailbox_id = ? AND keywords <> '' ORDER BY keywords"), mailboxID); err != nil {
			return err
		}
		out = nil
		for _, l := range lists {
			out, _ = mergeKeywords(out, splitKeywords(l))
		}
		_, err := tx.ExecContext(ctx, a.s.rebind("UPDATE mailboxes SET keywords = ? WHERE id = ?"), strings.Join(out, " "), mailboxID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keywords of mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}

// errTooManyKeywords refuses a change that would take a mailbox past
// maxMailboxKeywords.
var errTooManyKeywords = fmt.Errorf("%w: the mailbox uses %d keywords, the most it may", ErrInvalid, maxMailboxKeywords)

// noteKeywords adds kws to the keyword list of a mailbox whose row tx has
// locked, in the transaction that brings them in. A list not gathered yet
// stays so: Keywords gathers it with these. With bounded set, it refuses
// to take the list past maxMailboxKeywords.
func (s *Store) noteKeywords(ctx context.Context, tx *sqlx.Tx, mailboxID int64, kws []string, bounded bool) error {
	if len(kws) == 0 {
		return nil
	}
	var kw sql.NullString
	if err := s.db.TxGet(ctx, tx, &kw, s.rebind("SELECT keywords FROM mailboxes WHERE id = ?"), mailboxID); err != nil {
		return fmt.Errorf("keywords of mailbox %d: %w", mailboxID, notFound(err))
	}
	if !kw.Valid {
		return nil
	}
	all, grew := mergeKeywords(splitKeywords(kw.String), kws)
	if !grew {
		return nil
	}
	if bounded && len(all) > maxMailboxKeywords {
		return errTooManyKeywords
	}
	_, err := s.db.TxExec(ctx, tx, s.rebind("UPDATE mailboxes SET keywords = ? WHERE id = ?"), strings.Join(all, " "), mailboxID)
	return err
}

// mergeKeywords adds to a sorted keyword list the keywords of add it lacks,
// comparing case-insensitively as IMAP does, and reports whether it grew.
func mergeKeywords(list, add []string) ([]string, bool) {
	grew := false
	for _, k := range add {
		if k == "" || slices.ContainsFunc(list, func(l string) bool { return strings.EqualFold(l, k) }) {
			continue
		}
		i, _ := slices.BinarySearch(list, k)
		list = slices.Insert(list, i, k)
		grew = true
	}
	return list, grew
}

// MailboxChanges is what a selected IMAP session learns at a poll.
type MailboxChanges struct {
	// HighestModSeq and RecentUID are the mailbox's, as read.
	HighestModSeq uint64
	RecentUID     uint32
	// When HighestModSeq is above the modseq asked about: the mailbox's
	// keywords (Keywords), the UIDs expunged since (in UID order) and the
	// messages changed or added since (in UID order; of each only its UID,
	// flags, keywords and modseq).
	Keywords []string
	Vanished []uint32
	Changed  []Message
}

// PollChanges is the poll of a session that has one of the account's own
// mailboxes selected and last saw it at modseq: one indexed read of the
// mailbox's row when nothing changed, and reads that cost what changed
// when something did (tombstones and messages through their (mailbox,
// modseq) indexes). It runs after every command of every session, so its
// statements are prepared once (sqldb.DB.Get, Select). A mailbox seen
// through a share is refused (ErrForbidden): its rights and the viewer's
// own \Seen need Mailbox, MyRights, Vanished and List.
func (a *Account) PollChanges(ctx context.Context, mailboxID int64, modseq uint64) (MailboxChanges, error) {
	if a.view != nil {
		return MailboxChanges{}, fmt.Errorf("changes of mailbox %d: %w: a shared mailbox", mailboxID, ErrForbidden)
	}
	// A poll reads what changed through indexes, after every command:
	// short statements (sqldb.Short).
	ctx, err := sqldb.Short(ctx)
	if err != nil {
		return MailboxChanges{}, err
	}
	var row struct {
		ModSeq    uint64         `db:"highest_modseq"`
		RecentUID uint32         `db:"recent_uid"`
		Keywords  sql.NullString `db:"keywords"`
	}
	err = a.s.db.Get(ctx, &row, a.s.rebind("SELECT highest_modseq, recent_uid, keywords FROM mailboxes WHERE id = ? AND user_id = ?"), mailboxID, a.userID)
	if err != nil {
		return MailboxChanges{}, fmt.Errorf("changes of mailbox %d: %w", mailboxID, notFound(err))
	}
	out := MailboxChanges{HighestModSeq: row.ModSeq, RecentUID: row.RecentUID}
	if row.ModSeq <= modseq {
		return out, nil
	}
	if row.Keywords.Valid {
		out.Keywords = splitKeywords(row.Keywords.String)
	} else if out.Keywords, err = a.Keywords(ctx, mailboxID); err != nil {
		return MailboxChanges{}, fmt.Errorf("changes of mailbox %d: %w", mailboxID, err)
	}
	// The mailbox is the user's (read above): no join to check it again.
	// What changed and what went are one statement, of the four columns
	// a session's view needs: after every write of a busy mailbox every
	// session's poll finds something, and a statement and its columns,
	// each handed over by the driver on its own, are most of its cost.
	var rows []struct {
		UID      uint32 `db:"uid"`
		ModSeq   uint64 `db:"modseq"`
		Flags    Flags  `db:"flags"`
		Keywords string `db:"keywords"`
		Gone     bool   `db:"gone"`
	}
	err = a.s.db.Select(ctx, &rows, a.s.rebind(`SELECT uid, modseq, flags, keywords, 0 AS gone FROM messages WHERE mailbox_id = ? AND user_id = ? AND modseq > ?
		UNION ALL SELECT uid, modseq, 0, '', 1 FROM expunged WHERE mailbox_id = ? AND modseq > ?`), mailboxID, a.userID, modseq, mailboxID, modseq)
	if err != nil {
		return MailboxChanges{}, fmt.Errorf("changes of mailbox %d: %w", mailboxID, err)
	}
	out.Changed = make([]Message, 0, len(rows))
	for _, r := range rows {
		if r.Gone {
			out.Vanished = append(out.Vanished, r.UID)
		} else {
			out.Changed = append(out.Changed, Message{MailboxID: mailboxID, UID: r.UID, ModSeq: r.ModSeq, Flags: r.Flags, Keywords: splitKeywords(r.Keywords)})
		}
	}
	slices.Sort(out.Vanished)
	slices.SortFunc(out.Changed, func(x, y Message) int { return cmp.Compare(x.UID, y.UID) })
	return out, nil
}
