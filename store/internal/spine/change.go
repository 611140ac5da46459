package spine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"basalt/store/cache"
	"basalt/store/sqldb"
)

// maxEventsPerChange bounds the events one transaction announces: a STORE
// over 100,000 messages announces one mailbox-wide event (UID 0) instead,
// and listeners re-read the mailbox.
const maxEventsPerChange = 1000

// Change collects the events of one write transaction, published only
// after it commits.
type Change struct {
	userID int64
	events []cache.Event
	bulk   map[int64]string // mailbox -> kind, once over the cap
}

// NewChange starts the change of a write that takes the user's row
// itself (the store's group commit of deliveries) rather than through
// WriteUser.
func NewChange(userID int64) *Change { return &Change{userID: userID} }

// Add records an event of the change.
func (c *Change) Add(mailboxID int64, kind string, uid uint32, modseq uint64) {
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

// List returns the events to announce.
func (c *Change) List() []cache.Event {
	if c.bulk == nil {
		return c.events
	}
	evs := make([]cache.Event, 0, len(c.bulk))
	for mb, kind := range c.bulk {
		evs = append(evs, cache.Event{UserID: c.userID, MailboxID: mb, Kind: kind})
	}
	return evs
}

// WriteUser runs fn in a transaction that first bumps the user's serial.
// Taking the user's row first serialises every write to one user's mail,
// which keeps quota, UID and modseq allocation exact and gives MySQL one
// lock order (user, then mailboxes) so writers cannot deadlock each other.
// After the commit the new serial is raised in the cache and the events
// are published. fn may run more than once (sqldb retries a transaction
// that failed for a reason that passes, and runs a write of a SQLite batch
// again when another write broke the batch), each
// time on a fresh Change: it must not keep what it did outside tx.
func (s *Spine) WriteUser(ctx context.Context, userID int64, fn func(tx *sqlx.Tx, c *Change) error) error {
	var (
		c      Change
		serial uint64
	)
	// SQLite reads the new serial in the statement that raises it
	// (UPDATE ... RETURNING): one statement less in every write, which
	// all wait for SQLite's one writer. fn does not touch the user's
	// serial, so it is still the serial at the commit.
	returning := s.DB.Dialect() == sqldb.SQLite
	err := s.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		c = Change{userID: userID} // a retried transaction starts over
		// The statements every write runs are prepared once (TxExec).
		if returning {
			if err := s.DB.TxGet(ctx, tx, &serial, "UPDATE users SET serial = serial + 1 WHERE id = ? RETURNING serial", userID); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("user %d: %w", userID, ErrNotFound)
				}
				return fmt.Errorf("bump serial: %w", err)
			}
			return fn(tx, &c)
		}
		res, err := s.DB.TxExec(ctx, tx, s.Rebind("UPDATE users SET serial = serial + 1 WHERE id = ?"), userID)
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
		if err := s.DB.TxGet(ctx, tx, &serial, s.Rebind("SELECT serial FROM users WHERE id = ?"), userID); err != nil {
			return fmt.Errorf("read serial: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Announce(ctx, userID, serial, c.List())
	return nil
}

// Announce tells caches and listeners about a committed change. It cannot
// undo the commit, so failures are logged: a stale cache entry is caught by
// its serial, and a listener that missed events gets a resync event.
func (s *Spine) Announce(ctx context.Context, userID int64, serial uint64, evs []cache.Event) {
	ctx = context.WithoutCancel(ctx)
	if serial > 0 {
		if err := s.Cache.RaiseSerial(ctx, UserScope(userID), serial); err != nil {
			s.Log.Warn("raise user serial", "user", userID, "err", err)
		}
	}
	for _, ev := range evs {
		ev.Serial = serial
		if err := s.Cache.Publish(ctx, ev); err != nil {
			s.Log.Warn("publish change", "user", userID, "kind", ev.Kind, "err", err)
		}
	}
}
