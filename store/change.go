package store

import (
	"context"

	"github.com/jmoiron/sqlx"

	"basalt/store/cache"
	"basalt/store/internal/spine"
)

// change collects the events of one write transaction (spine.Change),
// published only after it commits.
type change struct{ *spine.Change }

func newChange(userID int64) *change { return &change{spine.NewChange(userID)} }

func (c *change) add(mailboxID int64, kind string, uid uint32, modseq uint64) {
	c.Add(mailboxID, kind, uid, modseq)
}

func (c *change) list() []cache.Event { return c.List() }

// writeUser runs fn in the user's write transaction (spine.WriteUser):
// the user's serial bumped first, the change announced after the commit.
// fn may run more than once.
func (s *Store) writeUser(ctx context.Context, userID int64, fn func(tx *sqlx.Tx, c *change) error) error {
	return s.sp.WriteUser(ctx, userID, func(tx *sqlx.Tx, c *spine.Change) error { return fn(tx, &change{c}) })
}

// announce tells caches and listeners about a committed change
// (spine.Announce).
func (s *Store) announce(ctx context.Context, userID int64, serial uint64, evs []cache.Event) {
	s.sp.Announce(ctx, userID, serial, evs)
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
func notFound(err error) error { return spine.NotFound(err) }
