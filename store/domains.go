package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store/sqldb"
)

// Domain is a mail domain Basalt is the destination for.
type Domain struct {
	ID        int64  `db:"id" json:"id"`
	Name      string `db:"name" json:"name"`
	CreatedAt int64  `db:"created_at" json:"createdAt"`
}

// AddDomain adds a local domain.
func (s *Store) AddDomain(ctx context.Context, name string) (Domain, error) {
	defer s.domains.forget()
	n, err := NormalizeDomain(name)
	if err != nil {
		return Domain{}, err
	}
	d := Domain{Name: n, CreatedAt: s.unix()}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var taken int
		if err := tx.GetContext(ctx, &taken, s.rebind("SELECT COUNT(*) FROM domain_aliases WHERE name = ?"), n); err != nil {
			return err
		}
		if taken > 0 {
			return fmt.Errorf("%w: %s is a domain alias", ErrExists, n)
		}
		res, err := tx.ExecContext(ctx, s.rebind("INSERT INTO domains (name, created_at) VALUES (?, ?)"), n, d.CreatedAt)
		if err != nil {
			return err
		}
		d.ID, err = res.LastInsertId()
		return err
	})
	if sqldb.IsDuplicate(err) {
		return Domain{}, fmt.Errorf("add domain %s: %w", n, ErrExists)
	}
	if err != nil {
		return Domain{}, fmt.Errorf("add domain %s: %w", n, err)
	}
	return d, nil
}

// DeleteDomain removes a domain with its aliases. A domain that still has
// users is refused with ErrNotEmpty: deleting mail is done user by user.
func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	defer s.domains.forget()
	n, err := NormalizeDomain(name)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var id int64
		if err := tx.GetContext(ctx, &id, s.rebind("SELECT id FROM domains WHERE name = ?"+s.db.ForUpdate()), n); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		var users int
		if err := tx.GetContext(ctx, &users, s.rebind("SELECT COUNT(*) FROM users WHERE domain_id = ?"), id); err != nil {
			return err
		}
		if users > 0 {
			return fmt.Errorf("%w: the domain has %d users", ErrNotEmpty, users)
		}
		_, err := tx.ExecContext(ctx, s.rebind("DELETE FROM domains WHERE id = ?"), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete domain %s: %w", n, err)
	}
	return nil
}

// Domains lists the local domains by name.
func (s *Store) Domains(ctx context.Context) ([]Domain, error) {
	var ds []Domain
	if err := s.db.SelectContext(ctx, &ds, "SELECT id, name, created_at FROM domains ORDER BY name"); err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	return ds, nil
}

// DomainByName finds a domain by its name or one of its domain aliases.
func (s *Store) DomainByName(ctx context.Context, name string) (Domain, error) {
	n, err := NormalizeDomain(name)
	if err != nil {
		return Domain{}, err
	}
	now := s.now()
	d, found, gen, ok := s.domains.get(n, now)
	if ok {
		if !found {
			return Domain{}, fmt.Errorf("domain %s: %w", n, ErrNotFound)
		}
		return d, nil
	}
	err = s.db.Get(ctx, &d, s.rebind(`SELECT id, name, created_at FROM domains WHERE name = ?
		UNION ALL SELECT d.id, d.name, d.created_at FROM domain_aliases a JOIN domains d ON d.id = a.domain_id WHERE a.name = ?`), n, n)
	if errors.Is(err, sql.ErrNoRows) {
		s.domains.put(n, Domain{}, false, now, gen)
		return Domain{}, fmt.Errorf("domain %s: %w", n, ErrNotFound)
	}
	if err != nil {
		return Domain{}, fmt.Errorf("look up domain %s: %w", n, err)
	}
	s.domains.put(n, d, true, now, gen)
	return d, nil
}

// domainTTL is how long a domain lookup is reused. Every recipient and
// sender is looked up, and domains are seldom added or removed: a change
// made here is seen at once, one made by another process (the command
// line, another node) within this time.
const domainTTL = 5 * time.Second

// maxCachedDomains bounds the lookups kept, most of them for senders'
// domains that are not ours.
const maxCachedDomains = 10000

// domainCache remembers recent domain lookups, found or not.
type domainCache struct {
	mu sync.Mutex
	m  map[string]cachedDomain
	// gen counts forgets: a lookup that read the database before a
	// change, and returns after the change's forget, must not cache what
	// it read.
	gen uint64
}

type cachedDomain struct {
	d     Domain
	found bool
	at    time.Time
}

// get returns a cached lookup, or on a miss the generation to give put.
func (c *domainCache) get(name string, now time.Time) (d Domain, found bool, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || now.Sub(e.at) >= domainTTL || now.Before(e.at) {
		return Domain{}, false, c.gen, false
	}
	return e.d, e.found, c.gen, true
}

// put caches a lookup made after get returned gen, unless a change
// forgot the cache since.
func (c *domainCache) put(name string, d Domain, found bool, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedDomains {
		c.m = map[string]cachedDomain{}
	}
	c.m[name] = cachedDomain{d, found, now}
}

// forget drops every lookup, after a change to the domains.
func (c *domainCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}

// AddDomainAlias makes alias another name for domain: mail to x@alias is
// delivered as mail to x@domain.
func (s *Store) AddDomainAlias(ctx context.Context, alias, domain string) error {
	defer s.domains.forget()
	a, err := NormalizeDomain(alias)
	if err != nil {
		return err
	}
	d, err := s.DomainByName(ctx, domain)
	if err != nil {
		return fmt.Errorf("add domain alias %s: %w", a, err)
	}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var taken int
		if err := tx.GetContext(ctx, &taken, s.rebind("SELECT COUNT(*) FROM domains WHERE name = ?"), a); err != nil {
			return err
		}
		if taken > 0 {
			return fmt.Errorf("%w: %s is a domain", ErrExists, a)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO domain_aliases (name, domain_id, created_at) VALUES (?, ?, ?)"), a, d.ID, s.unix()); err != nil {
			return err
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "domain.alias.create", Target: a, Domain: d.Name, After: map[string]string{"alias": a, "domain": d.Name}})
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return fmt.Errorf("add domain alias %s: %w", a, err)
	}
	return nil
}

// DeleteDomainAlias removes a domain alias.
func (s *Store) DeleteDomainAlias(ctx context.Context, alias string) error {
	defer s.domains.forget()
	a, err := NormalizeDomain(alias)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		var domain string
		if err := tx.GetContext(ctx, &domain, s.rebind("SELECT d.name FROM domain_aliases a JOIN domains d ON d.id = a.domain_id WHERE a.name = ?"), a); err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM domain_aliases WHERE name = ?"), a); err != nil {
			return err
		}
		return s.auditIn(ctx, tx, AuditEntry{Action: "domain.alias.delete", Target: a, Domain: domain, Before: map[string]string{"alias": a, "domain": domain}})
	})
	if err != nil {
		return fmt.Errorf("delete domain alias %s: %w", a, err)
	}
	return nil
}

// DomainAliases lists the aliases of a domain.
func (s *Store) DomainAliases(ctx context.Context, domain string) ([]string, error) {
	d, err := s.DomainByName(ctx, domain)
	if err != nil {
		return nil, err
	}
	var names []string
	if err := s.db.SelectContext(ctx, &names, s.rebind("SELECT name FROM domain_aliases WHERE domain_id = ? ORDER BY name"), d.ID); err != nil {
		return nil, fmt.Errorf("list domain aliases of %s: %w", d.Name, err)
	}
	return names, nil
}
