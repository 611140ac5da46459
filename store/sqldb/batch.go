package sqldb

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// SQLite has one writer at a time and, with synchronous(FULL), pays one
// fsync of its log per commit. Under a mixed IMAP load (STORE, EXPUNGE,
// APPEND from many connections) the writes queued behind each other and
// most of the writer's time went to those syncs. The writes that wait
// together are therefore committed together: each runs inside its own
// SAVEPOINT of one shared transaction, so a write that fails is rolled back
// alone and returns its own error, and the rest share a single COMMIT and
// its one sync. A caller returns only after the COMMIT that holds its write,
// so "returned nil" still means "durable", as it did with one transaction
// each.
//
// Nothing is shared between the writes but the transaction: each sees what
// the writes before it in the batch did (as it would have seen them
// committed), and a write's effects outside the database wait, as before,
// until its Tx returns.

// maxBatch bounds the writes of one transaction, so a long queue cannot
// hold the first of them back for long.
const maxBatch = 64

// maxAttempts is how many times one write is run before its last error is
// returned: a write is run again when its transaction could not commit
// because another write in it broke it (an interrupted statement rolls
// back the whole SQLite transaction), or when it found the database busy.
const maxAttempts = 5

// writeReq is one write waiting for its batch.
type writeReq struct {
	ctx      context.Context
	fn       func(tx *sqlx.Tx) error
	err      error
	panicked any
	attempts int
	lead     bool          // set when this request is handed the leadership
	done     chan struct{} // closed when err is final, or lead is set
}

// writer batches the write transactions of a SQLite database. Whoever finds
// no batch running leads: it takes the waiting writes, commits them, and
// hands the lead to the first write that arrived meanwhile. It has no
// goroutine of its own, so a DB needs nothing to stop it.
type writer struct {
	mu      sync.Mutex
	busy    bool
	pending []*writeReq
	commits atomic.Int64 // transactions committed, for tests and metrics
}

// do runs fn in a batch and returns its result once the batch committed.
func (w *writer) do(ctx context.Context, db *DB, fn func(tx *sqlx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	w.mu.Lock()
	if w.busy {
		w.pending = append(w.pending, req)
		w.mu.Unlock()
		<-req.done
		if !req.lead {
			return req.result()
		}
		w.mu.Lock()
	} else {
		w.busy = true
	}
	// This request leads, and goes first. Writes to run again after their
	// batch failed for another's sake go back in front of the queue, and
	// the leader goes on until its own write is final.
	w.pending = append([]*writeReq{req}, w.pending...)
	for {
		n := min(len(w.pending), maxBatch)
		batch := w.pending[:n:n]
		w.pending = w.pending[n:]
		w.mu.Unlock()
		retry := db.commitBatch(batch)
		for _, r := range batch {
			if r != req && !slices.Contains(retry, r) {
				close(r.done)
			}
		}
		w.mu.Lock()
		w.pending = append(retry, w.pending...)
		if !slices.Contains(retry, req) {
			break
		}
	}
	if len(w.pending) > 0 {
		next := w.pending[0]
		w.pending = w.pending[1:]
		next.lead = true
		close(next.done)
	} else {
		w.pending = nil
		w.busy = false
	}
	w.mu.Unlock()
	return req.result()
}

// result is what the write's own caller gets: its error, or its panic
// raised again in the caller's goroutine.
func (r *writeReq) result() error {
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// commitBatch runs the writes of batch in one transaction and commits it.
// It sets each write's err, except for those it returns: writes to run
// again in a later batch because this one failed for another's sake.
func (db *DB) commitBatch(batch []*writeReq) (retry []*writeReq) {
	// The transaction belongs to no one write: a caller that gives up must
	// not end the others' work.
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.err = fmt.Errorf("begin transaction: %w", err)
		}
		return nil
	}
	single := len(batch) == 1
	var ran []*writeReq // writes that succeeded in tx
	broken := false     // tx can take no more statements
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		r.attempts++
		if !single {
			if _, err := db.TxExec(ctx, tx, "SAVEPOINT w"); err != nil {
				retry, broken = append(ran, batch[i:]...), true
				break
			}
		}
		r.err, r.panicked = runWrite(r.fn, tx)
		if r.err == nil && r.panicked == nil {
			if !single {
				if _, err := db.TxExec(ctx, tx, "RELEASE w"); err != nil {
					retry, broken = append(ran, batch[i:]...), true
					break
				}
			}
			ran = append(ran, r)
			continue
		}
		if r.panicked != nil {
			r.err = fmt.Errorf("write panicked: %v", r.panicked)
		}
		if single {
			broken = true
			break
		}
		// Undo this write alone. When SQLite has already rolled back the
		// whole transaction (an interrupted statement does that), the
		// savepoint is gone: the writes before it are run again in a new
		// one, and so are those after it, which have not run.
		if _, err := db.TxExec(ctx, tx, "ROLLBACK TO w"); err != nil {
			retry, broken = append(ran, batch[i+1:]...), true
			break
		}
		if _, err := db.TxExec(ctx, tx, "RELEASE w"); err != nil {
			retry, broken = append(ran, batch[i+1:]...), true
			break
		}
	}
	if broken || len(ran) == 0 {
		tx.Rollback()
	} else if err := tx.Commit(); err != nil {
		// Whether it took effect is unknown: never run again.
		for _, r := range ran {
			r.err = &commitError{err}
		}
		return nil
	} else {
		db.writer.commits.Add(1)
	}
	// A write that found the database busy (another process holding it)
	// is run again after a pause, as a transaction of its own would be.
	for _, r := range batch {
		if r.err != nil && r.panicked == nil && retryable(r.err) && !slices.Contains(retry, r) {
			retry = append(retry, r)
		}
	}
	kept := retry[:0]
	for _, r := range retry {
		if r.attempts >= maxAttempts {
			if r.err == nil {
				r.err = fmt.Errorf("write transaction broken by another %d times", r.attempts)
			}
			continue
		}
		r.err = nil
		kept = append(kept, r)
	}
	if len(kept) > 0 {
		time.Sleep(time.Duration(kept[0].attempts) * 5 * time.Millisecond)
	}
	return kept
}

// runWrite calls fn, catching a panic so that it reaches fn's own caller
// rather than the goroutine that leads the batch.
func runWrite(fn func(tx *sqlx.Tx) error, tx *sqlx.Tx) (err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return fn(tx), nil
}
