package contacts

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/internal/spine"
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
		return fmt.Errorf("%w: contact fields too long", store.ErrInvalid)
	}
	return nil
}

// Contacts lists the account's contacts by name.
func (b *Book) Contacts(ctx context.Context) ([]Contact, error) {
	if err := b.ownerOnly(); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	var cs []Contact
	if err := b.sp.DB.SelectContext(ctx, &cs, b.sp.Rebind("SELECT id, name, email, data FROM contacts WHERE user_id = ? ORDER BY name, id"), b.userID); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return cs, nil
}

// Contact returns one of the account's contacts.
func (b *Book) Contact(ctx context.Context, id int64) (Contact, error) {
	if err := b.ownerOnly(); err != nil {
		return Contact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	var c Contact
	if err := b.sp.DB.GetContext(ctx, &c, b.sp.Rebind("SELECT id, name, email, data FROM contacts WHERE id = ? AND user_id = ?"), id, b.userID); err != nil {
		return Contact{}, fmt.Errorf("contact %d: %w", id, spine.NotFound(err))
	}
	return c, nil
}

// SaveContact creates a contact (ID 0) or replaces one of the account's.
func (b *Book) SaveContact(ctx context.Context, c Contact) (Contact, error) {
	if err := b.ownerOnly(); err != nil {
		return Contact{}, fmt.Errorf("save contact: %w", err)
	}
	if err := c.check(); err != nil {
		return Contact{}, err
	}
	c.Email = strings.TrimSpace(c.Email)
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		now := b.sp.Unix()
		if c.ID == 0 {
			res, err := tx.ExecContext(ctx, b.sp.Rebind("INSERT INTO contacts (user_id, name, email, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
				b.userID, c.Name, c.Email, c.Data, now, now)
			if err != nil {
				return err
			}
			c.ID, err = res.LastInsertId()
			ch.Add(0, "contacts", 0, 0)
			return err
		}
		res, err := tx.ExecContext(ctx, b.sp.Rebind("UPDATE contacts SET name = ?, email = ?, data = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
			c.Name, c.Email, c.Data, now, c.ID, b.userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		ch.Add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return Contact{}, fmt.Errorf("save contact: %w", err)
	}
	return c, nil
}

// DeleteContact removes one of the account's contacts.
func (b *Book) DeleteContact(ctx context.Context, id int64) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("delete contact %d: %w", id, err)
	}
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		res, err := tx.ExecContext(ctx, b.sp.Rebind("DELETE FROM contacts WHERE id = ? AND user_id = ?"), id, b.userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		ch.Add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete contact %d: %w", id, err)
	}
	return nil
}

const maxSettingValue = 64 << 10

// Settings returns the account's settings.
func (b *Book) Settings(ctx context.Context) (map[string]string, error) {
	if err := b.ownerOnly(); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	var rows []struct {
		Name  string `db:"name"`
		Value string `db:"value"`
	}
	if err := b.sp.DB.SelectContext(ctx, &rows, b.sp.Rebind("SELECT name, value FROM settings WHERE user_id = ?"), b.userID); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		if !strings.HasPrefix(r.Name, store.RulesSettingPrefix) {
			out[r.Name] = r.Value
		}
	}
	return out, nil
}

// SaveSettings sets the given settings; an empty value removes one.
func (b *Book) SaveSettings(ctx context.Context, kv map[string]string) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	for k, v := range kv {
		// The delivery rules keep theirs under "delivery." and are saved
		// by the store's SaveRules alone, which checks them and keeps the
		// user's row in step.
		if k == "" || len(k) > 128 || len(v) > maxSettingValue || strings.HasPrefix(k, store.RulesSettingPrefix) {
			return fmt.Errorf("save settings: %w: setting %q", store.ErrInvalid, k)
		}
	}
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		for k, v := range kv {
			if _, err := tx.ExecContext(ctx, b.sp.Rebind("DELETE FROM settings WHERE user_id = ? AND name = ?"), b.userID, k); err != nil {
				return err
			}
			if v == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, b.sp.Rebind("INSERT INTO settings (user_id, name, value) VALUES (?, ?, ?)"), b.userID, k, v); err != nil {
				return err
			}
		}
		ch.Add(0, "settings", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// Book is one user's contacts, contact folders and settings.
type Book struct {
	sp     *spine.Spine
	userID int64
	// owner is why the account is not its user's own mail (a share), or
	// nil: only the owner has a book.
	owner error
}

// Of returns the book of a's user. On another user's mail seen through a
// share every method fails with store.ErrForbidden.
func Of(a *store.Account) *Book {
	id, _, err := a.Owner(spine.Lend())
	return &Book{sp: a.Store(spine.Lend()).Spine(spine.Lend()), userID: id, owner: err}
}

func (b *Book) ownerOnly() error { return b.owner }
