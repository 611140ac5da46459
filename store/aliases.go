package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store/sqldb"
)

// Alias maps an address, or a pattern of addresses with * (any run of
// characters) and ? (one character), to a target address, local or not.
// "*@example.org" is the domain's catch-all.
type Alias struct {
	ID        int64  `db:"id" json:"id"`
	Pattern   string `db:"pattern" json:"pattern"`
	Target    string `db:"target" json:"target"`
	IsPattern bool   `db:"is_pattern" json:"isPattern"`
}

// AddAlias adds pattern -> target. The pattern's domain must be local and
// literal; several targets per pattern make a list.
func (s *Store) AddAlias(ctx context.Context, pattern, target string) (Alias, error) {
	p, err := NormalizeAliasPattern(pattern)
	if err != nil {
		return Alias{}, fmt.Errorf("add alias: %w", err)
	}
	local, domain, _ := strings.Cut(p, "@")
	t, err := NormalizeAddress(target)
	if err != nil {
		return Alias{}, fmt.Errorf("add alias %s: target: %w", p, err)
	}
	d, err := s.DomainByName(ctx, domain)
	if err != nil {
		return Alias{}, fmt.Errorf("add alias %s: %w", p, err)
	}
	if d.Name != domain {
		return Alias{}, fmt.Errorf("add alias %s: %w: %s is an alias of %s; use that domain", p, ErrInvalid, domain, d.Name)
	}
	a := Alias{Pattern: p, Target: t, IsPattern: strings.ContainsAny(local, "*?")}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		if err := s.CheckDomainRoom(ctx, tx, d.ID, 0, 1, 0); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.rebind("INSERT INTO aliases (domain_id, pattern, target, is_pattern, created_at) VALUES (?, ?, ?, ?, ?)"),
			d.ID, a.Pattern, a.Target, a.IsPattern, s.unix())
		if err != nil {
			return err
		}
		a.ID, err = res.LastInsertId()
		return err
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return Alias{}, fmt.Errorf("add alias %s: %w", p, err)
	}
	s.audit(ctx, "", "alias.add", p, t)
	return a, nil
}

// DeleteAliasIf removes every target of pattern under a precondition:
// check is given the alias as it is inside the transaction, and its error
// refuses the delete (the API's If-Match).
func (s *Store) DeleteAliasIf(ctx context.Context, pattern string, check func(AliasGroup) error) error {
	p := strings.ToLower(strings.TrimSpace(pattern))
	var before []string
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		before = nil
		if err := tx.SelectContext(ctx, &before, s.rebind("SELECT target FROM aliases WHERE pattern = ? ORDER BY target"+s.db.ForUpdate()), p); err != nil {
			return err
		}
		if len(before) == 0 {
			return ErrNotFound
		}
		if err := check(aliasGroup(p, before)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.rebind("DELETE FROM aliases WHERE pattern = ?"), p)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete alias %s: %w", p, err)
	}
	s.Audit(ctx, AuditEntry{Action: "alias.delete", Target: p, Domain: domainOfAddr(p), Before: map[string]any{"targets": before}})
	return nil
}

// DeleteAlias removes pattern -> target, or every target of pattern when
// target is empty.
func (s *Store) DeleteAlias(ctx context.Context, pattern, target string) error {
	p := strings.ToLower(strings.TrimSpace(pattern))
	q, args := "DELETE FROM aliases WHERE pattern = ?", []any{p}
	if target != "" {
		q, args = q+" AND target = ?", append(args, strings.ToLower(strings.TrimSpace(target)))
	}
	res, err := s.db.ExecContext(ctx, s.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("delete alias %s: %w", p, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete alias %s: %w", p, ErrNotFound)
	}
	s.audit(ctx, "", "alias.delete", p, target)
	return nil
}

// Aliases lists the aliases of a domain, or of every domain when domain is "".
func (s *Store) Aliases(ctx context.Context, domain string) ([]Alias, error) {
	q, args := "SELECT id, pattern, target, is_pattern FROM aliases", []any{}
	if domain != "" {
		d, err := s.DomainByName(ctx, domain)
		if err != nil {
			return nil, fmt.Errorf("list aliases: %w", err)
		}
		q, args = q+" WHERE domain_id = ?", append(args, d.ID)
	}
	var as []Alias
	if err := s.db.SelectContext(ctx, &as, s.rebind(q+" ORDER BY pattern, target"), args...); err != nil {
		return nil, fmt.Errorf("list aliases: %w", err)
	}
	return as, nil
}

// Resolution is where mail to one address goes.
type Resolution struct {
	Local    bool     // the address's domain is ours
	Users    []int64  // local users to deliver to
	External []string // addresses elsewhere to forward to
}

// maxAliasDepth bounds alias chains (and so alias loops).
const maxAliasDepth = 8

// Resolve finds where mail to addr goes, as mmmail resolved it: the user
// with that address; else an exact alias; else, for local+tag, the same
// without the tag (RFC 5233 subaddressing); else the most specific
// matching pattern alias, the catch-all "*@domain" being the least
// specific. Local targets are resolved in turn. A local domain with no
// match is ErrUnknownLocal; a domain not ours is Resolution{Local: false}.
func (s *Store) Resolve(ctx context.Context, addr string) (Resolution, error) {
	a, err := NormalizeAddress(addr)
	if err != nil {
		return Resolution{}, err
	}
	var res Resolution
	seen := map[string]bool{}
	users := map[int64]bool{}
	ext := map[string]bool{}
	var walk func(a string, depth int) error
	walk = func(a string, depth int) error {
		if seen[a] {
			return nil // an alias loop: this address is already being delivered
		}
		seen[a] = true
		if depth > maxAliasDepth {
			return fmt.Errorf("resolve %s: %w: alias chain longer than %d", addr, ErrInvalid, maxAliasDepth)
		}
		targets, local, err := s.resolveOne(ctx, a)
		if err != nil {
			return err
		}
		if !local {
			if depth == 0 {
				return nil
			}
			if !ext[a] {
				ext[a] = true
				res.External = append(res.External, a)
			}
			return nil
		}
		if depth == 0 {
			res.Local = true
		}
		for _, t := range targets {
			if t.user != 0 {
				if !users[t.user] {
					users[t.user] = true
					res.Users = append(res.Users, t.user)
				}
				continue
			}
			if err := walk(t.addr, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(a, 0); err != nil {
		return Resolution{}, err
	}
	if res.Local && len(res.Users) == 0 && len(res.External) == 0 {
		return res, fmt.Errorf("resolve %s: %w", a, ErrUnknownLocal)
	}
	return res, nil
}

type target struct {
	user int64
	addr string
}

// resolveOne resolves one step: a user, or the targets of the best alias.
func (s *Store) resolveOne(ctx context.Context, a string) ([]target, bool, error) {
	local, domain, _ := strings.Cut(a, "@")
	d, err := s.DomainByName(ctx, domain)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, false, nil
		}
		return nil, false, err
	}
	canon := local + "@" + d.Name
	candidates := []string{canon}
	if base, _, ok := strings.Cut(local, "+"); ok && base != "" {
		candidates = append(candidates, base+"@"+d.Name)
	}
	for _, c := range candidates {
		var ids []int64
		if err := s.db.Select(ctx, &ids, s.rebind("SELECT id FROM users WHERE address = ?"), c); err != nil {
			return nil, true, fmt.Errorf("resolve %s: %w", a, err)
		}
		if len(ids) > 0 {
			return []target{{user: ids[0]}}, true, nil
		}
		var ts []string
		if err := s.db.Select(ctx, &ts, s.rebind("SELECT target FROM aliases WHERE pattern = ? AND is_pattern = 0 ORDER BY id"), c); err != nil {
			return nil, true, fmt.Errorf("resolve %s: %w", a, err)
		}
		if len(ts) > 0 {
			return addrTargets(ts), true, nil
		}
	}
	var pats []Alias
	if err := s.db.Select(ctx, &pats, s.rebind("SELECT id, pattern, target, is_pattern FROM aliases WHERE domain_id = ? AND is_pattern = 1 ORDER BY id"), d.ID); err != nil {
		return nil, true, fmt.Errorf("resolve %s: %w", a, err)
	}
	best, bestScore := "", -1
	for _, p := range pats {
		if !matchGlob(p.Pattern, canon) {
			continue
		}
		// The pattern that pins down the most characters wins.
		if score := len(p.Pattern) - strings.Count(p.Pattern, "*"); score > bestScore {
			best, bestScore = p.Pattern, score
		}
	}
	var ts []string
	for _, p := range pats {
		if p.Pattern == best {
			ts = append(ts, p.Target)
		}
	}
	return addrTargets(ts), true, nil
}

func addrTargets(ts []string) []target {
	out := make([]target, len(ts))
	for i, t := range ts {
		out[i] = target{addr: t}
	}
	return out
}

// matchGlob matches s against a pattern where * is any run of characters
// (possibly empty) and ? exactly one; it backtracks only to the last *, so
// it runs in O(len(p)*len(s)) at worst.
func matchGlob(p, s string) bool {
	pr, sr := []rune(p), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && (pr[pi] == '?' || pr[pi] == sr[si]):
			pi++
			si++
		case pi < len(pr) && pr[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}

// NullSender is a pattern of hosts (names or IP addresses, with * and ?)
// allowed to send with an empty envelope sender, MAIL FROM:<> (mmmail's
// nofrom table).
type NullSender struct {
	ID      int64  `db:"id" json:"id"`
	Pattern string `db:"pattern" json:"pattern"`
}

// AddNullSender allows hosts matching pattern to send MAIL FROM:<>.
func (s *Store) AddNullSender(ctx context.Context, pattern string) error {
	p := strings.ToLower(strings.TrimSpace(pattern))
	if p == "" || strings.ContainsAny(p, " \t\r\n@") {
		return fmt.Errorf("add null-sender pattern: %w: %q", ErrInvalid, pattern)
	}
	_, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO nofrom (pattern, created_at) VALUES (?, ?)"), p, s.unix())
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return fmt.Errorf("add null-sender pattern %s: %w", p, err)
	}
	return nil
}

// DeleteNullSender removes a null-sender pattern.
func (s *Store) DeleteNullSender(ctx context.Context, pattern string) error {
	res, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM nofrom WHERE pattern = ?"), strings.ToLower(strings.TrimSpace(pattern)))
	if err != nil {
		return fmt.Errorf("delete null-sender pattern: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete null-sender pattern %s: %w", pattern, ErrNotFound)
	}
	return nil
}

// NullSenders lists the null-sender patterns.
func (s *Store) NullSenders(ctx context.Context) ([]NullSender, error) {
	var ns []NullSender
	if err := s.db.SelectContext(ctx, &ns, "SELECT id, pattern FROM nofrom ORDER BY pattern"); err != nil {
		return nil, fmt.Errorf("list null-sender patterns: %w", err)
	}
	return ns, nil
}

// NullSenderAllowed reports whether a client with this host name or IP
// address may send MAIL FROM:<>.
func (s *Store) NullSenderAllowed(ctx context.Context, host, ip string) (bool, error) {
	ns, err := s.NullSenders(ctx)
	if err != nil {
		return false, err
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, n := range ns {
		if (host != "" && matchGlob(n.Pattern, host)) || (ip != "" && matchGlob(n.Pattern, ip)) {
			return true, nil
		}
	}
	return false, nil
}

// maxAliasTargets bounds the targets of one alias (a list, not a
// mailing-list manager).
const maxAliasTargets = 100

// maxWildcards bounds the * and ? of a pattern: matching costs
// O(len(pattern)*len(address)), and no real pattern needs more.
const maxWildcards = 8

// NormalizeAliasPattern checks and lower-cases an alias pattern:
// local@domain where the local part may hold * (any run of characters)
// and ? (one character), the domain none; "*@domain" is the catch-all.
func NormalizeAliasPattern(pattern string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(pattern))
	local, domain, ok := strings.Cut(p, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || strings.ContainsAny(domain, "*?") ||
		strings.ContainsAny(p, " \t\r\n<>,;\"()[]\\") || len(p) > 254 {
		return "", fmt.Errorf("%w: %q is not a pattern local@domain (wildcards * and ? only left of @)", ErrInvalid, pattern)
	}
	if _, err := NormalizeDomain(domain); err != nil {
		return "", fmt.Errorf("%w: %q: bad domain", ErrInvalid, pattern)
	}
	if strings.Contains(local, "**") || strings.Count(local, "*")+strings.Count(local, "?") > maxWildcards {
		return "", fmt.Errorf("%w: %q: at most %d wildcards, no \"**\"", ErrInvalid, pattern, maxWildcards)
	}
	return p, nil
}

// AliasGroup is one pattern with all its targets.
type AliasGroup struct {
	Pattern   string   `json:"pattern"`
	Targets   []string `json:"targets"`
	IsPattern bool     `json:"isPattern"`
	CatchAll  bool     `json:"catchAll"`
}

func aliasGroup(pattern string, targets []string) AliasGroup {
	local, _, _ := strings.Cut(pattern, "@")
	return AliasGroup{Pattern: pattern, Targets: targets, IsPattern: strings.ContainsAny(local, "*?"), CatchAll: local == "*"}
}

// Alias returns a pattern's targets, or ErrNotFound.
func (s *Store) Alias(ctx context.Context, pattern string) (AliasGroup, error) {
	p, err := NormalizeAliasPattern(pattern)
	if err != nil {
		return AliasGroup{}, err
	}
	var ts []string
	if err := s.db.SelectContext(ctx, &ts, s.rebind("SELECT target FROM aliases WHERE pattern = ? ORDER BY target"), p); err != nil {
		return AliasGroup{}, fmt.Errorf("alias %s: %w", p, err)
	}
	if len(ts) == 0 {
		return AliasGroup{}, fmt.Errorf("alias %s: %w", p, ErrNotFound)
	}
	return aliasGroup(p, ts), nil
}

// SetAlias makes targets the whole list of pattern's targets, creating
// the alias when it has none, in one transaction. create refuses a
// pattern that already has targets (ErrExists).
func (s *Store) SetAlias(ctx context.Context, pattern string, targets []string, create bool) (AliasGroup, error) {
	var check func(AliasGroup) error
	if create {
		check = func(g AliasGroup) error {
			if len(g.Targets) > 0 {
				return ErrExists
			}
			return nil
		}
	}
	return s.SetAliasIf(ctx, pattern, targets, check)
}

// SetAliasIf is SetAlias under a precondition: check, when not nil, is
// given the alias as it is (no targets: none yet) inside the change's
// transaction, and its error refuses the change (the API's If-Match).
func (s *Store) SetAliasIf(ctx context.Context, pattern string, targets []string, check func(AliasGroup) error) (AliasGroup, error) {
	p, err := NormalizeAliasPattern(pattern)
	if err != nil {
		return AliasGroup{}, err
	}
	if len(targets) == 0 || len(targets) > maxAliasTargets {
		return AliasGroup{}, fmt.Errorf("set alias %s: %w: 1 to %d targets", p, ErrInvalid, maxAliasTargets)
	}
	seen := map[string]bool{}
	ts := []string{}
	for _, t := range targets {
		n, err := NormalizeAddress(t)
		if err != nil {
			return AliasGroup{}, fmt.Errorf("set alias %s: target: %w", p, err)
		}
		if !seen[n] {
			seen[n] = true
			ts = append(ts, n)
		}
	}
	_, domain, _ := strings.Cut(p, "@")
	d, err := s.DomainByName(ctx, domain)
	if err != nil {
		return AliasGroup{}, fmt.Errorf("set alias %s: %w", p, err)
	}
	if d.Name != domain {
		return AliasGroup{}, fmt.Errorf("set alias %s: %w: %s is an alias of %s; use that domain", p, ErrInvalid, domain, d.Name)
	}
	g := aliasGroup(p, ts)
	var before []string
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		before = nil
		// The pattern's rows are read for update, so a concurrent change
		// of them waits for this one (MySQL; SQLite's writer holds the
		// whole database).
		if err := tx.SelectContext(ctx, &before, s.rebind("SELECT target FROM aliases WHERE pattern = ? ORDER BY target"+s.db.ForUpdate()), p); err != nil {
			return err
		}
		if check != nil {
			if err := check(aliasGroup(p, before)); err != nil {
				return err
			}
		}
		if grow := int64(len(ts) - len(before)); grow > 0 {
			if err := s.CheckDomainRoom(ctx, tx, d.ID, 0, grow, 0); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM aliases WHERE pattern = ?"), p); err != nil {
			return err
		}
		now := s.unix()
		for _, t := range ts {
			if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO aliases (domain_id, pattern, target, is_pattern, created_at) VALUES (?, ?, ?, ?, ?)"),
				d.ID, p, t, g.IsPattern, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return AliasGroup{}, fmt.Errorf("set alias %s: %w", p, err)
	}
	slices.Sort(g.Targets)
	var was any
	if before != nil {
		was = map[string]any{"targets": before}
	}
	s.Audit(ctx, AuditEntry{Action: "alias.set", Target: p, Domain: d.Name, Before: was, After: map[string]any{"targets": g.Targets}})
	return g, nil
}

// AliasFilter selects a page of aliases, in pattern order.
type AliasFilter struct {
	Domain string
	// Only, when Domain is "", keeps the aliases of these domains (a key
	// limited to them); names that are no domain match nothing.
	Only   []string
	Q      string // a prefix of the pattern
	Cursor string // the last pattern of the previous page
	Limit  int    // default 100, at most 1000
}

// AliasPage is a page of aliases; Next is "" on the last page.
type AliasPage struct {
	Aliases []AliasGroup
	Next    string
}

// ListAliases returns a page of aliases with their targets.
func (s *Store) ListAliases(ctx context.Context, f AliasFilter) (AliasPage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 1000 {
		return AliasPage{}, fmt.Errorf("list aliases: %w: limit above 1000", ErrInvalid)
	}
	where, args := []string{"pattern > ?"}, []any{f.Cursor}
	if f.Domain != "" {
		d, err := s.DomainByName(ctx, f.Domain)
		if err != nil {
			return AliasPage{}, fmt.Errorf("list aliases: %w", err)
		}
		where, args = append(where, "domain_id = ?"), append(args, d.ID)
	}
	if f.Domain == "" && f.Only != nil {
		ids := []any{int64(0)} // matches nothing: ids start at 1
		for _, name := range f.Only {
			if d, err := s.DomainByName(ctx, name); err == nil {
				ids = append(ids, d.ID)
			}
		}
		q, qargs, err := sqlx.In("domain_id IN (?)", ids)
		if err != nil {
			return AliasPage{}, fmt.Errorf("list aliases: %w", err)
		}
		where, args = append(where, q), append(args, qargs...)
	}
	if f.Q != "" {
		q := strings.ToLower(f.Q)
		where, args = append(where, "pattern >= ? AND pattern < ?"), append(args, q, q+"\U0010FFFF")
	}
	var pats []string
	if err := s.db.SelectContext(ctx, &pats, s.rebind("SELECT DISTINCT pattern FROM aliases WHERE "+strings.Join(where, " AND ")+
		" ORDER BY pattern LIMIT "+strconv.Itoa(limit+1)), args...); err != nil {
		return AliasPage{}, fmt.Errorf("list aliases: %w", err)
	}
	var page AliasPage
	if len(pats) > limit {
		pats = pats[:limit]
		page.Next = pats[limit-1]
	}
	if len(pats) == 0 {
		return page, nil
	}
	q, qargs, err := sqlx.In("SELECT pattern, target FROM aliases WHERE pattern IN (?) ORDER BY pattern, target", pats)
	if err != nil {
		return AliasPage{}, fmt.Errorf("list aliases: %w", err)
	}
	var rows []struct {
		Pattern string `db:"pattern"`
		Target  string `db:"target"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.rebind(q), qargs...); err != nil {
		return AliasPage{}, fmt.Errorf("list aliases: %w", err)
	}
	for _, r := range rows {
		if n := len(page.Aliases); n > 0 && page.Aliases[n-1].Pattern == r.Pattern {
			page.Aliases[n-1].Targets = append(page.Aliases[n-1].Targets, r.Target)
			continue
		}
		page.Aliases = append(page.Aliases, aliasGroup(r.Pattern, []string{r.Target}))
	}
	return page, nil
}
