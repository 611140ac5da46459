package store

import (
	"context"
	"fmt"

	"basalt/store/internal/spine"
)

// Daily returns today's value of a counter.
func (s *Store) Daily(ctx context.Context, name string) (int64, error) { return s.sp.Daily(ctx, name) }

// ReceivedToday returns the bytes delivered to the account today.
func (a *Account) ReceivedToday(ctx context.Context) (int64, error) {
	if err := a.ownerOnly(); err != nil {
		return 0, err
	}
	return a.s.Daily(ctx, spine.RecvCounter(a.userID))
}

// SentToday returns the bytes the account has sent today.
func (a *Account) SentToday(ctx context.Context) (int64, error) {
	if err := a.ownerOnly(); err != nil {
		return 0, err
	}
	return a.s.Daily(ctx, spine.SendCounter(a.userID))
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
