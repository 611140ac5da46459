package webmail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// The webmail's messages in the making: a compose is a server-side draft
// the browser writes into (the saved draft itself is a message in the
// user's Drafts), and uploads are the files attached to it, kept in the
// blob store like messages, encrypted for a secure user.

// Account is the webmail's side of a user's mail: composes and their
// uploads, and the states the webmail syncs from.
type Account struct {
	base
	a      *store.Account
	userID int64
	key    *crypt.Identity
	// owner is why the account is not its user's own mail (a share), or
	// nil: the webmail works on its user's own mail alone.
	owner error
}

// base is what works on a store as a whole.
type base struct {
	st *store.Store
	sp *spine.Spine
}

// Of returns the webmail's side of a. On another user's mail seen
// through a share every method fails with store.ErrForbidden.
func Of(a *store.Account) *Account {
	st := a.Store(spine.Lend())
	id, key, err := a.Owner(spine.Lend())
	return &Account{base: base{st: st, sp: st.Spine(spine.Lend())}, a: a, userID: id, key: key, owner: err}
}

func (w *Account) ownerOnly() error { return w.owner }

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
func (w *Account) CreateCompose(ctx context.Context) (Compose, error) {
	if err := w.ownerOnly(); err != nil {
		return Compose{}, fmt.Errorf("create compose: %w", err)
	}
	var stale []int64
	if err := w.sp.DB.SelectContext(ctx, &stale, w.sp.Rebind("SELECT id FROM webmail_composes WHERE user_id = ? AND updated_at < ?"),
		w.userID, w.sp.Unix()-int64(ComposeMaxAge/time.Second)); err != nil {
		return Compose{}, fmt.Errorf("create compose: %w", err)
	}
	for _, id := range stale {
		if err := w.deleteCompose(ctx, w.userID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return Compose{}, fmt.Errorf("create compose: %w", err)
		}
	}
	now := w.sp.Unix()
	c := Compose{CreatedAt: now, UpdatedAt: now}
	err := w.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, w.sp.Rebind("SELECT COUNT(*) FROM webmail_composes WHERE user_id = ?"), w.userID); err != nil {
			return err
		}
		if n >= maxComposes {
			return fmt.Errorf("%w: %d messages are being written already", store.ErrInvalid, n)
		}
		res, err := tx.ExecContext(ctx, w.sp.Rebind("INSERT INTO webmail_composes (user_id, draft_mailbox_id, draft_uid, created_at, updated_at) VALUES (?, 0, 0, ?, ?)"),
			w.userID, now, now)
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
func (w *Account) Compose(ctx context.Context, id int64) (Compose, error) {
	if err := w.ownerOnly(); err != nil {
		return Compose{}, fmt.Errorf("compose %d: %w", id, err)
	}
	var c Compose
	err := w.sp.DB.GetContext(ctx, &c, w.sp.Rebind("SELECT id, draft_mailbox_id, draft_uid, created_at, updated_at FROM webmail_composes WHERE id = ? AND user_id = ?"), id, w.userID)
	if err != nil {
		return Compose{}, fmt.Errorf("compose %d: %w", id, spine.NotFound(err))
	}
	return c, nil
}

// SetComposeDraft records where a compose's draft was saved (0, 0: none).
func (w *Account) SetComposeDraft(ctx context.Context, id, mailboxID int64, uid uint32) error {
	if err := w.ownerOnly(); err != nil {
		return fmt.Errorf("compose %d: %w", id, err)
	}
	res, err := w.sp.DB.ExecContext(ctx, w.sp.Rebind("UPDATE webmail_composes SET draft_mailbox_id = ?, draft_uid = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
		mailboxID, uid, w.sp.Unix(), id, w.userID)
	if err != nil {
		return fmt.Errorf("compose %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("compose %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteCompose removes a compose and its uploads (not its saved draft).
func (w *Account) DeleteCompose(ctx context.Context, id int64) error {
	if err := w.ownerOnly(); err != nil {
		return fmt.Errorf("delete compose %d: %w", id, err)
	}
	if err := w.deleteCompose(ctx, w.userID, id); err != nil {
		return fmt.Errorf("delete compose %d: %w", id, err)
	}
	return nil
}

func (s base) deleteCompose(ctx context.Context, userID, id int64) error {
	if err := s.deleteUploads(ctx, "compose_id = ? AND user_id = ?", id, userID); err != nil {
		return err
	}
	res, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("DELETE FROM webmail_composes WHERE id = ? AND user_id = ?"), id, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// deleteUploads deletes the uploads matching where, releasing their files
// and giving back to each user the bytes the uploads were charged.
func (s base) deleteUploads(ctx context.Context, where string, args ...any) error {
	var ups []struct {
		Upload
		UserID  int64 `db:"user_id"`
		Charged int64 `db:"charged"`
	}
	if err := s.sp.DB.SelectContext(ctx, &ups, s.sp.Rebind("SELECT id, user_id, compose_id, name, content_type, size, blob_id, part, charged FROM webmail_uploads WHERE "+where), args...); err != nil {
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
		var doomed []spine.BlobRef
		work := func(tx *sqlx.Tx) error {
			doomed = nil
			var freed int64
			refs := map[string]int{}
			for _, i := range byUser[uid] {
				u := ups[i]
				res, err := tx.ExecContext(ctx, s.sp.Rebind("DELETE FROM webmail_uploads WHERE id = ?"), u.ID)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					continue // deleted meanwhile, with its reference and charge
				}
				refs[u.BlobID]++
				freed += u.Charged
			}
			var err error
			if doomed, err = s.sp.ReleaseBlobs(ctx, tx, refs); err != nil {
				return err
			}
			if freed == 0 {
				return nil
			}
			return s.sp.ChargeUser(ctx, tx, uid, -freed, 0)
		}
		// Through the user's transaction, so that cached copies of the user
		// (and the webmail's meta) see the bytes given back; a user deleted
		// meanwhile has no row to update.
		err := s.sp.WriteUser(ctx, uid, func(tx *sqlx.Tx, _ *spine.Change) error { return work(tx) })
		if errors.Is(err, store.ErrNotFound) {
			err = s.sp.DB.Tx(ctx, work)
		}
		if err != nil {
			return err
		}
		s.sp.RemoveBlobs(ctx, doomed)
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
// max bytes (store.ErrTooLarge past that, and nothing is kept). name and ctype
// are the browser's; they are kept as given, within bounds. The file is
// charged to the user's quota (store.ErrOverQuota when it does not fit) until it
// is removed, pruned with its compose, or its compose is sent: a file
// waiting to be sent takes room as a message does, or uploads would be
// storage without a bound.
func (w *Account) AddUpload(ctx context.Context, composeID int64, name, ctype string, r io.Reader, max int64) (Upload, error) {
	if err := w.ownerOnly(); err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	name = strings.TrimSpace(name)
	if len(name) > 255 || strings.ContainsAny(name, "\x00\r\n") {
		return Upload{}, fmt.Errorf("upload: %w: file name", store.ErrInvalid)
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if len(ctype) > 255 || strings.ContainsAny(ctype, "\r\n") {
		return Upload{}, fmt.Errorf("upload: %w: content type", store.ErrInvalid)
	}
	if _, err := w.Compose(ctx, composeID); err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	u, err := w.st.UserByID(ctx, w.userID)
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
	lr := &limitedReader{r: r, left: max, err: store.ErrTooLarge}
	lim, err := w.st.Limits(ctx, u)
	if err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	if lim.QuotaBytes > 0 && lim.QuotaBytes-u.UsedBytes < max {
		lr.left, lr.err = lim.QuotaBytes-u.UsedBytes, store.ErrOverQuota
		if lr.left < 0 {
			lr.left = -1 // over quota already: refused at the first read
		}
	}
	id := blob.NewID()
	info, err := w.sp.Blobs.Put(ctx, id, lr, transform)
	if err != nil {
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	up := Upload{ComposeID: composeID, Name: name, Type: ctype, Size: info.Size, BlobID: id, Part: info.Partition}
	err = w.sp.WriteUser(ctx, w.userID, func(tx *sqlx.Tx, _ *spine.Change) error {
		var n int
		if err := tx.GetContext(ctx, &n, w.sp.Rebind("SELECT COUNT(*) FROM webmail_uploads WHERE compose_id = ?"), composeID); err != nil {
			return err
		}
		if n >= maxUploadsPerCompose {
			return fmt.Errorf("%w: at most %d files per message", store.ErrInvalid, maxUploadsPerCompose)
		}
		// Checked again with the user's row locked (writeUser): the
		// early check above may have raced another upload or delivery.
		cur, lim, err := w.st.UserTx(ctx, spine.Lend(), tx, w.userID)
		if err != nil {
			return err
		}
		if err := spine.FitsQuota(lim.QuotaBytes, cur.UsedBytes, info.Size); err != nil {
			return err
		}
		if err := w.sp.ChargeUser(ctx, tx, w.userID, info.Size, 0); err != nil {
			return err
		}
		if err := w.sp.AddBlobRows(ctx, tx, spine.BlobRow{ID: id, Part: info.Partition, Size: info.Size, Stored: info.Stored}); err != nil {
			return err
		}
		now := w.sp.Unix()
		res, err := tx.ExecContext(ctx, w.sp.Rebind(`INSERT INTO webmail_uploads (user_id, compose_id, name, content_type, size, blob_id, part, created_at, charged)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), w.userID, composeID, name, ctype, info.Size, id, info.Partition, now, info.Size)
		if err != nil {
			return err
		}
		up.ID, err = res.LastInsertId()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, w.sp.Rebind("UPDATE webmail_composes SET updated_at = ? WHERE id = ?"), now, composeID)
		return err
	})
	if err != nil {
		if !sqldb.IsCommitUncertain(err) {
			if derr := w.sp.Blobs.Delete(context.WithoutCancel(ctx), info.Partition, id); derr != nil {
				w.sp.Log.Warn("remove file of failed upload", "blob", id, "err", derr)
			}
		}
		return Upload{}, fmt.Errorf("upload: %w", err)
	}
	return up, nil
}

// Uploads lists the uploads of one of the account's composes, oldest first.
func (w *Account) Uploads(ctx context.Context, composeID int64) ([]Upload, error) {
	if _, err := w.Compose(ctx, composeID); err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	ups := []Upload{}
	if err := w.sp.DB.SelectContext(ctx, &ups, w.sp.Rebind("SELECT id, compose_id, name, content_type, size, blob_id, part FROM webmail_uploads WHERE compose_id = ? AND user_id = ? ORDER BY id"),
		composeID, w.userID); err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	return ups, nil
}

// OpenUpload returns one of the account's uploads and its content,
// decrypted for a secure user.
func (w *Account) OpenUpload(ctx context.Context, id int64) (Upload, io.ReadCloser, error) {
	if err := w.ownerOnly(); err != nil {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, err)
	}
	var up Upload
	if err := w.sp.DB.GetContext(ctx, &up, w.sp.Rebind("SELECT id, compose_id, name, content_type, size, blob_id, part FROM webmail_uploads WHERE id = ? AND user_id = ?"), id, w.userID); err != nil {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, spine.NotFound(err))
	}
	var unwrap blob.Unwrap
	if w.key != nil {
		key := w.key
		unwrap = func(r io.Reader) (io.Reader, error) { return crypt.Decrypt(r, key) }
	}
	rc, err := w.sp.Blobs.Open(ctx, up.Part, up.BlobID, unwrap)
	if errors.Is(err, blob.ErrEncrypted) {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, store.ErrLocked)
	}
	if err != nil {
		return Upload{}, nil, fmt.Errorf("open upload %d: %w", id, err)
	}
	return up, rc, nil
}

// DeleteUpload removes one of the account's uploads.
func (w *Account) DeleteUpload(ctx context.Context, id int64) error {
	if err := w.ownerOnly(); err != nil {
		return fmt.Errorf("delete upload %d: %w", id, err)
	}
	var n int
	if err := w.sp.DB.GetContext(ctx, &n, w.sp.Rebind("SELECT COUNT(*) FROM webmail_uploads WHERE id = ? AND user_id = ?"), id, w.userID); err != nil {
		return fmt.Errorf("delete upload %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete upload %d: %w", id, store.ErrNotFound)
	}
	if err := w.deleteUploads(ctx, "id = ? AND user_id = ?", id, w.userID); err != nil {
		return fmt.Errorf("delete upload %d: %w", id, err)
	}
	return nil
}
