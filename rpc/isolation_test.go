package rpc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestIsolation has a logged-in user try every method with ids that
// belong to another user: each answers notFound (stateMismatch for a
// state) and never the other user's data, and nothing of the other user
// changes. The table must name every registered method, so a method added
// later without an entry here fails the test.
func TestIsolation(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		const secret = "Quarterly numbers, do not share"

		// The victim, with one of everything.
		alice, aliceAuth := fx.user(t, "alice@example.org", false)
		aa := fx.env.Account(aliceAuth)
		inbox := storetest.Inbox(t, aa)
		msg := fx.deliver(t, aliceAuth, richMessage("boss@example.com", "alice@example.org", secret))
		aMsg := msgRef{inbox, msg.UID}.id()
		var aFolder, aCF folderIDResult
		alice.must("folders.add", map[string]any{"name": "Secret"}, &aFolder)
		alice.must("folders.add", map[string]any{"context": "contacts", "name": "Secret"}, &aCF)
		var aContact contactIDResult
		alice.must("contacts.add", map[string]any{"name": secret, "folderID": aCF.FolderID}, &aContact)
		var aCompose composeResult
		alice.must("messages.compose", nil, &aCompose)
		_, up := alice.upload(aCompose.ComposeID, map[string]string{"plan.txt": secret}, nil)
		aUpload := up.Attachments[0].AttachmentID
		var aDraft saveResult
		alice.must("messages.save", map[string]any{"composeID": aCompose.ComposeID, "subject": secret, "to": []string{"bob@example.org"}}, &aDraft)
		var aList listResult
		alice.must("messages.list", map[string]any{"folderID": inbox}, &aList)

		// The attacker, with things of its own to point at the victim's.
		m, mAuth := fx.user(t, "mallory@example.org", false)
		ma := fx.env.Account(mAuth)
		mInbox := storetest.Inbox(t, ma)
		mm := fx.deliver(t, mAuth, storetest.Message("x@example.com", "mallory@example.org", "mine", "mine"))
		mMsg := msgRef{mInbox, mm.UID}.id()
		var mContact contactIDResult
		m.must("contacts.add", map[string]any{"name": "Mine"}, &mContact)
		var mCompose composeResult
		m.must("messages.compose", nil, &mCompose)

		type attempt struct {
			params any
			typ    string // the data.type expected; "" for notFound
		}
		nf := func(p any) attempt { return attempt{params: p} }
		cases := map[string][]attempt{
			"folders.add":    {nf(map[string]any{"name": "x", "parentID": inbox}), nf(map[string]any{"context": "contacts", "name": "x", "parentID": aCF.FolderID})},
			"folders.rename": {nf(map[string]any{"folderID": aFolder.FolderID, "name": "x"}), nf(map[string]any{"context": "contacts", "folderID": aCF.FolderID, "name": "x"})},
			"folders.move": {nf(map[string]any{"folderID": aFolder.FolderID, "parentID": 0}), nf(map[string]any{"folderID": mInbox + 1, "parentID": aFolder.FolderID}),
				nf(map[string]any{"context": "contacts", "folderID": aCF.FolderID, "parentID": 0})},
			"folders.remove":     {nf(map[string]any{"folderID": aFolder.FolderID}), nf(map[string]any{"context": "contacts", "folderID": aCF.FolderID})},
			"messages.list":      {nf(map[string]any{"folderID": inbox})},
			"messages.load":      {nf(map[string]any{"messageID": aMsg}), nf(map[string]any{"messageID": aDraft.MessageID, "sections": []string{"source"}})},
			"messages.flag":      {nf(map[string]any{"messageIDs": []string{aMsg}, "action": "add", "flags": []string{"deleted"}}), nf(map[string]any{"messageIDs": []string{mMsg, aMsg}, "action": "list"})},
			"messages.tag":       {nf(map[string]any{"messageIDs": []string{aMsg}, "action": "replace", "tags": []string{"x"}})},
			"messages.copy":      {nf(map[string]any{"messageIDs": []string{aMsg}, "folderID": mInbox}), nf(map[string]any{"messageIDs": []string{mMsg}, "folderID": inbox})},
			"messages.move":      {nf(map[string]any{"messageIDs": []string{aMsg}, "folderID": mInbox}), nf(map[string]any{"messageIDs": []string{mMsg}, "folderID": inbox})},
			"messages.remove":    {nf(map[string]any{"messageIDs": []string{aMsg}})},
			"messages.search":    {nf(map[string]any{"folderID": inbox}), nf(map[string]any{"folderID": inbox, "query": "quarterly"})},
			"messages.compose":   {nf(map[string]any{"draftID": aDraft.MessageID})},
			"attachments.list":   {nf(map[string]any{"composeID": aCompose.ComposeID})},
			"attachments.remove": {nf(map[string]any{"attachmentID": aUpload})},
			"messages.save": {nf(map[string]any{"composeID": aCompose.ComposeID}), nf(map[string]any{"composeID": mCompose.ComposeID, "attachments": []int64{aUpload}}),
				nf(map[string]any{"composeID": mCompose.ComposeID, "attachParts": []map[string]any{{"messageID": aMsg, "part": "2"}}}),
				nf(map[string]any{"composeID": mCompose.ComposeID, "inReplyTo": aMsg})},
			"messages.send": {nf(map[string]any{"composeID": aCompose.ComposeID, "to": []string{"mallory@example.org"}}),
				nf(map[string]any{"composeID": mCompose.ComposeID, "to": []string{"mallory@example.org"}, "attachments": []int64{aUpload}}),
				nf(map[string]any{"composeID": mCompose.ComposeID, "to": []string{"mallory@example.org"}, "attachParts": []map[string]any{{"messageID": aMsg, "part": "2"}}}),
				nf(map[string]any{"composeID": mCompose.ComposeID, "to": []string{"mallory@example.org"}, "inReplyTo": aMsg})},
			"contacts.list":   {nf(map[string]any{"folderID": aCF.FolderID})},
			"contacts.load":   {nf(map[string]any{"contactID": aContact.ContactID})},
			"contacts.add":    {nf(map[string]any{"name": "x", "folderID": aCF.FolderID})},
			"contacts.edit":   {nf(map[string]any{"contactID": aContact.ContactID, "name": "x"}), nf(map[string]any{"contactID": mContact.ContactID, "name": "x", "folderID": aCF.FolderID})},
			"contacts.remove": {nf(map[string]any{"contactIDs": []int64{aContact.ContactID}}), nf(map[string]any{"contactIDs": []int64{mContact.ContactID, aContact.ContactID}})},
			"contacts.move":   {nf(map[string]any{"contactIDs": []int64{aContact.ContactID}, "folderID": aCF.FolderID}), nf(map[string]any{"contactIDs": []int64{mContact.ContactID}, "folderID": aCF.FolderID})},
			"contacts.copy":   {nf(map[string]any{"contactIDs": []int64{aContact.ContactID}, "folderID": aCF.FolderID}), nf(map[string]any{"contactIDs": []int64{mContact.ContactID}, "folderID": aCF.FolderID})},
			"contacts.import": {nf(map[string]any{"folderID": aCF.FolderID, "vcard": "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n"})},
			"contacts.export": {nf(map[string]any{"contactIDs": []int64{aContact.ContactID}}), nf(map[string]any{"folderID": aCF.FolderID})},
			"changes":         {{params: map[string]any{"since": aList.State}, typ: "stateMismatch"}},
		}
		// Methods that take no ids act on the caller's own account; they
		// are called and must show none of the victim's data.
		self := map[string]any{
			"meta": nil, "aliases": nil, "folders.list": nil, "config.load": nil, "config.edit": map[string]any{"set": map[string]string{"k": "v"}},
			"settings.identity": nil, "settings.vacation": nil,
		}
		// Methods that end or change the caller's session come last.
		last := []string{"settings.password", "logout"}
		for _, name := range fx.h.engine.names() {
			_, inCases := cases[name]
			_, inSelf := self[name]
			if !inCases && !inSelf && !slices.Contains(last, name) && name != "auth" {
				t.Errorf("method %s has no isolation case", name)
			}
		}
		for name, as := range cases {
			for _, at := range as {
				typ := at.typ
				if typ == "" {
					typ = "notFound"
				}
				res, e := m.call(name, at.params)
				if e == nil {
					t.Errorf("%s %v: succeeded with %s", name, at.params, res)
					continue
				}
				if e.Data.Type != typ {
					t.Errorf("%s %v: %d %s (%+v), want %s", name, at.params, e.Code, e.Message, e.Data, typ)
				}
				if strings.Contains(e.Message, "Quarterly") || strings.Contains(e.Message, "alice") {
					t.Errorf("%s: the error tells of the victim: %s", name, e.Message)
				}
			}
		}
		for name, p := range self {
			res, e := m.call(name, p)
			if e != nil {
				t.Errorf("%s: %+v", name, e)
			}
			if s := string(res); strings.Contains(s, "Quarterly") || strings.Contains(s, "alice@") || strings.Contains(s, `"Secret"`) {
				t.Errorf("%s shows the victim's data: %s", name, s)
			}
		}
		var all searchResult
		m.must("messages.search", map[string]any{"query": "quarterly"}, &all)
		if all.Total != 0 {
			t.Errorf("search across all folders found the victim's mail: %+v", all)
		}
		var cl contactsListResult
		m.must("contacts.list", nil, &cl)
		if len(cl.Contacts) != 1 {
			t.Errorf("contacts.list shows others' contacts: %+v", cl)
		}

		// The plain-HTTP endpoints.
		for _, path := range []string{"/rpc/blob/" + aMsg + "/2", "/rpc/blob/" + aMsg + "/source", "/rpc/blob/" + aDraft.MessageID + "/1"} {
			if resp, b := m.get(path, nil); resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "Quarterly") {
				t.Errorf("%s: HTTP %d", path, resp.StatusCode)
			}
		}
		if resp, _ := m.upload(aCompose.ComposeID, map[string]string{"x": "y"}, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("upload to the victim's compose: HTTP %d", resp.StatusCode)
		}
		m.must("settings.password", map[string]any{"old": storetest.Password, "new": "mallory's new password"}, nil)
		m.fail("logout", nil, CodeForbidden, "") // the password change renewed the token
		m.csrf = ""

		// Nothing of the victim's changed.
		var ld loadResult
		alice.must("messages.load", map[string]any{"messageID": aMsg, "sections": []string{"meta", "attachments"}}, &ld)
		if ld.Meta.Subject != secret || len(ld.Meta.Flags) != 0 || len(ld.Meta.Tags) != 0 || len(ld.Attachments) != 2 {
			t.Errorf("victim's message changed: %+v", ld.Meta)
		}
		var after listResult
		alice.must("messages.list", map[string]any{"folderID": inbox}, &after)
		if after.Total != 1 {
			t.Errorf("victim's inbox: %+v", after)
		}
		var ch changesResult
		alice.must("changes", map[string]any{"since": aList.State}, &ch)
		if len(ch.Messages.Created)+len(ch.Messages.Updated)+len(ch.Messages.Destroyed)+len(ch.Folders.Destroyed)+len(ch.Contacts.Updated)+len(ch.Contacts.Destroyed) != 0 {
			t.Errorf("the victim's account changed: %+v", ch)
		}
		var ct contactLoadResult
		alice.must("contacts.load", map[string]any{"contactID": aContact.ContactID}, &ct)
		if ct.Name != secret || ct.FolderID != aCF.FolderID {
			t.Errorf("victim's contact: %+v", ct)
		}
		var atts composeResult
		alice.must("attachments.list", map[string]any{"composeID": aCompose.ComposeID}, &atts)
		if len(atts.Attachments) != 1 {
			t.Errorf("victim's uploads: %+v", atts)
		}
		if ms, _ := ma.List(ctx, mInbox, store.ListQuery{}); len(ms) != 1 {
			t.Errorf("attacker's inbox: %d messages", len(ms))
		}
		if q, _ := fx.env.Store.OutboundEntries(ctx, 10); len(q) != 0 {
			t.Errorf("something was sent: %+v", q)
		}
	})
}

// TestGuardEveryMethod checks that no method but auth runs without the
// CSRF header, and none at all from a foreign Origin.
func TestGuardEveryMethod(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, _ := fx.user(t, "alice@example.org", false)
	for _, name := range fx.h.engine.names() {
		body := `{"jsonrpc":"2.0","id":1,"method":"` + name + `","params":{}}`
		resp, b := c.post(body, map[string]string{"Origin": "https://evil.example"})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), fmt.Sprint(CodeForbidden)) {
			t.Errorf("%s from a foreign origin: HTTP %d %s", name, resp.StatusCode, b)
		}
		if name == "auth" {
			continue
		}
		for _, hdr := range []map[string]string{{"X-CSRF-Token": ""}, {"X-CSRF-Token": "forged"}} {
			_, b := c.post(body, hdr)
			r := decode[testResponse](t, b)
			if r.Error == nil || r.Error.Code != CodeForbidden {
				t.Errorf("%s with CSRF header %v: %s", name, hdr, b)
			}
		}
	}
	// A batch mixing in a call without the token gets nothing done.
	_, b := c.post(`[{"jsonrpc":"2.0","id":1,"method":"folders.add","params":{"name":"Sneaky"}}]`, map[string]string{"X-CSRF-Token": ""})
	if !strings.Contains(string(b), fmt.Sprint(CodeForbidden)) {
		t.Errorf("batch without CSRF: %s", b)
	}
	var fl foldersResult
	c.must("folders.list", nil, &fl)
	for _, f := range fl.Folders {
		if f.Name == "Sneaky" {
			t.Error("a call without the CSRF token took effect")
		}
	}
}
