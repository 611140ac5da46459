package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// WebSession is the server's record of a browser session (package session
// makes and reads it). It is kept in SQL, not in the cache, so that a
// cache restart logs nobody out; it holds only a hash of the cookie's
// secret and a secure user's key sealed under that secret, so a copy of
// the database opens no session and no key.
type WebSession struct {
	ID         string `db:"id"`
	UserID     int64  `db:"user_id"`
	CSRF       string `db:"csrf"`
	SecretHash []byte `db:"secret_hash"`
	SealedKey  []byte `db:"sealed_key"`
	AuthEpoch  int64  `db:"auth_epoch"`
	Created    int64  `db:"created_at"` // Unix seconds, as the others
	Expires    int64  `db:"expires_at"` // the latest it can live
	IdleUntil  int64  `db:"idle_until"` // when it ends unless used
}

const webSessionColumns = "id, user_id, csrf, secret_hash, sealed_key, auth_epoch, created_at, expires_at, idle_until"

// CreateWebSession stores a new web session.
func (s *Store) CreateWebSession(ctx context.Context, w WebSession) error {
	_, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO web_sessions ("+webSessionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		w.ID, w.UserID, w.CSRF, w.SecretHash, w.SealedKey, w.AuthEpoch, w.Created, w.Expires, w.IdleUntil)
	if err != nil {
		return fmt.Errorf("create web session: %w", err)
	}
	return nil
}

// WebSession returns the web session id, or ErrNotFound.
func (s *Store) WebSession(ctx context.Context, id string) (WebSession, error) {
	var w WebSession
	err := s.db.Get(ctx, &w, s.rebind("SELECT "+webSessionColumns+" FROM web_sessions WHERE id = ?"), id)
	if errors.Is(err, sql.ErrNoRows) {
		return WebSession{}, fmt.Errorf("web session: %w", ErrNotFound)
	}
	if err != nil {
		return WebSession{}, fmt.Errorf("load web session: %w", err)
	}
	return w, nil
}

// TouchWebSession moves a session's idle end to idleUntil.
func (s *Store) TouchWebSession(ctx context.Context, id string, idleUntil int64) error {
	if _, err := s.db.ExecContext(ctx, s.rebind("UPDATE web_sessions SET idle_until = ? WHERE id = ?"), idleUntil, id); err != nil {
		return fmt.Errorf("renew web session: %w", err)
	}
	return nil
}

// DeleteWebSession ends a session; a missing one is not an error.
func (s *Store) DeleteWebSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM web_sessions WHERE id = ?"), id); err != nil {
		return fmt.Errorf("end web session: %w", err)
	}
	return nil
}

// PruneWebSessions removes the sessions that have ended (idle too long or
// past their maximum age) and those of users that no longer exist; it
// returns how many went.
func (s *Store) PruneWebSessions(ctx context.Context) (int, error) {
	now := s.unix()
	res, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM web_sessions WHERE expires_at <= ? OR idle_until <= ?
		OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = web_sessions.user_id)`), now, now)
	if err != nil {
		return 0, fmt.Errorf("prune web sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
