package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"

	"github.com/jmoiron/sqlx"

	"basalt/store/blob"
	"basalt/store/internal/spine"
)

// Partitions lists the names of the configured message file partitions.
func (s *Store) Partitions() []string {
	var out []string
	for _, p := range s.blobs.Partitions() {
		out = append(out, p.Name)
	}
	return out
}

// partitionOf is the partition u's new message files go to: the one it
// was moved to, while that is configured; "" lets the blob store pick.
func (s *Store) partitionOf(u User) string {
	if u.BlobPartition == "" || !slices.Contains(s.Partitions(), u.BlobPartition) {
		return ""
	}
	return u.BlobPartition
}

// MoveProgress is how far a move to another partition got.
type MoveProgress struct {
	Moved   int   `json:"moved"`   // files copied and recorded in their new partition
	Bytes   int64 `json:"bytes"`   // bytes on disk moved
	Skipped int   `json:"skipped"` // files gone (expunged) while the move ran
}

// moveBatch is how many files a move reads the rows of at a time.
const moveBatch = 100

// MoveUser moves the message files of a user's mail into partition
// (vmoveuser), file by file: each is copied as it is (compressed,
// encrypted), fsynced, its row pointed at the new partition, and only
// then the old copy removed. It can stop anywhere and be run again: a
// copy whose row was not switched is rewritten, and one left in the old
// partition after its row was is an orphan for SweepOrphans. Messages
// kept in their rows (small ones) have no file and stay. progress, if
// not nil, is called after every batch.
func (s *Store) MoveUser(ctx context.Context, id int64, partition string, progress func(MoveProgress)) (MoveProgress, error) {
	var p MoveProgress
	if !slices.Contains(s.Partitions(), partition) {
		return p, fmt.Errorf("move user %d: %w: no partition %q", id, ErrInvalid, partition)
	}
	// New mail goes to the partition from now on; files written before
	// the change reached every node are met by the walk below, whose ids
	// grow with time.
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, _ *spine.Change) error {
		_, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET blob_partition = ?, updated_at = ? WHERE id = ?"), partition, s.unix(), id)
		return err
	})
	if err != nil {
		return p, fmt.Errorf("move user %d: %w", id, err)
	}
	// Writes take the user from the cache whatever its serial
	// (userForWrite): the copy without the partition must go.
	if err := s.cache.Delete(ctx, "user:"+strconv.FormatInt(id, 10)); err != nil {
		s.log.Warn("forget the moved user's cached record", "user", id, "err", err)
	}
	after := ""
	for {
		var files []struct {
			ID   string `db:"id"`
			Part string `db:"part"`
		}
		err := s.db.SelectContext(ctx, &files, s.rebind(`SELECT DISTINCT b.id, b.part FROM blobs b JOIN messages m ON m.blob_id = b.id
			WHERE m.user_id = ? AND b.id > ? AND b.part <> ? AND b.part <> ? ORDER BY b.id LIMIT ?`), id, after, blob.Inline, partition, moveBatch)
		if err != nil {
			return p, fmt.Errorf("move user %d: %w", id, err)
		}
		if len(files) == 0 {
			return p, nil
		}
		for _, f := range files {
			after = f.ID
			if err := s.moveFile(ctx, f.ID, f.Part, partition, &p); err != nil {
				return p, fmt.Errorf("move user %d: %w", id, err)
			}
		}
		if progress != nil {
			progress(p)
		}
	}
}

// moveFile moves one file from one partition to another.
func (s *Store) moveFile(ctx context.Context, id, from, to string, p *MoveProgress) error {
	info, err := s.blobs.CopyTo(ctx, id, from, to)
	if errors.Is(err, fs.ErrNotExist) {
		p.Skipped++ // expunged and removed meanwhile
		return nil
	}
	if err != nil {
		return err
	}
	var switched bool
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind("UPDATE blobs SET part = ? WHERE id = ? AND part = ?"), to, id, from)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		switched = n > 0
		return err
	})
	if err != nil {
		return fmt.Errorf("record file %s in partition %s: %w", id, to, err)
	}
	if !switched {
		// The row went (its last message expunged) or moved: the copy is
		// no one's.
		p.Skipped++
		return s.blobs.Delete(ctx, to, id)
	}
	p.Moved++
	p.Bytes += info.Stored
	if err := s.blobs.Delete(ctx, from, id); err != nil {
		s.log.Warn("remove moved message file", "blob", id, "partition", from, "err", err)
	}
	return nil
}
