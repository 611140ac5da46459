package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// What provisioning (the admin API, the command line) does to users
// beyond creating them: suspension, protocol access, logins, listings,
// renames, usage. IndiMail's vmoduser, vuserinfo, vrenameuser and
// vdeloldusers are the models.

// Protocol is a front end a user logs in to.
type Protocol string

// The protocols a user's access is set for.
const (
	ProtoIMAP    Protocol = "imap"
	ProtoPOP3    Protocol = "pop3"
	ProtoSMTP    Protocol = "smtp" // authenticated submission
	ProtoWebmail Protocol = "webmail"
)

// Protocols lists every Protocol, in a stable order.
var Protocols = []Protocol{ProtoIMAP, ProtoPOP3, ProtoSMTP, ProtoWebmail}

// ProtocolSet is a set of protocols, kept as bits in the users row.
type ProtocolSet int64

func (p Protocol) bit() ProtocolSet {
	for i, q := range Protocols {
		if q == p {
			return 1 << i
		}
	}
	return 0
}

// ParseProtocol checks a protocol's name.
func ParseProtocol(name string) (Protocol, error) {
	p := Protocol(strings.ToLower(name))
	if p.bit() == 0 {
		return "", fmt.Errorf("%w: unknown protocol %q", ErrInvalid, name)
	}
	return p, nil
}

// Has reports whether p is in the set.
func (s ProtocolSet) Has(p Protocol) bool { return p.bit() != 0 && s&p.bit() != 0 }

// With returns the set with p added (on) or taken out.
func (s ProtocolSet) With(p Protocol, on bool) ProtocolSet {
	if on {
		return s | p.bit()
	}
	return s &^ p.bit()
}

// Suspended reports whether the user is suspended.
func (u User) Suspended() bool { return u.SuspendedAt > 0 }

// Suspend stops every login of the user (web sessions end at their next
// request) while mail is still received. Suspending a suspended user
// keeps the first time and takes the new reason.
func (s *Store) Suspend(ctx context.Context, id int64, reason string) error {
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, c *spine.Change) error {
		now := s.unix()
		_, err := tx.ExecContext(ctx, s.rebind(`UPDATE users SET suspended_at = CASE WHEN suspended_at > 0 THEN suspended_at ELSE ? END,
			suspend_reason = ?, updated_at = ? WHERE id = ?`), now, spine.Clip(reason), now, id)
		c.Add(0, KindUser, 0, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("suspend user %d: %w", id, err)
	}
	return nil
}

// Unsuspend lets a suspended user log in again.
func (s *Store) Unsuspend(ctx context.Context, id int64) error {
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, _ *spine.Change) error {
		_, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET suspended_at = 0, suspend_reason = '', updated_at = ? WHERE id = ?"), s.unix(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("unsuspend user %d: %w", id, err)
	}
	return nil
}

// SetDeniedProtocols sets the protocols the user may not log in to.
func (s *Store) SetDeniedProtocols(ctx context.Context, id int64, denied ProtocolSet) error {
	var all ProtocolSet
	for _, p := range Protocols {
		all |= p.bit()
	}
	if denied&^all != 0 {
		return fmt.Errorf("set protocol access of user %d: %w: unknown protocol bits", id, ErrInvalid)
	}
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, c *spine.Change) error {
		_, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET denied_protocols = ?, updated_at = ? WHERE id = ?"), denied, s.unix(), id)
		c.Add(0, KindUser, 0, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("set protocol access of user %d: %w", id, err)
	}
	return nil
}

// Login is a user's last successful login over one protocol.
type Login struct {
	Protocol Protocol `db:"protocol" json:"protocol"`
	At       int64    `db:"at" json:"at"` // Unix seconds
	IP       string   `db:"ip" json:"ip"`
}

// RecordLogin records a successful login (package session calls it, at
// most once per login).
func (s *Store) RecordLogin(ctx context.Context, id int64, p Protocol, ip string, at time.Time) error {
	if p.bit() == 0 {
		return fmt.Errorf("record login: %w: protocol %q", ErrInvalid, p)
	}
	q := "INSERT INTO user_logins (user_id, protocol, at, ip) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, protocol) DO UPDATE SET at = excluded.at, ip = excluded.ip"
	if s.db.Dialect() == "mysql" {
		q = "INSERT INTO user_logins (user_id, protocol, at, ip) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE at = VALUES(at), ip = VALUES(ip)"
	}
	if len(ip) > 64 {
		ip = ip[:64]
	}
	if _, err := s.db.ExecContext(ctx, s.rebind(q), id, string(p), at.Unix(), ip); err != nil {
		return fmt.Errorf("record login of user %d: %w", id, err)
	}
	return nil
}

// Logins returns the user's last login per protocol, by protocol name.
func (s *Store) Logins(ctx context.Context, id int64) ([]Login, error) {
	var ls []Login
	if err := s.db.SelectContext(ctx, &ls, s.rebind("SELECT protocol, at, ip FROM user_logins WHERE user_id = ? ORDER BY protocol"), id); err != nil {
		return nil, fmt.Errorf("logins of user %d: %w", id, err)
	}
	return ls, nil
}

// UserInfo is everything vuserinfo tells about a user.
type UserInfo struct {
	User
	Plan        string   // "" without a plan
	Limits      Limits   // in force: the user's own over its plan's over the default
	Logins      []Login  // the last per protocol
	Identifiers []string // login names
}

// Info returns a user's record read fresh from the database, with what is
// in force for it.
func (s *Store) Info(ctx context.Context, id int64) (UserInfo, error) {
	u, err := s.loadUser(ctx, "u.id = ?", id)
	if err != nil {
		return UserInfo{}, err
	}
	info := UserInfo{User: u}
	if info.Limits, err = s.Limits(ctx, u); err != nil {
		return UserInfo{}, err
	}
	if u.PlanID.Valid {
		if err := s.db.GetContext(ctx, &info.Plan, s.rebind("SELECT name FROM plans WHERE id = ?"), u.PlanID.Int64); err != nil {
			return UserInfo{}, fmt.Errorf("plan of user %d: %w", id, err)
		}
	}
	if info.Logins, err = s.Logins(ctx, id); err != nil {
		return UserInfo{}, err
	}
	if info.Identifiers, err = s.Identifiers(ctx, id); err != nil {
		return UserInfo{}, err
	}
	return info, nil
}

// UserStatus filters a user list by state.
type UserStatus string

// The states a user list is filtered by.
const (
	StatusAny       UserStatus = ""
	StatusActive    UserStatus = "active" // neither suspended nor locked
	StatusSuspended UserStatus = "suspended"
	StatusLocked    UserStatus = "locked"
)

// UserSort orders a user list.
type UserSort string

// The orders of a user list; "-" reverses.
const (
	SortAddress     UserSort = "address"
	SortAddressDesc UserSort = "-address"
	SortCreated     UserSort = "created"
	SortCreatedDesc UserSort = "-created"
)

// UserFilter selects a page of users. Every combination is read through
// an index in key order (migration 0019), so a page costs its own rows
// at any depth, not the rows before it.
type UserFilter struct {
	Q      string // a prefix of the address
	Domain string
	// Only, when Domain is "", keeps the users of these domains (a key
	// limited to them); names that are no domain match nothing.
	Only   []string
	Plan   string
	Status UserStatus
	Sort   UserSort // default SortAddress
	Cursor string   // Next of the previous page; "" starts at the top
	Limit  int      // default 100, at most 1000
}

// UserPage is a page of users; Next is "" on the last page.
type UserPage struct {
	Users []User
	Next  string
}

// ListUsers returns a page of users.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) (UserPage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 1000 {
		return UserPage{}, fmt.Errorf("list users: %w: limit above 1000", ErrInvalid)
	}
	var where []string
	var args []any
	if f.Q != "" {
		q := strings.ToLower(strings.TrimSpace(f.Q))
		// A prefix as a range, which an index serves (LIKE would not,
		// with MySQL's binary collation or SQLite's defaults): every
		// string starting with q sorts below q followed by the highest
		// code point.
		where, args = append(where, "u.address >= ? AND u.address < ?"), append(args, q, q+"\U0010FFFF")
	}
	if f.Domain != "" {
		d, err := s.DomainByName(ctx, f.Domain)
		if err != nil {
			return UserPage{}, fmt.Errorf("list users: %w", err)
		}
		where, args = append(where, "u.domain_id = ?"), append(args, d.ID)
	}
	if f.Domain == "" && f.Only != nil {
		ids := []any{int64(0)} // matches nothing: ids start at 1
		for _, name := range f.Only {
			if d, err := s.DomainByName(ctx, name); err == nil {
				ids = append(ids, d.ID)
			}
		}
		q, qargs, err := sqlx.In("u.domain_id IN (?)", ids)
		if err != nil {
			return UserPage{}, fmt.Errorf("list users: %w", err)
		}
		where, args = append(where, q), append(args, qargs...)
	}
	if f.Plan != "" {
		p, err := s.PlanByName(ctx, f.Plan)
		if err != nil {
			return UserPage{}, fmt.Errorf("list users: %w", err)
		}
		where, args = append(where, "u.plan_id = ?"), append(args, p.ID)
	}
	now := s.unix()
	switch f.Status {
	case StatusAny:
	case StatusActive:
		where, args = append(where, "u.suspended_at = 0 AND u.locked_until <= ?"), append(args, now)
	case StatusSuspended:
		where = append(where, "u.suspended_at > 0")
	case StatusLocked:
		where, args = append(where, "u.locked_until > ?"), append(args, now)
	default:
		return UserPage{}, fmt.Errorf("list users: %w: status %q", ErrInvalid, f.Status)
	}
	sort := f.Sort
	if sort == "" {
		sort = SortAddress
	}
	var order string
	var c userCursor
	if f.Cursor != "" {
		var err error
		if c, err = parseUserCursor(f.Cursor, sort); err != nil {
			return UserPage{}, fmt.Errorf("list users: %w", err)
		}
	}
	switch sort {
	case SortAddress:
		order = "u.address"
		if f.Cursor != "" {
			where, args = append(where, "u.address > ?"), append(args, c.addr)
		}
	case SortAddressDesc:
		order = "u.address DESC"
		if f.Cursor != "" {
			where, args = append(where, "u.address < ?"), append(args, c.addr)
		}
	case SortCreated:
		order = "u.created_at, u.id"
		if f.Cursor != "" {
			where, args = append(where, "u.created_at >= ? AND (u.created_at > ? OR u.id > ?)"), append(args, c.created, c.created, c.id)
		}
	case SortCreatedDesc:
		order = "u.created_at DESC, u.id DESC"
		if f.Cursor != "" {
			where, args = append(where, "u.created_at <= ? AND (u.created_at < ? OR u.id < ?)"), append(args, c.created, c.created, c.id)
		}
	default:
		return UserPage{}, fmt.Errorf("list users: %w: sort %q", ErrInvalid, f.Sort)
	}
	q := "SELECT " + userColumns + userFrom
	if len(where) > 0 {
		q += "WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order + " LIMIT " + strconv.Itoa(limit+1)
	var us []User
	if err := s.db.SelectContext(ctx, &us, s.rebind(q), args...); err != nil {
		return UserPage{}, fmt.Errorf("list users: %w", err)
	}
	page := UserPage{Users: us}
	if len(us) > limit {
		page.Users = us[:limit]
		last := page.Users[limit-1]
		page.Next = userCursor{addr: last.Address, created: last.CreatedAt, id: last.ID}.encode(sort)
	}
	return page, nil
}

// CursorOf is the cursor of a listing under f that goes on after u (what
// Next is for the last user of a page).
func (f UserFilter) CursorOf(u User) string {
	sort := f.Sort
	if sort == "" {
		sort = SortAddress
	}
	return userCursor{addr: u.Address, created: u.CreatedAt, id: u.ID}.encode(sort)
}

// userCursor is where a page of users ended, in its sort's key.
type userCursor struct {
	addr        string
	created, id int64
}

// encode makes the cursor opaque: base64url of "sort|key".
func (c userCursor) encode(sort UserSort) string {
	key := c.addr
	if sort == SortCreated || sort == SortCreatedDesc {
		key = strconv.FormatInt(c.created, 10) + ":" + strconv.FormatInt(c.id, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(string(sort) + "|" + key))
}

// parseUserCursor reads a cursor made for the same sort.
func parseUserCursor(s string, sort UserSort) (userCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	bad := fmt.Errorf("%w: malformed cursor", ErrInvalid)
	if err != nil {
		return userCursor{}, bad
	}
	got, key, ok := strings.Cut(string(b), "|")
	if !ok || UserSort(got) != sort {
		return userCursor{}, fmt.Errorf("%w: the cursor is for another sort", ErrInvalid)
	}
	if sort == SortAddress || sort == SortAddressDesc {
		return userCursor{addr: key}, nil
	}
	cs, is, ok := strings.Cut(key, ":")
	created, err1 := strconv.ParseInt(cs, 10, 64)
	id, err2 := strconv.ParseInt(is, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return userCursor{}, bad
	}
	return userCursor{created: created, id: id}, nil
}

// RenameUser gives a user a new address (vrenameuser): its login
// identifier by the old address becomes the new one; mail, keys and other
// identifiers stay. The new address's domain must be local.
func (s *Store) RenameUser(ctx context.Context, id int64, newAddress string) (User, error) {
	addr, err := NormalizeAddress(newAddress)
	if err != nil {
		return User{}, fmt.Errorf("rename user %d: %w", id, err)
	}
	_, domainName, _ := strings.Cut(addr, "@")
	d, err := s.DomainByName(ctx, domainName)
	if err != nil {
		return User{}, fmt.Errorf("rename user %d: %w", id, err)
	}
	if d.Name != domainName {
		return User{}, fmt.Errorf("rename user %d: %w: %s is an alias of %s; use that domain", id, ErrInvalid, domainName, d.Name)
	}
	var old string
	err = s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, c *spine.Change) error {
		if err := tx.GetContext(ctx, &old, s.rebind("SELECT address FROM users WHERE id = ?"), id); err != nil {
			return err
		}
		if old == addr {
			return nil
		}
		var taken int
		if err := tx.GetContext(ctx, &taken, s.rebind("SELECT COUNT(*) FROM identifiers WHERE name = ? AND user_id <> ?"), addr, id); err != nil {
			return err
		}
		if taken > 0 {
			return fmt.Errorf("%w: %s is another user's login", ErrExists, addr)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET address = ?, domain_id = ?, updated_at = ? WHERE id = ?"), addr, d.ID, s.unix(), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM identifiers WHERE user_id = ? AND name = ?"), id, old); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM identifiers WHERE user_id = ? AND name = ?"), id, addr); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind("INSERT INTO identifiers (user_id, name) VALUES (?, ?)"), id, addr)
		c.Add(0, "user", 0, 0)
		return err
	})
	if sqldb.IsDuplicate(err) {
		err = fmt.Errorf("%w: %s", ErrExists, addr)
	}
	if err != nil {
		return User{}, fmt.Errorf("rename user %d to %s: %w", id, addr, err)
	}
	s.Audit(ctx, AuditEntry{Action: "user.rename", Target: old, Domain: domainOfAddr(old), Before: map[string]string{"address": old}, After: map[string]string{"address": addr}})
	return s.UserByID(ctx, id)
}

// UpgradePasswordHash replaces a user's password hash by another of the
// same password (an imported hash by argon2id, at a login that proved
// the password), unless it changed meanwhile. Unlike SetPassword it ends
// no session: the password is the same.
func (s *Store) UpgradePasswordHash(ctx context.Context, id int64, oldHash, newHash string) (bool, error) {
	if newHash == "" {
		return false, fmt.Errorf("upgrade password hash: %w: empty hash", ErrInvalid)
	}
	res, err := s.db.ExecContext(ctx, s.rebind("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?"), newHash, id, oldHash)
	if err != nil {
		return false, fmt.Errorf("upgrade password hash of user %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// InactiveUsers lists, by id after after, up to limit users created
// before since who have not logged in over any protocol since then
// (vdeloldusers).
func (s *Store) InactiveUsers(ctx context.Context, since time.Time, after int64, limit int) ([]User, error) {
	if limit <= 0 {
		limit = 100
	}
	var us []User
	err := s.db.SelectContext(ctx, &us, s.rebind("SELECT "+userColumns+userFrom+`WHERE u.id > ? AND u.created_at < ?
		AND NOT EXISTS (SELECT 1 FROM user_logins l WHERE l.user_id = u.id AND l.at >= ?) ORDER BY u.id LIMIT `+strconv.Itoa(limit)),
		after, since.Unix(), since.Unix())
	if err != nil {
		return nil, fmt.Errorf("list inactive users: %w", err)
	}
	return us, nil
}

// Usage is what a user's quota counts.
type Usage struct {
	Bytes    int64 `json:"bytes"`
	Messages int64 `json:"messages"`
}

// RecalculateUsage counts again what a user's quota holds, from its
// stored messages and its webmail uploads, and sets the counters to it,
// with the user's row locked so no delivery slips between count and set.
// It returns the counters before and after.
func (s *Store) RecalculateUsage(ctx context.Context, id int64) (before, after Usage, err error) {
	err = s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, _ *spine.Change) error {
		if err := tx.GetContext(ctx, &before, s.rebind("SELECT used_bytes AS bytes, message_count AS messages FROM users WHERE id = ?"), id); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &after, s.rebind("SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS messages FROM messages WHERE user_id = ?"), id); err != nil {
			return err
		}
		var uploads int64
		if err := tx.GetContext(ctx, &uploads, s.rebind("SELECT COALESCE(SUM(charged), 0) FROM webmail_uploads WHERE user_id = ?"), id); err != nil {
			return err
		}
		after.Bytes += uploads
		_, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET used_bytes = ?, message_count = ? WHERE id = ?"), after.Bytes, after.Messages, id)
		return err
	})
	if err != nil {
		return Usage{}, Usage{}, fmt.Errorf("recalculate usage of user %d: %w", id, err)
	}
	return before, after, nil
}

// UserIDs returns up to limit user ids after after, in id order, for
// work that walks every user (usage recalculation, bulletins).
func (s *Store) UserIDs(ctx context.Context, after int64, limit int) ([]int64, error) {
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, s.rebind("SELECT id FROM users WHERE id > ? ORDER BY id LIMIT "+strconv.Itoa(max(limit, 1))), after); err != nil {
		return nil, fmt.Errorf("list user ids: %w", err)
	}
	return ids, nil
}

// WebSessionInfo is what an administrator sees of a web session: no
// secret, no key.
type WebSessionInfo struct {
	ID        string `db:"id" json:"id"`
	Created   int64  `db:"created_at" json:"created"`
	Expires   int64  `db:"expires_at" json:"expires"`
	IdleUntil int64  `db:"idle_until" json:"idleUntil"`
}

// WebSessions lists a user's live web sessions, newest first.
func (s *Store) WebSessions(ctx context.Context, userID int64) ([]WebSessionInfo, error) {
	now := s.unix()
	var ws []WebSessionInfo
	err := s.db.SelectContext(ctx, &ws, s.rebind(`SELECT id, created_at, expires_at, idle_until FROM web_sessions
		WHERE user_id = ? AND expires_at > ? AND idle_until > ? ORDER BY created_at DESC, id`), userID, now, now)
	if err != nil {
		return nil, fmt.Errorf("list web sessions of user %d: %w", userID, err)
	}
	return ws, nil
}

// RevokeWebSessions ends one of a user's web sessions, or all of them
// when id is "", and returns how many ended. A session of another user is
// not found.
func (s *Store) RevokeWebSessions(ctx context.Context, userID int64, id string) (int, error) {
	q, args := "DELETE FROM web_sessions WHERE user_id = ?", []any{userID}
	if id != "" {
		q, args = q+" AND id = ?", append(args, id)
	}
	res, err := s.db.ExecContext(ctx, s.rebind(q), args...)
	if err != nil {
		return 0, fmt.Errorf("revoke web sessions of user %d: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	if id != "" && n == 0 {
		return 0, fmt.Errorf("web session of user %d: %w", userID, ErrNotFound)
	}
	return int(n), nil
}

// CreateUsers creates many users in one transaction, each as CreateUser
// would (identifier, keys, default mailboxes): a migration's bulk import.
// Either all are created or, on the first failure, none; the error names
// the address that failed.
func (s *Store) CreateUsers(ctx context.Context, nus []NewUser) ([]int64, error) {
	type prepared struct {
		nu     NewUser
		addr   string
		domain int64
		plan   sql.NullInt64
	}
	ps := make([]prepared, len(nus))
	domains := map[string]int64{}
	plans := map[string]int64{}
	for i, nu := range nus {
		p, err := s.prepareUser(ctx, nu, domains, plans)
		if err != nil {
			return nil, err
		}
		ps[i] = prepared{nu: nu, addr: p.addr, domain: p.domain, plan: p.plan}
	}
	ids := make([]int64, len(ps))
	var failed string
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		// Each domain's limits are checked once for all its new users
		// (counting the domain's users once, not once a user), with the
		// domain's default plan given to those that name none.
		type room struct {
			users int64
			quota int64 // -1: one of them is unlimited
		}
		rooms := map[int64]*room{}
		defaults := map[int64]sql.NullInt64{}
		for i := range ps {
			p := &ps[i]
			if !p.plan.Valid {
				def, ok := defaults[p.domain]
				if !ok {
					if err := tx.GetContext(ctx, &def, s.rebind("SELECT default_plan_id FROM domains WHERE id = ?"), p.domain); err != nil {
						return err
					}
					defaults[p.domain] = def
				}
				p.plan = def
			}
			q, err := s.newUserQuotaTx(ctx, tx, p.nu.Overrides.QuotaBytes, p.plan)
			if err != nil {
				return err
			}
			r := rooms[p.domain]
			if r == nil {
				r = &room{}
				rooms[p.domain] = r
			}
			r.users++
			if q < 0 || r.quota < 0 {
				r.quota = -1
			} else {
				r.quota += q
			}
		}
		for d, r := range rooms {
			if err := s.CheckDomainRoom(ctx, tx, d, r.users, 0, r.quota); err != nil {
				return err
			}
		}
		for i, p := range ps {
			id, err := s.createUserTx(ctx, tx, p.nu, p.addr, p.domain, p.plan)
			if err != nil {
				failed = p.addr
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("create users: %s: %w", failed, err)
	}
	s.audit(ctx, "", "user.create", fmt.Sprintf("%d users", len(ids)), "")
	return ids, nil
}

type preparedUser struct {
	addr   string
	domain int64
	plan   sql.NullInt64
}

// prepareUser checks a new user and finds its domain and plan, reusing
// the lookups in domains and plans.
func (s *Store) prepareUser(ctx context.Context, nu NewUser, domains, plans map[string]int64) (preparedUser, error) {
	addr, err := NormalizeAddress(nu.Address)
	if err != nil {
		return preparedUser{}, err
	}
	if nu.Hash == "" {
		return preparedUser{}, fmt.Errorf("create user %s: %w: no password hash", addr, ErrInvalid)
	}
	if nu.Secure && (nu.PublicKey == "" || len(nu.SealedKey) == 0) {
		return preparedUser{}, fmt.Errorf("create user %s: %w: a secure user needs a key pair", addr, ErrInvalid)
	}
	_, domainName, _ := strings.Cut(addr, "@")
	p := preparedUser{addr: addr}
	if id, ok := domains[domainName]; ok {
		p.domain = id
	} else {
		err := s.db.GetContext(ctx, &p.domain, s.rebind("SELECT id FROM domains WHERE name = ?"), domainName)
		if errors.Is(err, sql.ErrNoRows) {
			return preparedUser{}, fmt.Errorf("create user %s: domain %s: %w", addr, domainName, ErrNotFound)
		}
		if err != nil {
			return preparedUser{}, fmt.Errorf("create user %s: %w", addr, err)
		}
		domains[domainName] = p.domain
	}
	if nu.Plan != "" {
		id, ok := plans[nu.Plan]
		if !ok {
			pl, err := s.PlanByName(ctx, nu.Plan)
			if err != nil {
				return preparedUser{}, fmt.Errorf("create user %s: %w", addr, err)
			}
			id = pl.ID
			plans[nu.Plan] = id
		}
		p.plan = sql.NullInt64{Int64: id, Valid: true}
	}
	return p, nil
}

// domainOfAddr is the domain part of an address.
func domainOfAddr(a string) string {
	_, d, _ := strings.Cut(a, "@")
	return d
}

// UserUpdate is what UpdateUser sets: the plan ("" keeps it), the user's
// own limits (replaced whole) and the protocols it may not log in over.
type UserUpdate struct {
	Plan      string
	Overrides LimitOverrides
	Denied    ProtocolSet
}

// UpdateUser changes a user's plan, limits and protocol access in one
// transaction (vmoduser). check, when not nil, is given the user as it
// is, with its row locked, and its error refuses the change (the API's
// If-Match: a change made since the caller read the user is not lost).
func (s *Store) UpdateUser(ctx context.Context, id int64, up UserUpdate, check func(User) error) error {
	var planID sql.NullInt64
	if up.Plan != "" {
		p, err := s.PlanByName(ctx, up.Plan)
		if err != nil {
			return fmt.Errorf("update user %d: %w", id, err)
		}
		planID = sql.NullInt64{Int64: p.ID, Valid: true}
	}
	var all ProtocolSet
	for _, p := range Protocols {
		all |= p.bit()
	}
	if up.Denied&^all != 0 {
		return fmt.Errorf("update user %d: %w: unknown protocol bits", id, ErrInvalid)
	}
	o := up.Overrides
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, c *spine.Change) error {
		c.Add(0, KindUser, 0, 0)
		if check != nil {
			u, _, err := s.userTx(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := check(u); err != nil {
				return err
			}
		}
		if err := s.quotaRoomTx(ctx, tx, id, planID, o.QuotaBytes); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind(`UPDATE users SET plan_id = COALESCE(?, plan_id), quota_bytes = ?, max_recv_size = ?,
			max_send_size = ?, daily_send_bytes = ?, daily_recv_bytes = ?, daily_recv_per_ip = ?, denied_protocols = ?, updated_at = ? WHERE id = ?`),
			planID, o.QuotaBytes, o.MaxRecvSize, o.MaxSendSize, o.DailySendBytes, o.DailyRecvBytes, o.DailyRecvPerIP, up.Denied, s.unix(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("update user %d: %w", id, err)
	}
	return nil
}
