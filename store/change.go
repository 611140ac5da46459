package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"basalt/store/cache"
)

// maxEventsPerChange bounds the events one transaction announces: a STORE
// over 100,000 messages announces one mailbox-wide event (UID 0) instead,
// and listeners re-read the mailbox.
const maxEventsPerChange = 1000

// change collects the events of one write transaction, published only
// after it commits.
type change struct {
	userID int64
	events []cache.Event
	bulk   map[int64]string // mailbox -> kind, once over the cap
}

func (c *change) add(mailboxID int64, kind string, uid uint32, modseq uint64) {
	if c.bulk != nil || len(c.events) >= maxEventsPerChange {
		if c.bulk == nil {
			c.bulk = map[int64]string{}
			for _, ev := range c.events {
				c.bulk[ev.MailboxID] = ev.Kind
			}
			c.events = nil
		}
		c.bulk[mailboxID] = kind
		return
	}
	c.events = append(c.events, cache.Event{UserID: c.userID, MailboxID: mailboxID, Kind: kind, UID: uid, ModSeq: modseq})
}

func (c *change) list() []cache.Event {
	if c.bulk == nil {
		return c.events
	}
	evs := make([]cache.Event, 0, len(c.bulk))
	for mb, kind := range c.bulk {
		evs = append(evs, cache.Event{UserID: c.userID, MailboxID: mb, Kind: kind})
	}
	return evs
}

// writeUser runs fn in a transaction that first bumps the user's serial.
// Taking the user's row first serialises every write to one user's mail,
// which keeps quota, UID and modseq allocation exact and gives MySQL one
// lock order (user, then mailboxes) so writers cannot deadlock each other.
// After the commit the new serial is raised in the cache and the events
// are published.
func (s *Store) writeUser(ctx context.Context, userID int64, fn func(tx *sqlx.Tx, c *change) error) error {
	var (
		c      change
		serial uint64
	)
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		c = change{userID: userID} // a retried transaction starts over
		// The statements every write runs are prepared once (TxExec).
		res, err := s.db.TxExec(ctx, tx, s.rebind("UPDATE users SET serial = serial + 1 WHERE id = ?"), userID)
		if err != nil {
			return fmt.Errorf("bump serial: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("user %d: %w", userID, ErrNotFound)
		}
		if err := fn(tx, &c); err != nil {
			return err
		}
		if err := s.db.TxGet(ctx, tx, &serial, s.rebind("SELECT serial FROM users WHERE id = ?"), userID); err != nil {
			return fmt.Errorf("read serial: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.announce(ctx, userID, serial, c.list())
	return nil
}

// announce tells caches and listeners about a committed change. It cannot
// undo the commit, so failures are logged: a stale cache entry is caught by
// its serial, and a listener that missed events gets a resync event.
func (s *Store) announce(ctx context.Context, userID int64, serial uint64, evs []cache.Event) {
	ctx = context.WithoutCancel(ctx)
	if serial > 0 {
		if err := s.cache.RaiseSerial(ctx, userScope(userID), serial); err != nil {
			s.log.Warn("raise user serial", "user", userID, "err", err)
		}
	}
	for _, ev := range evs {
		ev.Serial = serial
		if err := s.cache.Publish(ctx, ev); err != nil {
			s.log.Warn("publish change", "user", userID, "kind", ev.Kind, "err", err)
		}
	}
}

// audit records an administrative action; a failure to record is logged.
func (s *Store) audit(ctx context.Context, actor, action, subject, detail string) {
	_, err := s.db.ExecContext(context.WithoutCancel(ctx), s.rebind(
		"INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)"), s.unix(), actor, action, subject, detail)
	if err != nil {
		s.log.Warn("audit log", "action", action, "err", err)
	}
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
