package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store/blob"
)

// hooks let the store's own tests stop a process at a chosen point; they
// are never set outside tests.
type hooks struct {
	afterBlobWrite func()
	// beforeGroupUser runs in a group commit before it locks a user's row.
	beforeGroupUser func(userID int64)
	// broadCount, above 0, stands for the constant of that name
	// (find.go), so that a few matches are counted as many are.
	broadCount int
}

// SweepUnreferenced removes message files that no message refers to any
// more and their rows (what an expunge left when it was interrupted).
func (s *Store) SweepUnreferenced(ctx context.Context) (int, error) {
	var ds []struct {
		ID   string `db:"id"`
		Part string `db:"part"`
	}
	if err := s.db.SelectContext(ctx, &ds, "SELECT id, part FROM blobs WHERE refs <= 0"); err != nil {
		return 0, fmt.Errorf("sweep unreferenced blobs: %w", err)
	}
	doomed := make([]deleted, len(ds))
	for i, d := range ds {
		doomed[i] = deleted{ID: d.ID, Part: d.Part}
	}
	s.sp.RemoveBlobs(ctx, doomed)
	return len(doomed), nil
}

// SweepOrphans removes message files and temporary files older than grace
// that have no row: what a crash between writing a file and committing its
// rows leaves behind. Grace must be longer than any append takes, so a
// file whose transaction is still running is never taken.
func (s *Store) SweepOrphans(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	var (
		batch   []blob.Entry
		removed int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ids := make([]any, len(batch))
		for i, e := range batch {
			ids[i] = e.ID
		}
		q, args, err := sqlx.In("SELECT id, part FROM blobs WHERE id IN (?)", ids)
		if err != nil {
			return err
		}
		var known []struct {
			ID   string `db:"id"`
			Part string `db:"part"`
		}
		if err := s.db.SelectContext(ctx, &known, s.rebind(q), args...); err != nil {
			return err
		}
		have := make(map[string]string, len(known))
		for _, k := range known {
			have[k.ID] = k.Part
		}
		for _, e := range batch {
			// A file is live only in the partition its row names: a
			// copy elsewhere is what a move to another partition
			// (MoveUser) left when it stopped half-way.
			if part, ok := have[e.ID]; ok && part == e.Partition {
				continue
			}
			if err := s.blobs.Remove(ctx, e); err != nil {
				return err
			}
			removed++
		}
		batch = batch[:0]
		return nil
	}
	err := s.blobs.Walk(ctx, func(e blob.Entry) error {
		if e.ModTime.After(cutoff) {
			return nil
		}
		if e.Temp {
			if err := s.blobs.Remove(ctx, e); err != nil {
				return err
			}
			removed++
			return nil
		}
		batch = append(batch, e)
		if len(batch) >= 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return removed, fmt.Errorf("sweep orphan blobs: %w", err)
	}
	if removed > 0 {
		s.log.Info("swept orphan message files", "count", removed)
	}
	return removed, nil
}
