package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"basalt/store/sqldb"
)

// Domain is a mail domain Basalt is the destination for.
type Domain struct {
	ID        int64  `db:"id"`
	Name      string `db:"name"`
	CreatedAt int64  `db:"created_at"`
}

// AddDomain adds a local domain.
func (s *Store) AddDomain(ctx context.Context, name string) (Domain, error) {
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
	var d Domain
	err = s.db.Get(ctx, &d, s.rebind(`SELECT id, name, created_at FROM domains WHERE name = ?
		UNION ALL SELECT d.id, d.name, d.created_at FROM domain_aliases a JOIN domains d ON d.id = a.domain_id WHERE a.name = ?`), n, n)
	if errors.Is(err, sql.ErrNoRows) {
		return Domain{}, fmt.Errorf("domain %s: %w", n, ErrNotFound)
	}
	if err != nil {
		return Domain{}, fmt.Errorf("look up domain %s: %w", n, err)
	}
	return d, nil
}

// AddDomainAlias makes alias another name for domain: mail to x@alias is
// delivered as mail to x@domain.
func (s *Store) AddDomainAlias(ctx context.Context, alias, domain string) error {
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
		_, err := tx.ExecContext(ctx, s.rebind("INSERT INTO domain_aliases (name, domain_id, created_at) VALUES (?, ?, ?)"), a, d.ID, s.unix())
		return err
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
	a, err := NormalizeDomain(alias)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM domain_aliases WHERE name = ?"), a)
	if err != nil {
		return fmt.Errorf("delete domain alias %s: %w", a, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete domain alias %s: %w", a, ErrNotFound)
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
