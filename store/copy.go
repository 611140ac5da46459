package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
)

// UIDPair maps a source message to its copy (RFC 4315 COPYUID).
type UIDPair struct{ Src, Dst uint32 }

// CopyResult says where copies went.
type CopyResult struct {
	UIDValidity uint32 // of the destination
	Pairs       []UIDPair
}

// Copy copies the messages in uids to another of the account's mailboxes,
// keeping their flags. Copies count against the quota; the message files
// are shared, not duplicated.
func (a *Account) Copy(ctx context.Context, src int64, uids UIDSet, dst int64) (CopyResult, error) {
	if err := a.needCopy(ctx, src, RightRead, dst); err != nil {
		return CopyResult{}, fmt.Errorf("copy from mailbox %d to %d: %w", src, dst, err)
	}
	var out CopyResult
	err := a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		var err error
		out, _, err = a.copyRows(ctx, tx, c, src, uids, dst, true)
		return err
	})
	if err != nil {
		return CopyResult{}, fmt.Errorf("copy from mailbox %d to %d: %w", src, dst, err)
	}
	return out, nil
}

// Move moves the messages in uids to one of the account's mailboxes in
// one transaction (RFC 6851): no state shows both or neither. Into their
// own mailbox, they get new UIDs (RFC 6851 3.3).
func (a *Account) Move(ctx context.Context, src int64, uids UIDSet, dst int64) (CopyResult, error) {
	if err := a.needCopy(ctx, src, RightRead|RightDeleteMessages|RightExpunge, dst); err != nil {
		return CopyResult{}, fmt.Errorf("move from mailbox %d to %d: %w", src, dst, err)
	}
	var out CopyResult
	err := a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		res, rows, err := a.copyRows(ctx, tx, c, src, uids, dst, false)
		if err != nil {
			return err
		}
		m, err := a.lockMailbox(ctx, tx, src)
		if err != nil {
			return err
		}
		// The files stay referenced by the copies, so nothing is left to remove.
		if _, err := a.deleteRows(ctx, tx, c, m.ID, rows, true); err != nil {
			return err
		}
		out = res
		return nil
	})
	if err != nil {
		return CopyResult{}, fmt.Errorf("move from mailbox %d to %d: %w", src, dst, err)
	}
	return out, nil
}

// copyRows copies the rows of uids from src to dst and returns the rows
// it copied. src and dst may be one mailbox (RFC 6851 3.3 allows a MOVE
// there): the rows are read before any copy is made, and the copies take
// new UIDs.
func (a *Account) copyRows(ctx context.Context, tx *sqlx.Tx, c *spine.Change, src int64, uids UIDSet, dst int64, chargeQuota bool) (CopyResult, []messageRow, error) {
	if _, err := a.lockMailbox(ctx, tx, src); err != nil {
		return CopyResult{}, nil, err
	}
	dm, err := a.lockMailbox(ctx, tx, dst)
	if err != nil {
		return CopyResult{}, nil, err
	}
	rows, err := a.selectRows(ctx, tx, src, uids)
	if err != nil {
		return CopyResult{}, nil, err
	}
	res := CopyResult{UIDValidity: dm.UIDValidity}
	if len(rows) == 0 {
		return res, rows, nil
	}
	cv, err := a.copyView(ctx, tx, dst)
	if err != nil {
		return CopyResult{}, nil, err
	}
	var (
		total, unseen int64
		kws           []string
	)
	for _, r := range rows {
		total += r.Size
		f, kw := cv.flags(r)
		if !f.Has(FlagSeen) {
			unseen++
		}
		kws, _ = mergeKeywords(kws, splitKeywords(kw))
	}
	if err := a.s.noteKeywords(ctx, tx, dst, kws, false); err != nil {
		return CopyResult{}, nil, err
	}
	n := int64(len(rows))
	// A move takes nothing from the quota that it does not give back in
	// the same transaction, so only a copy is checked against it.
	if chargeQuota {
		u, lim, err := a.s.userTx(ctx, tx, a.userID)
		if err != nil {
			return CopyResult{}, nil, err
		}
		if err := spine.FitsQuota(lim.QuotaBytes, u.UsedBytes, total); err != nil {
			return CopyResult{}, nil, err
		}
	}
	if err := a.s.sp.ChargeUser(ctx, tx, a.userID, total, n); err != nil {
		return CopyResult{}, nil, err
	}
	if _, err := a.s.db.TxExec(ctx, tx, a.s.rebind("UPDATE mailboxes SET uidnext = uidnext + ? WHERE id = ?"), n, dst); err != nil {
		return CopyResult{}, nil, err
	}
	modseq, err := a.bumpMailbox(ctx, tx, dst, n, unseen, total)
	if err != nil {
		return CopyResult{}, nil, err
	}
	refs := map[string]int{}
	uid := dm.UIDNext
	now := a.s.unix()
	copies := make([][2]int64, 0, len(rows))
	for _, r := range rows {
		flags, kws := cv.flags(r)
		// The copy shares the original's index row (text_id) and thread.
		ins, err := a.s.db.TxExec(ctx, tx, a.s.rebind(`INSERT INTO messages (user_id, mailbox_id, uid, modseq, flags, keywords, size,
			internal_date, blob_id, info, info_sealed, search_from, search_to, search_subject, msgid_hash, thread_id,
			has_attachments, created_at, sent_date, sort_from, sort_subject, parent_hash, text_id) SELECT user_id, ?, ?, ?, ?, ?, size, internal_date, blob_id, info,
			info_sealed, search_from, search_to, search_subject, msgid_hash,
			CASE WHEN thread_id = 0 THEN id ELSE thread_id END, has_attachments, ?, sent_date, sort_from, sort_subject, parent_hash, text_id
			FROM messages WHERE id = ?`),
			dst, uid, modseq, flags, kws, now, r.ID)
		if err != nil {
			return CopyResult{}, nil, err
		}
		id, err := ins.LastInsertId()
		if err != nil {
			return CopyResult{}, nil, err
		}
		copies = append(copies, [2]int64{r.ID, id})
		refs[r.BlobID]++
		res.Pairs = append(res.Pairs, UIDPair{Src: r.UID, Dst: uid})
		c.Add(dst, "append", uid, modseq)
		uid++
	}
	if err := a.s.sp.RefBlobs(ctx, tx, refs); err != nil {
		return CopyResult{}, nil, err
	}
	if err := a.copySeen(ctx, tx, cv, dst, copies); err != nil {
		return CopyResult{}, nil, err
	}
	return res, rows, nil
}

// Expunge removes the messages in uids (nil: the whole mailbox) that carry
// \Deleted (RFC 9051 6.4.3, and 6.4.9 UID EXPUNGE). It returns their UIDs.
func (a *Account) Expunge(ctx context.Context, mailboxID int64, uids UIDSet) ([]uint32, error) {
	if _, err := a.need(ctx, mailboxID, RightRead|RightExpunge); err != nil {
		return nil, fmt.Errorf("expunge mailbox %d: %w", mailboxID, err)
	}
	return a.remove(ctx, mailboxID, uids, true)
}

// Remove removes the messages in uids whatever their flags (the webmail's
// permanent delete). It returns their UIDs.
func (a *Account) Remove(ctx context.Context, mailboxID int64, uids UIDSet) ([]uint32, error) {
	if uids == nil {
		return nil, fmt.Errorf("remove: %w: no UIDs given", ErrInvalid)
	}
	// Removing whatever the flags is setting \Deleted and expunging.
	if _, err := a.need(ctx, mailboxID, RightRead|RightDeleteMessages|RightExpunge); err != nil {
		return nil, fmt.Errorf("remove from mailbox %d: %w", mailboxID, err)
	}
	return a.remove(ctx, mailboxID, uids, false)
}

func (a *Account) remove(ctx context.Context, mailboxID int64, uids UIDSet, onlyDeleted bool) ([]uint32, error) {
	if onlyDeleted {
		// Most EXPUNGEs find nothing marked \Deleted (clients send one on
		// leaving a mailbox, or after every move): a read finds that, and
		// spares the writers' queue a transaction that would change
		// nothing.
		if none, err := a.noneDeleted(ctx, mailboxID, uids); err == nil && none {
			return nil, nil
		}
	}
	var (
		gone   []uint32
		doomed []deleted
	)
	err := a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		gone = nil
		var set rowFilter = uids
		if onlyDeleted {
			set = deletedOnly{uids}
		}
		rows, err := a.lockedRows(ctx, tx, mailboxID, set)
		if err != nil {
			return err
		}
		for _, r := range rows {
			gone = append(gone, r.UID)
		}
		doomed, err = a.deleteRows(ctx, tx, c, mailboxID, rows, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expunge mailbox %d: %w", mailboxID, err)
	}
	a.s.sp.RemoveBlobs(ctx, doomed)
	return gone, nil
}

// noneDeleted reports whether the mailbox is the user's and none of its
// messages in uids carries \Deleted.
func (a *Account) noneDeleted(ctx context.Context, mailboxID int64, uids UIDSet) (bool, error) {
	cond, args, err := deletedOnly{uids}.sql()
	if err != nil {
		return false, err
	}
	var some bool
	err = a.s.db.GetContext(ctx, &some, a.s.rebind("SELECT EXISTS (SELECT 1 FROM messages WHERE mailbox_id = b.id AND user_id = b.user_id"+cond+
		") FROM mailboxes b WHERE b.id = ? AND b.user_id = ?"), append(args, mailboxID, a.userID)...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // not the user's: the transaction says so
	}
	return !some && err == nil, err
}

// fewArgs is how many values a statement built for a list may take and
// still be kept prepared (spine.FewArgs).
const fewArgs = spine.FewArgs

// txExecFew runs a statement built for a list of n values in tx
// (spine.ExecFew).
func (s *Store) txExecFew(ctx context.Context, tx *sqlx.Tx, n int, query string, args ...any) (sql.Result, error) {
	return s.sp.ExecFew(ctx, tx, n, query, args...)
}

// deleted is a message file no message refers to any more.
type deleted = spine.BlobRef

// deleteRows deletes message rows of a mailbox, keeping the mailbox's and
// the user's counts exact, recording tombstones when asked, and returns
// the files whose last reference went.
func (a *Account) deleteRows(ctx context.Context, tx *sqlx.Tx, c *spine.Change, mailboxID int64, rows []messageRow, tombstones bool) ([]deleted, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	var total, unseen int64
	ids := make([]any, 0, len(rows))
	refs := map[string]int{}
	for _, r := range rows {
		total += r.Size
		if !r.Flags.Has(FlagSeen) {
			unseen++
		}
		ids = append(ids, r.ID)
		refs[r.BlobID]++
	}
	n := int64(len(rows))
	modseq, err := a.bumpMailbox(ctx, tx, mailboxID, -n, -unseen, -total)
	if err != nil {
		return nil, err
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		q, args, err := sqlx.In("DELETE FROM messages WHERE user_id = ? AND id IN (?)", a.userID, chunk)
		if err != nil {
			return nil, err
		}
		if _, err := a.s.txExecFew(ctx, tx, len(chunk), a.s.rebind(q), args...); err != nil {
			return nil, err
		}
	}
	if err := a.s.sp.ChargeUser(ctx, tx, a.userID, -total, -n); err != nil {
		return nil, err
	}
	if err := a.s.dropTexts(ctx, tx, a.userID, textIDs(rows)); err != nil {
		return nil, err
	}
	for start := 0; tombstones && start < len(rows); start += 500 {
		chunk := rows[start:min(start+500, len(rows))]
		args := make([]any, 0, 3*len(chunk))
		for _, r := range chunk {
			args = append(args, mailboxID, r.UID, modseq)
		}
		q := "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)), ", ")
		if _, err := a.s.txExecFew(ctx, tx, len(chunk), a.s.rebind(q), args...); err != nil {
			return nil, err
		}
	}
	for _, r := range rows {
		c.Add(mailboxID, "expunge", r.UID, modseq)
		// A FETCH on this node after the expunge finds the message gone,
		// as it would without the cache; one that read the row before
		// the commit may keep it there, which shows an expunged message
		// as RFC 9051 7.5.1 allows (fixedrows.go).
		a.s.files.rows.drop(fixedKey{mailboxID, r.UID})
	}
	// A message kept in its blobs row goes with the transaction; the
	// files go after the commit (removeBlobs).
	return a.s.sp.ReleaseBlobs(ctx, tx, refs)
}

// Vanished returns the UIDs expunged from one of the account's mailboxes
// after modseq, in UID order: what RFC 7162 3.2.10 (VANISHED) and the
// webmail's "what changed since" need besides the changed messages.
func (a *Account) Vanished(ctx context.Context, mailboxID int64, modseq uint64) ([]uint32, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("vanished from mailbox %d: %w", mailboxID, err)
	}
	// Read through expunged_modseq, so that the cost is what vanished
	// since modseq, not the mailbox's whole history; sorted here, since
	// an ORDER BY uid could draw the planner to the primary key instead.
	var uids []uint32
	err := a.s.db.SelectContext(ctx, &uids, a.s.rebind(`SELECT e.uid FROM expunged e JOIN mailboxes m ON m.id = e.mailbox_id
		WHERE e.mailbox_id = ? AND m.user_id = ? AND e.modseq > ?`), mailboxID, a.userID, modseq)
	if err != nil {
		return nil, fmt.Errorf("vanished from mailbox %d: %w", mailboxID, err)
	}
	slices.Sort(uids)
	return uids, nil
}
