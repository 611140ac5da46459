package webmail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/contacts"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// State strings for the webmail (JMAP's idea, RFC 8620 5.2): every
// listing returns the account's state, and ChangesSince says what was
// created, updated and destroyed after it. A state is the user's serial,
// which every write to the user's mail bumps; behind it the store keeps a
// snapshot of what the account held at that serial (the mailboxes with
// their UIDNEXT and highest modseq, the contact folders, each contact's
// time, a digest of the settings). Messages changed since are then the
// rows with a higher modseq, and those destroyed the expunged tombstones
// (RFC 7162's way), so a snapshot stays small however much mail there is.

// Errors of ChangesSince: the client must load everything again.
var (
	ErrStateUnknown   = errors.New("unknown or expired state")
	ErrTooManyChanges = errors.New("too many changes since the state")
)

// stateMaxAge is how long a state can be asked about.
const stateMaxAge = 14 * 24 * time.Hour

type snapMailbox struct {
	ID      int64  `json:"i"`
	Name    string `json:"n"`
	Parent  int64  `json:"p,omitempty"`
	UIDNext uint32 `json:"u"`
	ModSeq  uint64 `json:"q"`
	Msgs    int64  `json:"c,omitempty"`
	Unseen  int64  `json:"s,omitempty"`
	Size    int64  `json:"z,omitempty"`
	Sub     bool   `json:"b,omitempty"`
}

// snapshot is what a state records, as JSON in webmail_states: the
// field names are those of the states already stored, which must still
// load.
type snapshot struct {
	At        int64         `json:"t"`
	Mailboxes []snapMailbox `json:"m"`
	// ContactFolders are in the JSON of contacts.ContactFolder (with no
	// contact count).
	ContactFolders []contacts.ContactFolder `json:"f"`
	// Contacts are id, updated_at and folder_id.
	Contacts [][3]int64 `json:"c"`
	// Settings is contacts.Snapshot's digest of the settings.
	Settings string `json:"s"`
}

// State returns the account's current state string, recording what the
// account holds at it. Take it before reading what it is returned with:
// what is read after is then at least as new as the state says, and the
// changes since it may repeat some of it, but never miss any.
func (w *Account) State(ctx context.Context) (string, error) {
	st, _, err := w.state(ctx, false)
	if err != nil {
		return "", fmt.Errorf("account state: %w", err)
	}
	return st, nil
}

// state returns the state string, and the snapshot behind it when
// withData is set or it had to be read anyway.
func (w *Account) state(ctx context.Context, withData bool) (string, *snapshot, error) {
	if err := w.ownerOnly(); err != nil {
		return "", nil, err
	}
	// Read the serial, the snapshot's data, then the serial again: equal,
	// nothing was committed in between and the data is the state at that
	// serial. Writers that keep it moving get a read in a transaction.
	for attempt := 0; ; attempt++ {
		serial, err := w.serial(ctx, w.sp.DB)
		if err != nil {
			return "", nil, err
		}
		if !withData {
			var n int
			if err := w.sp.DB.GetContext(ctx, &n, w.sp.Rebind("SELECT COUNT(*) FROM webmail_states WHERE user_id = ? AND serial = ?"), w.userID, serial); err != nil {
				return "", nil, err
			}
			if n > 0 {
				return strconv.FormatUint(serial, 10), nil, nil
			}
		}
		var snap *snapshot
		if attempt < 3 {
			if snap, err = w.snapshot(ctx, w.sp.DB); err != nil {
				return "", nil, err
			}
			again, err := w.serial(ctx, w.sp.DB)
			if err != nil {
				return "", nil, err
			}
			if again != serial {
				continue
			}
		} else {
			err = w.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
				var err error
				if serial, err = w.serial(ctx, tx); err == nil {
					snap, err = w.snapshot(ctx, tx)
				}
				return err
			})
			if err != nil {
				return "", nil, err
			}
		}
		if err := w.saveSnapshot(ctx, serial, snap); err != nil {
			return "", nil, err
		}
		return strconv.FormatUint(serial, 10), snap, nil
	}
}

func (w *Account) serial(ctx context.Context, q sqlx.QueryerContext) (uint64, error) {
	var serial uint64
	if err := sqlx.GetContext(ctx, q, &serial, w.sp.Rebind("SELECT serial FROM users WHERE id = ?"), w.userID); err != nil {
		return 0, spine.NotFound(err)
	}
	return serial, nil
}

func (w *Account) snapshot(ctx context.Context, q sqlx.QueryerContext) (*snapshot, error) {
	snap := &snapshot{At: w.sp.Unix()}
	ms, err := w.a.MailboxesIn(ctx, spine.Lend(), q)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		snap.Mailboxes = append(snap.Mailboxes, snapMailbox{ID: m.ID, Name: m.Name, Parent: m.ParentID, UIDNext: m.UIDNext,
			ModSeq: m.HighestModSeq, Msgs: m.Messages, Unseen: m.Unseen, Size: m.Size, Sub: m.Subscribed})
	}
	book, err := contacts.Of(w.a).SnapshotIn(ctx, spine.Lend(), q)
	if err != nil {
		return nil, err
	}
	snap.ContactFolders = book.Folders
	for _, c := range book.Contacts {
		snap.Contacts = append(snap.Contacts, [3]int64{c.ID, c.UpdatedAt, c.FolderID})
	}
	snap.Settings = book.Settings
	return snap, nil
}

func (w *Account) saveSnapshot(ctx context.Context, serial uint64, snap *snapshot) error {
	b, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	err = w.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, w.sp.Rebind("INSERT INTO webmail_states (user_id, serial, created_at, data) VALUES (?, ?, ?, ?)"),
			w.userID, serial, snap.At, b); err != nil {
			return err
		}
		// Each new state is the moment to drop this user's old ones.
		_, err := tx.ExecContext(ctx, w.sp.Rebind("DELETE FROM webmail_states WHERE user_id = ? AND created_at < ?"),
			w.userID, snap.At-int64(stateMaxAge/time.Second))
		return err
	})
	if sqldb.IsDuplicate(err) {
		return nil // another request recorded the same serial: same data
	}
	return err
}

// MessageRef names a message by mailbox and UID, which together never
// name another message (mailbox ids are not reused, and UIDs within one
// are not either).
type MessageRef struct {
	MailboxID int64  `json:"mailboxID"`
	UID       uint32 `json:"uid"`
}

// IDChanges are the ids created, updated and destroyed.
type IDChanges struct {
	Created   []int64 `json:"created"`
	Updated   []int64 `json:"updated"`
	Destroyed []int64 `json:"destroyed"`
}

// MessageChanges are the messages created, updated (flags, keywords) and
// destroyed. Messages of mailboxes created or destroyed since are not
// listed: the mailbox change says it all.
type MessageChanges struct {
	Created   []MessageRef `json:"created"`
	Updated   []MessageRef `json:"updated"`
	Destroyed []MessageRef `json:"destroyed"`
}

// Changes is what changed in an account between two states.
type Changes struct {
	OldState, NewState string
	Mailboxes          IDChanges
	Messages           MessageChanges
	ContactFolders     IDChanges
	Contacts           IDChanges
	Settings           bool
}

func newIDChanges() IDChanges {
	return IDChanges{Created: []int64{}, Updated: []int64{}, Destroyed: []int64{}}
}

// ChangesSince returns what changed in the account after state, and the
// state it brings the caller to. More than maxChanges changed messages is
// ErrTooManyChanges, and a state the store no longer knows (too old, or
// another account's) ErrStateUnknown: the caller loads everything again.
func (w *Account) ChangesSince(ctx context.Context, state string, maxChanges int) (Changes, error) {
	if err := w.ownerOnly(); err != nil {
		return Changes{}, fmt.Errorf("changes: %w", err)
	}
	serial, err := strconv.ParseUint(state, 10, 64)
	if err != nil {
		return Changes{}, fmt.Errorf("changes since %q: %w", state, ErrStateUnknown)
	}
	var raw []byte
	err = w.sp.DB.GetContext(ctx, &raw, w.sp.Rebind("SELECT data FROM webmail_states WHERE user_id = ? AND serial = ?"), w.userID, serial)
	if err != nil {
		if errors.Is(spine.NotFound(err), store.ErrNotFound) {
			return Changes{}, fmt.Errorf("changes since %q: %w", state, ErrStateUnknown)
		}
		return Changes{}, fmt.Errorf("changes since %q: %w", state, err)
	}
	var old snapshot
	if err := json.Unmarshal(raw, &old); err != nil {
		return Changes{}, fmt.Errorf("changes since %q: %w", state, err)
	}
	newState, cur, err := w.state(ctx, true)
	if err != nil {
		return Changes{}, fmt.Errorf("changes since %q: %w", state, err)
	}
	out := Changes{OldState: state, NewState: newState, Mailboxes: newIDChanges(), ContactFolders: newIDChanges(), Contacts: newIDChanges(),
		Messages: MessageChanges{Created: []MessageRef{}, Updated: []MessageRef{}, Destroyed: []MessageRef{}}}
	if newState == state {
		return out, nil
	}
	before := map[int64]snapMailbox{}
	for _, m := range old.Mailboxes {
		before[m.ID] = m
	}
	n := 0
	for _, m := range cur.Mailboxes {
		was, ok := before[m.ID]
		delete(before, m.ID)
		if !ok {
			out.Mailboxes.Created = append(out.Mailboxes.Created, m.ID)
			continue
		}
		if was != m {
			out.Mailboxes.Updated = append(out.Mailboxes.Updated, m.ID)
		}
		if was.ModSeq == m.ModSeq {
			continue
		}
		msgs, err := w.a.List(ctx, m.ID, store.ListQuery{ChangedSince: was.ModSeq, Limit: maxChanges - n + 1})
		if err != nil {
			return Changes{}, fmt.Errorf("changes since %q: %w", state, err)
		}
		for _, msg := range msgs {
			ref := MessageRef{MailboxID: m.ID, UID: msg.UID}
			if msg.UID >= was.UIDNext {
				out.Messages.Created = append(out.Messages.Created, ref)
			} else {
				out.Messages.Updated = append(out.Messages.Updated, ref)
			}
		}
		gone, err := w.a.Vanished(ctx, m.ID, was.ModSeq)
		if err != nil {
			return Changes{}, fmt.Errorf("changes since %q: %w", state, err)
		}
		for _, uid := range gone {
			// A message that came and went since is none of the caller's
			// business.
			if uid < was.UIDNext {
				out.Messages.Destroyed = append(out.Messages.Destroyed, MessageRef{MailboxID: m.ID, UID: uid})
			}
		}
		if n += len(msgs) + len(gone); n > maxChanges {
			return Changes{}, fmt.Errorf("changes since %q: %w", state, ErrTooManyChanges)
		}
	}
	for _, m := range old.Mailboxes {
		if _, gone := before[m.ID]; gone {
			out.Mailboxes.Destroyed = append(out.Mailboxes.Destroyed, m.ID)
		}
	}

	folders := map[int64]contacts.ContactFolder{}
	for _, f := range old.ContactFolders {
		folders[f.ID] = f
	}
	for _, f := range cur.ContactFolders {
		was, ok := folders[f.ID]
		delete(folders, f.ID)
		switch {
		case !ok:
			out.ContactFolders.Created = append(out.ContactFolders.Created, f.ID)
		case was != f:
			out.ContactFolders.Updated = append(out.ContactFolders.Updated, f.ID)
		}
	}
	for _, f := range old.ContactFolders {
		if _, gone := folders[f.ID]; gone {
			out.ContactFolders.Destroyed = append(out.ContactFolders.Destroyed, f.ID)
		}
	}

	contacts := map[int64][3]int64{}
	for _, c := range old.Contacts {
		contacts[c[0]] = c
	}
	for _, c := range cur.Contacts {
		was, ok := contacts[c[0]]
		delete(contacts, c[0])
		switch {
		case !ok:
			out.Contacts.Created = append(out.Contacts.Created, c[0])
		// Times are in seconds: an edit in the second the old snapshot
		// was taken may not show in updated_at, so such a contact
		// counts as updated.
		case was != c || c[1] >= old.At:
			out.Contacts.Updated = append(out.Contacts.Updated, c[0])
		}
	}
	for _, c := range old.Contacts {
		if _, gone := contacts[c[0]]; gone {
			out.Contacts.Destroyed = append(out.Contacts.Destroyed, c[0])
		}
	}
	out.Settings = old.Settings != cur.Settings
	return out, nil
}

// Prune removes the webmail's leftovers in st: composes (and their
// uploaded files) untouched for maxAge, those of deleted users, and
// states older than their maximum age. The daemon's maintenance runs it.
func Prune(ctx context.Context, st *store.Store, maxAge time.Duration) (int, error) {
	s := base{st: st, sp: st.Spine(spine.Lend())}
	cutoff := s.sp.Unix() - int64(maxAge/time.Second)
	var ids []struct {
		ID     int64 `db:"id"`
		UserID int64 `db:"user_id"`
	}
	err := s.sp.DB.SelectContext(ctx, &ids, s.sp.Rebind(`SELECT c.id, c.user_id FROM webmail_composes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.updated_at < ? OR u.id IS NULL`), cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune webmail: %w", err)
	}
	for _, c := range ids {
		if err := s.deleteCompose(ctx, c.UserID, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("prune webmail: %w", err)
		}
	}
	// Uploads whose compose is gone (a crash between the two deletes).
	var orphans []int64
	if err := s.sp.DB.SelectContext(ctx, &orphans, `SELECT u.id FROM webmail_uploads u LEFT JOIN webmail_composes c ON c.id = u.compose_id WHERE c.id IS NULL`); err != nil {
		return 0, fmt.Errorf("prune webmail: %w", err)
	}
	for _, id := range orphans {
		if err := s.deleteUploads(ctx, "id = ?", id); err != nil {
			return 0, fmt.Errorf("prune webmail: %w", err)
		}
	}
	if _, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("DELETE FROM webmail_states WHERE created_at < ?"), s.sp.Unix()-int64(stateMaxAge/time.Second)); err != nil {
		return 0, fmt.Errorf("prune webmail: %w", err)
	}
	return len(ids), nil
}
