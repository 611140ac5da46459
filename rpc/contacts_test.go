package rpc

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
)

func TestContacts(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		c, _ := fx.user(t, "alice@example.org", false)
		var folders foldersResult
		c.must("folders.list", map[string]any{"context": "contacts"}, &folders)
		def := folders.Folders[0].FolderID
		var work folderIDResult
		c.must("folders.add", map[string]any{"context": "contacts", "name": "Work"}, &work)

		var bob contactIDResult
		c.must("contacts.add", map[string]any{"name": "Bob Builder", "emails": []map[string]string{{"value": "bob@example.org", "type": "work"}, {"value": "bob@home.example"}},
			"phones": []map[string]string{{"value": "+44 20 7946 0000", "type": "cell"}}, "organization": "Builders Ltd", "notes": "Can he fix it?"}, &bob)
		var carol contactIDResult
		c.must("contacts.add", map[string]any{"name": "Carol", "folderID": work.FolderID}, &carol)
		c.fail("contacts.add", map[string]any{"name": ""}, CodeInvalidParams, "invalidParams")
		c.fail("contacts.add", map[string]any{"name": "X", "folderID": 1 << 40}, CodeNotFound, "notFound")

		var ld contactLoadResult
		c.must("contacts.load", map[string]any{"contactID": bob.ContactID}, &ld)
		if ld.Name != "Bob Builder" || ld.Email != "bob@example.org" || len(ld.Emails) != 2 || ld.Emails[0].Type != "work" ||
			ld.Phones[0].Value != "+44 20 7946 0000" || ld.Organization != "Builders Ltd" || ld.FolderID != def ||
			!strings.Contains(ld.VCard, "BEGIN:VCARD") || !strings.Contains(ld.VCard, "VERSION:4.0") {
			t.Fatalf("load: %+v", ld)
		}
		var all contactsListResult
		c.must("contacts.list", nil, &all)
		if len(all.Contacts) != 2 || all.State == "" || all.Contacts[0].Name != "Bob Builder" {
			t.Fatalf("list: %+v", all)
		}
		var inWork contactsListResult
		c.must("contacts.list", map[string]any{"folderID": work.FolderID}, &inWork)
		if len(inWork.Contacts) != 1 || inWork.Contacts[0].ContactID != carol.ContactID {
			t.Fatalf("list of a folder: %+v", inWork)
		}

		// Edit keeps what the API does not know about.
		c.must("contacts.import", map[string]any{"vcard": "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Wonder;Diana;;;\r\nEMAIL;TYPE=INTERNET,pref:diana@example.org\r\nX-SUPERPOWER:lasso\r\nEND:VCARD\r\n" +
			"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Eve\r\nEMAIL:eve@example.org\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nNOTE:no name\r\nEND:VCARD\r\n"}, nil)
		c.must("contacts.list", nil, &all)
		var diana contactItem
		for _, ct := range all.Contacts {
			if ct.Name == "Diana Wonder" {
				diana = ct
			}
		}
		if diana.ContactID == 0 || diana.Email != "diana@example.org" || len(all.Contacts) != 4 {
			t.Fatalf("import: %+v", all.Contacts)
		}
		c.must("contacts.edit", map[string]any{"contactID": diana.ContactID, "name": "Diana Prince", "emails": []map[string]string{{"value": "diana@themyscira.example"}}, "folderID": work.FolderID}, nil)
		c.must("contacts.load", map[string]any{"contactID": diana.ContactID}, &ld)
		if ld.Name != "Diana Prince" || ld.Email != "diana@themyscira.example" || ld.FolderID != work.FolderID || !strings.Contains(ld.VCard, "X-SUPERPOWER:lasso") {
			t.Fatalf("edit: %+v", ld)
		}

		// Move, copy, remove.
		c.must("contacts.move", map[string]any{"contactIDs": []int64{bob.ContactID}, "folderID": work.FolderID}, nil)
		var cp contactIDsResult
		c.must("contacts.copy", map[string]any{"contactIDs": []int64{bob.ContactID}, "folderID": def}, &cp)
		if len(cp.ContactIDs) != 1 {
			t.Fatalf("copy: %+v", cp)
		}
		c.must("contacts.list", map[string]any{"folderID": work.FolderID}, &inWork)
		if len(inWork.Contacts) != 3 {
			t.Fatalf("work after move: %+v", inWork.Contacts)
		}
		c.must("contacts.remove", map[string]any{"contactIDs": []int64{cp.ContactIDs[0]}}, nil)
		c.fail("contacts.load", map[string]any{"contactID": cp.ContactIDs[0]}, CodeNotFound, "notFound")
		c.fail("contacts.remove", map[string]any{"contactIDs": []int64{}}, CodeInvalidParams, "invalidParams")

		// Export is importable again, and round-trips the fields.
		var ex exportResult
		c.must("contacts.export", map[string]any{"folderID": work.FolderID}, &ex)
		if ex.Count != 3 || strings.Count(ex.VCard, "BEGIN:VCARD") != 3 {
			t.Fatalf("export: %+v", ex)
		}
		var one exportResult
		c.must("contacts.export", map[string]any{"contactIDs": []int64{bob.ContactID}}, &one)
		var back folderIDResult
		c.must("folders.add", map[string]any{"context": "contacts", "name": "Restored"}, &back)
		var im importResult
		c.must("contacts.import", map[string]any{"vcard": one.VCard, "folderID": back.FolderID}, &im)
		if len(im.ContactIDs) != 1 || im.Skipped != 0 {
			t.Fatalf("re-import: %+v", im)
		}
		var again contactLoadResult
		c.must("contacts.load", map[string]any{"contactID": im.ContactIDs[0]}, &again)
		if again.Name != "Bob Builder" || !slices.Equal(emails(again.Emails), []string{"bob@example.org", "bob@home.example"}) || again.Notes != "Can he fix it?" {
			t.Fatalf("round trip: %+v", again)
		}
		c.fail("contacts.import", map[string]any{"vcard": ""}, CodeInvalidParams, "invalidParams")
	})
}

func emails(vs []typedValue) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Value)
	}
	return out
}

// TestChangesAndEvents follows a client that lists, hears through the
// event stream that something changed, and asks what.
func TestChangesAndEvents(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		fx.h.heartbeat = 50 * time.Millisecond
		c, alice := fx.user(t, "alice@example.org", false)
		a := fx.env.Account(alice)
		inbox := storetest.Inbox(t, a)
		first := fx.deliver(t, alice, storetest.Message("x@example.com", "alice@example.org", "one", "1"))
		var page listResult
		c.must("messages.list", map[string]any{"folderID": inbox}, &page)

		// The event stream, over real HTTP.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		es := c.events(ctx)
		next := es.next
		if st := next("state"); st["state"] != page.State {
			t.Fatalf("stream state %v, list state %s", st, page.State)
		}

		second := fx.deliver(t, alice, storetest.Message("x@example.com", "alice@example.org", "two", "2"))
		if ev := next("change"); !slices.Equal(folderIDs(ev), []int64{inbox}) {
			t.Fatalf("change event: %v", ev)
		}
		c.must("messages.flag", map[string]any{"messageIDs": []string{msgRef{inbox, first.UID}.id()}, "action": "add", "flags": []string{"seen"}}, nil)
		var ch changesResult
		c.must("changes", map[string]any{"since": page.State}, &ch)
		if !slices.Equal(ch.Messages.Created, []string{msgRef{inbox, second.UID}.id()}) ||
			!slices.Equal(ch.Messages.Updated, []string{msgRef{inbox, first.UID}.id()}) ||
			!slices.Equal(ch.Folders.Updated, []int64{inbox}) || ch.NewState == page.State || ch.OldState != page.State {
			t.Fatalf("changes: %+v", ch)
		}
		c.must("messages.remove", map[string]any{"messageIDs": []string{msgRef{inbox, first.UID}.id()}}, nil)
		var ch2 changesResult
		c.must("changes", map[string]any{"since": ch.NewState}, &ch2)
		if !slices.Equal(ch2.Messages.Destroyed, []string{msgRef{inbox, first.UID}.id()}) || len(ch2.Messages.Created) != 0 {
			t.Fatalf("changes after remove: %+v", ch2)
		}
		c.fail("changes", map[string]any{"since": "12345678"}, CodeConflict, "stateMismatch")
		c.fail("changes", map[string]any{"since": "junk"}, CodeConflict, "stateMismatch")
		c.fail("changes", nil, CodeInvalidParams, "invalidParams")

		// Another user's state is not this user's.
		other, _ := fx.user(t, "mallory@example.org", false)
		other.fail("changes", map[string]any{"since": ch2.NewState}, CodeConflict, "stateMismatch")

		// Logging out ends the stream at the next heartbeat.
		c.must("logout", nil, nil)
		for ended := false; !ended; {
			select {
			case ev, ok := <-es.events:
				if !ok {
					t.Fatal("stream closed without an end event")
				}
				ended = ev[0] == "end"
			case <-ctx.Done():
				t.Fatal("no end event after logout")
			}
		}

		// No stream without a session, nor from another site.
		if r, _ := fx.client(t).get("/rpc/events", nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("events without a session: HTTP %d", r.StatusCode)
		}
		c.login("alice@example.org", storetest.Password)
		if r, _ := c.get("/rpc/events", map[string]string{"Origin": "https://evil.example"}); r.StatusCode != http.StatusForbidden {
			t.Errorf("events from another origin: HTTP %d", r.StatusCode)
		}
	})
}

// TestEventStreamLimits: a session has at most MaxEventStreams streams
// open on a node; a closed one frees its place.
func TestEventStreamLimits(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{MaxEventStreams: 2}})
	fx.h.heartbeat = 50 * time.Millisecond
	c, _ := fx.user(t, "alice@example.org", false)
	open := func(c *client) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", fx.srv.URL+"/rpc/events", nil)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, func() { cancel(); resp.Body.Close() }
	}
	s1, close1 := open(c)
	defer close1()
	s2, close2 := open(c)
	defer close2()
	s3, close3 := open(c)
	if s1.StatusCode != 200 || s2.StatusCode != 200 || s3.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("three streams of a session with a limit of 2: %d %d %d", s1.StatusCode, s2.StatusCode, s3.StatusCode)
	}
	close3()
	// Another session has streams of its own.
	other := fx.client(t)
	other.login("alice@example.org", storetest.Password)
	s4, close4 := open(other)
	defer close4()
	if s4.StatusCode != 200 {
		t.Fatalf("another session's stream: %d", s4.StatusCode)
	}
	// A closed stream frees its place.
	close2()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s5, close5 := open(c)
		close5()
		if s5.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream still counts: %d", s5.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
