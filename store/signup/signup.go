package signup

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/cache"
	"basalt/store/internal/spine"
)

// Errors a registration is refused with.
var (
	// ErrBanned: the client's network is banned from registering.
	ErrBanned = errors.New("registration from this network is not allowed")
	// ErrTooMany: the client's network registered its day's share.
	ErrTooMany = errors.New("too many registrations from this network today")
	// ErrInvite: the invite code is missing, unknown, used up or expired.
	ErrInvite = errors.New("invite code not valid")
	// ErrRateLimited: too many requests of a kind (making captchas).
	ErrRateLimited = errors.New("too many requests; try again later")
)

// PendingReason is the lock reason of an account waiting for an
// administrator's approval; the login refusal shows it to the user.
const PendingReason = "waiting for an administrator's approval"

// pendingUntil locks a pending account until it is approved: the last
// second of year 9999, past anything a lock is otherwise set to.
const pendingUntil = 253402300799

// Signup is the registration guard of one store.
type Signup struct {
	st *store.Store
	sp *spine.Spine
}

// New returns the registration guard kept by st.
func New(st *store.Store) *Signup { return &Signup{st: st, sp: st.Spine(spine.Lend())} }

// Networks returns the networks registrations are counted by: an IPv4
// address's /24 twice, an IPv6 address's /64 and /48 (one host usually
// has a /64, one site a /48).
func Networks(ip netip.Addr) (network, wide netip.Prefix) {
	ip = ip.Unmap()
	if ip.Is4() {
		p := netip.PrefixFrom(ip, 24).Masked()
		return p, p
	}
	return netip.PrefixFrom(ip, 64).Masked(), netip.PrefixFrom(ip, 48).Masked()
}

// Canonical is network as clients are matched against it: an
// IPv4-mapped IPv6 network (::ffff:192.0.2.0/120) is the IPv4 network it
// maps (192.0.2.0/24), since client addresses are unmapped before they
// are matched (RFC 4291 2.5.5.2); and its host bits are cleared.
func Canonical(network netip.Prefix) netip.Prefix {
	if a := network.Addr(); a.Is4In6() && network.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), network.Bits()-96).Masked()
	}
	return network.Masked()
}

// Ban is a network banned from registering.
type Ban struct {
	ID      int64  `db:"id" json:"id"`
	Network string `db:"network" json:"network"` // CIDR, canonical
	Reason  string `db:"reason" json:"reason"`
	Created int64  `db:"created_at" json:"createdAt"`
	Expires int64  `db:"expires_at" json:"expiresAt"` // 0: never
}

// Ban bans network from registering until expires (zero: for good). A
// network banned already gets the new reason and expiry.
func (s *Signup) Ban(ctx context.Context, network netip.Prefix, reason string, expires time.Time) (Ban, error) {
	if !network.IsValid() {
		return Ban{}, fmt.Errorf("ban network: %w: not a network", store.ErrInvalid)
	}
	n := Canonical(network).String()
	var exp int64
	if !expires.IsZero() {
		exp = expires.Unix()
	}
	now := s.sp.Unix()
	reason = spine.Clip(reason)
	err := s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.sp.Rebind("UPDATE signup_bans SET reason = ?, expires_at = ? WHERE network = ?"), reason, exp, n)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.sp.Rebind("INSERT INTO signup_bans (network, reason, created_at, expires_at) VALUES (?, ?, ?, ?)"), n, reason, now, exp)
		return err
	})
	if err != nil {
		return Ban{}, fmt.Errorf("ban network %s: %w", n, err)
	}
	var b Ban
	if err := s.sp.DB.GetContext(ctx, &b, s.sp.Rebind("SELECT id, network, reason, created_at, expires_at FROM signup_bans WHERE network = ?"), n); err != nil {
		return Ban{}, fmt.Errorf("ban network %s: %w", n, err)
	}
	return b, nil
}

// Bans lists the bans in force, by network.
func (s *Signup) Bans(ctx context.Context) ([]Ban, error) {
	var bs []Ban
	err := s.sp.DB.SelectContext(ctx, &bs, s.sp.Rebind(`SELECT id, network, reason, created_at, expires_at FROM signup_bans
		WHERE expires_at = 0 OR expires_at > ? ORDER BY network`), s.sp.Unix())
	if err != nil {
		return nil, fmt.Errorf("list banned networks: %w", err)
	}
	return bs, nil
}

// Unban lifts ban id.
func (s *Signup) Unban(ctx context.Context, id int64) error {
	res, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("DELETE FROM signup_bans WHERE id = ?"), id)
	if err != nil {
		return fmt.Errorf("unban %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("unban %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// BansAfter lists up to limit bans in force whose network sorts after
// after, by network: a page of Bans on the network's unique index (the
// admin API's keyset).
func (s *Signup) BansAfter(ctx context.Context, after string, limit int) ([]Ban, error) {
	var bs []Ban
	err := s.sp.DB.SelectContext(ctx, &bs, s.sp.Rebind(`SELECT id, network, reason, created_at, expires_at FROM signup_bans
		WHERE network > ? AND (expires_at = 0 OR expires_at > ?) ORDER BY network LIMIT ?`), after, s.sp.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("list banned networks: %w", err)
	}
	return bs, nil
}

// BanByID returns ban id, expired or not (store.ErrNotFound: none).
func (s *Signup) BanByID(ctx context.Context, id int64) (Ban, error) {
	var b Ban
	err := s.sp.DB.GetContext(ctx, &b, s.sp.Rebind("SELECT id, network, reason, created_at, expires_at FROM signup_bans WHERE id = ?"), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, fmt.Errorf("ban %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Ban{}, fmt.Errorf("ban %d: %w", id, err)
	}
	return b, nil
}

// BanOn returns the ban row of network (canonical), expired or not;
// false when there is none: what Ban would replace.
func (s *Signup) BanOn(ctx context.Context, network netip.Prefix) (Ban, bool, error) {
	var b Ban
	err := s.sp.DB.GetContext(ctx, &b, s.sp.Rebind("SELECT id, network, reason, created_at, expires_at FROM signup_bans WHERE network = ?"), Canonical(network).String())
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, false, nil
	}
	if err != nil {
		return Ban{}, false, fmt.Errorf("ban on %s: %w", network, err)
	}
	return b, true, nil
}

// Banned returns the ban in force that covers ip, if any. Bans are few
// (an operator's list), so they are matched here rather than in SQL,
// which has no portable CIDR type.
func (s *Signup) Banned(ctx context.Context, ip netip.Addr) (Ban, bool, error) {
	bs, err := s.Bans(ctx)
	if err != nil {
		return Ban{}, false, err
	}
	ip = ip.Unmap()
	for _, b := range bs {
		if p, err := netip.ParsePrefix(b.Network); err == nil && Canonical(p).Contains(ip) {
			return b, true, nil
		}
	}
	return Ban{}, false, nil
}

// Limit is how many registrations a network may make a day: PerNetwork
// from its network (IPv4 /24, IPv6 /64), PerWide from its wider one
// (IPv6 /48; for IPv4 the same /24). 0: no limit.
type Limit struct {
	PerNetwork int
	PerWide    int
}

// CheckNetwork refuses ip when its network is banned (ErrBanned) or made
// its day's registrations (ErrTooMany): what the registration checks
// before it asks anything of the user, and again as it creates the user.
func (s *Signup) CheckNetwork(ctx context.Context, ip netip.Addr, lim Limit) error {
	if _, banned, err := s.Banned(ctx, ip); err != nil {
		return err
	} else if banned {
		return ErrBanned
	}
	return s.checkCount(ctx, s.sp.DB, ip, lim)
}

func (s *Signup) checkCount(ctx context.Context, q sqlx.QueryerContext, ip netip.Addr, lim Limit) error {
	network, wide := Networks(ip)
	since := s.sp.Unix() - 86400
	for _, c := range []struct {
		column, value string
		limit         int
	}{{"network", network.String(), lim.PerNetwork}, {"wide", wide.String(), lim.PerWide}} {
		if c.limit <= 0 {
			continue
		}
		var n int
		if err := sqlx.GetContext(ctx, q, &n, s.sp.Rebind("SELECT COUNT(*) FROM signup_registrations WHERE "+c.column+" = ? AND created_at > ?"), c.value, since); err != nil {
			return fmt.Errorf("count registrations: %w", err)
		}
		if n >= c.limit {
			return ErrTooMany
		}
	}
	return nil
}

// Registration returns what store.UserOptions.InTx runs as the user is
// created: it checks ip's network against lim once more (two
// registrations racing), records the registration, and spends one use of
// the invite code when there is one. Any refusal (ErrTooMany, ErrInvite)
// undoes the user's creation.
func (s *Signup) Registration(ip netip.Addr, lim Limit, invite string) func(ctx context.Context, tx *sqlx.Tx, userID int64) error {
	return func(ctx context.Context, tx *sqlx.Tx, userID int64) error {
		if err := s.checkCount(ctx, tx, ip, lim); err != nil {
			return err
		}
		network, wide := Networks(ip)
		if _, err := tx.ExecContext(ctx, s.sp.Rebind("INSERT INTO signup_registrations (user_id, network, wide, created_at) VALUES (?, ?, ?, ?)"),
			userID, network.String(), wide.String(), s.sp.Unix()); err != nil {
			return fmt.Errorf("record registration: %w", err)
		}
		if invite == "" {
			return nil
		}
		res, err := tx.ExecContext(ctx, s.sp.Rebind(`UPDATE signup_invites SET uses_left = uses_left - 1
			WHERE code = ? AND uses_left > 0 AND (expires_at = 0 OR expires_at > ?)`), normalizeCode(invite), s.sp.Unix())
		if err != nil {
			return fmt.Errorf("spend invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrInvite
		}
		return nil
	}
}

// Invite is an invite code.
type Invite struct {
	Code     string `db:"code" json:"code"`
	UsesLeft int    `db:"uses_left" json:"usesLeft"`
	Note     string `db:"note" json:"note"`
	Created  int64  `db:"created_at" json:"createdAt"`
	Expires  int64  `db:"expires_at" json:"expiresAt"` // 0: never
}

// codeEncoding spells invite codes without letters people confuse in
// print (no padding; upper case; compared without case).
var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func normalizeCode(c string) string { return strings.ToUpper(strings.TrimSpace(c)) }

// CreateInvite makes a new invite code good for uses registrations (1:
// single use) until expires (zero: no expiry).
func (s *Signup) CreateInvite(ctx context.Context, uses int, note string, expires time.Time) (Invite, error) {
	if uses < 1 {
		return Invite{}, fmt.Errorf("create invite: %w: uses must be at least 1", store.ErrInvalid)
	}
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return Invite{}, fmt.Errorf("create invite: %w", err)
	}
	inv := Invite{Code: codeEncoding.EncodeToString(b), UsesLeft: uses, Note: spine.Clip(note), Created: s.sp.Unix()}
	if !expires.IsZero() {
		inv.Expires = expires.Unix()
	}
	if _, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("INSERT INTO signup_invites (code, uses_left, note, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"),
		inv.Code, inv.UsesLeft, inv.Note, inv.Created, inv.Expires); err != nil {
		return Invite{}, fmt.Errorf("create invite: %w", err)
	}
	return inv, nil
}

// Invites lists the invite codes that can still be used.
func (s *Signup) Invites(ctx context.Context) ([]Invite, error) {
	var is []Invite
	err := s.sp.DB.SelectContext(ctx, &is, s.sp.Rebind(`SELECT code, uses_left, note, created_at, expires_at FROM signup_invites
		WHERE uses_left > 0 AND (expires_at = 0 OR expires_at > ?) ORDER BY created_at, code`), s.sp.Unix())
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return is, nil
}

// InvitesAfter lists up to limit usable invite codes that sort after
// after, by code: a page of Invites on the primary key.
func (s *Signup) InvitesAfter(ctx context.Context, after string, limit int) ([]Invite, error) {
	var is []Invite
	err := s.sp.DB.SelectContext(ctx, &is, s.sp.Rebind(`SELECT code, uses_left, note, created_at, expires_at FROM signup_invites
		WHERE code > ? AND uses_left > 0 AND (expires_at = 0 OR expires_at > ?) ORDER BY code LIMIT ?`), after, s.sp.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return is, nil
}

// InviteByCode returns an invite code's row, usable or not
// (store.ErrNotFound: none).
func (s *Signup) InviteByCode(ctx context.Context, code string) (Invite, error) {
	var inv Invite
	err := s.sp.DB.GetContext(ctx, &inv, s.sp.Rebind("SELECT code, uses_left, note, created_at, expires_at FROM signup_invites WHERE code = ?"), normalizeCode(code))
	if errors.Is(err, sql.ErrNoRows) {
		return Invite{}, fmt.Errorf("invite: %w", store.ErrNotFound)
	}
	if err != nil {
		return Invite{}, fmt.Errorf("invite: %w", err)
	}
	return inv, nil
}

// DeleteInvite withdraws an invite code.
func (s *Signup) DeleteInvite(ctx context.Context, code string) error {
	res, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("DELETE FROM signup_invites WHERE code = ?"), normalizeCode(code))
	if err != nil {
		return fmt.Errorf("delete invite: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete invite: %w", store.ErrNotFound)
	}
	return nil
}

// CheckInvite returns ErrInvite unless code can be used now. It is the
// early check; Registration spends the use.
func (s *Signup) CheckInvite(ctx context.Context, code string) error {
	if strings.TrimSpace(code) == "" {
		return ErrInvite
	}
	var n int
	err := s.sp.DB.GetContext(ctx, &n, s.sp.Rebind(`SELECT COUNT(*) FROM signup_invites
		WHERE code = ? AND uses_left > 0 AND (expires_at = 0 OR expires_at > ?)`), normalizeCode(code), s.sp.Unix())
	if err != nil {
		return fmt.Errorf("check invite: %w", err)
	}
	if n == 0 {
		return ErrInvite
	}
	return nil
}

// PendingLock returns what store.UserOptions locks an account with until
// an administrator approves it.
func PendingLock() (until int64, reason string) { return pendingUntil, PendingReason }

// Pending lists the accounts waiting for approval, oldest first.
func (s *Signup) Pending(ctx context.Context) ([]store.User, error) {
	var ids []int64
	err := s.sp.DB.SelectContext(ctx, &ids, s.sp.Rebind("SELECT id FROM users WHERE lock_reason = ? AND locked_until = ? ORDER BY id"), PendingReason, pendingUntil)
	if err != nil {
		return nil, fmt.Errorf("list pending accounts: %w", err)
	}
	return s.users(ctx, ids)
}

// users loads the users ids, skipping those deleted meanwhile.
func (s *Signup) users(ctx context.Context, ids []int64) ([]store.User, error) {
	us := make([]store.User, 0, len(ids))
	for _, id := range ids {
		u, err := s.st.UserByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list pending accounts: %w", err)
		}
		us = append(us, u)
	}
	return us, nil
}

// PendingAfter lists up to limit accounts waiting for approval whose id
// is above after, oldest first; domains, when not empty, keeps only
// those of these domains (a domain-limited administrator's).
func (s *Signup) PendingAfter(ctx context.Context, after int64, domains []string, limit int) ([]store.User, error) {
	q := `SELECT u.id FROM users u JOIN domains d ON d.id = u.domain_id
		WHERE u.lock_reason = ? AND u.locked_until = ? AND u.id > ?`
	args := []any{PendingReason, pendingUntil, after}
	if len(domains) > 0 {
		q += " AND d.name IN (?" + strings.Repeat(", ?", len(domains)-1) + ")"
		for _, d := range domains {
			args = append(args, d)
		}
	}
	q += " ORDER BY u.id LIMIT ?"
	args = append(args, limit)
	var ids []int64
	if err := s.sp.DB.SelectContext(ctx, &ids, s.sp.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("list pending accounts: %w", err)
	}
	return s.users(ctx, ids)
}

// Approve lets a pending account log in. An account not pending (never,
// or approved already, or locked for another reason) is store.ErrNotFound.
func (s *Signup) Approve(ctx context.Context, userID int64) error {
	u, err := s.st.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("approve user %d: %w", userID, err)
	}
	if u.LockReason != PendingReason || u.LockedUntil != pendingUntil {
		return fmt.Errorf("approve user %d: %w: not waiting for approval", userID, store.ErrNotFound)
	}
	return s.st.Lock(ctx, userID, time.Time{}, "")
}

// Cache keys; the cache's own prefix is put before them.
func captchaKey(id string) string      { return "signup:captcha:" + id }
func captchaTakenKey(id string) string { return "signup:captcha-taken:" + id }
func stateKey(token string) string     { return "signup:state:" + token }

// PutCaptcha keeps a captcha's answer under id for ttl.
func (s *Signup) PutCaptcha(ctx context.Context, id string, digits []byte, ttl time.Duration) error {
	if err := s.sp.Cache.Set(ctx, captchaKey(id), cache.Entry{Value: digits}, ttl); err != nil {
		return fmt.Errorf("keep captcha: %w", err)
	}
	return nil
}

// Captcha returns a captcha's answer to draw it (image or audio) without
// using it up; false when there is no such captcha or it was answered.
func (s *Signup) Captcha(ctx context.Context, id string) ([]byte, bool, error) {
	e, ok, err := s.sp.Cache.Get(ctx, captchaKey(id))
	if err != nil {
		return nil, false, fmt.Errorf("load captcha: %w", err)
	}
	return e.Value, ok, nil
}

// TakeCaptcha returns a captcha's answer and uses the captcha up: only
// the first take of an id, across every node sharing the cache, gets it,
// so one captcha is good for one answer, right or wrong.
func (s *Signup) TakeCaptcha(ctx context.Context, id string, ttl time.Duration) ([]byte, bool, error) {
	// An id never made (or used up and gone) is refused before anything
	// is written: else every guessed id a form sent would leave a counter
	// in the cache, at no cost to the sender.
	digits, ok, err := s.Captcha(ctx, id)
	if err != nil || !ok {
		return nil, false, err
	}
	// The counter decides who takes it: Incr is atomic in Redis and in
	// the in-process cache, where a Get then Delete is not.
	n, err := s.sp.Cache.Incr(ctx, captchaTakenKey(id), 1, ttl)
	if err != nil {
		return nil, false, fmt.Errorf("take captcha: %w", err)
	}
	if err := s.sp.Cache.Delete(ctx, captchaKey(id)); err != nil {
		return nil, false, fmt.Errorf("take captcha: %w", err)
	}
	if n != 1 || !ok {
		return nil, false, nil
	}
	return digits, true, nil
}

// Admit counts one request of kind from key (a network, say) against
// limit per window, in fixed windows counted across nodes; over it,
// ErrRateLimited. limit <= 0: no limit.
func (s *Signup) Admit(ctx context.Context, kind, key string, limit int64, window time.Duration) error {
	if limit <= 0 || window <= 0 {
		return nil
	}
	slot := s.sp.Now().UnixNano() / int64(window)
	n, err := s.sp.Cache.Incr(ctx, "signup:rate:"+kind+":"+key+":"+strconv.FormatInt(slot, 10), 1, 2*window)
	if err != nil {
		return fmt.Errorf("count %s: %w", kind, err)
	}
	if n > limit {
		return ErrRateLimited
	}
	return nil
}

// KeepState keeps a registration's state (the steps' answers so far)
// under token for ttl.
func (s *Signup) KeepState(ctx context.Context, token string, v []byte, ttl time.Duration) error {
	if err := s.sp.Cache.Set(ctx, stateKey(token), cache.Entry{Value: v}, ttl); err != nil {
		return fmt.Errorf("keep registration state: %w", err)
	}
	return nil
}

// State returns the registration state kept under token.
func (s *Signup) State(ctx context.Context, token string) ([]byte, bool, error) {
	e, ok, err := s.sp.Cache.Get(ctx, stateKey(token))
	if err != nil {
		return nil, false, fmt.Errorf("load registration state: %w", err)
	}
	return e.Value, ok, nil
}

// DropState forgets a registration's state (it is done).
func (s *Signup) DropState(ctx context.Context, token string) error {
	if err := s.sp.Cache.Delete(ctx, stateKey(token)); err != nil {
		return fmt.Errorf("drop registration state: %w", err)
	}
	return nil
}
