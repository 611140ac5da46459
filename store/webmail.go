package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/store/blob"
	"basalt/store/cache"
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
				doomed = append(doomed, deleted{u.BlobID, u.Part})
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

// PageKey is a message's place in the listing orders: its arrival time
// (unix seconds) and UID. The UID settles ties within one second; SortUID
// uses the UID alone.
type PageKey struct {
	Date int64
	UID  uint32
}

// KeyOf returns m's place in the listing orders.
func KeyOf(m Message) PageKey { return PageKey{Date: m.InternalDate.Unix(), UID: m.UID} }

// PageQuery asks ListPage for a page.
type PageQuery struct {
	Sort Sort
	// After, when set, starts the page just past the message at that
	// place (which need not exist any more); nil starts at the first.
	After *PageKey
	// Skip passes over that many messages first. It costs the rows it
	// skips; the rest of the page costs what its rows cost.
	Skip     int
	Limit    int
	WithInfo bool
}

// ListPage returns a page of one of the account's mailboxes in q.Sort
// order: keyset paging, so a page deep in a mailbox of 100,000 costs what
// the first does, where List's Offset costs the rows it skips. The
// (mailbox_id, internal_date, uid) index serves the date orders, the
// (mailbox_id, uid) one SortUID: the first condition bounds the range,
// the second settles ties within one second.
func (a *Account) ListPage(ctx context.Context, mailboxID int64, q PageQuery) ([]Message, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	if q.Limit <= 0 || q.Skip < 0 {
		return nil, fmt.Errorf("list mailbox %d: %w: a page needs a limit", mailboxID, ErrInvalid)
	}
	cols := rowColumns
	if q.WithInfo {
		cols += ", info, info_sealed"
	}
	var b strings.Builder
	args := []any{mailboxID, a.userID}
	b.WriteString("SELECT " + cols + " FROM messages")
	switch q.Sort {
	case SortUID:
		b.WriteString(a.s.db.UIDIndexHint() + " WHERE mailbox_id = ? AND user_id = ?")
		if q.After != nil {
			b.WriteString(" AND uid > ?")
			args = append(args, q.After.UID)
		}
		b.WriteString(" ORDER BY uid")
	case SortDateDesc, SortDateAsc:
		cmp, order := ">", " ORDER BY internal_date, uid"
		if q.Sort == SortDateDesc {
			cmp, order = "<", " ORDER BY internal_date DESC, uid DESC"
		}
		if a.s.db.Dialect() == sqldb.MySQL {
			// MariaDB otherwise walks the UID index and sorts what it finds.
			b.WriteString(" FORCE INDEX (messages_date)")
		}
		b.WriteString(" WHERE mailbox_id = ? AND user_id = ?")
		if q.After != nil {
			b.WriteString(" AND internal_date " + cmp + "= ? AND (internal_date " + cmp + " ? OR uid " + cmp + " ?)")
			args = append(args, q.After.Date, q.After.Date, q.After.UID)
		}
		b.WriteString(order)
	default:
		return nil, fmt.Errorf("list mailbox %d: %w: unknown sort %d", mailboxID, ErrInvalid, q.Sort)
	}
	b.WriteString(" LIMIT " + strconv.Itoa(q.Limit))
	if q.Skip > 0 {
		b.WriteString(" OFFSET " + strconv.Itoa(q.Skip))
	}
	return a.selectMessages(ctx, mailboxID, b.String(), args)
}

// The webmail pages by index (messages.list's start), and an index is
// what SQL's OFFSET takes, which reads every row it skips. ListAt makes
// the common case cost the page alone: it remembers, per scope (the
// caller's session), mailbox, order and mailbox content, where each page
// it served ended, as the key of the page's last message. A page that
// starts at such a place (the next one, or one served before) is read from
// that key on; any other start is read from the nearest remembered place
// before it, skipping only what lies between. The places are kept in the
// shared cache, so every node knows them. A page reached by skipping
// also leaves the place of its own start.

// pagePlacesTTL is how long unused places are kept: about as long as a
// web session idles.
const pagePlacesTTL = 30 * time.Minute

// maxPagePlaces bounds the places kept for one listing; past it the
// oldest go first.
const maxPagePlaces = 256

// pagePlace says that the message at index Pos comes just past Key.
type pagePlace struct {
	Pos int     `json:"p"`
	Key PageKey `json:"k"`
}

// ListAt returns the page of q.Limit messages at index start of mailbox
// mb in q.Sort order (q.After and q.Skip are its own to set). mb is the
// mailbox as the caller just read it: its UIDNEXT and message count are
// part of the places' key, and any message that arrives or goes changes
// one of them (UIDs are never reused), so places remembered of other
// content are never used. A message's place itself never changes: its
// arrival time and UID are fixed.
func (a *Account) ListAt(ctx context.Context, mb Mailbox, scope string, start int, q PageQuery) ([]Message, error) {
	if start < 0 {
		return nil, fmt.Errorf("list mailbox %d: %w: negative start", mb.ID, ErrInvalid)
	}
	key := fmt.Sprintf("webmail:pages:%d:%s:%d:%d:%d:%d", a.userID, scope, mb.ID, q.Sort, mb.UIDNext, mb.Messages)
	var places []pagePlace
	if e, ok, err := a.s.cache.Get(ctx, key); err != nil {
		// Without the places the page is still right, only slower.
		a.s.log.Warn("page places", "err", err)
	} else if ok && json.Unmarshal(e.Value, &places) != nil {
		places = nil
	}
	q.After, q.Skip = nil, start
	for i, p := range places {
		if p.Pos <= start && start-p.Pos < q.Skip {
			q.After, q.Skip = &places[i].Key, start-p.Pos
		}
	}
	// A page reached by skipping has no place for its own start yet: the
	// message before it is read too, and gives one, so that the same
	// start asked again (a reload, a page back) costs the page alone.
	var learnt []pagePlace
	lead := q.Skip > 0
	if lead {
		q.Skip--
		q.Limit++
	}
	msgs, err := a.ListPage(ctx, mb.ID, q)
	if err != nil {
		return nil, err
	}
	if lead && len(msgs) > 0 {
		learnt = append(learnt, pagePlace{Pos: start, Key: KeyOf(msgs[0])})
		msgs = msgs[1:]
	}
	if len(msgs) > 0 {
		learnt = append(learnt, pagePlace{Pos: start + len(msgs), Key: KeyOf(msgs[len(msgs)-1])})
	}
	added := false
	for _, l := range learnt {
		if !slices.ContainsFunc(places, func(p pagePlace) bool { return p.Pos == l.Pos }) {
			places, added = append(places, l), true
		}
	}
	if !added {
		return msgs, nil
	}
	places = places[max(0, len(places)-maxPagePlaces):]
	b, err := json.Marshal(places)
	if err == nil {
		err = a.s.cache.Set(ctx, key, cache.Entry{Value: b}, pagePlacesTTL)
	}
	if err != nil {
		a.s.log.Warn("page places", "err", err)
	}
	return msgs, nil
}
