package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Contact is an address book entry. Data holds the full record (a vCard);
// Name and Email are kept beside it for listing and lookup.
type Contact struct {
	ID    int64  `db:"id" json:"id"`
	Name  string `db:"name" json:"name"`
	Email string `db:"email" json:"email"`
	Data  string `db:"data" json:"data"`
}

const maxContactData = 1 << 20

func (c Contact) check() error {
	if len(c.Name) > 255 || len(c.Email) > 320 || len(c.Data) > maxContactData {
		return fmt.Errorf("%w: contact fields too long", ErrInvalid)
	}
	return nil
}

// Contacts lists the account's contacts by name.
func (a *Account) Contacts(ctx context.Context) ([]Contact, error) {
	if err := a.ownerOnly(); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	var cs []Contact
	if err := a.s.db.SelectContext(ctx, &cs, a.s.rebind("SELECT id, name, email, data FROM contacts WHERE user_id = ? ORDER BY name, id"), a.userID); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return cs, nil
}

// Contact returns one of the account's contacts.
func (a *Account) Contact(ctx context.Context, id int64) (Contact, error) {
	if err := a.ownerOnly(); err != nil {
		return Contact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	var c Contact
	if err := a.s.db.GetContext(ctx, &c, a.s.rebind("SELECT id, name, email, data FROM contacts WHERE id = ? AND user_id = ?"), id, a.userID); err != nil {
		return Contact{}, fmt.Errorf("contact %d: %w", id, notFound(err))
	}
	return c, nil
}

// SaveContact creates a contact (ID 0) or replaces one of the account's.
func (a *Account) SaveContact(ctx context.Context, c Contact) (Contact, error) {
	if err := a.ownerOnly(); err != nil {
		return Contact{}, fmt.Errorf("save contact: %w", err)
	}
	if err := c.check(); err != nil {
		return Contact{}, err
	}
	c.Email = strings.TrimSpace(c.Email)
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		now := a.s.unix()
		if c.ID == 0 {
			res, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO contacts (user_id, name, email, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
				a.userID, c.Name, c.Email, c.Data, now, now)
			if err != nil {
				return err
			}
			c.ID, err = res.LastInsertId()
			ch.add(0, "contacts", 0, 0)
			return err
		}
		res, err := tx.ExecContext(ctx, a.s.rebind("UPDATE contacts SET name = ?, email = ?, data = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
			c.Name, c.Email, c.Data, now, c.ID, a.userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		ch.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return Contact{}, fmt.Errorf("save contact: %w", err)
	}
	return c, nil
}

// DeleteContact removes one of the account's contacts.
func (a *Account) DeleteContact(ctx context.Context, id int64) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("delete contact %d: %w", id, err)
	}
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		res, err := tx.ExecContext(ctx, a.s.rebind("DELETE FROM contacts WHERE id = ? AND user_id = ?"), id, a.userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		ch.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete contact %d: %w", id, err)
	}
	return nil
}

const maxSettingValue = 64 << 10

// Settings returns the account's settings.
func (a *Account) Settings(ctx context.Context) (map[string]string, error) {
	if err := a.ownerOnly(); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	var rows []struct {
		Name  string `db:"name"`
		Value string `db:"value"`
	}
	if err := a.s.db.SelectContext(ctx, &rows, a.s.rebind("SELECT name, value FROM settings WHERE user_id = ?"), a.userID); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Name] = r.Value
	}
	return out, nil
}

// SaveSettings sets the given settings; an empty value removes one.
func (a *Account) SaveSettings(ctx context.Context, kv map[string]string) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	for k, v := range kv {
		if k == "" || len(k) > 128 || len(v) > maxSettingValue {
			return fmt.Errorf("save settings: %w: setting %q", ErrInvalid, k)
		}
	}
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		for k, v := range kv {
			if _, err := tx.ExecContext(ctx, a.s.rebind("DELETE FROM settings WHERE user_id = ? AND name = ?"), a.userID, k); err != nil {
				return err
			}
			if v == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO settings (user_id, name, value) VALUES (?, ?, ?)"), a.userID, k, v); err != nil {
				return err
			}
		}
		ch.add(0, "settings", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}
