package rest

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"basalt/store"
)

// Route is one entry of the API's one route table: what it answers, the
// scope it needs and how to find the domains it touches, so that scopes
// and domain limits are enforced here, before any handler runs, and a
// test derived from the table covers every route.
type Route struct {
	Method string
	// Path under /api/v1, in chi's form: "/domains/{domain}".
	Path string
	// Scope is the "resource:action" the key needs; "" is a route open to
	// anyone (health, the spec). A route whose method is not GET must
	// need a scope whose action is not read (checked by a test).
	Scope string
	// Domain says which domains the request touches.
	Domain Locator
	// Idempotent routes (creates) honour Idempotency-Key.
	Idempotent bool
	Handle     func(c *Ctx) error
}

type locKind int

const (
	locNone     locKind = iota // open routes only
	locGlobal                  // server-wide: a domain-limited key is refused
	locListed                  // a listing the handler filters by Ctx.Domains
	locShared                  // a read of what is in no domain (plans)
	locPath                    // a path parameter names a domain
	locPathAddr                // a path parameter is an address
	locBody                    // a body member names a domain
	locBodyAddr                // a body member is an address
	locBodyList                // a body member lists domains (none: every domain)
	locTarget                  // the row the path names is looked up
)

// Locator finds the domains a request touches. Make one with Global,
// Listed, PathDomain, PathAddress, BodyDomain, BodyAddress, BodyDomains or
// Target.
type Locator struct {
	kind   locKind
	name   string
	alt    string // BodyDomainOrAddress's address member
	target string
	find   func(c *Ctx) ([]string, error)
}

// Global: a route over the whole server (plans, admins, server stats);
// only keys limited to no domain may use it.
func Global() Locator { return Locator{kind: locGlobal} }

// Listed: a listing; a domain-limited key may use it and sees only its
// domains (the handler filters with Ctx.Domains). A "domain" query
// parameter naming a domain outside the key's is refused here.
func Listed() Locator { return Locator{kind: locListed} }

// Shared: a read of something that belongs to no domain (the plans a
// user may be put on): any key holding the scope over some domain may
// read it. Only for GET (checked by a test).
func Shared() Locator { return Locator{kind: locShared} }

// IsListed and IsShared say what a locator is (for the tests' rules: a
// Listed route is a collection, with no path parameter; a Shared one is a
// read).
func (l Locator) IsListed() bool { return l.kind == locListed }

// IsShared: see IsListed.
func (l Locator) IsShared() bool { return l.kind == locShared }

// PathDomain: the path parameter param is a domain name.
func PathDomain(param string) Locator { return Locator{kind: locPath, name: param} }

// PathAddress: the path parameter param is an address (or pattern) whose
// domain is touched.
func PathAddress(param string) Locator { return Locator{kind: locPathAddr, name: param} }

// BodyDomain: the body's top-level member field is a domain name.
func BodyDomain(field string) Locator { return Locator{kind: locBody, name: field} }

// BodyAddress: the body's top-level member field is an address.
func BodyAddress(field string) Locator { return Locator{kind: locBodyAddr, name: field} }

// BodyDomainOrAddress: the body names a domain in member field, or else an
// address in member addr.
func BodyDomainOrAddress(field, addr string) Locator {
	return Locator{kind: locBody, name: field, alt: addr}
}

// BodyDomains: the body's member field lists domains; absent or empty is
// every domain (keys, grants).
func BodyDomains(field string) Locator { return Locator{kind: locBodyList, name: field} }

// Target: the row the path names (a user by id, a job, a key) is looked
// up by find, which returns its domains ("" for none in particular: then
// only a key limited to no domain passes). kind names the kind of row, for
// the scope test: it makes a row of each kind in a foreign domain
// (rest's fixtures in scopes_test.go; a new kind needs one there).
func Target(kind string, find func(c *Ctx) ([]string, error)) Locator {
	return Locator{kind: locTarget, target: kind, find: find}
}

// TargetKind is the kind a Target locator names ("" for others).
func (l Locator) TargetKind() string { return l.target }

// domainOf returns the domain of an address or pattern (local@domain).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(addr[i+1:]), "."))
}

// locate returns the domains the request touches; none with all false is
// "no domain in particular".
func (l Locator) locate(c *Ctx) ([]string, error) {
	switch l.kind {
	case locPath:
		d, err := store.NormalizeDomain(c.Param(l.name))
		if err != nil {
			return nil, Invalid(l.name, "not a domain name")
		}
		return []string{d}, nil
	case locPathAddr:
		d := domainOf(c.Param(l.name))
		if d == "" {
			return nil, Invalid(l.name, "not an address")
		}
		return []string{d}, nil
	case locListed:
		if q := c.R.URL.Query().Get("domain"); q != "" {
			d, err := store.NormalizeDomain(q)
			if err != nil {
				return nil, Invalid("domain", "not a domain name")
			}
			return []string{d}, nil
		}
		return nil, nil
	case locBody, locBodyAddr, locBodyList:
		raw, err := c.rawBody()
		if err != nil {
			return nil, err
		}
		// The member is read as the handler's decoding will read it: by
		// a name matched ignoring case, and only when no name is given
		// twice (checkMembers).
		if err := checkMembers(raw); err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil, BadRequest("malformed", "The body is not a JSON object.")
		}
		v, ok := member(m, l.name)
		kind := l.kind
		if !ok && l.alt != "" {
			v, ok = member(m, l.alt)
			kind = locBodyAddr
		}
		if !ok {
			return nil, nil
		}
		if kind == locBodyList {
			var ds []string
			if json.Unmarshal(v, &ds) != nil {
				return nil, Invalid(l.name, "must be a list of domain names")
			}
			for i, d := range ds {
				ds[i] = strings.ToLower(strings.TrimSpace(d))
			}
			return ds, nil
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, Invalid(l.name, "must be a string")
		}
		if kind == locBodyAddr {
			s = domainOf(s)
		}
		if s == "" {
			return nil, nil
		}
		d, err := store.NormalizeDomain(s)
		if err != nil {
			return nil, Invalid(l.name, "not a domain name")
		}
		return []string{d}, nil
	case locTarget:
		return l.find(c)
	}
	return nil, nil
}

// authorize checks the principal's scope over what the request touches.
func (l Locator) authorize(c *Ctx, scope string) error {
	p := c.P
	if _, all := p.Domains(scope); !all {
		if ds, _ := p.Domains(scope); len(ds) == 0 {
			return Forbidden("The key does not hold the scope " + scope + ".")
		}
	}
	if l.kind == locGlobal {
		if !p.Allows(scope) {
			return Forbidden("The key needs " + scope + " over every domain for this request.")
		}
		return nil
	}
	if l.kind == locShared {
		return nil
	}
	ds, err := l.locate(c)
	if err != nil {
		// A key short of every domain must not learn whether a row it
		// may not see exists: no such row is answered as one outside
		// its domains is, word for word.
		if l.kind == locTarget && !p.Allows(scope) {
			if pr, _ := problemOf(err); pr.Status == http.StatusNotFound {
				return l.targetForbidden(scope)
			}
		}
		return err
	}
	if l.kind != locTarget {
		if ds, err = c.withCanonical(ds); err != nil {
			return err
		}
	}
	c.touched = ds
	if l.kind == locTarget {
		for _, d := range ds {
			if (d == "" && !p.Allows(scope)) || (d != "" && !p.Allows(scope, d)) {
				return l.targetForbidden(scope)
			}
		}
		if len(ds) == 0 && !p.Allows(scope) {
			return l.targetForbidden(scope)
		}
		return nil
	}
	if len(ds) == 0 {
		if l.kind == locListed {
			return nil
		}
		// Nothing named: a body member left out (every domain, for a
		// list), or a row in no domain. Only a key over every domain.
		if !p.Allows(scope) {
			return Forbidden("The request names no domain of the key's; it needs " + scope + " over every domain.")
		}
		return nil
	}
	for _, d := range ds {
		if d == "" {
			if !p.Allows(scope) {
				return Forbidden("The key needs " + scope + " over every domain for this request.")
			}
			continue
		}
		if !p.Allows(scope, d) {
			return Forbidden("The key does not hold " + scope + " over " + d + ".")
		}
	}
	return nil
}

// withCanonical adds to ds the domain each name in it stands for when it
// is another domain's alias: the store reads a domain alias as its domain
// (DomainByName), so /domains/<alias> and ?domain=<alias> act on that
// domain, which the key must reach too, not only the name it was given.
func (c *Ctx) withCanonical(ds []string) ([]string, error) {
	out := ds
	for _, d := range ds {
		if d == "" {
			continue
		}
		dom, err := c.api.st.DomainByName(c.ctx, d)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if dom.Name != d && !slices.Contains(out, dom.Name) {
			out = append(slices.Clip(out), dom.Name)
		}
	}
	return out, nil
}

// targetForbidden is the one answer a Target route gives a key that may
// not reach the row, whether the row is in another domain, in none, or
// does not exist (naming the row's domain would tell it apart).
func (l Locator) targetForbidden(scope string) *Problem {
	return Forbidden("The key does not hold " + scope + " over this " + l.target + ", or there is no such " + l.target + ".")
}

// methodWrites reports whether a method changes something.
func methodWrites(m string) bool { return m != http.MethodGet && m != http.MethodHead }
