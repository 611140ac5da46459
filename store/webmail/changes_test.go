package webmail_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/contacts"
	"basalt/store/webmail"
)

func TestChangesSince(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		other := e.Account(e.NewUser(t, "mallory@example.org", false))
		inbox := storetest.Inbox(t, a)
		m1 := storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "one", "1"), store.AppendOptions{})
		m2 := storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "two", "2"), store.AppendOptions{})
		c1, _ := contacts.Of(a).SaveContactIn(ctx, 0, contacts.Contact{Name: "Bob"})
		c2, _ := contacts.Of(a).SaveContactIn(ctx, 0, contacts.Contact{Name: "Carol"})

		s0, err := webmail.Of(a).State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := webmail.Of(a).State(ctx); again != s0 {
			t.Fatalf("state moved without a change: %s %s", s0, again)
		}
		none, err := webmail.Of(a).ChangesSince(ctx, s0, 100)
		if err != nil || none.NewState != s0 || len(none.Messages.Created)+len(none.Mailboxes.Updated) != 0 {
			t.Fatalf("changes with none: %+v %v", none, err)
		}

		m3 := storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "three", "3"), store.AppendOptions{})
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: m1.UID, Stop: m1.UID}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: m2.UID, Stop: m2.UID}}); err != nil {
			t.Fatal(err)
		}
		box, err := a.CreateMailbox(ctx, "Projects", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).DeleteContacts(ctx, []int64{c2.ID}); err != nil {
			t.Fatal(err)
		}
		c1.Name = "Robert"
		if _, err := contacts.Of(a).SaveContactIn(ctx, 0, c1.Contact); err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).SaveSettings(ctx, map[string]string{"webmail.theme": "dark"}); err != nil {
			t.Fatal(err)
		}
		ch, err := webmail.Of(a).ChangesSince(ctx, s0, 100)
		if err != nil {
			t.Fatal(err)
		}
		ref := func(uid uint32) webmail.MessageRef { return webmail.MessageRef{MailboxID: inbox, UID: uid} }
		if ch.NewState == s0 ||
			!slices.Equal(ch.Messages.Created, []webmail.MessageRef{ref(m3.UID)}) ||
			!slices.Equal(ch.Messages.Updated, []webmail.MessageRef{ref(m1.UID)}) ||
			!slices.Equal(ch.Messages.Destroyed, []webmail.MessageRef{ref(m2.UID)}) ||
			!slices.Equal(ch.Mailboxes.Created, []int64{box.ID}) ||
			!slices.Equal(ch.Mailboxes.Updated, []int64{inbox}) ||
			!slices.Equal(ch.Contacts.Destroyed, []int64{c2.ID}) ||
			!slices.Equal(ch.Contacts.Updated, []int64{c1.ID}) ||
			!ch.Settings {
			t.Fatalf("changes: %+v", ch)
		}
		// From the new state on, nothing again.
		if ch2, err := webmail.Of(a).ChangesSince(ctx, ch.NewState, 100); err != nil || len(ch2.Messages.Created)+len(ch2.Messages.Updated)+len(ch2.Messages.Destroyed) != 0 || ch2.Settings {
			t.Fatalf("changes since the new state: %+v %v", ch2, err)
		}
		if err := a.DeleteMailbox(ctx, box.ID); err != nil {
			t.Fatal(err)
		}
		if ch3, err := webmail.Of(a).ChangesSince(ctx, ch.NewState, 100); err != nil || !slices.Equal(ch3.Mailboxes.Destroyed, []int64{box.ID}) {
			t.Fatalf("mailbox destroyed: %+v %v", ch3, err)
		}
		// Too many changes, and states the account does not have.
		for range 3 {
			storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "more", "m"), store.AppendOptions{})
		}
		if _, err := webmail.Of(a).ChangesSince(ctx, s0, 2); !errors.Is(err, webmail.ErrTooManyChanges) {
			t.Errorf("over the limit: %v", err)
		}
		for _, bad := range []string{"", "x", "99999999"} {
			if _, err := webmail.Of(a).ChangesSince(ctx, bad, 100); !errors.Is(err, webmail.ErrStateUnknown) {
				t.Errorf("state %q: %v", bad, err)
			}
		}
		if _, err := webmail.Of(other).ChangesSince(ctx, s0, 100); !errors.Is(err, webmail.ErrStateUnknown) {
			t.Errorf("another user's state: %v", err)
		}
	})
}

// TestStoredSnapshotForm: a state recorded before contacts took over the
// contact part of the snapshot (JSON built here as it was stored) still
// loads and matches the book it recorded, so a change since is only what
// changed; and a state recorded now uses the same field names.
func TestStoredSnapshotForm(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		auth := e.NewUser(t, "alice@example.org", false)
		a := e.Account(auth)
		book := contacts.Of(a)
		friends, err := book.CreateContactFolder(ctx, 0, "Friends")
		if err != nil {
			t.Fatal(err)
		}
		c1, err := book.SaveContactIn(ctx, friends.ID, contacts.Contact{Name: "Bob", Email: "bob@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		c2, err := book.SaveContactIn(ctx, 0, contacts.Contact{Name: "Carol"})
		if err != nil {
			t.Fatal(err)
		}
		if err := book.SaveSettings(ctx, map[string]string{"webmail.theme": "light"}); err != nil {
			t.Fatal(err)
		}
		s0, err := webmail.Of(a).State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var raw []byte
		if err := e.DB.GetContext(ctx, &raw, e.DB.Rebind("SELECT data FROM webmail_states WHERE user_id = ? AND serial = ?"), auth.User.ID, s0); err != nil {
			t.Fatal(err)
		}
		var now struct {
			F []map[string]any `json:"f"`
		}
		if err := json.Unmarshal(raw, &now); err != nil || len(now.F) != 2 {
			t.Fatalf("state recorded now: %s %v", raw, err)
		}
		for _, f := range now.F {
			keys := slices.Sorted(maps.Keys(f))
			if !slices.Equal(keys, []string{"contacts", "default", "id", "name", "parentID"}) {
				t.Fatalf("contact folder recorded with fields %v: %s", keys, raw)
			}
		}

		// The old form, with the settings' digest as it was computed: each
		// name and value after its length.
		digest := sha256.Sum256([]byte("13:webmail.theme5:light"))
		old := fmt.Sprintf(`{"t":%d,"m":[],"f":[{"id":%d,"parentID":0,"name":"Contacts","default":true,"contacts":0},`+
			`{"id":%d,"parentID":0,"name":"Friends","default":false,"contacts":0}],"c":[[%d,%d,%d],[%d,%d,%d]],"s":"%s"}`,
			time.Now().Unix()+3600, c2.FolderID, friends.ID, c1.ID, c1.UpdatedAt, friends.ID, c2.ID, c2.UpdatedAt, c2.FolderID,
			hex.EncodeToString(digest[:16]))
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind("UPDATE webmail_states SET data = ? WHERE user_id = ? AND serial = ?"), []byte(old), auth.User.ID, s0); err != nil {
			t.Fatal(err)
		}
		// A change elsewhere, so that the state moves and the book is
		// compared.
		storetest.Append(t, a, storetest.Inbox(t, a), storetest.Message("a@x.org", "alice@example.org", "hi", "1"), store.AppendOptions{})
		same, err := webmail.Of(a).ChangesSince(ctx, s0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if same.NewState == s0 {
			t.Fatalf("the state did not move: %+v", same)
		}
		if n := len(same.ContactFolders.Created) + len(same.ContactFolders.Updated) + len(same.ContactFolders.Destroyed) +
			len(same.Contacts.Created) + len(same.Contacts.Updated) + len(same.Contacts.Destroyed); n != 0 || same.Settings {
			t.Fatalf("the old form of an unchanged book shows changes: %+v", same)
		}

		if err := book.RenameContactFolder(ctx, friends.ID, "Pals"); err != nil {
			t.Fatal(err)
		}
		if err := book.SaveSettings(ctx, map[string]string{"webmail.theme": "dark"}); err != nil {
			t.Fatal(err)
		}
		ch, err := webmail.Of(a).ChangesSince(ctx, s0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ch.ContactFolders.Updated, []int64{friends.ID}) || len(ch.ContactFolders.Created)+len(ch.ContactFolders.Destroyed) != 0 ||
			len(ch.Contacts.Updated) != 0 || !ch.Settings {
			t.Fatalf("changes since the old form: %+v", ch)
		}
	})
}
