package contacts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/internal/spine"
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
		return "", fmt.Errorf("%w: folder name must be 1-255 bytes of UTF-8", store.ErrInvalid)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: folder name has a control character", store.ErrInvalid)
		}
	}
	return n, nil
}

// defaultContactFolder returns the id of the account's default folder,
// creating it on first use.
func (b *Book) defaultContactFolder(ctx context.Context) (int64, error) {
	var id int64
	q := b.sp.Rebind("SELECT id FROM contact_folders WHERE user_id = ? AND is_default = 1")
	err := spine.NotFound(b.sp.DB.GetContext(ctx, &id, q, b.userID))
	if !errors.Is(err, store.ErrNotFound) {
		return id, err
	}
	err = b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		// Another request may have made it since the read above.
		if err := spine.NotFound(tx.GetContext(ctx, &id, q, b.userID)); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		res, err := tx.ExecContext(ctx, b.sp.Rebind("INSERT INTO contact_folders (user_id, parent_id, name, is_default, created_at) VALUES (?, 0, ?, 1, ?)"),
			b.userID, DefaultContactFolder, b.sp.Unix())
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		c.Add(0, "contacts", 0, 0)
		return err
	})
	return id, err
}

// ContactFolders lists the account's address book folders by name, the
// default one included, with their contact counts.
func (b *Book) ContactFolders(ctx context.Context) ([]ContactFolder, error) {
	if err := b.ownerOnly(); err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	def, err := b.defaultContactFolder(ctx)
	if err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	var fs []ContactFolder
	if err := b.sp.DB.SelectContext(ctx, &fs, b.sp.Rebind("SELECT id, parent_id, name, is_default FROM contact_folders WHERE user_id = ? ORDER BY name, id"), b.userID); err != nil {
		return nil, fmt.Errorf("list contact folders: %w", err)
	}
	var counts []struct {
		FolderID int64 `db:"folder_id"`
		N        int64 `db:"n"`
	}
	if err := b.sp.DB.SelectContext(ctx, &counts, b.sp.Rebind("SELECT folder_id, COUNT(*) AS n FROM contacts WHERE user_id = ? GROUP BY folder_id"), b.userID); err != nil {
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
func (b *Book) contactFolder(ctx context.Context, q sqlx.QueryerContext, id int64) (ContactFolder, error) {
	var f ContactFolder
	err := sqlx.GetContext(ctx, q, &f, b.sp.Rebind("SELECT id, parent_id, name, is_default FROM contact_folders WHERE id = ? AND user_id = ?"), id, b.userID)
	if err != nil {
		return ContactFolder{}, fmt.Errorf("contact folder %d: %w", id, spine.NotFound(err))
	}
	return f, nil
}

// CreateContactFolder creates a folder under parentID (0: at the top).
func (b *Book) CreateContactFolder(ctx context.Context, parentID int64, name string) (ContactFolder, error) {
	if err := b.ownerOnly(); err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder: %w", err)
	}
	n, err := checkFolderName(name)
	if err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder: %w", err)
	}
	if _, err := b.defaultContactFolder(ctx); err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder: %w", err)
	}
	f := ContactFolder{ParentID: parentID, Name: n}
	err = b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		if parentID != 0 {
			if _, err := b.contactFolder(ctx, tx, parentID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, b.sp.Rebind("INSERT INTO contact_folders (user_id, parent_id, name, is_default, created_at) VALUES (?, ?, ?, 0, ?)"),
			b.userID, parentID, n, b.sp.Unix())
		if err != nil {
			return err
		}
		f.ID, err = res.LastInsertId()
		c.Add(0, "contacts", 0, 0)
		return err
	})
	if sqldb.IsDuplicate(err) {
		err = store.ErrExists
	}
	if err != nil {
		return ContactFolder{}, fmt.Errorf("create contact folder %q: %w", n, err)
	}
	return f, nil
}

// RenameContactFolder gives a folder a new name in the same parent.
func (b *Book) RenameContactFolder(ctx context.Context, id int64, name string) error {
	n, err := checkFolderName(name)
	if err != nil {
		return fmt.Errorf("rename contact folder %d: %w", id, err)
	}
	return b.updateContactFolder(ctx, "rename", id, nil, "name", n)
}

// MoveContactFolder puts a folder under parentID (0: at the top). A
// folder cannot go under itself or one of its sub-folders.
func (b *Book) MoveContactFolder(ctx context.Context, id, parentID int64) error {
	return b.updateContactFolder(ctx, "move", id, func(tx *sqlx.Tx) error {
		// Walk up from the new parent: meeting id would make a cycle.
		for p, depth := parentID, 0; p != 0; depth++ {
			if p == id {
				return fmt.Errorf("%w: a folder cannot move under itself", store.ErrInvalid)
			}
			if depth > 100 {
				return fmt.Errorf("%w: folders nested too deep", store.ErrInvalid)
			}
			f, err := b.contactFolder(ctx, tx, p)
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
// name already taken in the parent is store.ErrExists.
func (b *Book) updateContactFolder(ctx context.Context, verb string, id int64, check func(*sqlx.Tx) error, column string, value any) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("%s contact folder %d: %w", verb, id, err)
	}
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		if _, err := b.contactFolder(ctx, tx, id); err != nil {
			return err
		}
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, b.sp.Rebind("UPDATE contact_folders SET "+column+" = ? WHERE id = ? AND user_id = ?"), value, id, b.userID); err != nil {
			return err
		}
		c.Add(0, "contacts", 0, 0)
		return nil
	})
	if sqldb.IsDuplicate(err) {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("%s contact folder %d: %w", verb, id, err)
	}
	return nil
}

// DeleteContactFolder deletes a folder without sub-folders, and the
// contacts in it. The default folder cannot be deleted.
func (b *Book) DeleteContactFolder(ctx context.Context, id int64) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("delete contact folder: %w", err)
	}
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		f, err := b.contactFolder(ctx, tx, id)
		if err != nil {
			return err
		}
		if f.Default {
			return fmt.Errorf("%w: the default address book cannot be deleted", store.ErrInvalid)
		}
		var kids int
		if err := tx.GetContext(ctx, &kids, b.sp.Rebind("SELECT COUNT(*) FROM contact_folders WHERE user_id = ? AND parent_id = ?"), b.userID, id); err != nil {
			return err
		}
		if kids > 0 {
			return fmt.Errorf("%w: the folder has %d sub-folders", store.ErrNotEmpty, kids)
		}
		for _, q := range []string{"DELETE FROM contacts WHERE user_id = ? AND folder_id = ?", "DELETE FROM contact_folders WHERE user_id = ? AND id = ?"} {
			if _, err := tx.ExecContext(ctx, b.sp.Rebind(q), b.userID, id); err != nil {
				return err
			}
		}
		c.Add(0, "contacts", 0, 0)
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
func (b *Book) ContactsIn(ctx context.Context, folderID int64) ([]FiledContact, error) {
	if err := b.ownerOnly(); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	def, err := b.defaultContactFolder(ctx)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	q, args := "SELECT "+filedColumns+" FROM contacts WHERE user_id = ?", []any{b.userID}
	if folderID != 0 {
		f, err := b.contactFolder(ctx, b.sp.DB, folderID)
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
	if err := b.sp.DB.SelectContext(ctx, &cs, b.sp.Rebind(q+" ORDER BY name, id"), args...); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	filed(cs, def)
	return cs, nil
}

// FiledContact returns one of the account's contacts with its folder.
func (b *Book) FiledContact(ctx context.Context, id int64) (FiledContact, error) {
	if err := b.ownerOnly(); err != nil {
		return FiledContact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	def, err := b.defaultContactFolder(ctx)
	if err != nil {
		return FiledContact{}, fmt.Errorf("contact %d: %w", id, err)
	}
	var c FiledContact
	if err := b.sp.DB.GetContext(ctx, &c, b.sp.Rebind("SELECT "+filedColumns+" FROM contacts WHERE id = ? AND user_id = ?"), id, b.userID); err != nil {
		return FiledContact{}, fmt.Errorf("contact %d: %w", id, spine.NotFound(err))
	}
	cs := []FiledContact{c}
	filed(cs, def)
	return cs[0], nil
}

// SaveContactIn creates a contact in folderID (c.ID 0; folder 0: the
// default one) or replaces one of the account's, moving it to folderID
// unless that is 0.
func (b *Book) SaveContactIn(ctx context.Context, folderID int64, c Contact) (FiledContact, error) {
	if err := b.ownerOnly(); err != nil {
		return FiledContact{}, fmt.Errorf("save contact: %w", err)
	}
	if err := c.check(); err != nil {
		return FiledContact{}, err
	}
	def, err := b.defaultContactFolder(ctx)
	if err != nil {
		return FiledContact{}, fmt.Errorf("save contact: %w", err)
	}
	c.Email = strings.TrimSpace(c.Email)
	out := FiledContact{Contact: c, FolderID: folderID}
	err = b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		now := b.sp.Unix()
		out.UpdatedAt = now
		if folderID != 0 {
			if _, err := b.contactFolder(ctx, tx, folderID); err != nil {
				return err
			}
		}
		if c.ID == 0 {
			if out.FolderID == 0 {
				out.FolderID = def
			}
			res, err := tx.ExecContext(ctx, b.sp.Rebind("INSERT INTO contacts (user_id, name, email, data, folder_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
				b.userID, c.Name, c.Email, c.Data, out.FolderID, now, now)
			if err != nil {
				return err
			}
			out.ID, err = res.LastInsertId()
			ch.Add(0, "contacts", 0, 0)
			return err
		}
		var cur int64
		if err := tx.GetContext(ctx, &cur, b.sp.Rebind("SELECT folder_id FROM contacts WHERE id = ? AND user_id = ?"), c.ID, b.userID); err != nil {
			return spine.NotFound(err)
		}
		if out.FolderID == 0 {
			out.FolderID = cur
		}
		if _, err := tx.ExecContext(ctx, b.sp.Rebind("UPDATE contacts SET name = ?, email = ?, data = ?, folder_id = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
			c.Name, c.Email, c.Data, out.FolderID, now, c.ID, b.userID); err != nil {
			return err
		}
		ch.Add(0, "contacts", 0, 0)
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
// account's contacts: one that is not makes the whole call store.ErrNotFound,
// so nothing is done to the others either.
func (b *Book) ownContacts(ctx context.Context, tx *sqlx.Tx, ids []int64) ([]any, error) {
	if len(ids) == 0 || len(ids) > 1000 {
		return nil, fmt.Errorf("%w: 1 to 1000 contacts at a time", store.ErrInvalid)
	}
	seen := map[int64]bool{}
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			args = append(args, id)
		}
	}
	q, qa, err := sqlx.In("SELECT COUNT(*) FROM contacts WHERE user_id = ? AND id IN (?)", b.userID, args)
	if err != nil {
		return nil, err
	}
	var n int
	if err := tx.GetContext(ctx, &n, b.sp.Rebind(q), qa...); err != nil {
		return nil, err
	}
	if n != len(args) {
		return nil, store.ErrNotFound
	}
	return args, nil
}

// execOwnContacts runs query, whose last placeholder is "id IN (?)",
// for ids once every one of them is the account's (ownContacts).
func (b *Book) execOwnContacts(ctx context.Context, tx *sqlx.Tx, ids []int64, query string, args ...any) error {
	own, err := b.ownContacts(ctx, tx, ids)
	if err != nil {
		return err
	}
	q, qa, err := sqlx.In(query, append(args, own)...)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, b.sp.Rebind(q), qa...)
	return err
}

// MoveContacts puts contacts into another of the account's folders.
func (b *Book) MoveContacts(ctx context.Context, ids []int64, folderID int64) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("move contacts: %w", err)
	}
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		if _, err := b.contactFolder(ctx, tx, folderID); err != nil {
			return err
		}
		if err := b.execOwnContacts(ctx, tx, ids, "UPDATE contacts SET folder_id = ?, updated_at = ? WHERE user_id = ? AND id IN (?)", folderID, b.sp.Unix(), b.userID); err != nil {
			return err
		}
		ch.Add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("move contacts: %w", err)
	}
	return nil
}

// CopyContacts copies contacts into one of the account's folders and
// returns the copies' ids, in the order of ids.
func (b *Book) CopyContacts(ctx context.Context, ids []int64, folderID int64) ([]int64, error) {
	if err := b.ownerOnly(); err != nil {
		return nil, fmt.Errorf("copy contacts: %w", err)
	}
	var out []int64
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		out = nil
		if _, err := b.contactFolder(ctx, tx, folderID); err != nil {
			return err
		}
		if _, err := b.ownContacts(ctx, tx, ids); err != nil {
			return err
		}
		now := b.sp.Unix()
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, b.sp.Rebind(`INSERT INTO contacts (user_id, name, email, data, folder_id, created_at, updated_at)
				SELECT user_id, name, email, data, ?, ?, ? FROM contacts WHERE id = ? AND user_id = ?`), folderID, now, now, id, b.userID)
			if err != nil {
				return err
			}
			nid, err := res.LastInsertId()
			if err != nil {
				return err
			}
			out = append(out, nid)
		}
		ch.Add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy contacts: %w", err)
	}
	return out, nil
}

// DeleteContacts removes contacts of the account; if any id is not one
// of them, none is removed (store.ErrNotFound).
func (b *Book) DeleteContacts(ctx context.Context, ids []int64) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("delete contacts: %w", err)
	}
	err := b.sp.WriteUser(ctx, b.userID, func(tx *sqlx.Tx, ch *spine.Change) error {
		if err := b.execOwnContacts(ctx, tx, ids, "DELETE FROM contacts WHERE user_id = ? AND id IN (?)", b.userID); err != nil {
			return err
		}
		ch.Add(0, "contacts", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete contacts: %w", err)
	}
	return nil
}
