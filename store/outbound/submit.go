package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/internal/spine"
)

// Submissions: a message a user sends with a delay (undo send, send
// later) waits in the queue, durable like any entry, until it is due.
// Until the queue starts it (StartSubmission counts an attempt) its user
// may take it back (Cancel); after that it is on its way.

// ErrStarted means a submission is already being delivered and can no
// longer be taken back.
var ErrStarted = errors.New("submission already being sent")

// Submit queues a message userID of a sends, due at due, with meta (the
// sender's note, JSON). Nothing is charged now: the delivery agent
// charges the user's daily send limit when it sends the message.
func (q *Queue) Submit(ctx context.Context, a *store.Account, from string, to []string, raw []byte, due time.Time, meta string) (int64, error) {
	userID, _, err := a.Owner(spine.Lend())
	if err != nil {
		return 0, fmt.Errorf("submit: %w", err)
	}
	return q.enqueue(ctx, from, to, raw, entryOpts{submitUser: userID, meta: meta, due: due})
}

// Submissions lists the user's submissions still waiting (not started),
// soonest due first.
func (q *Queue) Submissions(ctx context.Context, a *store.Account) ([]Entry, error) {
	userID, _, err := a.Owner(spine.Lend())
	if err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	var rows []outboundRow
	if err := q.sp.DB.SelectContext(ctx, &rows, q.sp.Rebind("SELECT "+outboundColumns+
		" FROM outbound_queue WHERE submit_user = ? AND attempts = 0 ORDER BY next_attempt_ms, id"), userID); err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = r.outbound()
		out[i].lease = 0
	}
	if err := q.loadRcpts(ctx, out); err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	return out, nil
}

// Cancel takes back the user's submission id, if the queue has not
// started it, and returns it with its message. Another user's id, or one
// that is gone, is store.ErrNotFound; one being sent is ErrStarted.
func (q *Queue) Cancel(ctx context.Context, a *store.Account, id int64) (Entry, []byte, error) {
	userID, _, err := a.Owner(spine.Lend())
	if err != nil {
		return Entry{}, nil, fmt.Errorf("cancel submission: %w", err)
	}
	var row outboundRow
	if err := q.sp.DB.GetContext(ctx, &row, q.sp.Rebind("SELECT "+outboundColumns+
		" FROM outbound_queue WHERE id = ? AND submit_user = ?"), id, userID); err != nil {
		return Entry{}, nil, fmt.Errorf("cancel submission %d: %w", id, spine.NotFound(err))
	}
	e := row.outbound()
	e.lease = 0
	if row.Attempts > 0 {
		return Entry{}, nil, fmt.Errorf("cancel submission %d: %w", id, ErrStarted)
	}
	// Read before the rows go: once they do, the file may be swept.
	rc, err := q.Open(ctx, &e)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("cancel submission %d: %w", id, err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return Entry{}, nil, fmt.Errorf("cancel submission %d: read: %w", id, err)
	}
	// loadRcpts fills the slice's entries: e itself must be read back.
	es := []Entry{e}
	if err := q.loadRcpts(ctx, es); err != nil {
		return Entry{}, nil, fmt.Errorf("cancel submission %d: %w", id, err)
	}
	e = es[0]
	var doomed []spine.BlobRef
	err = q.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		// The queue's StartSubmission counts an attempt under its claim;
		// whichever of the two commits first wins.
		var attempts int
		if err := tx.GetContext(ctx, &attempts, q.sp.Rebind("SELECT attempts FROM outbound_queue WHERE id = ? AND submit_user = ?"+q.sp.DB.ForUpdate()), id, userID); err != nil {
			return spine.NotFound(err)
		}
		if attempts > 0 {
			return ErrStarted
		}
		var err error
		doomed, err = q.deleteTx(ctx, tx, id, e.blobID)
		return err
	})
	if err != nil {
		return Entry{}, nil, fmt.Errorf("cancel submission %d: %w", id, err)
	}
	q.sp.RemoveBlobs(ctx, doomed)
	return e, raw, nil
}

// StartSubmission marks a claimed submission as being sent: from here
// Cancel refuses it. It is ErrLeaseLost if the entry was cancelled (or
// taken over) since the claim.
func (q *Queue) StartSubmission(ctx context.Context, e *Entry) error {
	if e.lease == 0 || e.SubmitUser == 0 {
		return fmt.Errorf("start submission %d: %w: not a claimed submission", e.ID, store.ErrInvalid)
	}
	res, err := q.sp.DB.ExecContext(ctx, q.sp.Rebind("UPDATE outbound_queue SET attempts = attempts + 1 WHERE id = ? AND lease = ?"), e.ID, e.lease)
	if err != nil {
		return fmt.Errorf("start submission %d: %w", e.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("start submission %d: %w", e.ID, err)
	} else if n == 0 {
		return fmt.Errorf("start submission %d: %w", e.ID, ErrLeaseLost)
	}
	e.Attempts++
	return nil
}
