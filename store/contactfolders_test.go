package store_test

import (
	"context"
	"errors"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func TestContactFolders(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		other := e.Account(e.NewUser(t, "mallory@example.org", false))

		// A contact saved the old way, before any folder exists, lands in
		// the default folder.
		old, err := a.SaveContact(ctx, store.Contact{Name: "Old", Email: "old@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := a.ContactFolders(ctx)
		if err != nil || len(fs) != 1 || !fs[0].Default || fs[0].Name != store.DefaultContactFolder || fs[0].Contacts != 1 {
			t.Fatalf("folders of a new user: %+v %v", fs, err)
		}
		def := fs[0].ID
		work, err := a.CreateContactFolder(ctx, 0, "Work")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateContactFolder(ctx, 0, "Work"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate folder: %v", err)
		}
		team, err := a.CreateContactFolder(ctx, work.ID, "Team")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateContactFolder(ctx, 0, " "); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("blank name: %v", err)
		}
		bob, err := a.SaveContactIn(ctx, team.ID, store.Contact{Name: "Bob", Email: " bob@example.org "})
		if err != nil || bob.FolderID != team.ID || bob.Email != "bob@example.org" {
			t.Fatalf("save in folder: %+v %v", bob, err)
		}
		carol, err := a.SaveContactIn(ctx, 0, store.Contact{Name: "Carol"})
		if err != nil || carol.FolderID != def {
			t.Fatalf("save without folder: %+v %v", carol, err)
		}
		if got, err := a.ContactsIn(ctx, def); err != nil || len(got) != 2 || got[0].Name != "Carol" || got[1].ID != old.ID || got[1].FolderID != def {
			t.Fatalf("default folder: %+v %v", got, err)
		}
		if got, err := a.ContactsIn(ctx, 0); err != nil || len(got) != 3 {
			t.Fatalf("all contacts: %+v %v", got, err)
		}

		// Moves and copies, and cycles refused.
		if err := a.MoveContactFolder(ctx, work.ID, team.ID); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("move under own child: %v", err)
		}
		if err := a.MoveContactFolder(ctx, team.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := a.RenameContactFolder(ctx, team.ID, "Crew"); err != nil {
			t.Fatal(err)
		}
		if err := a.MoveContacts(ctx, []int64{bob.ID, carol.ID}, work.ID); err != nil {
			t.Fatal(err)
		}
		ids, err := a.CopyContacts(ctx, []int64{bob.ID}, def)
		if err != nil || len(ids) != 1 || ids[0] == bob.ID {
			t.Fatalf("copy: %v %v", ids, err)
		}
		if c, err := a.FiledContact(ctx, ids[0]); err != nil || c.Name != "Bob" || c.FolderID != def {
			t.Fatalf("copy: %+v %v", c, err)
		}
		// Edit keeps the folder when none is given.
		bob.Name = "Robert"
		if got, err := a.SaveContactIn(ctx, 0, bob.Contact); err != nil || got.FolderID != work.ID {
			t.Fatalf("edit: %+v %v", got, err)
		}

		// Another user's ids are not found, and nothing is done to any.
		for name, err := range map[string]error{
			"move":   other.MoveContacts(ctx, []int64{bob.ID}, def),
			"delete": other.DeleteContacts(ctx, []int64{bob.ID}),
			"rename": other.RenameContactFolder(ctx, work.ID, "x"),
			"remove": other.DeleteContactFolder(ctx, work.ID),
		} {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s of another user's: %v", name, err)
			}
		}
		if _, err := other.FiledContact(ctx, bob.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("load another user's contact: %v", err)
		}
		if _, err := other.ContactsIn(ctx, work.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("list another user's folder: %v", err)
		}
		if err := a.DeleteContacts(ctx, []int64{bob.ID, 1 << 40}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete with an unknown id: %v", err)
		}
		if _, err := a.FiledContact(ctx, bob.ID); err != nil {
			t.Errorf("a refused delete removed a contact: %v", err)
		}

		// Deleting: not the default, not with sub-folders; its contacts go.
		if err := a.DeleteContactFolder(ctx, def); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("delete default: %v", err)
		}
		if err := a.MoveContactFolder(ctx, team.ID, work.ID); err != nil {
			t.Fatal(err)
		}
		if err := a.DeleteContactFolder(ctx, work.ID); !errors.Is(err, store.ErrNotEmpty) {
			t.Errorf("delete with a sub-folder: %v", err)
		}
		if err := a.DeleteContactFolder(ctx, team.ID); err != nil {
			t.Fatal(err)
		}
		if err := a.DeleteContactFolder(ctx, work.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.FiledContact(ctx, bob.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a deleted folder's contact: %v", err)
		}
		if got, err := a.ContactsIn(ctx, 0); err != nil || len(got) != 2 {
			t.Fatalf("after deletes: %+v %v", got, err)
		}
	})
}
