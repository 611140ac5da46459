package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store/cache"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// ErrDomainLimit is a domain's limit (users, aliases, total quota) that a
// change would pass.
var ErrDomainLimit = errors.New("domain limit reached")

// DomainLimits are a domain's limits (IndiMail's vlimit); 0 is unlimited.
type DomainLimits struct {
	MaxUsers   int64 `db:"max_users" json:"maxUsers"`
	MaxAliases int64 `db:"max_aliases" json:"maxAliases"`
	// MaxQuotaBytes bounds the sum of the quotas of the domain's users: a
	// user with no quota cannot be added to a domain that has one.
	MaxQuotaBytes int64 `db:"max_quota_bytes" json:"maxQuotaBytes"`
	// DefaultPlan is the plan a new user of the domain gets when it names
	// none ("" none).
	DefaultPlan string `db:"default_plan" json:"defaultPlan"`
}

// DomainInfo is a domain with its limits, aliases and what it holds.
type DomainInfo struct {
	Domain
	DomainLimits
	UpdatedAt int64    `db:"updated_at" json:"updatedAt"`
	Users     int64    `db:"users" json:"users"`
	Aliases   int64    `db:"aliases" json:"aliases"`
	UsedBytes int64    `db:"used_bytes" json:"usedBytes"`
	Names     []string `db:"-" json:"domainAliases"` // the domain aliases
}

const domainInfoColumns = `d.id, d.name, d.created_at, d.updated_at, d.max_users, d.max_aliases, d.max_quota_bytes,
	COALESCE(p.name, '') AS default_plan,
	(SELECT COUNT(*) FROM users u WHERE u.domain_id = d.id) AS users,
	(SELECT COUNT(*) FROM aliases a WHERE a.domain_id = d.id) AS aliases,
	(SELECT COALESCE(SUM(u.used_bytes), 0) FROM users u WHERE u.domain_id = d.id) AS used_bytes`

const domainInfoFrom = " FROM domains d LEFT JOIN plans p ON p.id = d.default_plan_id "

// DomainInfo returns a domain by its own name (not a domain alias's).
func (s *Store) DomainInfo(ctx context.Context, name string) (DomainInfo, error) {
	n, err := NormalizeDomain(name)
	if err != nil {
		return DomainInfo{}, err
	}
	return s.domainInfo(ctx, s.db, n)
}

func (s *Store) domainInfo(ctx context.Context, q sqlx.QueryerContext, n string) (DomainInfo, error) {
	var d DomainInfo
	if err := sqlx.GetContext(ctx, q, &d, s.rebind("SELECT "+domainInfoColumns+domainInfoFrom+"WHERE d.name = ?"), n); err != nil {
		return DomainInfo{}, fmt.Errorf("domain %s: %w", n, notFound(err))
	}
	d.Names = []string{}
	if err := sqlx.SelectContext(ctx, q, &d.Names, s.rebind("SELECT name FROM domain_aliases WHERE domain_id = ? ORDER BY name"), d.ID); err != nil {
		return DomainInfo{}, fmt.Errorf("domain %s: %w", n, err)
	}
	return d, nil
}

// DomainSort orders a listing of domains.
type DomainSort string

// Domain orders: by name, or by creation (the id), either way.
const (
	DomainByName        DomainSort = "name"
	DomainByNameDesc    DomainSort = "-name"
	DomainByCreated     DomainSort = "createdAt"
	DomainByCreatedDesc DomainSort = "-createdAt"
)

// DomainQuery is a page of domains: those after the position (Name, ID)
// in the Sort order (keyset paging on the unique name or the id), whose
// name contains Q, among Only when not nil.
type DomainQuery struct {
	Sort      DomainSort
	AfterName string
	AfterID   int64
	After     bool
	Q         string
	Only      []string
	Limit     int
}

// DomainPage lists a page of domains.
func (s *Store) DomainPage(ctx context.Context, q DomainQuery) ([]DomainInfo, error) {
	where, args := []string{"1 = 1"}, []any{}
	order := ""
	switch q.Sort {
	case DomainByName, "":
		order = "d.name"
		if q.After {
			where, args = append(where, "d.name > ?"), append(args, q.AfterName)
		}
	case DomainByNameDesc:
		order = "d.name DESC"
		if q.After {
			where, args = append(where, "d.name < ?"), append(args, q.AfterName)
		}
	case DomainByCreated:
		order = "d.id"
		if q.After {
			where, args = append(where, "d.id > ?"), append(args, q.AfterID)
		}
	case DomainByCreatedDesc:
		order = "d.id DESC"
		if q.After {
			where, args = append(where, "d.id < ?"), append(args, q.AfterID)
		}
	default:
		return nil, fmt.Errorf("%w: sort %q", ErrInvalid, q.Sort)
	}
	if q.Q != "" {
		where, args = append(where, "d.name LIKE ?"), append(args, "%"+strings.NewReplacer("%", "", "_", "").Replace(strings.ToLower(q.Q))+"%")
	}
	if q.Only != nil {
		if len(q.Only) == 0 {
			return []DomainInfo{}, nil
		}
		where = append(where, "d.name IN (?"+strings.Repeat(", ?", len(q.Only)-1)+")")
		for _, d := range q.Only {
			args = append(args, d)
		}
	}
	var ds []DomainInfo
	if err := s.db.SelectContext(ctx, &ds, s.rebind("SELECT "+domainInfoColumns+domainInfoFrom+"WHERE "+strings.Join(where, " AND ")+
		" ORDER BY "+order+" LIMIT "+strconv.Itoa(q.Limit)), args...); err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	for i := range ds {
		ds[i].Names = []string{}
		if err := s.db.SelectContext(ctx, &ds[i].Names, s.rebind("SELECT name FROM domain_aliases WHERE domain_id = ? ORDER BY name"), ds[i].ID); err != nil {
			return nil, fmt.Errorf("list domains: %w", err)
		}
	}
	return ds, nil
}

// planIDTx resolves a plan's name to its id ("" none).
func (s *Store) planIDTx(ctx context.Context, q sqlx.QueryerContext, name string) (sql.NullInt64, error) {
	if name == "" {
		return sql.NullInt64{}, nil
	}
	var id int64
	if err := sqlx.GetContext(ctx, q, &id, s.rebind("SELECT id FROM plans WHERE name = ?"), name); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return sql.NullInt64{}, fmt.Errorf("%w: no plan %q", ErrInvalid, name)
		}
		return sql.NullInt64{}, err
	}
	return sql.NullInt64{Int64: id, Valid: true}, nil
}

func (l DomainLimits) check() error {
	if l.MaxUsers < 0 || l.MaxAliases < 0 || l.MaxQuotaBytes < 0 {
		return fmt.Errorf("%w: limits must not be negative", ErrInvalid)
	}
	return nil
}

// CreateDomain adds a domain with its limits, audited in its transaction.
func (s *Store) CreateDomain(ctx context.Context, name string, l DomainLimits) (DomainInfo, error) {
	defer s.domains.forget()
	n, err := NormalizeDomain(name)
	if err != nil {
		return DomainInfo{}, err
	}
	if err := l.check(); err != nil {
		return DomainInfo{}, err
	}
	var d DomainInfo
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var taken int
		if err := tx.GetContext(ctx, &taken, s.rebind("SELECT COUNT(*) FROM domain_aliases WHERE name = ?"), n); err != nil {
			return err
		}
		if taken > 0 {
			return fmt.Errorf("%w: %s is a domain alias", ErrExists, n)
		}
		plan, err := s.planIDTx(ctx, tx, l.DefaultPlan)
		if err != nil {
			return err
		}
		now := s.unix()
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO domains (name, created_at, updated_at, max_users, max_aliases, max_quota_bytes,
			default_plan_id) VALUES (?, ?, ?, ?, ?, ?, ?)`), n, now, now, l.MaxUsers, l.MaxAliases, l.MaxQuotaBytes, plan); err != nil {
			return err
		}
		if d, err = s.domainInfo(ctx, tx, n); err != nil {
			return err
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "domain.create", Target: n, Domain: n, After: d})
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return DomainInfo{}, fmt.Errorf("create domain %s: %w", n, err)
	}
	return d, nil
}

// SetDomainLimits replaces a domain's limits. Lowering a limit below what
// the domain holds is allowed: it stops further growth, it removes
// nothing.
func (s *Store) SetDomainLimits(ctx context.Context, name string, l DomainLimits) (DomainInfo, error) {
	return s.SetDomainLimitsIf(ctx, name, l, nil)
}

// SetDomainLimitsIf is SetDomainLimits under a precondition: check, when
// not nil, is given the domain as it is, with its row locked, and its
// error refuses the change (the API's If-Match).
func (s *Store) SetDomainLimitsIf(ctx context.Context, name string, l DomainLimits, check func(DomainInfo) error) (DomainInfo, error) {
	n, err := NormalizeDomain(name)
	if err != nil {
		return DomainInfo{}, err
	}
	if err := l.check(); err != nil {
		return DomainInfo{}, err
	}
	var after DomainInfo
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		before, err := s.lockedDomain(ctx, tx, n, check)
		if err != nil {
			return err
		}
		plan, err := s.planIDTx(ctx, tx, l.DefaultPlan)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE domains SET max_users = ?, max_aliases = ?, max_quota_bytes = ?, default_plan_id = ?,
			updated_at = ? WHERE id = ?`), l.MaxUsers, l.MaxAliases, l.MaxQuotaBytes, plan, s.unix(), before.ID); err != nil {
			return err
		}
		if after, err = s.domainInfo(ctx, tx, n); err != nil {
			return err
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "domain.update", Target: n, Domain: n, Before: before, After: after})
	})
	if err != nil {
		return DomainInfo{}, fmt.Errorf("set limits of domain %s: %w", n, err)
	}
	return after, nil
}

// lockedDomain reads a domain in tx with its row locked, and runs check
// (when not nil) on it.
func (s *Store) lockedDomain(ctx context.Context, tx *sqlx.Tx, n string, check func(DomainInfo) error) (DomainInfo, error) {
	var id int64
	if err := tx.GetContext(ctx, &id, s.rebind("SELECT id FROM domains WHERE name = ?"+s.db.ForUpdate()), n); err != nil {
		return DomainInfo{}, fmt.Errorf("domain %s: %w", n, notFound(err))
	}
	d, err := s.domainInfo(ctx, tx, n)
	if err != nil {
		return DomainInfo{}, err
	}
	if check != nil {
		if err := check(d); err != nil {
			return DomainInfo{}, err
		}
	}
	return d, nil
}

// CheckDomainRoom returns ErrDomainLimit when the domain has no room for
// more users, aliases or quota: addUsers users with addQuota bytes of
// quota between them (unlimited: any negative addQuota), addAliases
// aliases. q is the transaction of the change, so what is counted is what
// is true when it commits. Creating users and aliases calls it; so must
// anything else that adds either or raises a user's quota.
func (s *Store) CheckDomainRoom(ctx context.Context, q sqlx.QueryerContext, domainID int64, addUsers, addAliases int64, addQuota int64) error {
	var l struct {
		Name          string `db:"name"`
		MaxUsers      int64  `db:"max_users"`
		MaxAliases    int64  `db:"max_aliases"`
		MaxQuotaBytes int64  `db:"max_quota_bytes"`
	}
	if err := sqlx.GetContext(ctx, q, &l, s.rebind("SELECT name, max_users, max_aliases, max_quota_bytes FROM domains WHERE id = ?"+s.db.ForUpdate()), domainID); err != nil {
		return fmt.Errorf("domain %d: %w", domainID, notFound(err))
	}
	count := func(query string) (int64, error) {
		var n int64
		err := sqlx.GetContext(ctx, q, &n, s.rebind(query), domainID)
		return n, err
	}
	if l.MaxUsers > 0 && addUsers > 0 {
		n, err := count("SELECT COUNT(*) FROM users WHERE domain_id = ?")
		if err != nil {
			return err
		}
		if n+addUsers > l.MaxUsers {
			return fmt.Errorf("%w: %s holds %d of its %d users", ErrDomainLimit, l.Name, n, l.MaxUsers)
		}
	}
	if l.MaxAliases > 0 && addAliases > 0 {
		n, err := count("SELECT COUNT(*) FROM aliases WHERE domain_id = ?")
		if err != nil {
			return err
		}
		if n+addAliases > l.MaxAliases {
			return fmt.Errorf("%w: %s holds %d of its %d aliases", ErrDomainLimit, l.Name, n, l.MaxAliases)
		}
	}
	if l.MaxQuotaBytes > 0 && (addQuota != 0 || addUsers > 0) {
		if addQuota < 0 {
			return fmt.Errorf("%w: %s bounds its users' quotas to %d bytes in all; a user without a quota does not fit", ErrDomainLimit, l.Name, l.MaxQuotaBytes)
		}
		total, err := s.domainQuotaTx(ctx, q, domainID)
		if err != nil {
			return err
		}
		if total < 0 || total+addQuota > l.MaxQuotaBytes {
			return fmt.Errorf("%w: %s's users' quotas would pass its %d bytes", ErrDomainLimit, l.Name, l.MaxQuotaBytes)
		}
	}
	return nil
}

// domainQuotaTx sums the quotas in force for a domain's users (a user's
// own, else its plan's, else the server's); -1 when one is unlimited.
func (s *Store) domainQuotaTx(ctx context.Context, q sqlx.QueryerContext, domainID int64) (int64, error) {
	var rows []struct {
		Own  sql.NullInt64 `db:"quota_bytes"`
		Plan sql.NullInt64 `db:"plan_quota"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, s.rebind(`SELECT u.quota_bytes, p.quota_bytes AS plan_quota FROM users u
		LEFT JOIN plans p ON p.id = u.plan_id WHERE u.domain_id = ?`), domainID); err != nil {
		return 0, err
	}
	var total int64
	for _, r := range rows {
		v := s.limits.QuotaBytes
		if r.Plan.Valid && r.Plan.Int64 != 0 {
			v = r.Plan.Int64
		}
		if r.Own.Valid {
			v = r.Own.Int64
		}
		if v <= 0 {
			return -1, nil
		}
		total += v
	}
	return total, nil
}

// newUserQuotaTx is the quota a new user would have: its own, else its
// plan's, else the server's (negative: unlimited).
func (s *Store) newUserQuotaTx(ctx context.Context, q sqlx.QueryerContext, own *int64, planID sql.NullInt64) (int64, error) {
	v := s.limits.QuotaBytes
	if planID.Valid {
		var pq int64
		if err := sqlx.GetContext(ctx, q, &pq, s.rebind("SELECT quota_bytes FROM plans WHERE id = ?"), planID.Int64); err != nil {
			return 0, err
		}
		if pq != 0 {
			v = pq
		}
	}
	if own != nil {
		v = *own
	}
	if v <= 0 {
		return -1, nil
	}
	return v, nil
}

// newUserRoomTx is CreateUser's check of its domain's limits, inside its
// transaction; it returns the plan the user gets (the domain's default
// when none was named).
func (s *Store) newUserRoomTx(ctx context.Context, tx *sqlx.Tx, domainID int64, planID sql.NullInt64, own *int64) (sql.NullInt64, error) {
	if !planID.Valid {
		var def sql.NullInt64
		if err := tx.GetContext(ctx, &def, s.rebind("SELECT default_plan_id FROM domains WHERE id = ?"+s.db.ForUpdate()), domainID); err != nil {
			return planID, err
		}
		planID = def
	}
	quota, err := s.newUserQuotaTx(ctx, tx, own, planID)
	if err != nil {
		return planID, err
	}
	return planID, s.CheckDomainRoom(ctx, tx, domainID, 1, 0, quota)
}

// RenameDomain gives a domain a new name: its users' addresses and login
// names and its aliases follow. Sessions of its users stay valid.
func (s *Store) RenameDomain(ctx context.Context, from, to string) (DomainInfo, error) {
	defer s.domains.forget()
	f, err := NormalizeDomain(from)
	if err != nil {
		return DomainInfo{}, err
	}
	t, err := NormalizeDomain(to)
	if err != nil {
		return DomainInfo{}, err
	}
	var after DomainInfo
	var users []int64
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		before, err := s.domainInfo(ctx, tx, f)
		if err != nil {
			return err
		}
		var taken int
		if err := tx.GetContext(ctx, &taken, s.rebind("SELECT (SELECT COUNT(*) FROM domains WHERE name = ?) + (SELECT COUNT(*) FROM domain_aliases WHERE name = ?)"), t, t); err != nil {
			return err
		}
		if taken > 0 {
			return fmt.Errorf("%w: %s is taken", ErrExists, t)
		}
		if err := tx.SelectContext(ctx, &users, s.rebind("SELECT id FROM users WHERE domain_id = ?"), before.ID); err != nil {
			return err
		}
		// Addresses end in "@from": swap the suffix. The LIKE narrows the
		// rows; the suffix is replaced by length, not by pattern.
		suffix := "@" + f
		cut := func(col string) string {
			if s.db.Dialect() == sqldb.MySQL {
				return "CONCAT(SUBSTRING(" + col + ", 1, CHAR_LENGTH(" + col + ") - " + strconv.Itoa(len(suffix)) + "), ?)"
			}
			return "SUBSTR(" + col + ", 1, LENGTH(" + col + ") - " + strconv.Itoa(len(suffix)) + ") || ?"
		}
		like := "%" + strings.NewReplacer("%", "\\%", "_", "\\_").Replace(suffix)
		esc := " ESCAPE '\\'"
		if s.db.Dialect() == sqldb.MySQL {
			esc = ""
		}
		for _, st := range []struct {
			table, col, where string
			args              []any
		}{
			{"users", "address", " AND domain_id = ?", []any{before.ID}},
			{"identifiers", "name", " AND user_id IN (SELECT id FROM users WHERE domain_id = ?)", []any{before.ID}},
			{"aliases", "pattern", " AND domain_id = ?", []any{before.ID}},
			{"aliases", "target", "", nil}, // wherever the alias is
		} {
			q := "UPDATE " + st.table + " SET " + st.col + " = " + cut(st.col) + " WHERE " + st.col + " LIKE ?" + esc + st.where
			if _, err := tx.ExecContext(ctx, s.rebind(q), append([]any{"@" + t, like}, st.args...)...); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET serial = serial + 1 WHERE domain_id = ?"), before.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE domains SET name = ?, updated_at = ? WHERE id = ?"), t, s.unix(), before.ID); err != nil {
			return err
		}
		if after, err = s.domainInfo(ctx, tx, t); err != nil {
			return err
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "domain.rename", Target: f, Domain: t, Before: before, After: after})
	})
	if sqldb.IsDuplicate(err) {
		err = fmt.Errorf("%w: an address of %s already exists", ErrExists, t)
	}
	if err != nil {
		return DomainInfo{}, fmt.Errorf("rename domain %s: %w", f, err)
	}
	for _, id := range users {
		s.cache.Delete(ctx, "user:"+strconv.FormatInt(id, 10))
		s.sp.Announce(ctx, id, 0, []cache.Event{{UserID: id, Kind: KindUser}})
	}
	return after, nil
}

// DeleteDomainAudited removes an empty domain (ErrNotEmpty while it has
// users), audited in its transaction.
func (s *Store) DeleteDomainAudited(ctx context.Context, name string) error {
	return s.DeleteDomainAuditedIf(ctx, name, nil)
}

// DeleteDomainAuditedIf is DeleteDomainAudited under a precondition, as
// SetDomainLimitsIf.
func (s *Store) DeleteDomainAuditedIf(ctx context.Context, name string, check func(DomainInfo) error) error {
	defer s.domains.forget()
	n, err := NormalizeDomain(name)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		before, err := s.lockedDomain(ctx, tx, n, check)
		if err != nil {
			return err
		}
		var users int64
		if err := tx.GetContext(ctx, &users, s.rebind("SELECT COUNT(*) FROM users WHERE domain_id = ?"+s.db.ForUpdate()), before.ID); err != nil {
			return err
		}
		if users > 0 {
			return fmt.Errorf("%w: the domain has %d users", ErrNotEmpty, users)
		}
		for _, q := range []string{"DELETE FROM aliases WHERE domain_id = ?", "DELETE FROM domain_aliases WHERE domain_id = ?", "DELETE FROM domains WHERE id = ?"} {
			if _, err := tx.ExecContext(ctx, s.rebind(q), before.ID); err != nil {
				return err
			}
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "domain.delete", Target: n, Domain: n, Before: before})
	})
	if err != nil {
		return fmt.Errorf("delete domain %s: %w", n, err)
	}
	return nil
}

// DomainUserIDs lists up to limit of a domain's users' ids, for jobs that
// work through a domain (purge, apply a plan) a batch at a time.
func (s *Store) DomainUserIDs(ctx context.Context, domain string, afterID int64, limit int) ([]int64, error) {
	n, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, s.rebind(`SELECT u.id FROM users u JOIN domains d ON d.id = u.domain_id
		WHERE d.name = ? AND u.id > ? ORDER BY u.id LIMIT `+strconv.Itoa(limit)), n, afterID); err != nil {
		return nil, fmt.Errorf("users of %s: %w", n, err)
	}
	return ids, nil
}

// DeletePlan removes a plan no user or domain uses (ErrNotEmpty
// otherwise); check, when not nil, is given the plan as it is, locked, and
// its error refuses the change.
func (s *Store) DeletePlan(ctx context.Context, name string, check func(Plan) error) error {
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var p Plan
		if err := tx.GetContext(ctx, &p, s.rebind("SELECT "+planColumns+" FROM plans WHERE name = ?"+s.db.ForUpdate()), name); err != nil {
			return notFound(err)
		}
		if check != nil {
			if err := check(p); err != nil {
				return err
			}
		}
		var used int64
		if err := tx.GetContext(ctx, &used, s.rebind("SELECT (SELECT COUNT(*) FROM users WHERE plan_id = ?) + (SELECT COUNT(*) FROM domains WHERE default_plan_id = ?)"), p.ID, p.ID); err != nil {
			return err
		}
		if used > 0 {
			return fmt.Errorf("%w: %d users or domains use the plan", ErrNotEmpty, used)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM plans WHERE id = ?"), p.ID); err != nil {
			return err
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "plan.delete", Target: name, Before: p})
	})
	if err != nil {
		return fmt.Errorf("delete plan %s: %w", name, err)
	}
	return nil
}

// SavePlanAudited creates the named plan or replaces its limits, audited
// (before and after) in the same transaction. check, when not nil, is
// given the plan as it is (nil: none yet), locked, and its error refuses
// the change (a create refuses one that exists; an update, a stale
// If-Match).
func (s *Store) SavePlanAudited(ctx context.Context, name string, l Limits, check func(*Plan) error) (Plan, error) {
	if name == "" {
		return Plan{}, fmt.Errorf("save plan: %w: empty name", ErrInvalid)
	}
	if l.QuotaBytes < 0 || l.MaxRecvSize < 0 || l.MaxSendSize < 0 || l.DailySendBytes < 0 || l.DailyRecvBytes < 0 || l.DailyRecvPerIP < 0 {
		return Plan{}, fmt.Errorf("save plan %s: %w: limits must not be negative", name, ErrInvalid)
	}
	var after Plan
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var before []Plan
		if err := tx.SelectContext(ctx, &before, s.rebind("SELECT "+planColumns+" FROM plans WHERE name = ?"+s.db.ForUpdate()), name); err != nil {
			return err
		}
		if check != nil {
			var cur *Plan
			if len(before) > 0 {
				cur = &before[0]
			}
			if err := check(cur); err != nil {
				return err
			}
		}
		args := []any{l.QuotaBytes, l.MaxRecvSize, l.MaxSendSize, l.DailySendBytes, l.DailyRecvBytes, l.DailyRecvPerIP, name}
		e := AuditEntry{Action: "plan.update", Target: name}
		if len(before) == 0 {
			e.Action = "plan.create"
			if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO plans (quota_bytes, max_recv_size, max_send_size,
				daily_send_bytes, daily_recv_bytes, daily_recv_per_ip, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), append(args, s.unix())...); err != nil {
				return err
			}
		} else {
			e.Before = before[0]
			if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE plans SET quota_bytes = ?, max_recv_size = ?, max_send_size = ?,
				daily_send_bytes = ?, daily_recv_bytes = ?, daily_recv_per_ip = ? WHERE name = ?`), args...); err != nil {
				return err
			}
		}
		if err := tx.GetContext(ctx, &after, s.rebind("SELECT "+planColumns+" FROM plans WHERE name = ?"), name); err != nil {
			return err
		}
		e.After = after
		return s.auditIn(ctx, tx, e)
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return Plan{}, fmt.Errorf("save plan %s: %w", name, err)
	}
	return after, nil
}

// PlanUsers counts the users on a plan.
func (s *Store) PlanUsers(ctx context.Context, planID int64) (int64, error) {
	var n int64
	if err := s.db.GetContext(ctx, &n, s.rebind("SELECT COUNT(*) FROM users WHERE plan_id = ?"), planID); err != nil {
		return 0, fmt.Errorf("users of plan %d: %w", planID, err)
	}
	return n, nil
}

// SetUserPlan puts a user on a plan, keeping its own overrides; the
// domain's total quota must still hold. Audited in its transaction.
func (s *Store) SetUserPlan(ctx context.Context, userID int64, plan string) error {
	err := s.sp.WriteUser(ctx, userID, func(tx *sqlx.Tx, _ *spine.Change) error {
		u, _, err := s.userTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		id, err := s.planIDTx(ctx, tx, plan)
		if err != nil {
			return err
		}
		if u.PlanID == id {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET plan_id = ?, updated_at = ? WHERE id = ?"), id, s.unix(), userID); err != nil {
			return err
		}
		if err := s.CheckDomainRoom(ctx, tx, u.DomainID, 0, 0, 0); err != nil {
			return err
		}
		_, domain, _ := strings.Cut(u.Address, "@")
		return s.auditIn(ctx, tx, AuditEntry{Action: "user.plan", Target: u.Address, Domain: domain,
			Before: map[string]any{"plan": u.PlanID}, After: map[string]any{"plan": plan}})
	})
	if err != nil {
		return fmt.Errorf("set plan of user %d: %w", userID, err)
	}
	return nil
}

// DomainUsersNotOnPlan lists up to limit of a domain's users not on the
// plan: what applying it has left to do.
func (s *Store) DomainUsersNotOnPlan(ctx context.Context, domain, plan string, afterID int64, limit int) ([]int64, error) {
	p, err := s.PlanByName(ctx, plan)
	if err != nil {
		return nil, err
	}
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, s.rebind(`SELECT u.id FROM users u JOIN domains d ON d.id = u.domain_id
		WHERE d.name = ? AND u.id > ? AND (u.plan_id IS NULL OR u.plan_id <> ?) ORDER BY u.id LIMIT `+strconv.Itoa(limit)), domain, afterID, p.ID); err != nil {
		return nil, fmt.Errorf("users of %s off plan %s: %w", domain, plan, err)
	}
	return ids, nil
}
