package outbound

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/blob"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// Queue is the outbound queue's rows and files.
type Queue struct {
	st *store.Store
	sp *spine.Spine
	// afterBlobWrite, when set, runs between writing an entry's file and
	// committing its rows (tests stop there).
	afterBlobWrite func()
}

// New returns the queue kept by st.
func New(st *store.Store) *Queue { return &Queue{st: st, sp: st.Spine(spine.Lend())} }

// ErrLeaseLost means a queue entry is no longer this claimer's: its lease
// ran out and another worker (or node) claimed it, or it was deleted. The
// claimer must drop the entry without writing anything more for it.
var ErrLeaseLost = errors.New("queue entry lease lost")

// RcptStatus is where one recipient of a queued message stands.
type RcptStatus string

// Recipient states.
const (
	RcptPending RcptStatus = "pending" // not delivered yet; tried again later
	RcptSent    RcptStatus = "sent"    // the smarthost accepted it
	RcptFailed  RcptStatus = "failed"  // permanently failed, or expired
)

// Rcpt is one recipient of a queued message.
type Rcpt struct {
	Address string
	Status  RcptStatus
	// Notified says a failure has been reported to the sender, or needs
	// no report (a null sender). Only meaningful with RcptFailed.
	Notified bool
	// Reply is the last reply or error seen for this recipient.
	Reply string
}

// Entry is a message in the outbound queue.
type Entry struct {
	ID          int64
	From        string // the reverse-path; "" is the null sender (a bounce)
	CreatedAt   time.Time
	NextAttempt time.Time
	Attempts    int
	LastError   string
	Size        int64
	Rcpts       []Rcpt
	// SealedUser, when not 0, is the secure user this entry is sealed to
	// (store.SealForQueue): its one recipient, delivered by DeliverSealed; its
	// content cannot be read here, not even its header.
	SealedUser int64
	// SubmitUser, when not 0, is the user who sent this message with a
	// delay (undo send, send later): a submission, due at NextAttempt,
	// which the queue hands to the delivery agent to be delivered as the
	// user's send. SubmitMeta is the sender's note for it (JSON).
	SubmitUser int64
	SubmitMeta string

	lease  int64 // the fencing token this claim holds; 0 when not claimed
	blobID string
	part   string
}

// Pending returns the addresses still to be delivered.
func (o *Entry) Pending() []string {
	var out []string
	for _, r := range o.Rcpts {
		if r.Status == RcptPending {
			out = append(out, r.Address)
		}
	}
	return out
}

// Unreported returns the failed recipients whose sender has not been told.
func (o *Entry) Unreported() []Rcpt {
	var out []Rcpt
	for _, r := range o.Rcpts {
		if r.Status == RcptFailed && !r.Notified {
			out = append(out, r)
		}
	}
	return out
}

type outboundRow struct {
	ID        int64  `db:"id"`
	From      string `db:"mail_from"`
	CreatedMS int64  `db:"created_ms"`
	NextMS    int64  `db:"next_attempt_ms"`
	Attempts  int    `db:"attempts"`
	Lease     int64  `db:"lease"`
	LastError string `db:"last_error"`
	BlobID    string `db:"blob_id"`
	Part      string `db:"part"`
	Size      int64  `db:"size"`
	Sealed    int64  `db:"sealed_user"`
	Submit    int64  `db:"submit_user"`
	Meta      string `db:"submit_meta"`
}

const outboundColumns = "id, mail_from, created_ms, next_attempt_ms, attempts, lease, last_error, blob_id, part, size, sealed_user, submit_user, submit_meta"

func (r outboundRow) outbound() Entry {
	return Entry{
		ID: r.ID, From: r.From, CreatedAt: time.UnixMilli(r.CreatedMS), NextAttempt: time.UnixMilli(r.NextMS),
		Attempts: r.Attempts, LastError: r.LastError, Size: r.Size, lease: r.Lease, blobID: r.BlobID, part: r.Part,
		SealedUser: r.Sealed, SubmitUser: r.Submit, SubmitMeta: r.Meta,
	}
}

type rcptRow struct {
	QueueID  int64  `db:"queue_id"`
	Rcpt     string `db:"rcpt"`
	Status   string `db:"status"`
	Notified bool   `db:"notified"`
	Reply    string `db:"last_reply"`
}

func (q *Queue) nowMS() int64 { return q.sp.Now().UnixMilli() }

// Enqueue stores a message for relaying to the given addresses and
// returns its queue id. As with an append, the message file is written and
// fsynced before the rows are committed, so once it returns nil the
// message survives a crash; the file gets a blobs row so the store's
// sweepers (SweepOrphans, SweepUnreferenced) leave it alone until the
// entry is done.
//
// A recipient that reaches secure local users (a delivery retried later, a
// report of failures to a secure sender, an alias one of whose users is
// secure) gets an entry of its own for each of them, sealed to the user's
// key, the rest of what it reaches an entry as it is (store.SealForQueue);
// the id returned is then that of the last entry made.
func (q *Queue) Enqueue(ctx context.Context, from string, to []string, raw []byte) (int64, error) {
	var plain []string
	var qid int64
	sealed := map[int64]bool{} // one sealed copy a user, however many addresses reach it
	for _, addr := range to {
		n, err := store.NormalizeAddress(addr)
		if err != nil {
			return 0, fmt.Errorf("enqueue: recipient: %w", err)
		}
		copies, err := q.st.SealForQueue(ctx, n, raw)
		if err != nil {
			return 0, fmt.Errorf("enqueue: recipient %s: %w", n, err)
		}
		for _, c := range copies {
			if c.UserID == 0 {
				plain = append(plain, c.Addr)
				continue
			}
			if sealed[c.UserID] {
				continue
			}
			sealed[c.UserID] = true
			if qid, err = q.enqueue(ctx, from, []string{c.Addr}, c.Pkg, entryOpts{sealedUser: c.UserID}); err != nil {
				return 0, err
			}
		}
	}
	if len(plain) == 0 && qid != 0 {
		return qid, nil
	}
	return q.enqueue(ctx, from, plain, raw, entryOpts{})
}

// EnqueueFor queues a message the user of a sends, as Enqueue does, and
// charges it to the user's daily send limit (its size once per recipient)
// in the same transaction: refused with store.ErrDailyLimit, nothing is
// queued or counted; queued, it is counted exactly once. Only the owner
// of the mail may send (store.ErrForbidden through a share).
func (q *Queue) EnqueueFor(ctx context.Context, a *store.Account, from string, to []string, raw []byte) (int64, error) {
	userID, _, err := a.Owner(spine.Lend())
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	u, err := q.st.UserByID(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	lim, err := q.st.Limits(ctx, u)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	// What a user sends is relayed elsewhere, so it is queued as it is:
	// the smarthost must be able to read it.
	return q.enqueue(ctx, from, to, raw, entryOpts{sent: &spine.Daily{Name: spine.SendCounter(userID), Limit: lim.DailySendBytes}})
}

// entryOpts are what sets an entry apart from a plain one.
type entryOpts struct {
	// sent, when not nil, is charged the message's size per recipient.
	sent *spine.Daily
	// sealedUser is the user a sealed package is sealed to, or 0.
	sealedUser int64
	// submitUser and meta make a submission (Entry.SubmitUser), due at due.
	submitUser int64
	meta       string
	due        time.Time
}

// enqueue queues the message as o says.
func (q *Queue) enqueue(ctx context.Context, from string, to []string, raw []byte, o entryOpts) (int64, error) {
	if from != "" {
		n, err := store.NormalizeAddress(from)
		if err != nil {
			return 0, fmt.Errorf("enqueue: sender: %w", err)
		}
		from = n
	}
	var rcpts []string
	seen := map[string]bool{}
	for _, a := range to {
		n, err := store.NormalizeAddress(a)
		if err != nil {
			return 0, fmt.Errorf("enqueue: recipient: %w", err)
		}
		if !seen[n] {
			seen[n] = true
			rcpts = append(rcpts, n)
		}
	}
	if len(rcpts) == 0 {
		return 0, fmt.Errorf("enqueue: %w: no recipients", store.ErrInvalid)
	}
	id := blob.NewID()
	info, err := q.sp.Blobs.Put(ctx, id, bytes.NewReader(raw), nil)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	if q.afterBlobWrite != nil {
		q.afterBlobWrite()
	}
	var qid int64
	err = q.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		if o.sent != nil {
			if err := q.sp.AddDaily(ctx, tx, o.sent.Name, int64(len(raw))*int64(len(rcpts)), o.sent.Limit); err != nil {
				return err
			}
		}
		now := q.nowMS()
		created, due := now, now
		if !o.due.IsZero() {
			// A submission counts its age (the give-up time, a report's
			// arrival date) from when it is due, not from when it was
			// written: a message sent a month ahead is not a month old.
			created, due = o.due.UnixMilli(), o.due.UnixMilli()
		}
		if err := q.sp.AddBlobRows(ctx, tx, spine.BlobRow{ID: id, Part: info.Partition, Size: info.Size, Stored: info.Stored}); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, q.sp.Rebind(`INSERT INTO outbound_queue (mail_from, created_ms, next_attempt_ms, attempts, lease,
			last_error, blob_id, part, size, sealed_user, submit_user, submit_meta) VALUES (?, ?, ?, 0, 0, '', ?, ?, ?, ?, ?, ?)`),
			from, created, due, id, info.Partition, info.Size, o.sealedUser, o.submitUser, o.meta)
		if err != nil {
			return err
		}
		if qid, err = res.LastInsertId(); err != nil {
			return err
		}
		for _, r := range rcpts {
			if _, err := tx.ExecContext(ctx, q.sp.Rebind(`INSERT INTO outbound_rcpts (queue_id, rcpt, status, notified, last_reply, updated_ms)
				VALUES (?, ?, ?, 0, '', ?)`), qid, r, RcptPending, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// As in discard: after a failed COMMIT the rows may exist, so the
		// file is left for SweepOrphans, which removes it only if they don't.
		if !sqldb.IsCommitUncertain(err) {
			if derr := q.sp.Blobs.Delete(context.WithoutCancel(ctx), info.Partition, id); derr != nil {
				q.sp.Log.Warn("remove file of failed enqueue", "blob", id, "err", derr)
			}
		}
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	return qid, nil
}

// Claim claims up to limit entries that are due, oldest due first,
// for lease: until then no other claimer, on this node or another sharing
// the database, gets them. Each claim is a compare-and-set on the entry's
// fencing token, so of two nodes racing for an entry exactly one wins. A
// claimer that neither updates nor deletes an entry in time loses it to
// the next claim, so lease must outlast one delivery attempt.
func (q *Queue) Claim(ctx context.Context, limit int, lease time.Duration) ([]Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	now := q.nowMS()
	// Look first without a write transaction: an idle queue polled every
	// few seconds must not take SQLite's one write lock each time.
	var cands []outboundRow
	if err := q.sp.DB.SelectContext(ctx, &cands, q.sp.Rebind("SELECT "+outboundColumns+
		" FROM outbound_queue WHERE next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT ?"), now, limit); err != nil {
		return nil, fmt.Errorf("claim queue entries: %w", err)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	until := now + lease.Milliseconds()
	var claimed []Entry
	err := q.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		claimed = claimed[:0] // a retried transaction starts over
		for _, c := range cands {
			res, err := tx.ExecContext(ctx, q.sp.Rebind(`UPDATE outbound_queue SET next_attempt_ms = ?, lease = lease + 1
				WHERE id = ? AND lease = ? AND next_attempt_ms <= ?`), until, c.ID, c.Lease, now)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue // another claimer got there first
			}
			o := c.outbound()
			o.lease = c.Lease + 1
			o.NextAttempt = time.UnixMilli(until)
			claimed = append(claimed, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim queue entries: %w", err)
	}
	if err := q.loadRcpts(ctx, claimed); err != nil {
		return nil, fmt.Errorf("claim queue entries: %w", err)
	}
	return claimed, nil
}

// loadRcpts fills in the recipients of entries.
func (q *Queue) loadRcpts(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	byID := make(map[int64]*Entry, len(entries))
	ids := make([]any, len(entries))
	for i := range entries {
		entries[i].Rcpts = nil
		byID[entries[i].ID] = &entries[i]
		ids[i] = entries[i].ID
	}
	for start := 0; start < len(ids); start += 500 {
		query, args, err := sqlx.In("SELECT queue_id, rcpt, status, notified, last_reply FROM outbound_rcpts WHERE queue_id IN (?) ORDER BY queue_id, rcpt",
			ids[start:min(start+500, len(ids))])
		if err != nil {
			return err
		}
		var rows []rcptRow
		if err := q.sp.DB.SelectContext(ctx, &rows, q.sp.Rebind(query), args...); err != nil {
			return fmt.Errorf("load recipients: %w", err)
		}
		for _, r := range rows {
			o := byID[r.QueueID]
			o.Rcpts = append(o.Rcpts, Rcpt{Address: r.Rcpt, Status: RcptStatus(r.Status), Notified: r.Notified, Reply: r.Reply})
		}
	}
	return nil
}

// Open returns the queued message's content.
func (q *Queue) Open(ctx context.Context, o *Entry) (io.ReadCloser, error) {
	rc, err := q.sp.Blobs.Open(ctx, o.part, o.blobID, nil)
	if err != nil {
		return nil, fmt.Errorf("open queued message %d: %w", o.ID, err)
	}
	return rc, nil
}

// Result is what an attempt learned about one recipient.
type Result struct {
	Address string
	Status  RcptStatus // RcptPending for a deferral
	Reply   string
	// Notified marks a failure as reported to the sender.
	Notified bool
}

// Update is what one round of work on a claimed entry changed.
type Update struct {
	Results []Result
	// Attempted counts a delivery attempt; false when the round only
	// reported failures, or gave the entry back unattempted (a shutdown).
	Attempted bool
	LastError string
	// Next is when the entry is due again if anything is left to do; it
	// also ends the claim.
	Next time.Time
}

// Update records a round of work on an entry this caller claimed,
// in one transaction: the recipients' new states, the attempt count, and
// the next attempt, which releases the claim. When no recipient is left
// pending and every failure has been reported, the entry is deleted
// instead, and its file with it; done says so. o is updated to match. If
// the claim was lost (see Claim) nothing is written and the error
// is ErrLeaseLost.
func (q *Queue) Update(ctx context.Context, o *Entry, u Update) (done bool, err error) {
	if o.lease == 0 {
		return false, fmt.Errorf("update queue entry %d: %w: not claimed", o.ID, store.ErrInvalid)
	}
	next := u.Next.UnixMilli()
	var (
		remaining int
		doomed    []spine.BlobRef
	)
	err = q.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		doomed = nil
		now := q.nowMS()
		query, args := "UPDATE outbound_queue SET next_attempt_ms = ? WHERE id = ? AND lease = ?", []any{next, o.ID, o.lease}
		if u.Attempted {
			query = "UPDATE outbound_queue SET next_attempt_ms = ?, attempts = attempts + 1, last_error = ? WHERE id = ? AND lease = ?"
			args = []any{next, spine.Clip(u.LastError), o.ID, o.lease}
		}
		res, err := tx.ExecContext(ctx, q.sp.Rebind(query), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrLeaseLost
		}
		for _, r := range u.Results {
			if _, err := tx.ExecContext(ctx, q.sp.Rebind(`UPDATE outbound_rcpts SET status = ?, notified = ?, last_reply = ?, updated_ms = ?
				WHERE queue_id = ? AND rcpt = ?`), r.Status, r.Notified, spine.Clip(r.Reply), now, o.ID, r.Address); err != nil {
				return err
			}
		}
		if err := tx.GetContext(ctx, &remaining, q.sp.Rebind(`SELECT COUNT(*) FROM outbound_rcpts
			WHERE queue_id = ? AND (status = ? OR (status = ? AND notified = 0))`), o.ID, RcptPending, RcptFailed); err != nil {
			return err
		}
		if remaining > 0 {
			return nil
		}
		doomed, err = q.deleteTx(ctx, tx, o.ID, o.blobID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("update queue entry %d: %w", o.ID, err)
	}
	q.apply(o, u)
	if remaining == 0 {
		q.sp.RemoveBlobs(ctx, doomed)
		o.lease = 0
		return true, nil
	}
	return false, nil
}

// apply brings o in line with what Update committed.
func (q *Queue) apply(o *Entry, u Update) {
	for _, r := range u.Results {
		for i := range o.Rcpts {
			if o.Rcpts[i].Address == r.Address {
				o.Rcpts[i] = Rcpt{Address: r.Address, Status: r.Status, Notified: r.Notified, Reply: r.Reply}
			}
		}
	}
	if u.Attempted {
		o.Attempts++
		o.LastError = u.LastError
	}
	o.NextAttempt = time.UnixMilli(u.Next.UnixMilli())
}

// deleteOutboundTx deletes an entry's rows and drops its file's reference;
// the caller removes the file after the commit (spine.RemoveBlobs), and if it
// never gets to, the store's SweepUnreferenced does.
func (q *Queue) deleteTx(ctx context.Context, tx *sqlx.Tx, id int64, blobID string) ([]spine.BlobRef, error) {
	if _, err := tx.ExecContext(ctx, q.sp.Rebind("DELETE FROM outbound_rcpts WHERE queue_id = ?"), id); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, q.sp.Rebind("DELETE FROM outbound_queue WHERE id = ?"), id); err != nil {
		return nil, err
	}
	return q.sp.ReleaseBlob(ctx, tx, blobID, 1)
}

// Delete removes an entry and its file whoever holds it: an
// administrator's delete. A worker still sending it gets ErrLeaseLost
// when it reports back.
func (q *Queue) Delete(ctx context.Context, id int64) error {
	var doomed []spine.BlobRef
	err := q.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		var blobID string
		if err := tx.GetContext(ctx, &blobID, q.sp.Rebind("SELECT blob_id FROM outbound_queue WHERE id = ?"+q.sp.DB.ForUpdate()), id); err != nil {
			return spine.NotFound(err)
		}
		var err error
		doomed, err = q.deleteTx(ctx, tx, id, blobID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete queue entry %d: %w", id, err)
	}
	q.sp.RemoveBlobs(ctx, doomed)
	return nil
}

// Next returns when the earliest entry is due (claimed entries
// count as due when their lease ends); ok is false when the queue is empty.
func (q *Queue) Next(ctx context.Context) (at time.Time, ok bool, err error) {
	var ms sql.NullInt64
	if err := q.sp.DB.GetContext(ctx, &ms, "SELECT MIN(next_attempt_ms) FROM outbound_queue"); err != nil {
		return time.Time{}, false, fmt.Errorf("next queue entry: %w", err)
	}
	if !ms.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(ms.Int64), true, nil
}

// Entries lists up to limit queued entries with their recipients,
// soonest due first, for administration and tests.
func (q *Queue) Entries(ctx context.Context, limit int) ([]Entry, error) {
	var b strings.Builder
	b.WriteString("SELECT " + outboundColumns + " FROM outbound_queue ORDER BY next_attempt_ms, id")
	if limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	}
	var rows []outboundRow
	if err := q.sp.DB.SelectContext(ctx, &rows, b.String()); err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = r.outbound()
		out[i].lease = 0 // a listing claims nothing
	}
	if err := q.loadRcpts(ctx, out); err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	return out, nil
}

// DeliverSealed stores a sealed entry (Entry.SealedUser) in its user's
// INBOX, encrypted as it was queued (store.Store.DeliverSealed).
func (q *Queue) DeliverSealed(ctx context.Context, e *Entry) (store.Appended, error) {
	if e.SealedUser == 0 {
		return store.Appended{}, fmt.Errorf("deliver queue entry %d: %w: not sealed", e.ID, store.ErrInvalid)
	}
	rc, err := q.Open(ctx, e)
	if err != nil {
		return store.Appended{}, err
	}
	pkg, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return store.Appended{}, fmt.Errorf("read queue entry %d: %w", e.ID, err)
	}
	a, err := q.st.DeliverSealed(ctx, spine.Lend(), e.SealedUser, pkg)
	if err != nil {
		return store.Appended{}, fmt.Errorf("deliver queue entry %d: %w", e.ID, err)
	}
	return a, nil
}
