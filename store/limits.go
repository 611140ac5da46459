package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"basalt/store/sqldb"
)

// Limits are the per-user limits; 0 means unlimited. A user's own value
// overrides its plan's, and the plan's overrides the server default.
type Limits struct {
	QuotaBytes     int64 `db:"quota_bytes" toml:"quota_bytes" json:"quotaBytes"`
	MaxRecvSize    int64 `db:"max_recv_size" toml:"max_recv_size" json:"maxRecvSize"`
	MaxSendSize    int64 `db:"max_send_size" toml:"max_send_size" json:"maxSendSize"`
	DailySendBytes int64 `db:"daily_send_bytes" toml:"daily_send_bytes" json:"dailySendBytes"`
	DailyRecvBytes int64 `db:"daily_recv_bytes" toml:"daily_recv_bytes" json:"dailyRecvBytes"`
	DailyRecvPerIP int64 `db:"daily_recv_per_ip" toml:"daily_recv_per_ip" json:"dailyRecvPerIP"`
}

// LimitOverrides are a user's own limits; nil fields fall through to the plan.
type LimitOverrides struct {
	QuotaBytes     *int64 `db:"quota_bytes" json:"quotaBytes,omitempty"`
	MaxRecvSize    *int64 `db:"max_recv_size" json:"maxRecvSize,omitempty"`
	MaxSendSize    *int64 `db:"max_send_size" json:"maxSendSize,omitempty"`
	DailySendBytes *int64 `db:"daily_send_bytes" json:"dailySendBytes,omitempty"`
	DailyRecvBytes *int64 `db:"daily_recv_bytes" json:"dailyRecvBytes,omitempty"`
	DailyRecvPerIP *int64 `db:"daily_recv_per_ip" json:"dailyRecvPerIP,omitempty"`
}

// Plan is a named class of limits (a "limit class" in magma).
type Plan struct {
	ID     int64  `db:"id" json:"id"`
	Name   string `db:"name" json:"name"`
	Limits `db:""`
}

// merge returns o applied over base, field by field.
func (o LimitOverrides) merge(base Limits) Limits {
	pick := func(p *int64, b int64) int64 {
		if p != nil {
			return *p
		}
		return b
	}
	return Limits{
		QuotaBytes:     pick(o.QuotaBytes, base.QuotaBytes),
		MaxRecvSize:    pick(o.MaxRecvSize, base.MaxRecvSize),
		MaxSendSize:    pick(o.MaxSendSize, base.MaxSendSize),
		DailySendBytes: pick(o.DailySendBytes, base.DailySendBytes),
		DailyRecvBytes: pick(o.DailyRecvBytes, base.DailyRecvBytes),
		DailyRecvPerIP: pick(o.DailyRecvPerIP, base.DailyRecvPerIP),
	}
}

// overrideWith returns base with every non-zero limit of l set over it.
func (l Limits) overrideWith(p Limits) Limits {
	pick := func(v, b int64) int64 {
		if v != 0 {
			return v
		}
		return b
	}
	return Limits{
		QuotaBytes:     pick(p.QuotaBytes, l.QuotaBytes),
		MaxRecvSize:    pick(p.MaxRecvSize, l.MaxRecvSize),
		MaxSendSize:    pick(p.MaxSendSize, l.MaxSendSize),
		DailySendBytes: pick(p.DailySendBytes, l.DailySendBytes),
		DailyRecvBytes: pick(p.DailyRecvBytes, l.DailyRecvBytes),
		DailyRecvPerIP: pick(p.DailyRecvPerIP, l.DailyRecvPerIP),
	}
}

const planColumns = "id, name, quota_bytes, max_recv_size, max_send_size, daily_send_bytes, daily_recv_bytes, daily_recv_per_ip"

// SavePlan creates the named plan or replaces its limits.
func (s *Store) SavePlan(ctx context.Context, name string, l Limits) (Plan, error) {
	if name == "" {
		return Plan{}, fmt.Errorf("save plan: %w: empty name", ErrInvalid)
	}
	if l.QuotaBytes < 0 || l.MaxRecvSize < 0 || l.MaxSendSize < 0 || l.DailySendBytes < 0 || l.DailyRecvBytes < 0 || l.DailyRecvPerIP < 0 {
		return Plan{}, fmt.Errorf("save plan %s: %w: limits must not be negative", name, ErrInvalid)
	}
	args := []any{l.QuotaBytes, l.MaxRecvSize, l.MaxSendSize, l.DailySendBytes, l.DailyRecvBytes, l.DailyRecvPerIP}
	res, err := s.db.ExecContext(ctx, s.rebind(`UPDATE plans SET quota_bytes = ?, max_recv_size = ?, max_send_size = ?,
		daily_send_bytes = ?, daily_recv_bytes = ?, daily_recv_per_ip = ? WHERE name = ?`), append(args, name)...)
	if err != nil {
		return Plan{}, fmt.Errorf("save plan %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO plans (quota_bytes, max_recv_size, max_send_size,
			daily_send_bytes, daily_recv_bytes, daily_recv_per_ip, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			append(args, name, s.unix())...)
		if err != nil && !sqldb.IsDuplicate(err) {
			return Plan{}, fmt.Errorf("save plan %s: %w", name, err)
		}
	}
	return s.PlanByName(ctx, name)
}

// PlanByName returns a plan.
func (s *Store) PlanByName(ctx context.Context, name string) (Plan, error) {
	var p Plan
	err := s.db.GetContext(ctx, &p, s.rebind("SELECT "+planColumns+" FROM plans WHERE name = ?"), name)
	if errors.Is(err, sql.ErrNoRows) {
		return Plan{}, fmt.Errorf("plan %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", name, err)
	}
	return p, nil
}

// Plans lists every plan by name.
func (s *Store) Plans(ctx context.Context) ([]Plan, error) {
	var ps []Plan
	if err := s.db.SelectContext(ctx, &ps, "SELECT "+planColumns+" FROM plans ORDER BY name"); err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return ps, nil
}

// LimitsAmong is Limits for a listing: the limits in force for u, with
// its plan found among plans (Plans) rather than read again for each user.
func (s *Store) LimitsAmong(u User, plans map[int64]Plan) Limits {
	l := s.limits
	if u.PlanID.Valid {
		if p, ok := plans[u.PlanID.Int64]; ok {
			l = l.overrideWith(p.Limits)
		}
	}
	return u.Overrides.merge(l)
}
