package rpc

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func findFolder(fs []folderItem, id int64) *folderItem {
	for i := range fs {
		if fs[i].FolderID == id {
			return &fs[i]
		}
	}
	return nil
}

func inboxOf(t *testing.T, fs []folderItem) int64 {
	t.Helper()
	for _, f := range fs {
		if f.Path == "INBOX" {
			return f.FolderID
		}
	}
	t.Fatalf("no INBOX in %+v", fs)
	return 0
}

// TestShares: a user shares a folder with another user (read: lrs) or
// the whole domain (write: lrswite), lists and revokes what it shares;
// the grantee sees the folder in folders.list with its owner and access,
// and reads its messages by the same ids, until the share ends.
func TestShares(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		alice, aliceAuth := fx.user(t, "alice@example.org", false)
		bob, bobAuth := fx.user(t, "bob@example.org", false)
		carol, carolAuth := fx.user(t, "carol@example.org", false)
		fx.user(t, "dave@other.test", false)
		sec, _ := fx.user(t, "sec@example.org", true)
		var f folderIDResult
		alice.must("folders.add", map[string]any{"name": "Projects"}, &f)
		res := storetest.Append(t, fx.env.Account(aliceAuth), f.FolderID, storetest.Message("x@example.com", "alice@example.org", "plans", "the plans"), store.AppendOptions{})
		mid := msgRef{res.MailboxID, res.UID}.id()
		bobSees := func() *folderItem {
			var fl foldersResult
			bob.must("folders.list", nil, &fl)
			return findFolder(fl.Folders, f.FolderID)
		}
		if bobSees() != nil {
			t.Fatal("bob sees the folder before it is shared")
		}
		bob.fail("messages.load", map[string]any{"messageID": mid}, CodeNotFound, "notFound")

		alice.must("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "Bob@Example.org", "access": "read"}, nil)
		got := bobSees()
		if got == nil || got.Owner != "alice@example.org" || got.Access != "read" || got.Rights != "lrs" || got.ParentID != 0 || got.Path != "Projects" || got.Total != 1 || got.Unread != 1 {
			t.Fatalf("bob's view: %+v", got)
		}
		var ld loadResult
		bob.must("messages.load", map[string]any{"messageID": mid}, &ld)
		if ld.Meta.Subject != "plans" {
			t.Fatalf("bob's load: %+v", ld.Meta)
		}
		if resp, body := bob.get(ld.BodyURL, nil); resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("bob's frame: %d", resp.StatusCode)
		}
		var sh sharesResult
		alice.must("folders.shares", nil, &sh)
		if len(sh.Shares) != 1 || sh.Shares[0].Grantee != "bob@example.org" || sh.Shares[0].Access != "read" || sh.Shares[0].FolderID != f.FolderID || sh.Shares[0].Path != "Projects" {
			t.Fatalf("shares: %+v", sh)
		}
		bob.must("folders.shares", nil, &sh)
		if len(sh.Shares) != 0 {
			t.Fatalf("bob's shares: %+v", sh)
		}

		// Refusals, each saying what is wrong.
		if e := alice.fail("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "nobody@example.org", "access": "read"}, CodeNotFound, "notFound"); e.Data.Field != "grantee" {
			t.Errorf("unknown grantee: %+v", e)
		}
		alice.fail("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "@other.test", "access": "read"}, CodeInvalid, "invalid")
		alice.fail("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "alice@example.org", "access": "read"}, CodeInvalid, "invalid")
		alice.fail("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "bob@example.org", "access": "admin"}, CodeInvalidParams, "")
		bob.fail("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "carol@example.org", "access": "read"}, CodeNotFound, "notFound")
		bob.fail("folders.unshare", map[string]any{"folderID": f.FolderID, "grantee": "bob@example.org"}, CodeNotFound, "notFound")
		var sf foldersResult
		sec.must("folders.list", nil, &sf)
		sec.fail("folders.share", map[string]any{"folderID": sf.Folders[0].FolderID, "grantee": "bob@example.org", "access": "read"}, CodeForbiddenFrom, "forbidden")

		// Read access: flags of one's own (\Seen) but no deleting.
		var fr flagResult
		bob.must("messages.flag", map[string]any{"messageIDs": []string{mid}, "action": "add", "flags": []string{"seen"}}, &fr)
		if len(fr.Messages) != 1 || !slices_has(fr.Messages[0].Flags, "seen") {
			t.Fatalf("bob's seen: %+v", fr)
		}
		bob.fail("messages.remove", map[string]any{"messageIDs": []string{mid}}, CodeNotFound, "notFound")

		// Read access: the folder lists, searches and threads as bob's
		// own do, and copies out; nothing goes in or moves out.
		var ls listResult
		bob.must("messages.list", map[string]any{"folderID": f.FolderID}, &ls)
		if ls.Total != 1 || len(ls.Messages) != 1 || ls.Messages[0].MessageID != mid {
			t.Fatalf("bob's list: %+v", ls)
		}
		bob.fail("messages.list", map[string]any{"folderID": f.FolderID, "filter": map[string]any{"unread": true}}, CodeInvalid, "invalid")
		var sr searchResult
		bob.must("messages.search", map[string]any{"folderID": f.FolderID, "query": "plans"}, &sr)
		if sr.Total != 1 || len(sr.Messages) != 1 || sr.Messages[0].MessageID != mid {
			t.Fatalf("bob's search: %+v", sr)
		}
		bob.fail("messages.search", map[string]any{"folderID": f.FolderID, "query": "is:unread"}, CodeInvalid, "invalid")
		var th threadResult
		bob.must("messages.thread", map[string]any{"threadID": ls.Messages[0].ThreadID, "folderID": f.FolderID}, &th)
		if len(th.Messages) != 1 || th.Messages[0].MessageID != mid {
			t.Fatalf("bob's thread: %+v", th)
		}
		bob.fail("messages.thread", map[string]any{"threadID": ls.Messages[0].ThreadID}, CodeNotFound, "notFound")
		var bobFolders foldersResult
		bob.must("folders.list", nil, &bobFolders)
		bobInbox := inboxOf(t, bobFolders.Folders)
		var cp copyResult
		bob.must("messages.copy", map[string]any{"messageIDs": []string{mid}, "folderID": bobInbox}, &cp)
		var bl loadResult
		if len(cp.MessageIDs) != 1 {
			t.Fatalf("bob's copy: %+v", cp)
		}
		bob.must("messages.load", map[string]any{"messageID": cp.MessageIDs[0]}, &bl)
		if bl.Meta.Subject != "plans" {
			t.Fatalf("bob's copy: %+v", bl.Meta)
		}
		own := storetest.Append(t, fx.env.Account(bobAuth), bobInbox, storetest.Message("y@example.com", "bob@example.org", "mine", "bob's"), store.AppendOptions{})
		bobMsg := msgRef{own.MailboxID, own.UID}.id()
		bob.fail("messages.copy", map[string]any{"messageIDs": []string{bobMsg}, "folderID": f.FolderID}, CodeNotFound, "notFound")
		bob.fail("messages.move", map[string]any{"messageIDs": []string{bobMsg}, "folderID": f.FolderID}, CodeNotFound, "notFound")
		bob.fail("messages.move", map[string]any{"messageIDs": []string{mid}, "folderID": bobInbox}, CodeNotFound, "notFound")
		bob.must("messages.load", map[string]any{"messageID": bobMsg}, &bl)
		alice.must("messages.list", map[string]any{"folderID": f.FolderID}, &ls)
		if ls.Total != 1 {
			t.Fatalf("alice's folder after bob's refusals: %+v", ls)
		}
		carol.fail("messages.list", map[string]any{"folderID": f.FolderID}, CodeNotFound, "notFound")

		// Revoked: gone at once.
		alice.must("folders.unshare", map[string]any{"folderID": f.FolderID, "grantee": "bob@example.org"}, nil)
		if bobSees() != nil {
			t.Fatal("bob still sees the folder")
		}
		bob.fail("messages.load", map[string]any{"messageID": mid}, CodeNotFound, "notFound")
		if resp, _ := bob.get(ld.BodyURL, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("bob's frame after the revoke: %d", resp.StatusCode)
		}

		// The whole domain, with write access.
		alice.must("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "@example.org", "access": "write"}, nil)
		var cl foldersResult
		carol.must("folders.list", nil, &cl)
		if c := findFolder(cl.Folders, f.FolderID); c == nil || c.Access != "write" || c.Rights != "lrswite" || !c.DomainShare {
			t.Fatalf("carol's view: %+v", c)
		}
		alice.must("folders.shares", nil, &sh)
		if len(sh.Shares) != 1 || sh.Shares[0].Grantee != "@example.org" || !sh.Shares[0].Domain || sh.Shares[0].Access != "write" {
			t.Fatalf("domain share: %+v", sh)
		}
		// Write access is no right to share further (the a right is the
		// owner's alone); what it allows with messages is below.
		carol.fail("folders.share", map[string]any{"folderID": f.FolderID, "grantee": "bob@example.org", "access": "write"}, CodeNotFound, "notFound")
		carol.fail("folders.unshare", map[string]any{"folderID": f.FolderID, "grantee": "@example.org"}, CodeNotFound, "notFound")
		// Write access: flags and removal.
		carol.must("messages.flag", map[string]any{"messageIDs": []string{mid}, "action": "add", "flags": []string{"flagged"}}, &fr)
		if len(fr.Messages) != 1 || !slices_has(fr.Messages[0].Flags, "flagged") {
			t.Fatalf("carol's flag: %+v", fr)
		}
		// Write access: copies in (charged to alice) and moves out.
		var carolFolders foldersResult
		carol.must("folders.list", nil, &carolFolders)
		carolInbox := inboxOf(t, carolFolders.Folders)
		cm := storetest.Append(t, fx.env.Account(carolAuth), carolInbox, storetest.Message("z@example.com", "carol@example.org", "notes", "carol's notes"), store.AppendOptions{})
		var cp2 copyResult
		carol.must("messages.move", map[string]any{"messageIDs": []string{msgRef{cm.MailboxID, cm.UID}.id()}, "folderID": f.FolderID}, &cp2)
		carol.fail("messages.load", map[string]any{"messageID": msgRef{cm.MailboxID, cm.UID}.id()}, CodeNotFound, "notFound")
		alice.must("messages.load", map[string]any{"messageID": cp2.MessageIDs[0]}, &ld)
		if ld.Meta.Subject != "notes" {
			t.Fatalf("carol's move in: %+v", ld.Meta)
		}
		carol.must("messages.move", map[string]any{"messageIDs": cp2.MessageIDs, "folderID": carolInbox}, &cp2)
		alice.must("messages.list", map[string]any{"folderID": f.FolderID}, &ls)
		if ls.Total != 1 || ls.Messages[0].MessageID != mid {
			t.Fatalf("alice's folder after carol's move out: %+v", ls)
		}
		carol.must("messages.remove", map[string]any{"messageIDs": []string{mid}}, nil)
		alice.fail("messages.load", map[string]any{"messageID": mid}, CodeNotFound, "notFound")
		alice.must("folders.unshare", map[string]any{"folderID": f.FolderID, "grantee": "@example.org"}, nil)
		carol.must("folders.list", nil, &cl)
		if findFolder(cl.Folders, f.FolderID) != nil {
			t.Fatal("carol still sees the folder")
		}
	})
}

// TestSharedFolderEvents: the event stream announces changes to the
// folders others share with the user, as they happen, and nothing of the
// owner's other folders; a folder shared or unshared while the stream is
// open is followed from then on (or no more).
func TestSharedFolderEvents(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		fx.h.heartbeat = 50 * time.Millisecond
		alice, aliceAuth := fx.user(t, "alice@example.org", false)
		bob, _ := fx.user(t, "bob@example.org", false)
		a := fx.env.Account(aliceAuth)
		inbox := storetest.Inbox(t, a)
		var projects, later folderIDResult
		alice.must("folders.add", map[string]any{"name": "Projects"}, &projects)
		alice.must("folders.add", map[string]any{"name": "Later"}, &later)
		alice.must("folders.share", map[string]any{"folderID": projects.FolderID, "grantee": "bob@example.org", "access": "read"}, nil)
		put := func(box int64) {
			storetest.Append(t, a, box, storetest.Message("x@example.com", "alice@example.org", "s", "b"), store.AppendOptions{})
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		es := bob.events(ctx)
		es.next("state")
		// await reads change events until one that has want, failing on
		// any that names a folder of never (one append may be announced
		// in more than one event: the store publishes as it commits).
		hasKind := func(k string) func(map[string]any) bool {
			return func(ev map[string]any) bool { return slices.Contains(ev["kinds"].([]any), any(k)) }
		}
		hasFolder := func(id int64) func(map[string]any) bool {
			return func(ev map[string]any) bool { return slices.Contains(folderIDs(ev), id) }
		}
		await := func(what string, want func(map[string]any) bool, never ...int64) {
			t.Helper()
			for {
				ev := es.next("change")
				for _, id := range never {
					if slices.Contains(folderIDs(ev), id) {
						t.Fatalf("%s: folder %d announced: %v", what, id, ev)
					}
				}
				if ev["serial"] != nil {
					t.Fatalf("%s: the owner's serial given: %v", what, ev)
				}
				if want(ev) {
					return
				}
			}
		}
		// Alice's INBOX is hers alone: its change is not announced.
		put(inbox)
		put(projects.FolderID)
		await("change in the shared folder", hasFolder(projects.FolderID), inbox)
		// Shared while the stream is open: announced, then followed.
		alice.must("folders.share", map[string]any{"folderID": later.FolderID, "grantee": "bob@example.org", "access": "read"}, nil)
		await("a new share", hasKind("acl"), inbox)
		put(later.FolderID)
		await("change in the newly shared folder", hasFolder(later.FolderID), inbox)
		// Unshared: announced, then no longer followed.
		alice.must("folders.unshare", map[string]any{"folderID": projects.FolderID, "grantee": "bob@example.org"}, nil)
		await("a share ended", hasKind("acl"), inbox)
		put(projects.FolderID)
		put(later.FolderID)
		await("after the share ended", hasFolder(later.FolderID), inbox, projects.FolderID)
	})
}
