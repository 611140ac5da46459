package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// Delimiter separates the levels of a mailbox name.
const Delimiter = "/"

// Account is one user's mail. Every query it makes is scoped to that user.
// For a secure user, reading message bodies and metadata needs the user's
// identity, unlocked at login; writing never does.
type Account struct {
	s      *Store
	userID int64
	key    *crypt.Identity
	// view is set when the mail is another user's, seen through a share
	// (Shared): each method checks the viewer's rights first.
	view *viewer
}

// Account returns the mail of userID; key is the unlocked identity of a
// secure user, or nil.
func (s *Store) Account(userID int64, key *crypt.Identity) *Account {
	return &Account{s: s, userID: userID, key: key}
}

// UserID returns the account's user: the owner of the mail (ViewerID is
// who acts on a shared account).
func (a *Account) UserID() int64 { return a.userID }

// Mailbox is a folder of messages.
type Mailbox struct {
	ID            int64  `db:"id" json:"id"`
	ParentID      int64  `db:"parent_id" json:"parentID"`
	Name          string `db:"name" json:"name"`
	UIDValidity   uint32 `db:"uidvalidity" json:"uidValidity"`
	UIDNext       uint32 `db:"uidnext" json:"uidNext"`
	HighestModSeq uint64 `db:"highest_modseq" json:"highestModSeq"`
	SpecialUse    string `db:"special_use" json:"specialUse"`
	Subscribed    bool   `db:"subscribed" json:"subscribed"`
	Messages      int64  `db:"message_count" json:"messages"`
	Unseen        int64  `db:"unseen_count" json:"unseen"`
	Size          int64  `db:"size_bytes" json:"size"`
	// RecentUID is where the UIDs no session has claimed as recent start
	// (RFC 3501 2.3.2; ClaimRecent).
	RecentUID uint32 `db:"recent_uid" json:"-"`
}

const mailboxColumns = `id, COALESCE(parent_id, 0) AS parent_id, name, uidvalidity, uidnext, highest_modseq,
	special_use, subscribed, message_count, unseen_count, size_bytes, recent_uid`

// NormalizeMailboxName checks a mailbox name and returns it in the form it
// is stored: levels separated by "/", and INBOX in upper case whatever case
// it was given in (RFC 9051 5.1: INBOX is case-insensitive).
func NormalizeMailboxName(name string) (string, error) {
	if name == "" || len(name) > 500 || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: mailbox name must be 1-500 bytes of UTF-8", ErrInvalid)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: mailbox name has a control character", ErrInvalid)
		}
	}
	parts := strings.Split(name, Delimiter)
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: mailbox name %q has an empty level", ErrInvalid, name)
		}
		// MySQL compares VARCHARs ignoring trailing spaces, SQLite does
		// not; names that differ only there would be one mailbox on one
		// and two on the other.
		if strings.TrimSpace(p) != p {
			return "", fmt.Errorf("%w: mailbox name %q has a level starting or ending with a space", ErrInvalid, name)
		}
		if i == 0 && strings.EqualFold(p, "INBOX") {
			parts[0] = "INBOX"
		}
	}
	return strings.Join(parts, Delimiter), nil
}

// Mailboxes lists the account's mailboxes by name.
func (a *Account) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	var ms []Mailbox
	err := a.s.db.SelectContext(ctx, &ms, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE user_id = ? ORDER BY name"), a.userID)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	if ms, err = a.viewMailboxes(ctx, ms); err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	return ms, nil
}

// Mailbox returns one of the account's mailboxes by id.
func (a *Account) Mailbox(ctx context.Context, id int64) (Mailbox, error) {
	var m Mailbox
	err := a.s.db.Get(ctx, &m, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE id = ? AND user_id = ?"), id, a.userID)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %d: %w", id, notFound(err))
	}
	if m, err = a.viewMailbox(ctx, m); err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %d: %w", id, err)
	}
	return m, nil
}

// newMailboxName checks the name a mailbox is to be given (created or
// renamed to), normalized. Besides what any name must be, no level may be
// "." or ".." (which clients and the tools that map mailboxes to
// directories take for the current and parent level), and no name may
// hold "*" or "%": they are LIST's wildcards (RFC 9051 6.3.9), so such a
// name could not be listed on its own. Names made before this rule still
// open; only new ones are refused.
func newMailboxName(name string) (string, error) {
	n, err := NormalizeMailboxName(name)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(n, "*%") {
		return "", fmt.Errorf("%w: mailbox name %q holds a wildcard (* or %%)", ErrInvalid, n)
	}
	for _, p := range strings.Split(n, Delimiter) {
		if p == "." || p == ".." {
			return "", fmt.Errorf("%w: mailbox name %q has a level . or ..", ErrInvalid, n)
		}
	}
	return n, nil
}

// MailboxByName returns one of the account's mailboxes by name.
func (a *Account) MailboxByName(ctx context.Context, name string) (Mailbox, error) {
	n, err := NormalizeMailboxName(name)
	if err != nil {
		return Mailbox{}, err
	}
	var m Mailbox
	err = a.s.db.GetContext(ctx, &m, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE user_id = ? AND name = ?"), a.userID, n)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %q: %w", n, notFound(err))
	}
	if m, err = a.viewMailbox(ctx, m); err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %q: %w", n, err)
	}
	return m, nil
}

// SpecialMailbox returns the id of the user's mailbox of a special use
// (RFC 6154: `\Sent`, `\Drafts`...), else of the one named name, making
// it with that use when there is neither: where a sent message's copy or
// a draft goes.
func (a *Account) SpecialMailbox(ctx context.Context, use, name string) (int64, error) {
	ms, err := a.Mailboxes(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range ms {
		if m.SpecialUse == use {
			return m.ID, nil
		}
	}
	for _, m := range ms {
		if m.Name == name {
			return m.ID, nil
		}
	}
	m, err := a.CreateMailbox(ctx, name, use)
	return m.ID, err
}

// CreateMailbox creates a mailbox and any missing parents (RFC 9051 6.3.4).
func (a *Account) CreateMailbox(ctx context.Context, name, specialUse string) (Mailbox, error) {
	n, err := newMailboxName(name)
	if err != nil {
		return Mailbox{}, err
	}
	switch specialUse {
	case "", `\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`:
	default:
		return Mailbox{}, fmt.Errorf("create mailbox %q: %w: unknown special use %q", n, ErrInvalid, specialUse)
	}
	if err := a.needParent(ctx, n); err != nil {
		return Mailbox{}, fmt.Errorf("create mailbox %q: %w", n, err)
	}
	var id int64
	err = a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		if err := a.nameFree(ctx, tx, n); err != nil {
			return err
		}
		parent, err := a.mkParents(ctx, tx, c, n)
		if err != nil {
			return err
		}
		if id, err = a.s.insertMailbox(ctx, tx, a.userID, parent, n, specialUse); err != nil {
			return err
		}
		c.Add(id, "mailbox", 0, 0)
		return nil
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return Mailbox{}, fmt.Errorf("create mailbox %q: %w", n, err)
	}
	return a.Mailbox(ctx, id)
}

// nameFree returns ErrExists when the account has a mailbox called name.
func (a *Account) nameFree(ctx context.Context, tx *sqlx.Tx, name string) error {
	var exists int
	if err := tx.GetContext(ctx, &exists, a.s.rebind("SELECT COUNT(*) FROM mailboxes WHERE user_id = ? AND name = ?"), a.userID, name); err != nil {
		return err
	}
	if exists > 0 {
		return ErrExists
	}
	return nil
}

// mkParents creates the missing ancestors of name, as CREATE and RENAME
// do (RFC 9051 6.3.4, 6.3.6), and returns the id of name's parent, 0 for
// a top-level name.
func (a *Account) mkParents(ctx context.Context, tx *sqlx.Tx, c *spine.Change, name string) (int64, error) {
	levels := strings.Split(name, Delimiter)
	var parent int64
	for i := 0; i < len(levels)-1; i++ {
		path := strings.Join(levels[:i+1], Delimiter)
		var id int64
		err := notFound(tx.GetContext(ctx, &id, a.s.rebind("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?"), a.userID, path))
		if errors.Is(err, ErrNotFound) {
			if id, err = a.s.insertMailbox(ctx, tx, a.userID, parent, path, ""); err == nil {
				c.Add(id, "mailbox", 0, 0)
			}
		}
		if err != nil {
			return 0, err
		}
		parent = id
	}
	return parent, nil
}

// insertMailbox adds one mailbox row. Its UIDVALIDITY is derived from its
// row id, which is never reused, so a mailbox deleted and created again
// under the same name gets a new UIDVALIDITY as RFC 9051 2.3.1.1 requires.
func (s *Store) insertMailbox(ctx context.Context, tx *sqlx.Tx, userID, parentID int64, name, specialUse string) (int64, error) {
	// A new mailbox's keyword list is known (empty); only mailboxes from
	// before the column have theirs gathered on first use (Keywords).
	// Prepared once (TxExec): a bulk import creates six for every user.
	res, err := s.db.TxExec(ctx, tx, s.rebind(`INSERT INTO mailboxes (user_id, parent_id, name, special_use, keywords, created_at)
		VALUES (?, ?, ?, ?, '', ?)`), userID, parentRef(parentID), name, specialUse, s.unix())
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	uv := uint32(id)
	if uv == 0 {
		uv = 1
	}
	if _, err := s.db.TxExec(ctx, tx, s.rebind("UPDATE mailboxes SET uidvalidity = ? WHERE id = ?"), uv, id); err != nil {
		return 0, err
	}
	if parentID != 0 {
		if err := s.inheritGrants(ctx, tx, parentID, id); err != nil {
			return 0, err
		}
	}
	// The new mailbox starts subscribed: a subscription its name kept
	// from a deleted mailbox is its own now.
	if _, err := s.db.TxExec(ctx, tx, s.rebind("DELETE FROM lost_subscriptions WHERE user_id = ? AND name = ?"), userID, name); err != nil {
		return 0, err
	}
	return id, nil
}

// parentRef is a parent id for SQL: NULL for a top-level mailbox.
func parentRef(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// RenameMailbox renames a mailbox and its children; missing parents of the
// new name are created. INBOX cannot be renamed this way.
func (a *Account) RenameMailbox(ctx context.Context, id int64, newName string) error {
	n, err := newMailboxName(newName)
	if err != nil {
		return err
	}
	if _, err := a.need(ctx, id, RightDeleteMailbox); err != nil {
		return fmt.Errorf("rename mailbox %d: %w", id, err)
	}
	if err := a.needParent(ctx, n); err != nil {
		return fmt.Errorf("rename mailbox %d to %q: %w", id, n, err)
	}
	err = a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		var old Mailbox
		if err := tx.GetContext(ctx, &old, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE id = ? AND user_id = ?"), id, a.userID); err != nil {
			return notFound(err)
		}
		if old.Name == "INBOX" || n == "INBOX" {
			return fmt.Errorf("%w: INBOX cannot be renamed", ErrInvalid)
		}
		if n == old.Name {
			return nil
		}
		if strings.HasPrefix(n, old.Name+Delimiter) {
			return fmt.Errorf("%w: a mailbox cannot move under itself", ErrInvalid)
		}
		if err := a.nameFree(ctx, tx, n); err != nil {
			return err
		}
		parent, err := a.mkParents(ctx, tx, c, n)
		if err != nil {
			return err
		}
		var candidates []Mailbox
		if err := tx.SelectContext(ctx, &candidates, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE user_id = ? AND name LIKE ? ESCAPE '!'"),
			a.userID, likePrefix(old.Name+Delimiter)); err != nil {
			return err
		}
		// SQLite's LIKE ignores ASCII case where MySQL's binary collation
		// does not: the index narrows, the exact test decides.
		var children []Mailbox
		for _, m := range candidates {
			if strings.HasPrefix(m.Name, old.Name+Delimiter) {
				children = append(children, m)
			}
		}
		if _, err := tx.ExecContext(ctx, a.s.rebind("UPDATE mailboxes SET name = ?, parent_id = ? WHERE id = ?"), n, parentRef(parent), id); err != nil {
			return err
		}
		for _, ch := range children {
			if _, err := tx.ExecContext(ctx, a.s.rebind("UPDATE mailboxes SET name = ? WHERE id = ?"), n+strings.TrimPrefix(ch.Name, old.Name), ch.ID); err != nil {
				return err
			}
			c.Add(ch.ID, "mailbox", 0, 0)
		}
		c.Add(id, "mailbox", 0, 0)
		return nil
	})
	if sqldb.IsDuplicate(err) {
		err = ErrExists
	}
	if err != nil {
		return fmt.Errorf("rename mailbox %d to %q: %w", id, n, err)
	}
	return nil
}

// likePrefix returns a LIKE pattern, for use with ESCAPE '!', matching
// strings that start with p. '!' is the escape character because a
// backslash would itself need escaping in MySQL's string literals.
func likePrefix(p string) string {
	r := strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`)
	return r.Replace(p) + "%"
}

// DeleteMailbox deletes an empty-of-children mailbox and its messages.
// INBOX cannot be deleted; a mailbox with children is refused with
// ErrNotEmpty (delete the children first).
func (a *Account) DeleteMailbox(ctx context.Context, id int64) error {
	if _, err := a.need(ctx, id, RightDeleteMailbox); err != nil {
		return fmt.Errorf("delete mailbox %d: %w", id, err)
	}
	var doomed []deleted
	err := a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		var m Mailbox
		if err := tx.GetContext(ctx, &m, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE id = ? AND user_id = ?"+a.s.db.ForUpdate()), id, a.userID); err != nil {
			return notFound(err)
		}
		if m.Name == "INBOX" {
			return fmt.Errorf("%w: INBOX cannot be deleted", ErrInvalid)
		}
		var kids int
		if err := tx.GetContext(ctx, &kids, a.s.rebind("SELECT COUNT(*) FROM mailboxes WHERE user_id = ? AND parent_id = ?"), a.userID, id); err != nil {
			return err
		}
		if kids > 0 {
			return fmt.Errorf("%w: the mailbox has %d child mailboxes", ErrNotEmpty, kids)
		}
		rows, err := a.selectRows(ctx, tx, id, UIDSet(nil))
		if err != nil {
			return err
		}
		if doomed, err = a.deleteRows(ctx, tx, c, m.ID, rows, false); err != nil {
			return err
		}
		for _, q := range []string{"DELETE FROM expunged WHERE mailbox_id = ?", "DELETE FROM mailboxes WHERE id = ?"} {
			if _, err := tx.ExecContext(ctx, a.s.rebind(q), id); err != nil {
				return err
			}
		}
		// Its subscription outlives it (RFC 3501 6.3.6), unless this is
		// another user's mailbox seen through a share.
		if m.Subscribed && a.view == nil {
			if err := a.keepSubscription(ctx, tx, m.Name); err != nil {
				return err
			}
		}
		c.Add(id, "mailbox", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete mailbox %d: %w", id, err)
	}
	a.s.sp.RemoveBlobs(ctx, doomed)
	return nil
}

// keepSubscription records a subscribed name whose mailbox is going.
func (a *Account) keepSubscription(ctx context.Context, tx *sqlx.Tx, name string) error {
	for _, q := range []string{"DELETE FROM lost_subscriptions WHERE user_id = ? AND name = ?",
		"INSERT INTO lost_subscriptions (user_id, name) VALUES (?, ?)"} {
		if _, err := tx.ExecContext(ctx, a.s.rebind(q), a.userID, name); err != nil {
			return err
		}
	}
	return nil
}

// LostSubscriptions lists, by name, the subscriptions of the user's own
// that outlived their mailboxes (RFC 3501 6.3.6: a server must not drop a
// name from the subscriptions because its mailbox is gone). None through
// a share.
func (a *Account) LostSubscriptions(ctx context.Context) ([]string, error) {
	if a.view != nil {
		return nil, nil
	}
	var names []string
	if err := a.s.db.SelectContext(ctx, &names, a.s.rebind("SELECT name FROM lost_subscriptions WHERE user_id = ? ORDER BY name"), a.userID); err != nil {
		return nil, fmt.Errorf("list lost subscriptions: %w", err)
	}
	return names, nil
}

// DropLostSubscription unsubscribes a name whose mailbox is gone
// (UNSUBSCRIBE, RFC 9051 6.3.8). ErrNotFound if it is not subscribed.
func (a *Account) DropLostSubscription(ctx context.Context, name string) error {
	n, err := NormalizeMailboxName(name)
	if err != nil {
		return err
	}
	if a.view != nil {
		return fmt.Errorf("unsubscribe %q: %w", n, ErrNotFound)
	}
	err = a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		res, err := tx.ExecContext(ctx, a.s.rebind("DELETE FROM lost_subscriptions WHERE user_id = ? AND name = ?"), a.userID, n)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unsubscribe %q: %w", n, err)
	}
	return nil
}

// Subscribe sets whether a mailbox is subscribed (RFC 9051 6.3.7).
func (a *Account) Subscribe(ctx context.Context, id int64, on bool) error {
	if a.view != nil {
		if err := a.subscribeShared(ctx, id, on); err != nil {
			return fmt.Errorf("subscribe mailbox %d: %w", id, err)
		}
		return nil
	}
	err := a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		res, err := tx.ExecContext(ctx, a.s.rebind("UPDATE mailboxes SET subscribed = ? WHERE id = ? AND user_id = ?"), on, id, a.userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		c.Add(id, "mailbox", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("subscribe mailbox %d: %w", id, err)
	}
	return nil
}
