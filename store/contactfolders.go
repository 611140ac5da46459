package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"basalt/store/sqldb"
)

// Address book folders, for the webmail. Every user has a default folder
// ("Contacts", made on first use); contacts saved without a folder
// (SaveContact, and every contact from before folders) are in it.

// DefaultContactFolder is the name the default folder is created with.
const DefaultContactFolder = "Contacts"

// ContactFolder is a folder of the address book.
type ContactFolder struct {
	ID       int64  `db:"id" json:"id"`
	ParentID int64  `db:"parent_id" json:"parentID"`
	Name     string `db:"name" json:"name"`
	Default  bool   `db:"is_default" json:"default"`
	// Contacts is how many contacts the folder holds (not counting its
	// sub-folders').
	Contacts int64 `db:"-" json:"contacts"`
}

// FiledContact is a contact with the folder it is in.
type FiledContact struct {
	Contact
	FolderID  int64 `db:"folder_id" json:"folderID"`
	UpdatedAt int64 `db:"updated_at" json:"updatedAt"`
}

func checkFolderName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || len(n) > 255 || !utf8.ValidString(n) {
		return "", fmt.Errorf("%w: folder name must be 1-255 bytes of UTF-8", ErrInvalid)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: folder name has a control character", ErrInvalid)
		}
	}
	return n, nil
}

// defaultContactFolder returns the id of the account's default folder,
// creating it on first use.
func (a *Account) defaultContactFolder(ctx context.Context) (int64, error) {
	var id int64
	q := a.s.rebind("SELECT id FROM contact_folders WHERE user_id = ? AND is_default = 1")
	err := notFound(a.s.db.GetContext(ctx, &id, q, a.userID))
	if !errors.Is(err, ErrNotFound) {
		return id, err
	}
	err = a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, c *change) error {
		// Another request may have made it since the read above.
		if err := notFound(tx.GetContext(ctx, &id, q, a.userID)); !errors.Is(err, ErrNotFound) {
			return err
		}
		res, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO contact_folders (user_id, parent_id, name, is_default, created_at) VALUES (?, 0, ?, 1, ?)"),
			a.userID, DefaultContactFolder, a.s.unix())
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		c.add(0, "contacts", 0, 0)
		return err
	})
	return id, err
}

// ContactFolders lists the account's address book folders by name, the
// default one included, with their contact counts.
func (a *Account) ContactFolders(ctx context.Context) ([]ContactFolder, error) {
	if err := a.ownerOnly(); err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	def, err := a.defaultContactFolder(ctx)
	if err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	var fs []ContactFolder
	if err := a.s.db.SelectContext(ctx, &fs, a.s.rebind("SELECT id, parent_id, name, is_default FROM contact_folders WHERE user_id = ? ORDER BY name, id"), a.userID); err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	var counts []struct {
		FolderID int64 `db:"folder_id"`
		N        int64 `db:"n"`
	}
	if err := a.s.db.SelectContext(ctx, &counts, a.s.rebind("SELECT folder_id, COUNT(*) AS n FROM contacts WHERE user_id = ? GROUP BY folder_id"), a.userID); err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	byID := map[int64]int64{}
	for _, c := range counts {
		id := c.FolderID
		if id == 0 {
			id = def
		}
		byID[id] += c.N
	}
	for i := range fs {
		fs[i].Contacts = byID[fs[i].ID]
	}
	return fs, nil
}

// contactFolder checks that id is one of the account's folders.
func (a *Account) contactFolder(ctx context.Context, q sqlx.QueryerContext, id int64) (ContactFolder, error) {
	var f ContactFolder
	err := sqlx.GetContext(ctx, q, &f, a.s.rebind("SELECT id, parent_id, name, is_default FROM contact_folders WHERE id = ? AND user_id = ?"), id, a.userID)
	if err != nil {
		return ContactFolder{}, fmt.Errorf("contact folder %d: %w", id, notFound(err))
	}
	return f, nil
}

// CreateContactFolder creates a folder under parentID (0: at the top).
func (a *Account) CreateContactFolder(ctx context.Context, parentID int64, name string) (ContactFolder, error) {
	if err := a.ownerOnly(); err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder: %w", err)
	}
	n, err := checkFolderName(name)
	if err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder: %w", err)
	}
	if _, err := a.defaultContactFolder(ctx); err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder: %w", err)
	}
	f := ContactFolder{ParentID: parentID, Name: n}
	err = a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, c *change) error {
		if parentID != 0 {
			if _, err := a.contactFolder(ctx, tx, parentID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO contact_folders (user_id, parent_id, name, is_default, created_at) VALUES (?, ?, ?, 0, ?)"),
			a.userID, parentID, n, a.s.unix())
		if err != nil {
			return err
		}
		f.ID, err = res.LastInsertId()
		c.add(0, "contacts", 0, 0)
		return err
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder %q: %w", n, err)
	}
	return f, nil
}

// RenameContactFolder gives a folder a new name in the same parent.
func (a *Account) RenameContactFolder(ctx context.Context, id int64, name string) error {
	n, err := checkFolderName(name)
	if err != nil {
		return fmt.Errorf("rename contact folder %d: %w", id, err)
	}
	return a.updateContactFolder(ctx, "rename", id, nil, "name", n)
}

// MoveContactFolder puts a folder under parentID (0: at the top). A
// folder cannot go under itself or one of its sub-folders.
func (a *Account) MoveContactFolder(ctx context.Context, id, parentID int64) error {
	return a.updateContactFolder(ctx, "move", id, func(tx *sqlx.Tx) error {
		// Walk up from the new parent: meeting id would make a cycle.
		for p, depth := parentID, 0; p != 0; depth++ {
			if p == id {
				return fmt.Errorf("%w: a folder cannot move under itself", ErrInvalid)
			}
			if depth > 100 {
				return fmt.Errorf("%w: folders nested too deep", ErrInvalid)
			}
			f, err := a.contactFolder(ctx, tx, p)
			if err != nil {
				return err
			}
			p = f.ParentID
		}
		return nil
	}, "parent_id", parentID)
}

// updateContactFolder sets one column of one of the account's folders,
// after check (when given) agreed, in the user's write transaction; a
// name already taken in the parent is ErrExists.
func (a *Account) updateContactFolder(ctx context.Context, verb string, id int64, check func(*sqlx.Tx) error, column string, value any) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("%s contact folder %d: %w", verb, id, err)
	}
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, c *change) error {
		if _, err := a.contactFolder(ctx, tx, id); err != nil {
			return err
		}
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, a.s.rebind("UPDATE contact_folders SET "+column+" = ? WHERE id = ? AND user_id = ?"), value, id, a.userID); err != nil {
			return err
		}
		c.add(0, "contacts", 0, 0)
		return nil
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return fmt.Errorf("%s contact folder %d: %w", verb, id, err)
	}
	return nil
}

// DeleteContactFolder deletes a folder without sub-folders, and the
// contacts in it. The default folder cannot be deleted.
func (a *Account) DeleteContactFolder(ctx context.Context, id int64) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("delete contact folder: %w", err)
	}
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, c *change) error {
		f, err := a.contactFolder(ctx, tx, id)
		if err != nil {
			return err
		}
		if f.Default {
			return fmt.Errorf("%w: the default address book cannot be deleted", ErrInvalid)
		}
		var kids int
		if err := tx.GetContext(ctx, &kids, a.s.rebind("SELECT COUNT(*) FROM contact_folders WHERE user_id = ? AND parent_id = ?"), a.userID, id); err != nil {
			return err
		}
		if kids > 0 {
			return fmt.Errorf("%w: the folder has %d sub-folders", ErrNotEmpty, kids)
		}
		for _, q := range []string{"DELETE FROM contacts WHERE user_id = ? AND folder_id = ?", "DELETE FROM contact_folders WHERE user_id = ? AND id = ?"} {
			if _, err := tx.ExecContext(ctx, a.s.rebind(q), a.userID, id); err != nil {
				return err
			}
		}
		c.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete contact folder %d: %w", id, err)
	}
	return nil
}

const filedColumns = "id, name, email, data, folder_id, updated_at"

// filed sets the folder of contacts kept without one to the default.
func filed(cs []FiledContact, def int64) {
	for i := range cs {
		if cs[i].FolderID == 0 {
			cs[i].FolderID = def
		}
	}
}

// ContactsIn lists the contacts of one folder (0: of every folder) by name.
func (a *Account) ContactsIn(ctx context.Context, folderID int64) ([]FiledContact, error) {
	if err := a.ownerOnly(); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	def, err := a.defaultContactFolder(ctx)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	q, args := "SELECT "+filedColumns+" FROM contacts WHERE user_id = ?", []any{a.userID}
	if folderID != 0 {
		f, err := a.contactFolder(ctx, a.s.db, folderID)
		if err != nil {
			return nil, fmt.Errorf("list contacts: %w", err)
		}
		if f.Default {
			q, args = q+" AND folder_id IN (0, ?)", append(args, folderID)
		} else {
			q, args = q+" AND folder_id = ?", append(args, folderID)
		}
	}
	cs := []FiledContact{}
	if err := a.s.db.SelectContext(ctx, &cs, a.s.rebind(q+" ORDER BY name, id"), args...); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	filed(cs, def)
	return cs, nil
}

// FiledContact returns one of the account's contacts with its folder.
func (a *Account) FiledContact(ctx context.Context, id int64) (FiledContact, error) {
	if err := a.ownerOnly(); err != nil {
		return FiledContact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	def, err := a.defaultContactFolder(ctx)
	if err != nil {
		return FiledContact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	var c FiledContact
	if err := a.s.db.GetContext(ctx, &c, a.s.rebind("SELECT "+filedColumns+" FROM contacts WHERE id = ? AND user_id = ?"), id, a.userID); err != nil {
		return FiledContact{}, fmt.Errorf("contact %d: %w", id, notFound(err))
	}
	cs := []FiledContact{c}
	filed(cs, def)
	return cs[0], nil
}

// SaveContactIn creates a contact in folderID (c.ID 0; folder 0: the
// default one) or replaces one of the account's, moving it to folderID
// unless that is 0.
func (a *Account) SaveContactIn(ctx context.Context, folderID int64, c Contact) (FiledContact, error) {
	if err := a.ownerOnly(); err != nil {
		return FiledContact{}, fmt.Errorf("save contact: %w", err)
	}
	if err := c.check(); err != nil {
		return FiledContact{}, err
	}
	def, err := a.defaultContactFolder(ctx)
	if err != nil {
		return FiledContact{}, fmt.Errorf("save contact: %w", err)
	}
	c.Email = strings.TrimSpace(c.Email)
	out := FiledContact{Contact: c, FolderID: folderID}
	err = a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		now := a.s.unix()
		out.UpdatedAt = now
		if folderID != 0 {
			if _, err := a.contactFolder(ctx, tx, folderID); err != nil {
				return err
			}
		}
		if c.ID == 0 {
			if out.FolderID == 0 {
				out.FolderID = def
			}
			res, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO contacts (user_id, name, email, data, folder_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
				a.userID, c.Name, c.Email, c.Data, out.FolderID, now, now)
			if err != nil {
				return err
			}
			out.ID, err = res.LastInsertId()
			ch.add(0, "contacts", 0, 0)
			return err
		}
		var cur int64
		if err := tx.GetContext(ctx, &cur, a.s.rebind("SELECT folder_id FROM contacts WHERE id = ? AND user_id = ?"), c.ID, a.userID); err != nil {
			return notFound(err)
		}
		if out.FolderID == 0 {
			out.FolderID = cur
		}
		if _, err := tx.ExecContext(ctx, a.s.rebind("UPDATE contacts SET name = ?, email = ?, data = ?, folder_id = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
			c.Name, c.Email, c.Data, out.FolderID, now, c.ID, a.userID); err != nil {
			return err
		}
		ch.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return FiledContact{}, fmt.Errorf("save contact: %w", err)
	}
	if out.FolderID == 0 {
		out.FolderID = def
	}
	return out, nil
}

// ownContacts checks, inside a transaction, that every id is one of the
// account's contacts: one that is not makes the whole call ErrNotFound,
// so nothing is done to the others either.
func (a *Account) ownContacts(ctx context.Context, tx *sqlx.Tx, ids []int64) ([]any, error) {
	if len(ids) == 0 || len(ids) > 1000 {
		return nil, fmt.Errorf("%w: 1 to 1000 contacts at a time", ErrInvalid)
	}
	seen := map[int64]bool{}
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			args = append(args, id)
		}
	}
	q, qa, err := sqlx.In("SELECT COUNT(*) FROM contacts WHERE user_id = ? AND id IN (?)", a.userID, args)
	if err != nil {
		return nil, err
	}
	var n int
	if err := tx.GetContext(ctx, &n, a.s.rebind(q), qa...); err != nil {
		return nil, err
	}
	if n != len(args) {
		return nil, ErrNotFound
	}
	return args, nil
}

// execOwnContacts runs query, whose last placeholder is "id IN (?)",
// for ids once every one of them is the account's (ownContacts).
func (a *Account) execOwnContacts(ctx context.Context, tx *sqlx.Tx, ids []int64, query string, args ...any) error {
	own, err := a.ownContacts(ctx, tx, ids)
	if err != nil {
		return err
	}
	q, qa, err := sqlx.In(query, append(args, own)...)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, a.s.rebind(q), qa...)
	return err
}

// MoveContacts puts contacts into another of the account's folders.
func (a *Account) MoveContacts(ctx context.Context, ids []int64, folderID int64) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("move contacts: %w", err)
	}
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		if _, err := a.contactFolder(ctx, tx, folderID); err != nil {
			return err
		}
		if err := a.execOwnContacts(ctx, tx, ids, "UPDATE contacts SET folder_id = ?, updated_at = ? WHERE user_id = ? AND id IN (?)", folderID, a.s.unix(), a.userID); err != nil {
			return err
		}
		ch.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("move contacts: %w", err)
	}
	return nil
}

// CopyContacts copies contacts into one of the account's folders and
// returns the copies' ids, in the order of ids.
func (a *Account) CopyContacts(ctx context.Context, ids []int64, folderID int64) ([]int64, error) {
	if err := a.ownerOnly(); err != nil {
		return nil, fmt.Errorf("copy contacts: %w", err)
	}
	var out []int64
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		out = nil
		if _, err := a.contactFolder(ctx, tx, folderID); err != nil {
			return err
		}
		if _, err := a.ownContacts(ctx, tx, ids); err != nil {
			return err
		}
		now := a.s.unix()
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, a.s.rebind(`INSERT INTO contacts (user_id, name, email, data, folder_id, created_at, updated_at)
				SELECT user_id, name, email, data, ?, ?, ? FROM contacts WHERE id = ? AND user_id = ?`), folderID, now, now, id, a.userID)
			if err != nil {
				return err
			}
			nid, err := res.LastInsertId()
			if err != nil {
				return err
			}
			out = append(out, nid)
		}
		ch.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy contacts: %w", err)
	}
	return out, nil
}

// DeleteContacts removes contacts of the account; if any id is not one
// of them, none is removed (ErrNotFound).
func (a *Account) DeleteContacts(ctx context.Context, ids []int64) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("delete contacts: %w", err)
	}
	err := a.s.writeUser(ctx, a.userID, func(tx *sqlx.Tx, ch *change) error {
		if err := a.execOwnContacts(ctx, tx, ids, "DELETE FROM contacts WHERE user_id = ? AND id IN (?)", a.userID); err != nil {
			return err
		}
		ch.add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete contacts: %w", err)
	}
	return nil
}
