package webmail_test

import (
	"context"
	"errors"
	"slices"
	"testing"

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
