package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store/cache"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// User is a mailbox owner. It carries no credentials; see Credentials.
type User struct {
	ID           int64          `db:"id" json:"id"`
	DomainID     int64          `db:"domain_id" json:"domainID"`
	Address      string         `db:"address" json:"address"`
	PlanID       sql.NullInt64  `db:"plan_id" json:"planID"`
	Overrides    LimitOverrides `db:"" json:"overrides"`
	UsedBytes    int64          `db:"used_bytes" json:"usedBytes"`
	MessageCount int64          `db:"message_count" json:"messageCount"`
	LockedUntil  int64          `db:"locked_until" json:"lockedUntil"`
	LockReason   string         `db:"lock_reason" json:"lockReason"`
	Secure       bool           `db:"secure" json:"secure"`
	// AuthEpoch changes whenever the password or keys do: sessions opened
	// before it are no longer valid.
	AuthEpoch int64 `db:"auth_epoch" json:"authEpoch"`
	// DeliveryRules is set when the user has vacation or forwarding rules.
	DeliveryRules bool `db:"delivery_rules" json:"deliveryRules"`
	// SuspendedAt is when the user was suspended (no login anywhere, mail
	// still received); 0 when it is not.
	SuspendedAt   int64  `db:"suspended_at" json:"suspendedAt"`
	SuspendReason string `db:"suspend_reason" json:"suspendReason"`
	// DeniedProtocols are the front ends the user may not log in to.
	DeniedProtocols ProtocolSet `db:"denied_protocols" json:"deniedProtocols"`
	// BlobPartition is where the user's new message files go ("" the
	// blob store's choice); MoveUser sets it.
	BlobPartition string `db:"blob_partition" json:"blobPartition"`
	PublicKey     string `db:"public_key" json:"publicKey"`
	// ProbationUntil (Unix seconds) ends a new account's probation, during
	// which it sends at most ProbationSendBytes a day (Limits caps it).
	ProbationUntil     int64  `db:"probation_until" json:"probationUntil"`
	ProbationSendBytes int64  `db:"probation_send_bytes" json:"probationSendBytes"`
	Serial             uint64 `db:"serial" json:"serial"`
	CreatedAt          int64  `db:"created_at" json:"createdAt"`
	UpdatedAt          int64  `db:"updated_at" json:"updatedAt"`
}

// KindUser is the Kind of the change event announced when a user's own
// record changes rather than its mail: suspension, lock, protocol access,
// password, address, plan or limits, deletion. The session service hears
// it to end the protocol connections the change no longer allows.
const KindUser = "user"

// Locked reports whether the user is locked out at t.
func (u User) Locked(t time.Time) bool { return u.LockedUntil > t.Unix() }

const userColumns = `u.id, u.domain_id, u.address, u.plan_id, u.quota_bytes, u.max_recv_size, u.max_send_size,
	u.daily_send_bytes, u.daily_recv_bytes, u.daily_recv_per_ip, u.used_bytes, u.message_count, u.locked_until,
	u.lock_reason, u.secure, u.auth_epoch, u.delivery_rules, u.suspended_at, u.suspend_reason, u.denied_protocols, u.blob_partition, COALESCE(k.public_key, '') AS public_key, u.probation_until, u.probation_send_bytes, u.serial, u.created_at, u.updated_at`

const userFrom = " FROM users u LEFT JOIN user_keys k ON k.user_id = u.id "

// Credentials is what authentication needs, read fresh from the database
// every time and never cached.
type Credentials struct {
	UserID       int64  `db:"user_id"`
	Address      string `db:"address"`
	PasswordHash string `db:"password_hash"`
	Secure       bool   `db:"secure"`
	SealedKey    []byte `db:"sealed_private"`
	CRAMSecret   []byte `db:"cram_secret"`
	LockedUntil  int64  `db:"locked_until"`
	LockReason   string `db:"lock_reason"`
	// SuspendedAt and DeniedProtocols are User's: a login checks them
	// from here, never from a cached user.
	SuspendedAt     int64       `db:"suspended_at"`
	DeniedProtocols ProtocolSet `db:"denied_protocols"`
}

// NewUser describes a user to create. Secure users need a key pair: the
// public key and the private key sealed by the password (package crypt).
type NewUser struct {
	Address string
	Password
	Secure    bool
	Plan      string // optional plan name
	Overrides LimitOverrides
	UserOptions
}

// UserOptions are what a self-registered user (the site's registration)
// starts with besides its credentials and limits.
type UserOptions struct {
	// Settings are the user's first settings (the webmail's).
	Settings map[string]string
	// ProbationUntil and ProbationSendBytes: see User.
	ProbationUntil     int64
	ProbationSendBytes int64
	// LockedUntil and LockReason lock the new user out from the start
	// (an account waiting for an administrator's approval).
	LockedUntil int64
	LockReason  string
	// InTx runs inside the creating transaction once the user's row is
	// in: a sub-package's own rows (store/signup records the
	// registration, spends an invite). Its error undoes the creation and
	// is returned as it is.
	InTx func(ctx context.Context, tx *sqlx.Tx, userID int64) error
}

// Password is a user's stored credentials, as package session makes them.
type Password struct {
	Hash       string // argon2id, PHC string form
	SealedKey  []byte // a secure user's private key, sealed by the password
	PublicKey  string // with SealedKey on a new key pair; empty to re-seal the current one
	CRAMSecret []byte // CRAM-MD5 states, when the server allows CRAM-MD5
}

// DefaultMailboxes are created with every user (RFC 6154 special uses).
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Drafts", `\Drafts`},
	{"Sent", `\Sent`},
	{"Junk", `\Junk`},
	{"Trash", `\Trash`},
	{"Archive", `\Archive`},
}

// CreateUser creates a user, its login identifier (the address itself), its
// keys and its default mailboxes in one transaction.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	p, err := s.prepareUser(ctx, nu, map[string]int64{}, map[string]int64{})
	if err != nil {
		return User{}, err
	}
	var id int64
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		// The domain's limits, and its default plan when none was named.
		planID, err := s.newUserRoomTx(ctx, tx, p.domain, p.plan, nu.Overrides.QuotaBytes)
		if err != nil {
			return err
		}
		id, err = s.createUserTx(ctx, tx, nu, p.addr, p.domain, planID)
		return err
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", p.addr, err)
	}
	s.audit(ctx, "", "user.create", p.addr, "")
	return s.UserByID(ctx, id)
}

// createUserTx inserts a checked new user (prepareUser) inside tx, whose
// domain's room has been checked (CheckDomainRoom) and default plan
// applied.
func (s *Store) createUserTx(ctx context.Context, tx *sqlx.Tx, nu NewUser, addr string, domainID int64, planID sql.NullInt64) (int64, error) {
	now := s.unix()
	var taken int
	if err := s.db.TxGet(ctx, tx, &taken, s.rebind("SELECT COUNT(*) FROM identifiers WHERE name = ?"), addr); err != nil {
		return 0, err
	}
	if taken > 0 {
		return 0, ErrExists
	}
	o := nu.Overrides
	res, err := s.db.TxExec(ctx, tx, s.rebind(`INSERT INTO users (domain_id, address, password_hash, plan_id,
		quota_bytes, max_recv_size, max_send_size, daily_send_bytes, daily_recv_bytes, daily_recv_per_ip,
		secure, cram_secret, probation_until, probation_send_bytes, locked_until, lock_reason, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		domainID, addr, nu.Hash, planID, o.QuotaBytes, o.MaxRecvSize, o.MaxSendSize, o.DailySendBytes,
		o.DailyRecvBytes, o.DailyRecvPerIP, nu.Secure, cramOrEmpty(nu.CRAMSecret), nu.ProbationUntil,
		nu.ProbationSendBytes, nu.LockedUntil, spine.Clip(nu.LockReason), now, now)
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if _, err := s.db.TxExec(ctx, tx, s.rebind("INSERT INTO identifiers (user_id, name) VALUES (?, ?)"), id, addr); err != nil {
		return 0, err
	}
	if nu.Secure {
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO user_keys (user_id, public_key, sealed_private,
			created_at, updated_at) VALUES (?, ?, ?, ?, ?)`), id, nu.PublicKey, nu.SealedKey, now, now); err != nil {
			return 0, err
		}
	}
	for _, m := range DefaultMailboxes {
		if _, err := s.insertMailbox(ctx, tx, id, 0, m.Name, m.SpecialUse); err != nil {
			return 0, err
		}
	}
	for k, v := range nu.Settings {
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO settings (user_id, name, value) VALUES (?, ?, ?)"), id, k, v); err != nil {
			return 0, err
		}
	}
	if nu.InTx != nil {
		if err := nu.InTx(ctx, tx, id); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// UserByID returns a user, from the cache when its serial is current.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	return s.userByID(ctx, id, true)
}

// userForWrite returns a user for a write that checks again, inside its
// transaction, everything it relies on (limits, key), so any cached copy
// will do: every delivery bumps the user's serial, and insisting on a
// current one would reload the user for every message of a busy mailbox.
func (s *Store) userForWrite(ctx context.Context, id int64) (User, error) {
	return s.userByID(ctx, id, false)
}

// userByID reads a user through the cache; with current, only an entry
// read at the user's current serial is taken.
func (s *Store) userByID(ctx context.Context, id int64, current bool) (User, error) {
	key := "user:" + strconv.FormatInt(id, 10)
	if e, ok, err := s.cache.Get(ctx, key); err == nil && ok {
		fresh := !current
		if !fresh {
			cur, ok, err := s.currentSerial(ctx, id)
			fresh = err == nil && ok && cur == e.Serial
		}
		if fresh {
			var u User
			if json.Unmarshal(e.Value, &u) == nil {
				return u, nil
			}
		}
	}
	u, err := s.loadUser(ctx, "u.id = ?", id)
	if err != nil {
		return User{}, err
	}
	if b, err := json.Marshal(u); err == nil {
		// A failure to cache is not a failure to read: log it and go on.
		if err := s.cache.RaiseSerial(ctx, spine.UserScope(id), u.Serial); err != nil {
			s.log.Warn("cache user serial", "user", id, "err", err)
		} else if err := s.cache.Set(ctx, key, cache.Entry{Value: b, Serial: u.Serial}, time.Hour); err != nil {
			s.log.Warn("cache user", "user", id, "err", err)
		}
	}
	return u, nil
}

// currentSerial returns the user's serial as every node knows it. An
// in-process cache sees only this process's changes, not those of another
// process on the same database (the administrative commands, say), so
// there the database's serial is the one to trust.
func (s *Store) currentSerial(ctx context.Context, id int64) (uint64, bool, error) {
	if !s.localCache {
		return s.cache.Serial(ctx, spine.UserScope(id))
	}
	var serial uint64
	if err := s.db.Get(ctx, &serial, s.rebind("SELECT serial FROM users WHERE id = ?"), id); err != nil {
		return 0, false, notFound(err)
	}
	return serial, true, nil
}

// UserByAddress returns the user whose primary address is addr.
func (s *Store) UserByAddress(ctx context.Context, addr string) (User, error) {
	a, err := NormalizeAddress(addr)
	if err != nil {
		return User{}, err
	}
	return s.loadUser(ctx, "u.address = ?", a)
}

func (s *Store) loadUser(ctx context.Context, where string, arg any) (User, error) {
	var u User
	err := s.db.Get(ctx, &u, s.rebind("SELECT "+userColumns+userFrom+"WHERE "+where), arg)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %v: %w", arg, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("load user %v: %w", arg, err)
	}
	return u, nil
}

// Credentials returns what authenticating login needs; login is any of the
// user's identifiers (its address is always one).
func (s *Store) Credentials(ctx context.Context, login string) (Credentials, error) {
	name := strings.ToLower(strings.TrimSpace(login))
	var c Credentials
	err := s.db.GetContext(ctx, &c, s.rebind(`SELECT u.id AS user_id, u.address, u.password_hash, u.secure,
		COALESCE(k.sealed_private, '') AS sealed_private, u.cram_secret, u.locked_until, u.lock_reason,
		u.suspended_at, u.denied_protocols
		FROM identifiers i JOIN users u ON u.id = i.user_id LEFT JOIN user_keys k ON k.user_id = u.id
		WHERE i.name = ?`), name)
	if errors.Is(err, sql.ErrNoRows) {
		return Credentials{}, fmt.Errorf("credentials: %w", ErrNotFound)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials: %w", err)
	}
	return c, nil
}

// UserQuery pages through users: those after After (an address), at most
// Limit (default 100), optionally in one domain.
type UserQuery struct {
	Domain string
	After  string
	Limit  int
}

// Users lists users ordered by address.
func (s *Store) Users(ctx context.Context, q UserQuery) ([]User, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	where, args := []string{"u.address > ?"}, []any{q.After}
	if q.Domain != "" {
		d, err := s.DomainByName(ctx, q.Domain)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		where, args = append(where, "u.domain_id = ?"), append(args, d.ID)
	}
	var us []User
	err := s.db.SelectContext(ctx, &us, s.rebind("SELECT "+userColumns+userFrom+"WHERE "+strings.Join(where, " AND ")+
		" ORDER BY u.address LIMIT "+strconv.Itoa(limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// DeleteUser removes a user with all its mail, keys and settings. Message
// files whose last reference goes are removed by the sweeper (and at once,
// best effort).
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.DeleteUserIf(ctx, id, nil)
}

// DeleteUserIf is DeleteUser under a precondition: check, when not nil,
// is given the user as it is, with its row locked, and its error refuses
// the delete (the API's If-Match).
func (s *Store) DeleteUserIf(ctx context.Context, id int64, check func(User) error) error {
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET serial = serial + 1 WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if check != nil {
			u, _, err := s.userTx(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := check(u); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE blobs SET refs = refs -
			(SELECT COUNT(*) FROM messages m WHERE m.blob_id = blobs.id AND m.user_id = ?)
			WHERE id IN (SELECT blob_id FROM messages WHERE user_id = ?)`), id, id); err != nil {
			return err
		}
		// The user's index rows go first: one range of ids.
		lo, hi := textRange(id)
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM message_text WHERE "+s.textKey()+" BETWEEN ? AND ?"), lo, hi); err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM expunged WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)",
			"DELETE FROM messages WHERE user_id = ?",
			"DELETE FROM mailboxes WHERE user_id = ?",
			"DELETE FROM users WHERE id = ?",
		} {
			if _, err := tx.ExecContext(ctx, s.rebind(q), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	s.cache.Delete(ctx, "user:"+strconv.FormatInt(id, 10))
	s.sp.Announce(ctx, id, 0, []cache.Event{{UserID: id, Kind: KindUser}})
	s.audit(ctx, "", "user.delete", strconv.FormatInt(id, 10), "")
	if _, err := s.SweepUnreferenced(ctx); err != nil {
		s.log.Warn("sweep after user delete", "err", err)
	}
	return nil
}

// SetPassword replaces a user's credentials. For a secure user, p holds
// the private key re-sealed under the new password, or, with PublicKey
// set, a new key pair (an administrator's reset, after which old mail
// cannot be read). Sessions opened before are no longer valid.
func (s *Store) SetPassword(ctx context.Context, id int64, p Password) error {
	if p.Hash == "" {
		return fmt.Errorf("set password: %w: empty hash", ErrInvalid)
	}
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, c *spine.Change) error {
		c.Add(0, KindUser, 0, 0)
		now := s.unix()
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET password_hash = ?, cram_secret = ?, auth_epoch = auth_epoch + 1, updated_at = ? WHERE id = ?"),
			p.Hash, cramOrEmpty(p.CRAMSecret), now, id); err != nil {
			return err
		}
		if len(p.SealedKey) == 0 {
			return nil
		}
		if p.PublicKey != "" {
			if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM user_keys WHERE user_id = ?"), id); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO user_keys (user_id, public_key, sealed_private, created_at,
				updated_at) VALUES (?, ?, ?, ?, ?)`), id, p.PublicKey, p.SealedKey, now, now)
			return err
		}
		res, err := tx.ExecContext(ctx, s.rebind("UPDATE user_keys SET sealed_private = ?, updated_at = ? WHERE user_id = ?"), p.SealedKey, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: the user has no key to re-seal", ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	return nil
}

// cramOrEmpty stores "no CRAM-MD5 secret" as an empty value, not NULL.
func cramOrEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// SetLimits sets a user's plan (by name; "" keeps it) and own limit overrides.
func (s *Store) SetLimits(ctx context.Context, id int64, plan string, o LimitOverrides) error {
	var planID sql.NullInt64
	if plan != "" {
		p, err := s.PlanByName(ctx, plan)
		if err != nil {
			return fmt.Errorf("set limits of user %d: %w", id, err)
		}
		planID = sql.NullInt64{Int64: p.ID, Valid: true}
	}
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, _ *spine.Change) error {
		if err := s.quotaRoomTx(ctx, tx, id, planID, o.QuotaBytes); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind(`UPDATE users SET plan_id = COALESCE(?, plan_id), quota_bytes = ?, max_recv_size = ?,
			max_send_size = ?, daily_send_bytes = ?, daily_recv_bytes = ?, daily_recv_per_ip = ?, updated_at = ? WHERE id = ?`),
			planID, o.QuotaBytes, o.MaxRecvSize, o.MaxSendSize, o.DailySendBytes, o.DailyRecvBytes, o.DailyRecvPerIP, s.unix(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("set limits of user %d: %w", id, err)
	}
	return nil
}

// quotaRoomTx checks, inside a change of a user's plan or own quota, that
// its domain has room for the quota the change gives it (CheckDomainRoom):
// raising a quota is adding quota.
func (s *Store) quotaRoomTx(ctx context.Context, tx *sqlx.Tx, id int64, planID sql.NullInt64, own *int64) error {
	var cur struct {
		Domain int64         `db:"domain_id"`
		Plan   sql.NullInt64 `db:"plan_id"`
		Own    sql.NullInt64 `db:"quota_bytes"`
	}
	if err := tx.GetContext(ctx, &cur, s.rebind("SELECT domain_id, plan_id, quota_bytes FROM users WHERE id = ?"), id); err != nil {
		return notFound(err)
	}
	var curOwn *int64
	if cur.Own.Valid {
		curOwn = &cur.Own.Int64
	}
	before, err := s.newUserQuotaTx(ctx, tx, curOwn, cur.Plan)
	if err != nil {
		return err
	}
	if !planID.Valid {
		planID = cur.Plan
	}
	after, err := s.newUserQuotaTx(ctx, tx, own, planID)
	if err != nil {
		return err
	}
	switch {
	case after < 0 && before >= 0:
		return s.CheckDomainRoom(ctx, tx, cur.Domain, 0, 0, -1)
	case after > before && before >= 0:
		return s.CheckDomainRoom(ctx, tx, cur.Domain, 0, 0, after-before)
	}
	return nil
}

// Lock locks a user out until the given time (zero time unlocks).
func (s *Store) Lock(ctx context.Context, id int64, until time.Time, reason string) error {
	var u int64
	if !until.IsZero() {
		u = until.Unix()
	}
	err := s.sp.WriteUser(ctx, id, func(tx *sqlx.Tx, c *spine.Change) error {
		_, err := tx.ExecContext(ctx, s.rebind("UPDATE users SET locked_until = ?, lock_reason = ?, updated_at = ? WHERE id = ?"), u, reason, s.unix(), id)
		c.Add(0, KindUser, 0, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("lock user %d: %w", id, err)
	}
	return nil
}

// AddIdentifier adds a login name for a user (M-Store keeps users separate
// from the names they log in with).
func (s *Store) AddIdentifier(ctx context.Context, id int64, name string) error {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" || strings.ContainsAny(n, " \t\r\n") {
		return fmt.Errorf("add identifier: %w: %q", ErrInvalid, name)
	}
	_, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO identifiers (user_id, name) VALUES (?, ?)"), id, n)
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return fmt.Errorf("add identifier %s: %w", n, err)
	}
	return nil
}

// Identifiers lists a user's login names.
func (s *Store) Identifiers(ctx context.Context, id int64) ([]string, error) {
	var names []string
	if err := s.db.SelectContext(ctx, &names, s.rebind("SELECT name FROM identifiers WHERE user_id = ? ORDER BY name"), id); err != nil {
		return nil, fmt.Errorf("list identifiers: %w", err)
	}
	return names, nil
}

// Limits returns the limits in force for a user.
func (s *Store) Limits(ctx context.Context, u User) (Limits, error) {
	return s.limitsQ(ctx, s.db, u)
}

func (s *Store) limitsQ(ctx context.Context, q sqlx.QueryerContext, u User) (Limits, error) {
	l := s.limits
	if u.PlanID.Valid {
		var p Plan
		if err := sqlx.GetContext(ctx, q, &p, s.rebind("SELECT "+planColumns+" FROM plans WHERE id = ?"), u.PlanID.Int64); err != nil {
			return Limits{}, fmt.Errorf("limits of %s: %w", u.Address, err)
		}
		l = l.overrideWith(p.Limits)
	}
	l = u.Overrides.merge(l)
	// A new account on probation sends no more than its probation allows,
	// however much its plan or its own limits would.
	if u.ProbationSendBytes > 0 && u.ProbationUntil > s.unix() && (l.DailySendBytes == 0 || l.DailySendBytes > u.ProbationSendBytes) {
		l.DailySendBytes = u.ProbationSendBytes
	}
	return l, nil
}

// userTx reads a user and its limits inside a write transaction, after
// writeUser has locked the user's row: what a write checks against must be
// what is true now, not what a cache saw.
func (s *Store) userTx(ctx context.Context, tx *sqlx.Tx, id int64) (User, Limits, error) {
	var u User
	if err := s.db.TxGet(ctx, tx, &u, s.rebind("SELECT "+userColumns+userFrom+"WHERE u.id = ?"), id); err != nil {
		return User{}, Limits{}, fmt.Errorf("user %d: %w", id, notFound(err))
	}
	lim, err := s.limitsQ(ctx, tx, u)
	return u, lim, err
}
