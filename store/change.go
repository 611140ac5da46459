package store

import (
	"context"

	"basalt/store/internal/spine"
)

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
