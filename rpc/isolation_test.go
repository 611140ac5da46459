package rpc

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/outbound"
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
		var aSend sendResult
		var aCompose2 composeResult
		alice.must("messages.compose", nil, &aCompose2)
		alice.must("messages.send", map[string]any{"composeID": aCompose2.ComposeID, "subject": secret, "to": []string{"alice@example.org", "carol@example.net"}, "delay": 60}, &aSend)
		alice.must("contacts.add", map[string]any{"name": "Quarterly Person", "emails": []map[string]any{{"value": "quarterly@example.com"}}}, nil)
		var aIDs identitiesResult
		alice.must("identities.save", map[string]any{"identity": map[string]any{"name": secret, "address": "alice@example.org"}}, &aIDs)
		var aList listResult
		alice.must("messages.list", map[string]any{"folderID": inbox}, &aList)

		// The attacker, with things of its own to point at the victim's.
		m, mAuth := fx.user(t, "mallory@example.org", false)
		ma := fx.env.Account(mAuth)
		mInbox := storetest.Inbox(t, ma)
		mm := fx.deliver(t, mAuth, storetest.Message("x@example.com", "mallory@example.org", "mine", "mine"))
		mMsg := msgRef{mInbox, mm.UID}.id()
		mThread := mm.ID // a first message names its thread
		var mContact contactIDResult
		m.must("contacts.add", map[string]any{"name": "Mine"}, &mContact)
		var mCompose composeResult
		m.must("messages.compose", nil, &mCompose)

		// State strings are the user's serial: Mallory's own must not
		// come to Alice's, or changes since Alice's state would be about
		// Mallory's account (no leak, but not the answer tested here).
		aState, _ := strconv.ParseUint(aList.State, 10, 64)
		for i := 0; ; i++ {
			u, err := fx.env.Store.UserByID(ctx, mAuth.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			if u.Serial > aState+10 {
				break
			}
			m.must("config.edit", map[string]any{"set": map[string]string{"n": strconv.Itoa(i)}}, nil)
		}
		var mFolder, mCF folderIDResult
		m.must("folders.add", map[string]any{"name": "Mine"}, &mFolder)
		m.must("folders.add", map[string]any{"context": "contacts", "name": "Mine"}, &mCF)

		// Each attempt names the params it gives a victim's id in; for a
		// method with a context, "contacts:" marks those of the contacts
		// context. The other params hold the attacker's own ids, so the
		// victim's id is the only thing wrong.
		type attempt struct {
			covers []string
			params map[string]any
			typ    string // the data.type expected; "" for notFound
		}
		nf := func(covers string, p map[string]any) attempt {
			return attempt{covers: strings.Split(covers, ","), params: p}
		}
		ids := func(xs ...string) []string { return xs }
		cids := func(xs ...int64) []int64 { return xs }
		part := func(id string) []map[string]any { return []map[string]any{{"messageID": id, "part": "2"}} }
		cases := map[string][]attempt{
			"folders.add": {nf("parentID", map[string]any{"name": "x", "parentID": inbox}),
				nf("contacts:parentID", map[string]any{"context": "contacts", "name": "x", "parentID": aCF.FolderID})},
			"folders.rename": {nf("folderID", map[string]any{"folderID": aFolder.FolderID, "name": "x"}),
				nf("contacts:folderID", map[string]any{"context": "contacts", "folderID": aCF.FolderID, "name": "x"})},
			"folders.move": {nf("folderID", map[string]any{"folderID": aFolder.FolderID, "parentID": 0}),
				nf("parentID", map[string]any{"folderID": mFolder.FolderID, "parentID": aFolder.FolderID}),
				nf("contacts:folderID", map[string]any{"context": "contacts", "folderID": aCF.FolderID, "parentID": 0}),
				nf("contacts:parentID", map[string]any{"context": "contacts", "folderID": mCF.FolderID, "parentID": aCF.FolderID})},
			"folders.remove": {nf("folderID", map[string]any{"folderID": aFolder.FolderID}),
				nf("contacts:folderID", map[string]any{"context": "contacts", "folderID": aCF.FolderID})},
			"messages.list": {nf("folderID", map[string]any{"folderID": inbox}), nf("folderID", map[string]any{"folderID": inbox, "start": 1}),
				nf("after", map[string]any{"folderID": mInbox, "after": aMsg}), nf("folderID,after", map[string]any{"folderID": inbox, "after": aMsg})},
			"messages.load": {nf("messageID", map[string]any{"messageID": aMsg}), nf("messageID", map[string]any{"messageID": aDraft.MessageID, "sections": []string{"source"}})},
			"messages.flag": {nf("messageIDs", map[string]any{"messageIDs": ids(aMsg), "action": "add", "flags": []string{"deleted"}}),
				nf("messageIDs", map[string]any{"messageIDs": ids(mMsg, aMsg), "action": "list"})},
			"messages.tag": {nf("messageIDs", map[string]any{"messageIDs": ids(aMsg), "action": "replace", "tags": []string{"x"}}),
				nf("messageIDs", map[string]any{"messageIDs": ids(mMsg, aMsg), "action": "add", "tags": []string{"x"}})},
			"messages.copy": {nf("messageIDs", map[string]any{"messageIDs": ids(aMsg), "folderID": mInbox}),
				nf("folderID", map[string]any{"messageIDs": ids(mMsg), "folderID": inbox})},
			"messages.move": {nf("messageIDs", map[string]any{"messageIDs": ids(mMsg, aMsg), "folderID": mFolder.FolderID}),
				nf("folderID", map[string]any{"messageIDs": ids(mMsg), "folderID": inbox})},
			"messages.remove": {nf("messageIDs", map[string]any{"messageIDs": ids(aMsg)}), nf("messageIDs", map[string]any{"messageIDs": ids(mMsg, aMsg)})},
			"messages.search": {nf("folderID", map[string]any{"folderID": inbox}), nf("folderID", map[string]any{"folderID": inbox, "query": "quarterly"}),
				nf("after", map[string]any{"after": aMsg})},
			"messages.searchCount": {nf("folderID", map[string]any{"folderID": inbox}), nf("folderID", map[string]any{"folderID": inbox, "query": "quarterly"})},
			"messages.thread": {nf("threadID", map[string]any{"threadID": aList.Messages[0].ThreadID}),
				nf("folderID", map[string]any{"threadID": mThread, "folderID": inbox}),
				nf("threadID", map[string]any{"threadID": aList.Messages[0].ThreadID, "folderID": mInbox})},
			"messages.compose":   {nf("draftID", map[string]any{"draftID": aDraft.MessageID})},
			"attachments.list":   {nf("composeID", map[string]any{"composeID": aCompose.ComposeID})},
			"attachments.remove": {nf("attachmentID", map[string]any{"attachmentID": aUpload})},
			"messages.save": {nf("composeID", map[string]any{"composeID": aCompose.ComposeID}),
				nf("attachments", map[string]any{"composeID": mCompose.ComposeID, "attachments": cids(aUpload)}),
				nf("attachParts", map[string]any{"composeID": mCompose.ComposeID, "attachParts": part(aMsg)}),
				nf("inReplyTo", map[string]any{"composeID": mCompose.ComposeID, "inReplyTo": aMsg})},
			"messages.send": {nf("composeID", map[string]any{"composeID": aCompose.ComposeID, "to": ids("mallory@example.org")}),
				nf("attachments", map[string]any{"composeID": mCompose.ComposeID, "to": ids("mallory@example.org"), "attachments": cids(aUpload)}),
				nf("attachParts", map[string]any{"composeID": mCompose.ComposeID, "to": ids("mallory@example.org"), "attachParts": part(aMsg)}),
				nf("inReplyTo", map[string]any{"composeID": mCompose.ComposeID, "to": ids("mallory@example.org"), "inReplyTo": aMsg})},
			"contacts.list": {nf("folderID", map[string]any{"folderID": aCF.FolderID})},
			"contacts.load": {nf("contactID", map[string]any{"contactID": aContact.ContactID})},
			"contacts.add":  {nf("folderID", map[string]any{"name": "x", "folderID": aCF.FolderID})},
			"contacts.edit": {nf("contactID", map[string]any{"contactID": aContact.ContactID, "name": "x"}),
				nf("folderID", map[string]any{"contactID": mContact.ContactID, "name": "x", "folderID": aCF.FolderID})},
			"contacts.remove": {nf("contactIDs", map[string]any{"contactIDs": cids(aContact.ContactID)}),
				nf("contactIDs", map[string]any{"contactIDs": cids(mContact.ContactID, aContact.ContactID)})},
			"contacts.move": {nf("contactIDs", map[string]any{"contactIDs": cids(mContact.ContactID, aContact.ContactID), "folderID": mCF.FolderID}),
				nf("folderID", map[string]any{"contactIDs": cids(mContact.ContactID), "folderID": aCF.FolderID})},
			"contacts.copy": {nf("contactIDs", map[string]any{"contactIDs": cids(aContact.ContactID), "folderID": mCF.FolderID}),
				nf("folderID", map[string]any{"contactIDs": cids(mContact.ContactID), "folderID": aCF.FolderID})},
			"contacts.import": {nf("folderID", map[string]any{"folderID": aCF.FolderID, "vcard": "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n"})},
			"contacts.export": {nf("contactIDs", map[string]any{"contactIDs": cids(mContact.ContactID, aContact.ContactID)}),
				nf("folderID", map[string]any{"folderID": aCF.FolderID})},
			"messages.unsend":   {nf("sendID", map[string]any{"sendID": aSend.SendID})},
			"folders.share":     {nf("folderID", map[string]any{"folderID": aFolder.FolderID, "grantee": "mallory@example.org", "access": "write"})},
			"folders.unshare":   {nf("folderID", map[string]any{"folderID": aFolder.FolderID, "grantee": "mallory@example.org"})},
			"identities.remove": {nf("id", map[string]any{"id": aIDs.Identities[0].ID})},
			"changes":           {{covers: []string{"since"}, params: map[string]any{"since": aList.State}, typ: "stateMismatch"}},
		}
		// Every param that names something (by the OpenRPC document's
		// names: ...ID, ...IDs, since, after, inReplyTo, attachments,
		// attachParts) of every method has an attempt with a victim's id
		// in it, in each context the method has.
		idParam := regexp.MustCompile(`(ID|IDs)$|^(since|after|inReplyTo|attachments|attachParts)$`)
		for _, name := range fx.h.engine.names() {
			props, _ := fx.h.engine.methods[name].paramsSchema["properties"].(map[string]any)
			_, hasContext := props["context"]
			covered := map[string]bool{}
			for _, at := range cases[name] {
				for _, c := range at.covers {
					covered[c] = true
				}
			}
			for p, schema := range props {
				if sch, _ := schema.(map[string]any); !idParam.MatchString(p) || sch["format"] == "date-time" {
					continue // search's since is a date
				}
				if !covered[p] {
					t.Errorf("%s: no attempt with another user's id in %s", name, p)
				}
				if hasContext && p != "context" && !covered["contacts:"+p] {
					t.Errorf("%s: no attempt with another user's id in %s of the contacts context", name, p)
				}
			}
		}
		// Methods that take no ids act on the caller's own account; they
		// are called and must show none of the victim's data.
		self := map[string][]any{
			"meta": {nil}, "aliases": {nil}, "folders.list": {nil, map[string]any{"context": "contacts"}}, "config.load": {nil},
			"config.edit": {map[string]any{"set": map[string]string{"k": "v"}}}, "settings.identity": {nil}, "settings.vacation": {nil},
			"settings.images": {nil}, "messages.scheduled": {nil}, "identities.list": {nil}, "folders.shares": {nil},
			"identities.save":  {map[string]any{"identity": map[string]any{"name": "M", "address": "mallory@example.org"}}},
			"contacts.suggest": {map[string]any{"prefix": "quarterly"}, map[string]any{"prefix": "carol"}, map[string]any{"prefix": "alice"}},
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
		for name, ps := range self {
			for _, p := range ps {
				res, e := m.call(name, p)
				if e != nil {
					t.Errorf("%s: %+v", name, e)
				}
				if s := string(res); strings.Contains(s, "Quarterly") || strings.Contains(s, "alice@") || strings.Contains(s, `"Secret"`) {
					t.Errorf("%s shows the victim's data: %s", name, s)
				}
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
		// Only the victim's own delayed send waits, untouched.
		if q, _ := outbound.New(fx.env.Store).Entries(ctx, 10); len(q) != 1 || q[0].ID != aSend.SendID || q[0].Attempts != 0 {
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
