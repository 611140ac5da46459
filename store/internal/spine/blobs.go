package spine

import (
	"context"

	"github.com/jmoiron/sqlx"

	"basalt/store/blob"
)

// BlobRef is a message file: its id (the blobs row's) and partition.
type BlobRef struct{ ID, Part string }

// RemoveBlobs deletes files whose last reference was committed away, then
// their rows. A crash in between leaves rows with no references, which
// the store's SweepUnreferenced finishes.
func (s *Spine) RemoveBlobs(ctx context.Context, ds []BlobRef) {
	ctx = context.WithoutCancel(ctx)
	gone := make([]any, 0, len(ds))
	for _, d := range ds {
		if d.Part != blob.Inline {
			if err := s.Blobs.Delete(ctx, d.Part, d.ID); err != nil {
				s.Log.Warn("remove message file", "blob", d.ID, "err", err)
				continue
			}
		}
		gone = append(gone, d.ID)
	}
	// The rows in batches: one transaction (and one sync) each, not one
	// per message expunged.
	for start := 0; start < len(gone); start += 500 {
		q, args, err := sqlx.In("DELETE FROM blobs WHERE refs <= 0 AND id IN (?)", gone[start:min(start+500, len(gone))])
		if err == nil {
			_, err = s.DB.ExecContext(ctx, s.Rebind(q), args...)
		}
		if err != nil {
			s.Log.Warn("remove blob rows", "blobs", len(gone[start:min(start+500, len(gone))]), "err", err)
		}
	}
}
