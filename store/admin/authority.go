package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Errors callers branch on (errors.Is).
var (
	// ErrUnauthorized: no such key, a wrong secret, a revoked or expired key.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the key may not do this (a scope, a domain, a network).
	ErrForbidden = errors.New("forbidden")
	// ErrWider: what a key tried to make would be wider than the key.
	ErrWider = errors.New("wider than the acting key")
)

// Resources and actions the scopes are made of. A new resource is added
// here so that keys may be given it.
var (
	Resources = []string{"domains", "plans", "users", "aliases", "shares", "sessions", "queue", "bulletins",
		"maintenance", "keys", "admins", "audit", "jobs", "stats", "signup"}
	Actions = []string{"read", "write"}
)

// CheckScope says whether s is a scope a key or grant may hold:
// "resource:action", "resource:*" or "*".
func CheckScope(s string) error {
	if s == "*" {
		return nil
	}
	r, a, ok := strings.Cut(s, ":")
	if !ok || !slices.Contains(Resources, r) || (a != "*" && !slices.Contains(Actions, a)) {
		return fmt.Errorf("%q is not a scope (resource:action, resource:* or *)", s)
	}
	return nil
}

// scopeGives reports whether holding have lets one act with need.
// A write implies the read of its resource.
func scopeGives(have, need string) bool {
	if have == "*" || have == need {
		return true
	}
	hr, ha, _ := strings.Cut(have, ":")
	nr, na, _ := strings.Cut(need, ":")
	if hr != nr {
		return false
	}
	return ha == "*" || (ha == "write" && na == "read")
}

// Authority is what a key or a grant allows: scopes over domains (none:
// every domain), from networks (none: anywhere), until an expiry (0:
// never, Unix seconds).
type Authority struct {
	Scopes   []string
	Domains  []string
	Networks []netip.Prefix
	Expires  int64
}

func (a Authority) hasScope(s string) bool {
	for _, h := range a.Scopes {
		if scopeGives(h, s) {
			return true
		}
	}
	return false
}

// hasDomain reports whether a reaches domain d ("" means every domain,
// which only an authority limited to no domain reaches).
func (a Authority) hasDomain(d string) bool {
	if len(a.Domains) == 0 {
		return true
	}
	return d != "" && slices.Contains(a.Domains, d)
}

// allows reports whether a gives scope over every domain in ds (none: the
// scope over every domain, or over no domain in particular when global is
// false).
func (a Authority) allows(scope string, ds []string) bool {
	if !a.hasScope(scope) {
		return false
	}
	for _, d := range ds {
		if !a.hasDomain(d) {
			return false
		}
	}
	return true
}

// Check validates an authority's parts.
func (a Authority) Check() error {
	if len(a.Scopes) == 0 {
		return errors.New("no scopes")
	}
	for _, s := range a.Scopes {
		if err := CheckScope(s); err != nil {
			return err
		}
	}
	for _, d := range a.Domains {
		if d == "" || strings.ContainsAny(d, " \t@*?") {
			return fmt.Errorf("%q is not a domain name", d)
		}
	}
	return nil
}

// ParseNetworks parses CIDRs (a bare address is its /32 or /128; an
// IPv4-mapped one is its IPv4 network).
func ParseNetworks(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a network (CIDR)", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// An IPv4-mapped IPv6 network (RFC 4291 2.5.5.2) is the IPv4 one:
		// clients are matched by their unmapped address, which a
		// ::ffff:0:0/96 prefix would never contain.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Principal is an authenticated key with its admin's grants: what a
// request may do.
type Principal struct {
	Key    Key
	Admin  Admin
	Grants []Grant
}

// Allows reports whether the principal may use scope over every domain in
// ds. With no domain (a server-wide action), only a key and a grant
// limited to no domain allow it.
func (p *Principal) Allows(scope string, ds ...string) bool {
	if !p.Key.Authority.allows(scope, ds) || (len(ds) == 0 && len(p.Key.Authority.Domains) > 0) {
		return false
	}
	if len(ds) == 0 {
		for _, g := range p.Grants {
			if g.Authority.hasScope(scope) && len(g.Authority.Domains) == 0 {
				return true
			}
		}
		return false
	}
	// Each domain may come from a different grant.
	for _, d := range ds {
		ok := false
		for _, g := range p.Grants {
			if g.Authority.allows(scope, []string{d}) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Domains returns the domains the principal reaches with scope, or all
// true when it reaches every domain.
func (p *Principal) Domains(scope string) (ds []string, all bool) {
	if p.Allows(scope) {
		return nil, true
	}
	seen := map[string]bool{}
	cands := p.Key.Authority.Domains
	if len(cands) == 0 {
		for _, g := range p.Grants {
			if g.Authority.hasScope(scope) {
				cands = append(cands, g.Authority.Domains...)
			}
		}
	}
	for _, d := range cands {
		if !seen[d] && p.Allows(scope, d) {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	slices.Sort(ds)
	return ds, false
}

// Covers returns nil when b is no wider than the principal: each of b's
// scopes over each of b's domains (every domain when b names none), b's
// networks inside the key's, and b's expiry no later than the key's. The
// error wraps ErrWider and says what is wider.
func (p *Principal) Covers(b Authority) error {
	for _, s := range b.Scopes {
		need := []string{s}
		if s == "*" || strings.HasSuffix(s, ":*") {
			// "*" and "resource:*" are covered only by what covers each
			// scope they stand for.
			need = expand(s)
		}
		for _, n := range need {
			if !p.Allows(n, b.Domains...) {
				if len(b.Domains) == 0 {
					return fmt.Errorf("%w: scope %s over every domain", ErrWider, s)
				}
				return fmt.Errorf("%w: scope %s over %s", ErrWider, s, strings.Join(b.Domains, ", "))
			}
		}
	}
	if nets := p.Key.Authority.Networks; len(nets) > 0 {
		if len(b.Networks) == 0 {
			return fmt.Errorf("%w: every network, where the key is limited to some", ErrWider)
		}
		for _, n := range b.Networks {
			if !slices.ContainsFunc(nets, func(k netip.Prefix) bool { return k.Bits() <= n.Bits() && k.Contains(n.Addr()) }) {
				return fmt.Errorf("%w: network %s", ErrWider, n)
			}
		}
	}
	if exp := p.Key.Authority.Expires; exp != 0 && (b.Expires == 0 || b.Expires > exp) {
		return fmt.Errorf("%w: it would outlive the key (expiring at %d)", ErrWider, exp)
	}
	return nil
}

// CoversReach is Covers for what is removed rather than made (a key
// revoked, a grant withdrawn, an admin deleted): only scopes and domains
// count, as a removal opens no network and outlives nothing.
func (p *Principal) CoversReach(b Authority) error {
	return p.Covers(Authority{Scopes: b.Scopes, Domains: b.Domains, Networks: p.Key.Authority.Networks, Expires: p.Key.Authority.Expires})
}

// expand lists the scopes "*" or "resource:*" stand for.
func expand(s string) []string {
	var rs []string
	if s == "*" {
		rs = Resources
	} else {
		r, _, _ := strings.Cut(s, ":")
		rs = []string{r}
	}
	var out []string
	for _, r := range rs {
		for _, a := range Actions {
			out = append(out, r+":"+a)
		}
	}
	return out
}
