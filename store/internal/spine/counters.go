package spine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jmoiron/sqlx"
)

// RecvCounter names the daily counter of the bytes delivered to a user.
func RecvCounter(userID int64) string { return "recv:" + strconv.FormatInt(userID, 10) }

// SendCounter names the daily counter of the bytes a user sent.
func SendCounter(userID int64) string { return "send:" + strconv.FormatInt(userID, 10) }

// Daily is a counter and the limit it is held to (0: none).
type Daily struct {
	Name  string
	Limit int64
}

// AddDaily adds delta to today's counter name inside tx. When limit is
// positive and the new value would exceed it, it returns ErrDailyLimit and
// the caller's transaction rolls the addition back with everything else.
func (s *Spine) AddDaily(ctx context.Context, tx *sqlx.Tx, name string, delta, limit int64) error {
	day := s.Day()
	if _, err := s.DB.TxExec(ctx, tx, s.Rebind(s.DB.AddCounterSQL()), name, day, delta); err != nil {
		return fmt.Errorf("count %s: %w", name, err)
	}
	if limit <= 0 {
		return nil
	}
	var v int64
	if err := s.DB.TxGet(ctx, tx, &v, s.Rebind("SELECT value FROM counters WHERE name = ? AND day = ?"), name, day); err != nil {
		return fmt.Errorf("count %s: %w", name, err)
	}
	if v > limit {
		return fmt.Errorf("%w: %s would reach %d of %d", ErrDailyLimit, name, v, limit)
	}
	return nil
}

// DailyValue reads today's value of a counter inside tx: what a write
// checks its limit against, under the user's lock.
func (s *Spine) DailyValue(ctx context.Context, tx *sqlx.Tx, name string) (int64, error) {
	var v []int64
	if err := s.DB.TxSelect(ctx, tx, &v, s.Rebind("SELECT value FROM counters WHERE name = ? AND day = ?"), name, s.Day()); err != nil {
		return 0, fmt.Errorf("count %s: %w", name, err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0], nil
}

// Daily returns today's value of a counter.
func (s *Spine) Daily(ctx context.Context, name string) (int64, error) {
	var v []int64
	if err := s.DB.SelectContext(ctx, &v, s.Rebind("SELECT value FROM counters WHERE name = ? AND day = ?"), name, s.Day()); err != nil {
		return 0, fmt.Errorf("read counter %s: %w", name, err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0], nil
}
