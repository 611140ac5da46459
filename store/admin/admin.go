package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// Store keeps admins, grants, keys, the audit log's listing, idempotency
// records and jobs.
type Store struct {
	st *store.Store
	sp *spine.Spine

	secretsMu sync.Mutex
	secrets   map[string][]byte
}

// New returns the admin records kept by st.
func New(st *store.Store) *Store {
	return &Store{st: st, sp: st.Spine(spine.Lend()), secrets: map[string][]byte{}}
}

// Admin is a person or system that holds API keys.
type Admin struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	CreatedAt int64   `json:"createdAt"`
	Grants    []Grant `json:"grants"`
}

// Grant gives an admin scopes over domains.
type Grant struct {
	ID        int64 `json:"id"`
	AdminID   int64 `json:"adminId"`
	Authority `json:"-"`
	CreatedAt int64 `json:"createdAt"`
}

// Key is an API key (never its secret).
type Key struct {
	ID         int64
	AdminID    int64
	Admin      string
	Prefix     string
	Name       string
	Authority  Authority
	LastUsedAt int64
	RevokedAt  int64
	CreatedBy  int64 // the key that made it; 0 the command line
	CreatedAt  int64
}

type adminRow struct {
	ID        int64  `db:"id"`
	Name      string `db:"name"`
	CreatedAt int64  `db:"created_at"`
}

type grantRow struct {
	ID        int64  `db:"id"`
	AdminID   int64  `db:"admin_id"`
	Scopes    string `db:"scopes"`
	Domains   string `db:"domains"`
	CreatedAt int64  `db:"created_at"`
}

func (g grantRow) grant() Grant {
	return Grant{ID: g.ID, AdminID: g.AdminID, CreatedAt: g.CreatedAt,
		Authority: Authority{Scopes: strings.Fields(g.Scopes), Domains: strings.Fields(g.Domains)}}
}

type keyRow struct {
	ID         int64  `db:"id"`
	AdminID    int64  `db:"admin_id"`
	Admin      string `db:"admin"`
	Prefix     string `db:"prefix"`
	Hash       []byte `db:"secret_hash"`
	Name       string `db:"name"`
	Scopes     string `db:"scopes"`
	Domains    string `db:"domains"`
	Networks   string `db:"networks"`
	ExpiresAt  int64  `db:"expires_at"`
	LastUsedAt int64  `db:"last_used_at"`
	RevokedAt  int64  `db:"revoked_at"`
	CreatedBy  int64  `db:"created_by_key"`
	CreatedAt  int64  `db:"created_at"`
}

const keyColumns = `k.id, k.admin_id, a.name AS admin, k.prefix, k.secret_hash, k.name, k.scopes, k.domains, k.networks,
	k.expires_at, k.last_used_at, k.revoked_at, k.created_by_key, k.created_at`

const keyFrom = " FROM api_keys k JOIN admins a ON a.id = k.admin_id "

func (r keyRow) key() Key {
	nets, _ := ParseNetworks(strings.Fields(r.Networks))
	return Key{ID: r.ID, AdminID: r.AdminID, Admin: r.Admin, Prefix: r.Prefix, Name: r.Name,
		Authority:  Authority{Scopes: strings.Fields(r.Scopes), Domains: strings.Fields(r.Domains), Networks: nets, Expires: r.ExpiresAt},
		LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}
}

// CheckName validates an admin's name.
func CheckName(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, " \t\r\n/") {
		return fmt.Errorf("%w: admin name %q: 1 to 128 characters, no spaces or slashes", store.ErrInvalid, name)
	}
	return nil
}

// CreateAdmin adds an admin with no grants. by is the acting principal
// (nil: the command line); an admin with no grants can do nothing, so
// making one widens nothing, but the actor must hold admins:write.
func (s *Store) CreateAdmin(ctx context.Context, by *Principal, name string) (Admin, error) {
	if by != nil && !by.Allows("admins:write") {
		return Admin{}, fmt.Errorf("create admin: %w: admins:write over every domain is needed", ErrForbidden)
	}
	if err := CheckName(name); err != nil {
		return Admin{}, err
	}
	now := s.sp.Unix()
	a := Admin{Name: name, CreatedAt: now, Grants: []Grant{}}
	err := s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.sp.Rebind("INSERT INTO admins (name, created_at, updated_at) VALUES (?, ?, ?)"), name, now, now)
		if err != nil {
			return err
		}
		if a.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "admin.create", Target: "admin:" + name, After: a})
	})
	if sqldb.IsDuplicate(err) {
		err = store.ErrExists
	}
	if err != nil {
		return Admin{}, fmt.Errorf("create admin %s: %w", name, err)
	}
	return a, nil
}

// AdminByName returns an admin with its grants.
func (s *Store) AdminByName(ctx context.Context, name string) (Admin, error) {
	return s.admin(ctx, "name = ?", name)
}

// AdminByID returns an admin with its grants.
func (s *Store) AdminByID(ctx context.Context, id int64) (Admin, error) {
	return s.admin(ctx, "id = ?", id)
}

func (s *Store) admin(ctx context.Context, where string, arg any) (Admin, error) {
	var r adminRow
	if err := s.sp.DB.GetContext(ctx, &r, s.sp.Rebind("SELECT id, name, created_at FROM admins WHERE "+where), arg); err != nil {
		return Admin{}, fmt.Errorf("admin %v: %w", arg, spine.NotFound(err))
	}
	gs, err := s.grants(ctx, s.sp.DB, r.ID)
	if err != nil {
		return Admin{}, err
	}
	return Admin{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, Grants: gs}, nil
}

func (s *Store) grants(ctx context.Context, q sqlx.QueryerContext, adminID int64) ([]Grant, error) {
	var rows []grantRow
	if err := sqlx.SelectContext(ctx, q, &rows, s.sp.Rebind("SELECT id, admin_id, scopes, domains, created_at FROM admin_grants WHERE admin_id = ? ORDER BY id"), adminID); err != nil {
		return nil, fmt.Errorf("grants of admin %d: %w", adminID, err)
	}
	gs := make([]Grant, 0, len(rows))
	for _, r := range rows {
		gs = append(gs, r.grant())
	}
	return gs, nil
}

// Admins lists admins by id after the given one (keyset paging).
func (s *Store) Admins(ctx context.Context, after int64, limit int) ([]Admin, error) {
	var rows []adminRow
	if err := s.sp.DB.SelectContext(ctx, &rows, s.sp.Rebind("SELECT id, name, created_at FROM admins WHERE id > ? ORDER BY id LIMIT "+strconv.Itoa(limit)), after); err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	out := make([]Admin, 0, len(rows))
	for _, r := range rows {
		gs, err := s.grants(ctx, s.sp.DB, r.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Admin{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, Grants: gs})
	}
	return out, nil
}

// DeleteAdmin removes an admin with its grants and keys. The actor must
// cover every grant the admin holds: removing someone wider than oneself
// is as much a widening as making them.
func (s *Store) DeleteAdmin(ctx context.Context, by *Principal, id int64) error {
	a, err := s.AdminByID(ctx, id)
	if err != nil {
		return err
	}
	if by != nil {
		if !by.Allows("admins:write") {
			return fmt.Errorf("delete admin: %w: admins:write over every domain is needed", ErrForbidden)
		}
		for _, g := range a.Grants {
			if err := by.CoversReach(g.Authority); err != nil {
				return fmt.Errorf("delete admin %s: %w", a.Name, err)
			}
		}
	}
	err = s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{"DELETE FROM api_keys WHERE admin_id = ?", "DELETE FROM admin_grants WHERE admin_id = ?", "DELETE FROM admins WHERE id = ?"} {
			if _, err := tx.ExecContext(ctx, s.sp.Rebind(q), id); err != nil {
				return err
			}
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "admin.delete", Target: "admin:" + a.Name, Before: a})
	})
	if err != nil {
		return fmt.Errorf("delete admin %s: %w", a.Name, err)
	}
	return nil
}

// AddGrant gives an admin scopes over domains; by (nil: the command line)
// must cover it.
func (s *Store) AddGrant(ctx context.Context, by *Principal, adminID int64, a Authority) (Grant, error) {
	a.Networks, a.Expires = nil, 0
	if err := a.Check(); err != nil {
		return Grant{}, fmt.Errorf("add grant: %w: %v", store.ErrInvalid, err)
	}
	if by != nil {
		if !by.Allows("admins:write", a.Domains...) {
			return Grant{}, fmt.Errorf("add grant: %w: admins:write is needed over its domains", ErrForbidden)
		}
		if err := by.Covers(a); err != nil {
			return Grant{}, fmt.Errorf("add grant: %w", err)
		}
	}
	g := Grant{AdminID: adminID, Authority: a, CreatedAt: s.sp.Unix()}
	err := s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		var name string
		if err := tx.GetContext(ctx, &name, s.sp.Rebind("SELECT name FROM admins WHERE id = ?"+s.sp.DB.ForUpdate()), adminID); err != nil {
			return spine.NotFound(err)
		}
		res, err := tx.ExecContext(ctx, s.sp.Rebind("INSERT INTO admin_grants (admin_id, scopes, domains, created_at) VALUES (?, ?, ?, ?)"),
			adminID, strings.Join(a.Scopes, " "), strings.Join(a.Domains, " "), g.CreatedAt)
		if err != nil {
			return err
		}
		if g.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "grant.create", Target: "admin:" + name, Domain: oneDomain(a.Domains),
			After: GrantView(g)})
	})
	if err != nil {
		return Grant{}, fmt.Errorf("add grant to admin %d: %w", adminID, err)
	}
	return g, nil
}

// RevokeGrant removes a grant; by must cover it.
func (s *Store) RevokeGrant(ctx context.Context, by *Principal, adminID, grantID int64) error {
	err := s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		var r grantRow
		if err := tx.GetContext(ctx, &r, s.sp.Rebind("SELECT id, admin_id, scopes, domains, created_at FROM admin_grants WHERE id = ? AND admin_id = ?"), grantID, adminID); err != nil {
			return spine.NotFound(err)
		}
		g := r.grant()
		if by != nil {
			if !by.Allows("admins:write", g.Domains...) {
				return fmt.Errorf("%w: admins:write is needed over its domains", ErrForbidden)
			}
			if err := by.CoversReach(g.Authority); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.sp.Rebind("DELETE FROM admin_grants WHERE id = ?"), grantID); err != nil {
			return err
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "grant.delete", Target: "admin:" + strconv.FormatInt(adminID, 10),
			Domain: oneDomain(g.Domains), Before: GrantView(g)})
	})
	if err != nil {
		return fmt.Errorf("revoke grant %d: %w", grantID, err)
	}
	return nil
}

// GrantView is a grant as the API and the audit log show it.
func GrantView(g Grant) map[string]any {
	ds := g.Domains
	if ds == nil {
		ds = []string{}
	}
	return map[string]any{"id": g.ID, "adminId": g.AdminID, "scopes": g.Scopes, "domains": ds, "createdAt": g.CreatedAt}
}

// oneDomain is the domain an audit record is filed under: the one a
// change names, or none.
func oneDomain(ds []string) string {
	if len(ds) == 1 {
		return ds[0]
	}
	return ""
}

// NewKey describes a key to create.
type NewKey struct {
	AdminID   int64
	Name      string
	Authority Authority
}

// keyPrefix is what every key's text starts with, so a leaked key is
// recognisable (and secret scanners can be taught it).
const keyPrefix = "bsk_"

// CreateKey makes a key for an admin and returns it with its secret,
// which is not kept and cannot be shown again. The key must fit the
// admin's grants, and by (the acting principal; nil: the command line)
// must cover it: no key makes a key wider than itself.
func (s *Store) CreateKey(ctx context.Context, by *Principal, nk NewKey) (Key, string, error) {
	if err := nk.Authority.Check(); err != nil {
		return Key{}, "", fmt.Errorf("create key: %w: %v", store.ErrInvalid, err)
	}
	if len(nk.Name) > 128 {
		return Key{}, "", fmt.Errorf("create key: %w: name longer than 128 characters", store.ErrInvalid)
	}
	if nk.Authority.Expires != 0 && nk.Authority.Expires <= s.sp.Unix() {
		return Key{}, "", fmt.Errorf("create key: %w: expiry in the past", store.ErrInvalid)
	}
	if by != nil {
		if !by.Allows("keys:write", nk.Authority.Domains...) {
			return Key{}, "", fmt.Errorf("create key: %w: keys:write is needed over its domains", ErrForbidden)
		}
		if err := by.Covers(nk.Authority); err != nil {
			return Key{}, "", fmt.Errorf("create key: %w", err)
		}
		// A key for another admin acts, and is audited, as that admin,
		// and stays when the acting admin's grants are withdrawn or the
		// admin deleted: it is a delegation, as a grant is, and needs
		// what a grant over its domains needs.
		if nk.AdminID != by.Admin.ID && !by.Allows("admins:write", nk.Authority.Domains...) {
			return Key{}, "", fmt.Errorf("create key: %w: a key for another admin needs admins:write over its domains", ErrForbidden)
		}
	}
	owner, err := s.AdminByID(ctx, nk.AdminID)
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	// The key must be something its admin may do: a key beyond its
	// admin's grants would be refused on every request anyway.
	ownerP := &Principal{Key: Key{Authority: Authority{Scopes: []string{"*"}}}, Admin: owner, Grants: owner.Grants}
	if err := ownerP.Covers(Authority{Scopes: nk.Authority.Scopes, Domains: nk.Authority.Domains}); err != nil {
		return Key{}, "", fmt.Errorf("create key: %w: beyond admin %s's grants: %v", store.ErrInvalid, owner.Name, err)
	}
	var idb [6]byte
	var sec [32]byte
	rand.Read(idb[:])
	rand.Read(sec[:])
	prefix := hex.EncodeToString(idb[:])
	secret := keyPrefix + prefix + "_" + base64.RawURLEncoding.EncodeToString(sec[:])
	sum := sha256.Sum256([]byte(secret))
	k := Key{AdminID: owner.ID, Admin: owner.Name, Prefix: prefix, Name: nk.Name, Authority: nk.Authority, CreatedAt: s.sp.Unix()}
	if by != nil {
		k.CreatedBy = by.Key.ID
	}
	nets := make([]string, 0, len(nk.Authority.Networks))
	for _, n := range nk.Authority.Networks {
		nets = append(nets, n.String())
	}
	err = s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.sp.Rebind(`INSERT INTO api_keys (admin_id, prefix, secret_hash, name, scopes, domains, networks,
			expires_at, created_by_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			k.AdminID, prefix, sum[:], k.Name, strings.Join(nk.Authority.Scopes, " "), strings.Join(nk.Authority.Domains, " "),
			strings.Join(nets, " "), nk.Authority.Expires, k.CreatedBy, k.CreatedAt)
		if err != nil {
			return err
		}
		if k.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "key.create", Target: "key:" + strconv.FormatInt(k.ID, 10),
			Domain: oneDomain(k.Authority.Domains), After: KeyView(k)})
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, secret, nil
}

// KeyView is a key as the API and the audit log show it (no secret, no
// hash).
func KeyView(k Key) map[string]any {
	nets := make([]string, 0, len(k.Authority.Networks))
	for _, n := range k.Authority.Networks {
		nets = append(nets, n.String())
	}
	ds := k.Authority.Domains
	if ds == nil {
		ds = []string{}
	}
	return map[string]any{"id": k.ID, "adminId": k.AdminID, "admin": k.Admin, "prefix": k.Prefix, "name": k.Name,
		"scopes": k.Authority.Scopes, "domains": ds, "networks": nets, "expiresAt": k.Authority.Expires,
		"lastUsedAt": k.LastUsedAt, "revokedAt": k.RevokedAt, "createdBy": k.CreatedBy, "createdAt": k.CreatedAt}
}

// KeyByID returns a key.
func (s *Store) KeyByID(ctx context.Context, id int64) (Key, error) {
	var r keyRow
	if err := s.sp.DB.GetContext(ctx, &r, s.sp.Rebind("SELECT "+keyColumns+keyFrom+"WHERE k.id = ?"), id); err != nil {
		return Key{}, fmt.Errorf("key %d: %w", id, spine.NotFound(err))
	}
	return r.key(), nil
}

// Keys lists keys by id after the given one, of one admin when adminID is
// not 0.
func (s *Store) Keys(ctx context.Context, adminID, after int64, limit int) ([]Key, error) {
	q, args := "SELECT "+keyColumns+keyFrom+"WHERE k.id > ?", []any{after}
	if adminID != 0 {
		q, args = q+" AND k.admin_id = ?", append(args, adminID)
	}
	var rows []keyRow
	if err := s.sp.DB.SelectContext(ctx, &rows, s.sp.Rebind(q+" ORDER BY k.id LIMIT "+strconv.Itoa(limit)), args...); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]Key, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.key())
	}
	return out, nil
}

// RevokeKey ends a key; by must cover it (a key can revoke itself).
func (s *Store) RevokeKey(ctx context.Context, by *Principal, id int64) (Key, error) {
	k, err := s.KeyByID(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if by != nil && by.Key.ID != id {
		if !by.Allows("keys:write", k.Authority.Domains...) {
			return Key{}, fmt.Errorf("revoke key %d: %w", id, ErrForbidden)
		}
		if err := by.CoversReach(k.Authority); err != nil {
			return Key{}, fmt.Errorf("revoke key %d: %w", id, err)
		}
	}
	before := KeyView(k)
	if k.RevokedAt == 0 {
		k.RevokedAt = s.sp.Unix()
	}
	err = s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.sp.Rebind("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0"), k.RevokedAt, id); err != nil {
			return err
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "key.revoke", Target: "key:" + strconv.FormatInt(id, 10),
			Domain: oneDomain(k.Authority.Domains), Before: before, After: KeyView(k)})
	})
	if err != nil {
		return Key{}, fmt.Errorf("revoke key %d: %w", id, err)
	}
	return k, nil
}

// lastUsedEvery bounds how often a key's last use is written: once a
// minute is as precise as anyone reads it, and a write per request would
// double the API's database writes.
const lastUsedEvery = 60

// Authenticate finds the key whose secret this is and returns the
// principal it acts as, checking revocation, expiry and the client's
// network. Every failure but the network is ErrUnauthorized, so a caller
// learns nothing about which keys exist.
func (s *Store) Authenticate(ctx context.Context, secret string, client netip.Addr) (*Principal, error) {
	rest, ok := strings.CutPrefix(secret, keyPrefix)
	prefix, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(prefix) != 12 {
		return nil, ErrUnauthorized
	}
	var r keyRow
	if err := s.sp.DB.GetContext(ctx, &r, s.sp.Rebind("SELECT "+keyColumns+keyFrom+"WHERE k.prefix = ?"), prefix); err != nil {
		if spine.NotFound(err) == spine.ErrNotFound {
			return nil, ErrUnauthorized
		}
		return nil, fmt.Errorf("authenticate key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], r.Hash) != 1 {
		return nil, ErrUnauthorized
	}
	k := r.key()
	now := s.sp.Unix()
	if k.RevokedAt != 0 || (k.Authority.Expires != 0 && k.Authority.Expires <= now) {
		return nil, ErrUnauthorized
	}
	if nets := k.Authority.Networks; len(nets) > 0 {
		in := false
		for _, n := range nets {
			if n.Contains(client.Unmap()) {
				in = true
				break
			}
		}
		if !in {
			return nil, fmt.Errorf("%w: the key is not valid from %s", ErrForbidden, client)
		}
	}
	a, err := s.AdminByID(ctx, k.AdminID)
	if err != nil {
		return nil, fmt.Errorf("authenticate key: %w", err)
	}
	if now-k.LastUsedAt >= lastUsedEvery {
		if _, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("UPDATE api_keys SET last_used_at = ? WHERE id = ?"), now, k.ID); err != nil {
			s.sp.Log.Warn("key last used", "key", k.ID, "err", err)
		}
		k.LastUsedAt = now
	}
	return &Principal{Key: k, Admin: a, Grants: a.Grants}, nil
}

// Secret returns the server secret of this name, made on first use and
// shared by every node on the database (the paging cursors' MAC key).
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	if b, ok := s.secrets[name]; ok {
		return b, nil
	}
	var b []byte
	err := s.sp.DB.GetContext(ctx, &b, s.sp.Rebind("SELECT value FROM api_secrets WHERE name = ?"), name)
	if spine.NotFound(err) == spine.ErrNotFound {
		nb := make([]byte, 32)
		rand.Read(nb)
		_, err = s.sp.DB.ExecContext(ctx, s.sp.Rebind("INSERT INTO api_secrets (name, value) VALUES (?, ?)"), name, nb)
		if err != nil && !sqldb.IsDuplicate(err) {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		// Another node may have made it first: read what won.
		err = s.sp.DB.GetContext(ctx, &b, s.sp.Rebind("SELECT value FROM api_secrets WHERE name = ?"), name)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	s.secrets[name] = b
	return b, nil
}
