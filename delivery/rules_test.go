package delivery_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/store"
)

func TestVacation(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		ctx := context.Background()
		alice := f.env.Account(f.alice)
		if err := alice.SaveRules(ctx, store.Vacation{Enabled: true, Body: "Away until Monday.\nRegards"}, store.Forwarding{}); err != nil {
			t.Fatal(err)
		}
		msg := func(extra string) string {
			return "From: Someone <someone@elsewhere.test>\r\nTo: alice@example.org\r\nSubject: lunch?\r\nMessage-ID: <m1@elsewhere.test>\r\n" + extra + "\r\nbody\r\n"
		}
		for range 2 { // the second is within the interval: no second reply
			if _, err := deliver(t, f, mx, msg(""), "alice@example.org"); err != nil {
				t.Fatal(err)
			}
		}
		if len(f.relay.sent) != 1 {
			t.Fatalf("%d auto-replies queued, want 1", len(f.relay.sent))
		}
		r := f.relay.sent[0]
		reply := string(r.raw)
		if r.from != "" || r.to[0] != "someone@elsewhere.test" {
			t.Fatalf("reply envelope %q -> %v", r.from, r.to)
		}
		for _, want := range []string{"Auto-Submitted: auto-replied", "In-Reply-To: <m1@elsewhere.test>", "Subject: Auto: lunch?", "Away until Monday.\r\nRegards"} {
			if !strings.Contains(reply, want) {
				t.Errorf("reply lacks %q:\n%s", want, reply)
			}
		}
		// Never to lists, automatic mail, the null sender, or mail not addressed to her.
		other := *mx
		for _, tc := range []struct {
			from, extra string
		}{
			{"list@elsewhere.test", "List-Id: <x.elsewhere.test>\r\n"},
			{"bot@elsewhere.test", "Auto-Submitted: auto-generated\r\n"},
			{"news@elsewhere.test", "Precedence: bulk\r\n"},
			{"owner-x@elsewhere.test", ""},
			{"", ""},
		} {
			other.From = tc.from
			if _, err := deliver(t, f, &other, msg(tc.extra), "alice@example.org"); err != nil {
				t.Fatal(err)
			}
		}
		other.From = "bcc@elsewhere.test"
		if _, err := deliver(t, f, &other, "From: bcc@elsewhere.test\r\nTo: someone-else@elsewhere.test\r\n\r\nx\r\n", "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		if len(f.relay.sent) != 1 {
			t.Fatalf("auto-replies to mail that must get none: %d", len(f.relay.sent)-1)
		}
		// A local sender's reply goes through the queue too, so that a
		// full mailbox delays it rather than losing it.
		local := *mx
		local.From = "bob@example.org"
		if _, err := deliver(t, f, &local, "From: bob@example.org\r\nTo: alice@example.org\r\n\r\nhi\r\n", "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		if last := f.relay.sent[len(f.relay.sent)-1]; len(f.relay.sent) != 2 || last.from != "" || last.to[0] != "bob@example.org" ||
			!bytes.Contains(last.raw, []byte("Auto-Submitted: auto-replied")) {
			t.Fatalf("local auto-reply: %+v", f.relay.sent)
		}
		// Outside its dates the vacation is silent.
		if err := alice.SaveRules(ctx, store.Vacation{Enabled: true, Start: time.Now().Add(time.Hour)}, store.Forwarding{}); err != nil {
			t.Fatal(err)
		}
		other.From = "new@elsewhere.test"
		if _, err := deliver(t, f, &other, msg(""), "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		if len(f.relay.sent) != 2 {
			t.Fatal("a vacation not yet started replied")
		}
	})
}

func TestForwarding(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		ctx := context.Background()
		alice := f.env.Account(f.alice)
		if err := alice.SaveRules(ctx, store.Vacation{}, store.Forwarding{To: []string{"Alice@Elsewhere.test"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := deliver(t, f, mx, "Subject: one\r\n\r\nx\r\n", "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		if len(f.relay.sent) != 1 || f.relay.sent[0].to[0] != "alice@elsewhere.test" || f.relay.sent[0].from != mx.From {
			t.Fatalf("forward: %+v", f.relay.sent)
		}
		if got := inbox(t, f, f.alice, "INBOX"); len(got) != 0 {
			t.Fatalf("kept %d without keepCopy", len(got))
		}
		if err := alice.SaveRules(ctx, store.Vacation{}, store.Forwarding{To: []string{"alice@elsewhere.test"}, KeepCopy: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := deliver(t, f, mx, "Subject: two\r\n\r\nx\r\n", "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		if len(f.relay.sent) != 2 || len(inbox(t, f, f.alice, "INBOX")) != 1 {
			t.Fatalf("forward with a copy: %d sent, %d kept", len(f.relay.sent), len(inbox(t, f, f.alice, "INBOX")))
		}
		// Rules off: nothing forwarded, everything kept.
		if err := alice.SaveRules(ctx, store.Vacation{}, store.Forwarding{}); err != nil {
			t.Fatal(err)
		}
		u, _ := f.env.Store.UserByID(ctx, f.alice.User.ID)
		if u.DeliveryRules {
			t.Fatal("rules flag still set")
		}
		if err := alice.SaveRules(ctx, store.Vacation{}, store.Forwarding{To: []string{"not an address"}}); err == nil {
			t.Fatal("a bad forward address was accepted")
		}
	})
}
