package contacts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/contacts"
)

// TestRecentRecipients: sends are counted per address (case folded), the
// list is bounded, the least recently used going first, and it is the
// user's own: not reachable through a share.
func TestRecentRecipients(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		acct := e.Account(e.NewUser(t, "alice@example.org", false))
		b := contacts.Of(acct)
		if err := b.NoteRecipients(ctx, []contacts.Recipient{{Address: "Old@Example.com", Name: "Old One"}}); err != nil {
			t.Fatal(err)
		}
		if err := b.NoteRecipients(ctx, []contacts.Recipient{{Address: "old@example.com"}}); err != nil {
			t.Fatal(err)
		}
		s, err := b.Suggest(ctx, "one", 10)
		if err != nil || len(s) != 1 || s[0].Address != "old@example.com" || s[0].Uses != 2 || s[0].Name != "Old One" {
			t.Fatalf("suggest: %+v %v", s, err)
		}
		var many []contacts.Recipient
		for i := range contacts.MaxRecent + 20 {
			many = append(many, contacts.Recipient{Address: fmt.Sprintf("r%03d@example.net", i)})
		}
		// In two sends, so "old" is the least recent before the second.
		if err := b.NoteRecipients(ctx, many[:10]); err != nil {
			t.Fatal(err)
		}
		if err := b.NoteRecipients(ctx, many[10:]); err != nil {
			t.Fatal(err)
		}
		all, err := b.Suggest(ctx, "r", 10_000)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := b.Suggest(ctx, "old", 10)
		if len(all)+len(old) != contacts.MaxRecent || len(old) != 0 {
			t.Fatalf("kept %d (+%d old), want %d", len(all), len(old), contacts.MaxRecent)
		}
		other := e.NewUser(t, "bob@example.org", false)
		shared, err := e.Account(other).Shared(acct.UserID())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contacts.Of(shared).Suggest(ctx, "r", 10); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("through a share: %v", err)
		}
	})
}

// TestRecentRecipientsLongName: a long name is cut to 200 bytes on a
// character boundary: cut inside one, MariaDB refuses the row (and the
// whole send's list with it) and SQLite keeps invalid UTF-8.
func TestRecentRecipientsLongName(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		b := contacts.Of(e.Account(e.NewUser(t, "alice@example.org", false)))
		name := strings.Repeat("a", 199) + "éé"
		if err := b.NoteRecipients(ctx, []contacts.Recipient{{Address: "long@example.com", Name: name}, {Address: "short@example.com", Name: "Short"}}); err != nil {
			t.Fatal(err)
		}
		s, err := b.Suggest(ctx, "long", 10)
		if err != nil || len(s) != 1 {
			t.Fatalf("suggest: %+v %v", s, err)
		}
		if !utf8.ValidString(s[0].Name) || s[0].Name != strings.Repeat("a", 199) {
			t.Fatalf("name %q", s[0].Name)
		}
		if s, _ := b.Suggest(ctx, "short", 10); len(s) != 1 {
			t.Fatalf("the other recipient: %+v", s)
		}
	})
}
