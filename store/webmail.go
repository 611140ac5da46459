package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/store/blob"
	"basalt/store/sqldb"
)

// The webmail's messages in the making: a compose is a server-side draft
// the browser writes into (the saved draft itself is a message in the
// user's Drafts), and uploads are the files attached to it, kept in the
// blob store like messages, encrypted for a secure user.

// ComposeMaxAge is how long a compose nobody touches is kept.
const ComposeMaxAge = 7 * 24 * time.Hour

// Limits on what one user keeps open.
const (
	maxComposes          = 100
	maxUploadsPerCompose = 100
)

// Compose is a message being written.
type Compose struct {
	ID int64 `db:"id" json:"id"`
	// DraftMailboxID and DraftUID locate the last saved draft; 0 when none.
	DraftMailboxID int64  `db:"draft_mailbox_id" json:"draftMailboxID"`
	DraftUID       uint32 `db:"draft_uid" json:"draftUID"`
	CreatedAt      int64  `db:"created_at" json:"createdAt"`
	UpdatedAt      int64  `db:"updated_at" json:"updatedAt"`
}

// Upload is a file attached to a compose.
type Upload struct {
	ID        int64  `db:"id" json:"id"`
	ComposeID int64  `db:"compose_id" json:"composeID"`
	Name      string `db:"name" json:"name"`
	Type      string `db:"content_type" json:"type"`
	Size      int64  `db:"size" json:"size"`
	BlobID    string `db:"blob_id" json:"-"`
	Part      string `db:"part" json:"-"`
}

// CreateCompose starts a compose. The user's composes older than
// ComposeMaxAge go first.
func (a *Account) CreateCompose(ctx context.Context) (Compose, error) {
	if err := a.ownerOnly(); err != nil {
		return Compose{}, fmt.Errorf("create compose: %w", err)
	}
	var stale []int64
	if err := a.s.db.SelectContext(ctx, &stale, a.s.rebind("SELECT id FROM webmail_composes WHERE user_id = ? AND updated_at < ?"),
		a.userID, a.s.unix()-int64(ComposeMaxAge/time.Second)); err != nil {
		return Compose{}, fmt.Errorf("create compose: %w", err)
	}
	for _, id := range stale {
		if err := a.s.deleteCompose(ctx, a.userID, id); err != nil && !errors.Is(err, ErrNotFound) {
			return Compose{}, fmt.Errorf("create compose: %w", err)
		}
	}
	now := a.s.unix()
	c := Compose{CreatedAt: now, UpdatedAt: now}
	err := a.s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, a.s.rebind("SELECT COUNT(*) FROM webmail_composes WHERE user_id = ?"), a.userID); err != nil {
			return err
		}
		if n >= maxComposes {
			return fmt.Errorf("%w: %d messages are being written already", ErrInvalid, n)
		}
		res, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO webmail_composes (user_id, draft_mailbox_id, draft_uid, created_at, updated_at) VALUES (?, 0, 0, ?, ?)"),
			a.userID, now, now)
		if err != nil {
			return err
		}
		c.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return Compose{}, fmt.Errorf("create compose: %w", err)
	}
	return c, nil
}

// Compose returns one of the account's composes.
func (a *Account) Compose(ctx context.Context, id int64) (Compose, error) {
	if err := a.ownerOnly(); err != nil {
		return Compose{}, fmt.Errorf("compose %d: %w", id, err)
	}
	var c Compose
	err := a.s.db.GetContext(ctx, &c, a.s.rebind("SELECT id, draft_mailbox_id, draft_uid, created_at, updated_at FROM webmail_composes WHERE id = ? AND user_id = ?"), id, a.userID)
	if err != nil {
		return Compose{}, fmt.Errorf("compose %d: %w", id, notFound(err))
	}
	return c, nil
}

// SetComposeDraft records where a compose's draft was saved (0, 0: none).
func (a *Account) SetComposeDraft(ctx context.Context, id, mailboxID int64, uid uint32) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("compose %d: %w", id, err)
	}
	res, err := a.s.db.ExecContext(ctx, a.s.rebind("UPDATE webmail_composes SET draft_mailbox_id = ?, draft_uid = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
		mailboxID, uid, a.s.unix(), id, a.userID)
	if err != nil {
		return fmt.Errorf("compose %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("compose %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteCompose removes a compose and its uploads (not its saved draft).
func (a *Account) DeleteCompose(ctx context.Context, id int64) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("delete compose %d: %w", id, err)
	}
	if err := a.s.deleteCompose(ctx, a.userID, id); err != nil {
		return fmt.Errorf("delete compose %d: %w", id, err)
	}
	return nil
}

func (s *Store) deleteCompose(ctx context.Context, userID, id int64) error {
	if err := s.deleteUploads(ctx, "compose_id = ? AND user_id = ?", id, userID); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM webmail_composes WHERE id = ? AND user_id = ?"), id, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// deleteUploads deletes the uploads matching where, releasing their files
// and giving back to each user the bytes the uploads were charged.
func (s *Store) deleteUploads(ctx context.Context, where string, args ...any) error {
	var ups []struct {
		Upload
		UserID  int64 `db:"user_id"`
		Charged int64 `db:"charged"`
	}
	if err := s.db.SelectContext(ctx, &ups, s.rebind("SELECT id, user_id, compose_id, name, content_type, size, blob_id, part, charged FROM webmail_uploads WHERE "+where), args...); err != nil {
		return err
	}
	var users []int64
	byUser := map[int64][]int{}
	for i, u := range ups {
		if byUser[u.UserID] == nil {
			users = append(users, u.UserID)
		}
		byUser[u.UserID] = append(byUser[u.UserID], i)
	}
	for _, uid := range users {
		var doomed []deleted
		work := func(tx *sqlx.Tx) error {
			doomed = nil
			var freed int64
			for _, i := range byUser[uid] {
				u := ups[i]
				res, err := tx.ExecContext(ctx, s.rebind("DELETE FROM webmail_uploads WHERE id = ?"), u.ID)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					continue // deleted meanwhile, with its reference and charge
				}
				if _, err := tx.ExecContext(ctx, s.rebind("UPDATE blobs SET refs = refs - 1 WHERE id = ?"), u.BlobID); err != nil {
					return err
				}
				doomed = append(doomed, deleted{ID: u.BlobID, Part: u.Part})
				freed += u.Charged
			}
			if freed == 0 {
				return nil
			}
			_, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET used_bytes = used_bytes - ? WHERE id = ?"), freed, uid)
			return err
		}
		// Through the user's transaction, so that cached copies of the user
		// (and the webmail's meta) see the bytes given back; a user deleted
		// meanwhile has no row to update.
		err := s.writeUser(ctx, uid, func(tx *sqlx.Tx, _ *change) error { return work(tx) })
		if errors.Is(err, ErrNotFound) {
			err = s.db.Tx(ctx, work)
		}
		if err != nil {
			return err
		}
		s.removeBlobs(ctx, doomed)
	}
	return nil
}

// limitedReader fails with err once more than left bytes come.
type limitedReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.err
	}
	return n, err
}

// AddUpload stores a file for one of the account's composes: at most
// max bytes (ErrTooLarge past that, and nothing is kept). name and ctype
// are the browser's; they are kept as given, within bounds. The file is
// charged to the user's quota (ErrOverQuota when it does not fit) until it
// is removed, pruned with its compose, or its compose is sent: a file
// waiting to be sent takes room as a message does, or uploads would be
// storage without a bound.
func (a *Account) AddUpload(ctx context.Context, composeID int64, name, ctype string, r io.Reader, max int64) (Upload, error) {
	if err := a.ownerOnly(); err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	name = strings.TrimSpace(name)
	if len(name) > 255 || strings.ContainsAny(name, "\x00\r\n") {
		return Upload{}, fmt.Errorf("upload: %w: file name", ErrInvalid)
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if len(ctype) > 255 || strings.ContainsAny(ctype, "\r\n") {
		return Upload{}, fmt.Errorf("upload: %w: content type", ErrInvalid)
	}
	if _, err := a.Compose(ctx, composeID); err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	u, err := a.s.UserByID(ctx, a.userID)
	if err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	var transform blob.Transform
	if u.Secure {
		rcpt, err := crypt.ParseRecipient(u.PublicKey)
		if err != nil {
			return Upload{}, fmt.Errorf("upload: user key: %w", err)
		}
		transform = func(w io.Writer) (io.WriteCloser, error) { return crypt.Encrypt(w, rcpt) }
	}
	// Cut the upload short at the room left, not only at max: a user over
	// quota must not get to write the file first.
	lr := &limitedReader{r: r, left: max, err: ErrTooLarge}
	lim, err := a.s.Limits(ctx, u)
	if err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	if lim.QuotaBytes > 0 && lim.QuotaBytes-u.UsedBytes < max {
		lr.left, lr.err = lim.QuotaBytes-u.UsedBytes, ErrOverQuota
		if lr.left < 0 {
			lr.left = -1 // over quota already: refused at the first read
		}
	}
	id := blob.NewID()
	info, err := a.s.blobs.Put(ctx, id, lr, transform)
	if err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	up := Upload{ComposeID: composeID, Name: name, Type: ctype, Size: info.Size, BlobID: id, Part: info.Partition}
	err = a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, _ *change) error {
		var n int
		if err := tx.GetContext(ctx, &n, a.s.rebind("SELECT COUNT(*) FROM webmail_uploads WHERE compose_id = ?"), composeID); err != nil {
			return err
		}
		if n >= maxUploadsPerCompose {
			return fmt.Errorf("%w: at most %d files per message", ErrInvalid, maxUploadsPerCompose)
		}
		// Checked again with the user's row locked (writeUser): the
		// early check above may have raced another upload or delivery.
		cur, lim, err := a.s.userTx(ctx, tx, a.userID)
		if err != nil {
			return err
		}
		if lim.QuotaBytes > 0 && cur.UsedBytes+info.Size > lim.QuotaBytes {
			return ErrOverQuota
		}
		if _, err := tx.ExecContext(ctx, a.s.rebind("UPDATE users SET used_bytes = used_bytes + ? WHERE id = ?"), info.Size, a.userID); err != nil {
			return err
		}
		now := a.s.unix()
		if _, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO blobs (id, part, size, stored, refs, created_at) VALUES (?, ?, ?, ?, 1, ?)"),
			id, info.Partition, info.Size, info.Stored, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, a.s.rebind(`INSERT INTO webmail_uploads (user_id, compose_id, name, content_type, size, blob_id, part, created_at, charged)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), a.userID, composeID, name, ctype, info.Size, id, info.Partition, now, info.Size)
		if err != nil {
			return err
		}
		up.ID, err = res.LastInsertId()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, a.s.rebind("UPDATE webmail_composes SET updated_at = ? WHERE id = ?"), now, composeID)
		return err
	})
	if err != nil {
		if !sqldb.IsCommitUncertain(err) {
			if derr := a.s.blobs.Delete(context.WithoutCancel(ctx), info.Partition, id); derr != nil {
				a.s.log.Warn("remove file of failed upload", "blob", id, "err", derr)
			}
		}
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	return up, nil
}

// Uploads lists the uploads of one of the account's composes, oldest first.
func (a *Account) Uploads(ctx context.Context, composeID int64) ([]Upload, error) {
	if _, err := a.Compose(ctx, composeID); err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	ups := []Upload{}
	if err := a.s.db.SelectContext(ctx, &ups, a.s.rebind("SELECT id, compose_id, name, content_type, size, blob_id, part FROM webmail_uploads WHERE compose_id = ? AND user_id = ? ORDER BY id"),
		composeID, a.userID); err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	return ups, nil
}

// OpenUpload returns one of the account's uploads and its content,
// decrypted for a secure user.
func (a *Account) OpenUpload(ctx context.Context, id int64) (Upload, io.ReadCloser, error) {
	if err := a.ownerOnly(); err != nil {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, err)
	}
	var up Upload
	if err := a.s.db.GetContext(ctx, &up, a.s.rebind("SELECT id, compose_id, name, content_type, size, blob_id, part FROM webmail_uploads WHERE id = ? AND user_id = ?"), id, a.userID); err != nil {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, notFound(err))
	}
	var unwrap blob.Unwrap
	if a.key != nil {
		key := a.key
		unwrap = func(r io.Reader) (io.Reader, error) { return crypt.Decrypt(r, key) }
	}
	rc, err := a.s.blobs.Open(ctx, up.Part, up.BlobID, unwrap)
	if errors.Is(err, blob.ErrEncrypted) {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, ErrLocked)
	}
	if err != nil {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, err)
	}
	return up, rc, nil
}

// DeleteUpload removes one of the account's uploads.
func (a *Account) DeleteUpload(ctx context.Context, id int64) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("delete upload %d: %w", id, err)
	}
	var n int
	if err := a.s.db.GetContext(ctx, &n, a.s.rebind("SELECT COUNT(*) FROM webmail_uploads WHERE id = ? AND user_id = ?"), id, a.userID); err != nil {
		return fmt.Errorf("delete upload %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete upload %d: %w", id, ErrNotFound)
	}
	if err := a.s.deleteUploads(ctx, "id = ? AND user_id = ?", id, a.userID); err != nil {
		return fmt.Errorf("delete upload %d: %w", id, err)
	}
	return nil
}
