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

// TestContactsAndSettings: contacts saved, replaced, listed and deleted;
// settings set and removed.
func TestContactsAndSettings(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		acct := e.Account(e.NewUser(t, "alice@example.org", false))
		a := contacts.Of(acct)
		c, err := a.SaveContact(ctx, contacts.Contact{Name: "Bob", Email: "bob@example.org", Data: "BEGIN:VCARD\r\nEND:VCARD\r\n"})
		if err != nil {
			t.Fatal(err)
		}
		c.Name = "Robert"
		if _, err := a.SaveContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		cs, err := a.Contacts(ctx)
		if err != nil || len(cs) != 1 || cs[0].Name != "Robert" {
			t.Fatalf("contacts = %+v, %v", cs, err)
		}
		if err := a.DeleteContact(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := a.DeleteContact(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if err := a.SaveSettings(ctx, map[string]string{"theme": "dark", "lang": "en"}); err != nil {
			t.Fatal(err)
		}
		if err := a.SaveSettings(ctx, map[string]string{"lang": ""}); err != nil {
			t.Fatal(err)
		}
		// The delivery rules' settings are the store's SaveRules' alone:
		// neither written nor listed here.
		if err := a.SaveSettings(ctx, map[string]string{store.RulesSettingPrefix + "vacation": `{"enabled":true}`}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("saving a rules setting: %v, want ErrInvalid", err)
		}
		if err := acct.SaveRules(ctx, store.Vacation{Enabled: true, Subject: "away", Body: "back soon"}, store.Forwarding{}); err != nil {
			t.Fatal(err)
		}
		got, err := a.Settings(ctx)
		if err != nil || len(got) != 1 || got["theme"] != "dark" {
			t.Fatalf("settings = %v, %v", got, err)
		}
	})
}
