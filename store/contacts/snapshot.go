package contacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
)

// Snapshot is what a book holds at one moment, as the webmail's states
// record it (store/webmail): enough to tell later what was created,
// updated or destroyed, not the contacts themselves.
type Snapshot struct {
	// Folders by id; their Contacts are not counted.
	Folders []ContactFolder
	// Contacts by id.
	Contacts []ContactVersion
	// Settings is a digest of every setting: it changes when one does.
	// States already stored hold it, so it must not change for the same
	// settings.
	Settings string
}

// ContactVersion is a contact as a snapshot records it: which one, when
// it last changed (Unix seconds) and the folder it is in (0: the default).
type ContactVersion struct {
	ID        int64 `db:"id"`
	UpdatedAt int64 `db:"updated_at"`
	FolderID  int64 `db:"folder_id"`
}

// SnapshotIn reads the book's snapshot through q: the database, or a
// transaction that reads it at one user serial with the mailboxes
// (store.Account.MailboxesIn).
func (b *Book) SnapshotIn(ctx context.Context, k spine.Key, q sqlx.QueryerContext) (Snapshot, error) {
	k.Check()
	if err := b.ownerOnly(); err != nil {
		return Snapshot{}, fmt.Errorf("contacts snapshot: %w", err)
	}
	var snap Snapshot
	if err := sqlx.SelectContext(ctx, q, &snap.Folders, b.sp.Rebind("SELECT id, parent_id, name, is_default FROM contact_folders WHERE user_id = ? ORDER BY id"), b.userID); err != nil {
		return Snapshot{}, fmt.Errorf("contacts snapshot: folders: %w", err)
	}
	if err := sqlx.SelectContext(ctx, q, &snap.Contacts, b.sp.Rebind("SELECT id, updated_at, folder_id FROM contacts WHERE user_id = ? ORDER BY id"), b.userID); err != nil {
		return Snapshot{}, fmt.Errorf("contacts snapshot: contacts: %w", err)
	}
	var kv []struct {
		Name  string `db:"name"`
		Value string `db:"value"`
	}
	if err := sqlx.SelectContext(ctx, q, &kv, b.sp.Rebind("SELECT name, value FROM settings WHERE user_id = ? ORDER BY name"), b.userID); err != nil {
		return Snapshot{}, fmt.Errorf("contacts snapshot: settings: %w", err)
	}
	// Each name and value with its length before it, so that no two sets
	// of settings run together into the same bytes.
	h := sha256.New()
	for _, r := range kv {
		fmt.Fprintf(h, "%d:%s%d:%s", len(r.Name), r.Name, len(r.Value), r.Value)
	}
	snap.Settings = hex.EncodeToString(h.Sum(nil)[:16])
	return snap, nil
}
