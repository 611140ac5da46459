package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// addDaily adds delta to today's counter name inside tx. When limit is
// positive and the new value would exceed it, it returns ErrDailyLimit and
// the caller's transaction rolls the addition back with everything else.
func (s *Store) addDaily(ctx context.Context, tx *sqlx.Tx, name string, delta, limit int64) error {
	day := s.day()
	if _, err := s.db.TxExec(ctx, tx, s.rebind(s.db.AddCounterSQL()), name, day, delta); err != nil {
		return fmt.Errorf("count %s: %w", name, err)
	}
	if limit <= 0 {
		return nil
	}
	var v int64
	if err := s.db.TxGet(ctx, tx, &v, s.rebind("SELECT value FROM counters WHERE name = ? AND day = ?"), name, day); err != nil {
		return fmt.Errorf("count %s: %w", name, err)
	}
	if v > limit {
		return fmt.Errorf("%w: %s would reach %d of %d", ErrDailyLimit, name, v, limit)
	}
	return nil
}

// daily is a counter and the limit it is held to (0: none).
type daily struct {
	name  string
	limit int64
}

// dailyValue reads today's value of a counter inside tx: what a write
// checks its limit against, under the user's lock.
func (s *Store) dailyValue(ctx context.Context, tx *sqlx.Tx, name string) (int64, error) {
	var v []int64
	if err := s.db.TxSelect(ctx, tx, &v, s.rebind("SELECT value FROM counters WHERE name = ? AND day = ?"), name, s.day()); err != nil {
		return 0, fmt.Errorf("count %s: %w", name, err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0], nil
}

// Daily returns today's value of a counter.
func (s *Store) Daily(ctx context.Context, name string) (int64, error) {
	var v []int64
	if err := s.db.SelectContext(ctx, &v, s.rebind("SELECT value FROM counters WHERE name = ? AND day = ?"), name, s.day()); err != nil {
		return 0, fmt.Errorf("read counter %s: %w", name, err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0], nil
}

// ReceivedToday returns the bytes delivered to the account today.
func (a *Account) ReceivedToday(ctx context.Context) (int64, error) {
	if err := a.ownerOnly(); err != nil {
		return 0, err
	}
	return a.s.Daily(ctx, recvCounter(a.userID))
}

// SentToday returns the bytes the account has sent today.
func (a *Account) SentToday(ctx context.Context) (int64, error) {
	if err := a.ownerOnly(); err != nil {
		return 0, err
	}
	return a.s.Daily(ctx, sendCounter(a.userID))
}

// PruneCounters deletes counters of days before the given number of days
// ago, for the nightly cleanup.
func (s *Store) PruneCounters(ctx context.Context, keepDays int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM counters WHERE day < ?"), s.day()-keepDays)
	if err != nil {
		return 0, fmt.Errorf("prune counters: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
