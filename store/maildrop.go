package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"basalt/message"
	"basalt/store/cache"
	"basalt/store/sqldb"
)

// POP3 (RFC 1939) sees one mailbox, the INBOX, as a "maildrop": a list of
// messages fixed at login, each with an exact size in octets as sent, and
// held by one session at a time. This file is what the store gives it.

// ErrInUse means another session holds the maildrop (RFC 2449 8.1.2,
// the IN-USE response code).
var ErrInUse = errors.New("maildrop in use by another session")

// ErrLockLost means a session's maildrop lock is no longer its own: its
// lease ran out unrenewed and another session may have the maildrop.
var ErrLockLost = errors.New("maildrop lock lost")

// Maildrop lock timing. The lock is a lease in SQL, so it survives a
// cache restart; a process that dies holding one blocks the maildrop for
// at most MaildropLockTTL, and a live holder renews it three times as
// often, so two missed renewals (the database briefly away) are survived.
const (
	MaildropLockTTL = 15 * time.Second
	maildropRefresh = MaildropLockTTL / 3
)

// MaildropLock is the one-session-per-maildrop lock of a POP3 session.
// It is a row of maildrop_locks, so it holds across every node sharing
// the database and outlives the cache.
type MaildropLock struct {
	s      *Store
	userID int64
	token  string
	ttl    time.Duration
	stop   context.CancelFunc // ends keep, and a refresh in flight
	done   chan struct{}
	lost   chan struct{}
	unlock sync.Once
	log    func(msg string, args ...any)
}

// LoginDue reports whether userID may log in to a protocol that keeps a
// minimum delay between logins (POP3's LOGIN-DELAY), and counts this one:
// the first login starts a window of delay, and every later one within it
// is refused. With Redis the window holds across nodes.
func (s *Store) LoginDue(ctx context.Context, protocol string, userID int64, delay time.Duration) (bool, error) {
	n, err := s.cache.Incr(ctx, protocol+":login:"+strconv.FormatInt(userID, 10), 1, delay)
	if err != nil {
		return false, fmt.Errorf("login delay of user %d: %w", userID, err)
	}
	return n == 1, nil
}

// LockMaildrop takes the maildrop of userID for one session, or fails
// with ErrInUse while another session, on any node, holds it. The lease
// is renewed until Unlock; if it cannot be (the database was unreachable
// for longer than the lease, or the row was taken), Lost is closed.
func (s *Store) LockMaildrop(ctx context.Context, userID int64) (*MaildropLock, error) {
	return s.lockMaildrop(ctx, userID, MaildropLockTTL, maildropRefresh)
}

func (s *Store) lockMaildrop(ctx context.Context, userID int64, ttl, every time.Duration) (*MaildropLock, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("lock maildrop of user %d: %w", userID, err)
	}
	token := hex.EncodeToString(b[:])
	now := s.now().UnixMilli()
	// A lease that ran out is anyone's: drop it, then insert. Two sessions
	// racing here both may drop it, but only one insert succeeds.
	if _, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM maildrop_locks WHERE user_id = ? AND expires_ms < ?"), userID, now); err != nil {
		return nil, fmt.Errorf("lock maildrop of user %d: %w", userID, err)
	}
	_, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO maildrop_locks (user_id, token, expires_ms) VALUES (?, ?, ?)"),
		userID, token, now+ttl.Milliseconds())
	if sqldb.IsDuplicate(err) {
		return nil, fmt.Errorf("lock maildrop of user %d: %w", userID, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("lock maildrop of user %d: %w", userID, err)
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l := &MaildropLock{
		s: s, userID: userID, token: token, ttl: ttl,
		stop: stop, done: make(chan struct{}), lost: make(chan struct{}),
		log: func(msg string, args ...any) { s.log.Warn(msg, append(args, "user", userID)...) },
	}
	go l.keep(kctx, every)
	return l, nil
}

// renew extends the lease by its lifetime from now if it is still this
// lock's; false means it is not (it ran out and was taken, or removed).
func (l *MaildropLock) renew(ctx context.Context) (bool, error) {
	res, err := l.s.db.ExecContext(ctx, l.s.rebind("UPDATE maildrop_locks SET expires_ms = ? WHERE user_id = ? AND token = ?"),
		l.s.now().UnixMilli()+l.ttl.Milliseconds(), l.userID, l.token)
	if err != nil {
		return false, fmt.Errorf("renew maildrop lock of user %d: %w", l.userID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return true, nil
	}
	// MySQL counts only rows it changed: a renewal within the same
	// millisecond as the last changes nothing, so ask.
	var n int
	if err := l.s.db.Get(ctx, &n, l.s.rebind("SELECT COUNT(*) FROM maildrop_locks WHERE user_id = ? AND token = ?"), l.userID, l.token); err != nil {
		return false, fmt.Errorf("renew maildrop lock of user %d: %w", l.userID, err)
	}
	return n == 1, nil
}

// keep renews the lease every interval until Unlock.
func (l *MaildropLock) keep(ctx context.Context, every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	held := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		ok, err := l.renew(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return // unlocked meanwhile
		case err == nil && ok:
			held = time.Now()
			continue
		case err == nil:
			l.log("maildrop lock lost: its lease ran out and another session took it")
		case time.Since(held) < l.ttl:
			l.log("maildrop lock not renewed; will retry", "err", err)
			continue
		default:
			l.log("maildrop lock not renewed within its lease; taking it as lost", "err", err)
		}
		l.markLost()
		return
	}
}

func (l *MaildropLock) markLost() {
	select {
	case <-l.lost:
	default:
		close(l.lost)
	}
}

// Lost is closed when the lock can no longer be counted on; a session
// should then change nothing.
func (l *MaildropLock) Lost() <-chan struct{} { return l.lost }

// Check renews the lease and reports ErrLockLost unless the lock is still
// this session's: a session calls it before anything that changes the
// maildrop, so it learns at once, not at the next renewal, that another
// session may have taken it. The renewal makes the answer good for a
// whole lease.
func (l *MaildropLock) Check(ctx context.Context) error {
	select {
	case <-l.lost:
		return ErrLockLost
	default:
	}
	ok, err := l.renew(ctx)
	if err != nil {
		return err
	}
	if !ok {
		l.markLost()
		return ErrLockLost
	}
	return nil
}

// Unlock stops renewing and releases the lock; it may be called more
// than once. A failure to release is logged: the lease runs out anyway.
func (l *MaildropLock) Unlock() {
	l.unlock.Do(func() {
		l.stop()
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := l.s.db.ExecContext(ctx, l.s.rebind("DELETE FROM maildrop_locks WHERE user_id = ? AND token = ?"), l.userID, l.token); err != nil {
			l.log("release maildrop lock", "err", err)
		}
	})
}

// MaildropMessage is one message of a maildrop.
type MaildropMessage struct {
	ID  int64
	UID uint32
	// Size is the number of octets of the message with every line ended
	// by CRLF, the size RFC 1939 LIST and STAT report (before
	// dot-stuffing).
	Size  int64
	Flags Flags
}

// Maildrop is the account's INBOX as a POP3 session sees it.
type Maildrop struct {
	MailboxID   int64
	UIDValidity uint32
	Messages    []MaildropMessage // in UID order
}

// wireSizeTTL is how long a message's wire size is kept in the cache,
// where copies of the message (which share its file) find it. A message
// file never changes, so this only bounds what an idle cache keeps.
const wireSizeTTL = 30 * 24 * time.Hour

// Maildrop lists the account's INBOX with each message's size in its
// canonical form, every line ended by CRLF (message.CRLFSize): the size
// POP3's LIST and STAT report (RFC 1939 3, before dot-stuffing). A message
// whose stored form is not all CRLF lines (mail appended by IMAP or the
// webmail may have bare LFs) has another size there, so a size is worked
// out by reading the message once, the first time it is listed, and then
// kept in its row (wire_size); a copy of a message already sized finds
// the size in the cache under the message file's id. So a maildrop's
// first listing reads every message, about 0.2 ms for 50 KB (0.7 ms for a
// secure user's), and later ones none.
func (a *Account) Maildrop(ctx context.Context) (*Maildrop, error) {
	mb, err := a.MailboxByName(ctx, "INBOX")
	if err != nil {
		return nil, fmt.Errorf("maildrop: %w", err)
	}
	var rows []struct {
		ID       int64         `db:"id"`
		UID      uint32        `db:"uid"`
		Flags    Flags         `db:"flags"`
		BlobID   string        `db:"blob_id"`
		WireSize sql.NullInt64 `db:"wire_size"`
	}
	err = a.s.db.SelectContext(ctx, &rows, a.s.rebind("SELECT id, uid, flags, blob_id, wire_size FROM messages"+a.s.db.UIDIndexHint()+
		" WHERE mailbox_id = ? AND user_id = ? ORDER BY uid"), mb.ID, a.userID)
	if err != nil {
		return nil, fmt.Errorf("maildrop: list INBOX: %w", err)
	}
	md := &Maildrop{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, Messages: make([]MaildropMessage, 0, len(rows))}
	var sized []MaildropMessage // sizes worked out now, to keep
	for _, r := range rows {
		size := r.WireSize.Int64
		if !r.WireSize.Valid {
			size, err = a.wireSize(ctx, r.ID, r.BlobID)
			if errors.Is(err, ErrNotFound) {
				continue // expunged since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("maildrop: %w", err)
			}
			sized = append(sized, MaildropMessage{ID: r.ID, Size: size})
		}
		md.Messages = append(md.Messages, MaildropMessage{ID: r.ID, UID: r.UID, Size: size, Flags: r.Flags})
	}
	if err := a.keepWireSizes(ctx, sized); err != nil {
		// The sizes are right; they will be worked out again next time.
		a.s.log.Warn("keep message wire sizes", "user", a.userID, "err", err)
	}
	return md, nil
}

// keepWireSizes records the wire sizes of messages in their rows, a
// batch per statement.
func (a *Account) keepWireSizes(ctx context.Context, ms []MaildropMessage) error {
	const batch = 500
	for len(ms) > 0 {
		chunk := ms[:min(len(ms), batch)]
		ms = ms[len(chunk):]
		var q strings.Builder
		args := make([]any, 0, 3*len(chunk)+1)
		q.WriteString("UPDATE messages SET wire_size = CASE id")
		for _, m := range chunk {
			q.WriteString(" WHEN ? THEN ?")
			args = append(args, m.ID, m.Size)
		}
		q.WriteString(" END WHERE user_id = ? AND id IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")")
		args = append(args, a.userID)
		for _, m := range chunk {
			args = append(args, m.ID)
		}
		if _, err := a.s.db.ExecContext(ctx, a.s.rebind(q.String()), args...); err != nil {
			return fmt.Errorf("keep wire sizes of user %d: %w", a.userID, err)
		}
	}
	return nil
}

// wireSize returns the size of message id in its canonical form.
func (a *Account) wireSize(ctx context.Context, id int64, blobID string) (int64, error) {
	key := "crlfsize:" + blobID
	if e, ok, err := a.s.cache.Get(ctx, key); err == nil && ok {
		if n, err := strconv.ParseInt(string(e.Value), 10, 64); err == nil {
			return n, nil
		}
	} else if err != nil {
		a.s.log.Warn("read message size from the cache", "err", err)
	}
	rc, err := a.Open(ctx, id)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := message.CRLFSize(rc)
	if err != nil {
		return 0, fmt.Errorf("size of message %d: %w", id, err)
	}
	if err := a.s.cache.Set(ctx, key, cache.Entry{Value: strconv.AppendInt(nil, n, 10)}, wireSizeTTL); err != nil {
		a.s.log.Warn("keep message size in the cache", "err", err)
	}
	return n, nil
}
