package contacts_test

import (
	"context"
	"errors"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/contacts"
)

func TestContactFolders(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		other := e.Account(e.NewUser(t, "mallory@example.org", false))

		// A contact saved the old way, before any folder exists, lands in
		// the default folder.
		old, err := contacts.Of(a).SaveContact(ctx, contacts.Contact{Name: "Old", Email: "old@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := contacts.Of(a).ContactFolders(ctx)
		if err != nil || len(fs) != 1 || !fs[0].Default || fs[0].Name != contacts.DefaultContactFolder || fs[0].Contacts != 1 {
			t.Fatalf("folders of a new user: %+v %v", fs, err)
		}
		def := fs[0].ID
		work, err := contacts.Of(a).CreateContactFolder(ctx, 0, "Work")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contacts.Of(a).CreateContactFolder(ctx, 0, "Work"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate folder: %v", err)
		}
		team, err := contacts.Of(a).CreateContactFolder(ctx, work.ID, "Team")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contacts.Of(a).CreateContactFolder(ctx, 0, " "); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("blank name: %v", err)
		}
		bob, err := contacts.Of(a).SaveContactIn(ctx, team.ID, contacts.Contact{Name: "Bob", Email: " bob@example.org "})
		if err != nil || bob.FolderID != team.ID || bob.Email != "bob@example.org" {
			t.Fatalf("save in folder: %+v %v", bob, err)
		}
		carol, err := contacts.Of(a).SaveContactIn(ctx, 0, contacts.Contact{Name: "Carol"})
		if err != nil || carol.FolderID != def {
			t.Fatalf("save without folder: %+v %v", carol, err)
		}
		if got, err := contacts.Of(a).ContactsIn(ctx, def); err != nil || len(got) != 2 || got[0].Name != "Carol" || got[1].ID != old.ID || got[1].FolderID != def {
			t.Fatalf("default folder: %+v %v", got, err)
		}
		if got, err := contacts.Of(a).ContactsIn(ctx, 0); err != nil || len(got) != 3 {
			t.Fatalf("all contacts: %+v %v", got, err)
		}

		// Moves and copies, and cycles refused.
		if err := contacts.Of(a).MoveContactFolder(ctx, work.ID, team.ID); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("move under own child: %v", err)
		}
		if err := contacts.Of(a).MoveContactFolder(ctx, team.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).RenameContactFolder(ctx, team.ID, "Crew"); err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).MoveContacts(ctx, []int64{bob.ID, carol.ID}, work.ID); err != nil {
			t.Fatal(err)
		}
		ids, err := contacts.Of(a).CopyContacts(ctx, []int64{bob.ID}, def)
		if err != nil || len(ids) != 1 || ids[0] == bob.ID {
			t.Fatalf("copy: %v %v", ids, err)
		}
		if c, err := contacts.Of(a).FiledContact(ctx, ids[0]); err != nil || c.Name != "Bob" || c.FolderID != def {
			t.Fatalf("copy: %+v %v", c, err)
		}
		// Edit keeps the folder when none is given.
		bob.Name = "Robert"
		if got, err := contacts.Of(a).SaveContactIn(ctx, 0, bob.Contact); err != nil || got.FolderID != work.ID {
			t.Fatalf("edit: %+v %v", got, err)
		}

		// Another user's ids are not found, and nothing is done to any.
		for name, err := range map[string]error{
			"move":   contacts.Of(other).MoveContacts(ctx, []int64{bob.ID}, def),
			"delete": contacts.Of(other).DeleteContacts(ctx, []int64{bob.ID}),
			"rename": contacts.Of(other).RenameContactFolder(ctx, work.ID, "x"),
			"remove": contacts.Of(other).DeleteContactFolder(ctx, work.ID),
		} {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s of another user's: %v", name, err)
			}
		}
		if _, err := contacts.Of(other).FiledContact(ctx, bob.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("load another user's contact: %v", err)
		}
		if _, err := contacts.Of(other).ContactsIn(ctx, work.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("list another user's folder: %v", err)
		}
		if err := contacts.Of(a).DeleteContacts(ctx, []int64{bob.ID, 1 << 40}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete with an unknown id: %v", err)
		}
		if _, err := contacts.Of(a).FiledContact(ctx, bob.ID); err != nil {
			t.Errorf("a refused delete removed a contact: %v", err)
		}

		// Deleting: not the default, not with sub-folders; its contacts go.
		if err := contacts.Of(a).DeleteContactFolder(ctx, def); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("delete default: %v", err)
		}
		if err := contacts.Of(a).MoveContactFolder(ctx, team.ID, work.ID); err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).DeleteContactFolder(ctx, work.ID); !errors.Is(err, store.ErrNotEmpty) {
			t.Errorf("delete with a sub-folder: %v", err)
		}
		if err := contacts.Of(a).DeleteContactFolder(ctx, team.ID); err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).DeleteContactFolder(ctx, work.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := contacts.Of(a).FiledContact(ctx, bob.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a deleted folder's contact: %v", err)
		}
		if got, err := contacts.Of(a).ContactsIn(ctx, 0); err != nil || len(got) != 2 {
			t.Fatalf("after deletes: %+v %v", got, err)
		}
	})
}
