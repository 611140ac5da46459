package spine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store/blob"
	"basalt/store/sqldb"
)

// BlobRef is a message file: its id (the blobs row's) and partition.
type BlobRef struct{ ID, Part string }

// BlobRow is a file to record in the blobs table, with one reference: a
// message, an upload or a queued message. Data holds the encoded file
// itself when it is kept in its row (Part is blob.Inline), else nil.
type BlobRow struct {
	ID, Part     string
	Size, Stored int64
	Data         []byte
}

// FewArgs is how many values a statement built for a list (IN, VALUES)
// may take and still be kept prepared (sqldb.DB.TxExec): IMAP's commands
// mostly name one message or a few, and a statement per list length up to
// this is few enough to keep.
const FewArgs = 4

// ExecFew runs a statement built for a list of n values in tx: prepared
// once when n is small (parsing under the write lock holds up every other
// writer on SQLite), as it is otherwise.
func (s *Spine) ExecFew(ctx context.Context, tx *sqlx.Tx, n int, query string, args ...any) (sql.Result, error) {
	if n <= FewArgs {
		return s.DB.TxExec(ctx, tx, query, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// SelectFew is ExecFew's reading twin.
func (s *Spine) SelectFew(ctx context.Context, tx *sqlx.Tx, n int, dest any, query string, args ...any) error {
	if n <= FewArgs {
		return s.DB.TxSelect(ctx, tx, dest, query, args...)
	}
	return tx.SelectContext(ctx, dest, query, args...)
}

// maxInlineStatement bounds the inline bytes one INSERT carries (a single
// row may pass it: InlineMax is at most 8 MiB).
const maxInlineStatement = 4 << 20

// AddBlobRows records files inside tx, each with one reference, in as
// few statements as the inline bytes allow: one statement must fit
// MySQL's max_allowed_packet (16 MiB by default), and a group commit may
// hold many messages of up to InlineMax each.
func (s *Spine) AddBlobRows(ctx context.Context, tx *sqlx.Tx, rows ...BlobRow) error {
	now := s.Unix()
	for len(rows) > 0 {
		var q strings.Builder
		q.WriteString("INSERT INTO blobs (id, part, size, stored, refs, created_at, data) VALUES ")
		args := make([]any, 0, 6*len(rows))
		bytes := 0
		n := 0
		for _, r := range rows {
			if n > 0 && bytes+len(r.Data) > maxInlineStatement {
				break
			}
			if n > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, 1, ?, ?)")
			args = append(args, r.ID, r.Part, r.Size, r.Stored, now, r.Data)
			bytes += len(r.Data)
			n++
		}
		if _, err := s.ExecFew(ctx, tx, n, s.Rebind(q.String()), args...); err != nil {
			return fmt.Errorf("record %d files: %w", n, err)
		}
		rows = rows[n:]
	}
	return nil
}

// RefBlobs adds references to files inside tx: refs maps a file's id to
// how many (a COPY of messages that share it).
func (s *Spine) RefBlobs(ctx context.Context, tx *sqlx.Tx, refs map[string]int) error {
	for id, k := range refs {
		if _, err := s.DB.TxExec(ctx, tx, s.Rebind("UPDATE blobs SET refs = refs + ? WHERE id = ?"), k, id); err != nil {
			return fmt.Errorf("reference file %s: %w", id, err)
		}
	}
	return nil
}

// ReleaseBlob drops n references to one file inside tx (ReleaseBlobs).
func (s *Spine) ReleaseBlob(ctx context.Context, tx *sqlx.Tx, id string, n int) ([]BlobRef, error) {
	return s.ReleaseBlobs(ctx, tx, map[string]int{id: n})
}

// ReleaseBlobs drops references to files inside tx: refs maps a file's id
// to how many. It returns the files whose last reference went, for the
// caller to remove after the commit (RemoveBlobs); a file kept in its row
// (blob.Inline) goes with the transaction instead, so none is returned
// for it.
func (s *Spine) ReleaseBlobs(ctx context.Context, tx *sqlx.Tx, refs map[string]int) ([]BlobRef, error) {
	gone, err := s.dropRefs(ctx, tx, refs)
	if err != nil {
		return nil, err
	}
	var (
		doomed []BlobRef
		inline []any
	)
	for _, g := range gone {
		if g.Part == blob.Inline {
			inline = append(inline, g.ID)
			continue
		}
		doomed = append(doomed, g)
	}
	for start := 0; start < len(inline); start += 500 {
		chunk := inline[start:min(start+500, len(inline))]
		q, args, err := sqlx.In("DELETE FROM blobs WHERE refs <= 0 AND id IN (?)", chunk)
		if err != nil {
			return nil, err
		}
		if _, err := s.ExecFew(ctx, tx, len(chunk), s.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("remove inline files: %w", err)
		}
	}
	return doomed, nil
}

// dropRefs drops the references and returns the files left with none.
// On SQLite, UPDATE ... RETURNING says which as it goes: no read after
// the updates, in every expunge, under SQLite's one writer.
func (s *Spine) dropRefs(ctx context.Context, tx *sqlx.Tx, refs map[string]int) ([]BlobRef, error) {
	var gone []BlobRef
	if s.DB.Dialect() == sqldb.SQLite {
		for id, k := range refs {
			var left struct {
				Refs int64  `db:"refs"`
				Part string `db:"part"`
			}
			err := s.DB.TxGet(ctx, tx, &left, "UPDATE blobs SET refs = refs - ? WHERE id = ? RETURNING refs, part", k, id)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, fmt.Errorf("release file %s: %w", id, err)
			case left.Refs <= 0:
				gone = append(gone, BlobRef{ID: id, Part: left.Part})
			}
		}
		return gone, nil
	}
	ids := make([]any, 0, len(refs))
	for id, k := range refs {
		if _, err := s.DB.TxExec(ctx, tx, s.Rebind("UPDATE blobs SET refs = refs - ? WHERE id = ?"), k, id); err != nil {
			return nil, fmt.Errorf("release file %s: %w", id, err)
		}
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		q, args, err := sqlx.In("SELECT id, part FROM blobs WHERE refs <= 0 AND id IN (?)", chunk)
		if err != nil {
			return nil, err
		}
		var rows []struct {
			ID   string `db:"id"`
			Part string `db:"part"`
		}
		if err := s.SelectFew(ctx, tx, len(chunk), &rows, s.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("released files: %w", err)
		}
		for _, r := range rows {
			gone = append(gone, BlobRef{ID: r.ID, Part: r.Part})
		}
	}
	return gone, nil
}

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
