package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// A listing of what messages never change (ListQuery.Fixed) answers as the
// database does, from memory where the node has seen the messages, and
// from the database for the rest, merged in UID order. Two nodes share the
// database: what one changes, the other's memory learns only by reading.
func TestFixedRows(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		nodeA := storetest.Open(t, db, storetest.Options{})
		nodeB := storetest.Open(t, db, storetest.Options{BlobDir: nodeA.BlobDir})
		ctx := context.Background()
		for _, secure := range []bool{false, true} {
			auth := nodeA.NewUser(t, fmt.Sprintf("fixed%v@example.org", secure), secure)
			a, b := nodeA.Account(auth), nodeB.Account(auth)
			inbox, archive := storetest.Inbox(t, a), storetest.MailboxID(t, a, "Archive")
			var uids []uint32
			for i := range 3 {
				m := storetest.Message("bob@example.org", "alice@example.org", fmt.Sprint("subject ", i), "body")
				uids = append(uids, storetest.Append(t, a, inbox, m, store.AppendOptions{Flags: store.FlagSeen}).UID)
			}
			list := func(acct *store.Account, mailbox int64, set store.UIDSet, fixed bool) []store.Message {
				t.Helper()
				ms, err := acct.List(ctx, mailbox, store.ListQuery{UIDs: set, WithInfo: true, Fixed: fixed})
				if err != nil {
					t.Fatal(err)
				}
				return ms
			}
			same := func(what string, got, want []store.Message) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
				}
				for i, w := range want {
					g := got[i]
					if g.ID != w.ID || g.UID != w.UID || g.MailboxID != w.MailboxID || g.Size != w.Size ||
						!g.InternalDate.Equal(w.InternalDate) || g.HasAttachments != w.HasAttachments ||
						g.Info == nil || g.Info.Envelope.Subject != w.Info.Envelope.Subject {
						t.Errorf("%s: message %d = %+v, want %+v", what, i, g, w)
					}
				}
			}
			all := store.UIDSet{{Start: uids[0], Stop: uids[2]}}
			same("inbox", list(a, inbox, all, true), list(a, inbox, all, false))

			// A copy made on node B is not in node A's memory; a message
			// appended on A is, from its append. Node B expunges that one
			// before node A reads anything: A's listing from memory holds
			// both, in UID order, the copy read from the database.
			cp, err := b.Copy(ctx, inbox, store.UIDSet{{Start: uids[1], Stop: uids[1]}}, archive)
			if err != nil {
				t.Fatal(err)
			}
			later := storetest.Append(t, a, archive, storetest.Message("carol@example.org", "alice@example.org", "later", "body"), store.AppendOptions{}).UID
			if _, err := b.Remove(ctx, archive, store.UIDSet{{Start: later, Stop: later}}); err != nil {
				t.Fatal(err)
			}
			whole := store.UIDSet{{Start: cp.Pairs[0].Dst, Stop: later}}
			inDB, fromMemory := list(a, archive, whole, false), list(a, archive, whole, true)
			if len(inDB) != 1 {
				t.Fatalf("archive: the database lists %d messages, want the copy", len(inDB))
			}
			want := 2 // the copy and the appended message
			if secure {
				want = 1
			}
			if len(fromMemory) != want {
				t.Fatalf("archive: node A lists %d messages, want %d", len(fromMemory), want)
			}
			same("archive copy", fromMemory[:1], inDB)
			if want == 2 && (fromMemory[1].UID != later || fromMemory[1].Info == nil || fromMemory[1].Info.Envelope.Subject != "later") {
				t.Errorf("archive: the appended message from memory = %+v", fromMemory[1])
			}

			// Another user naming this user's mailbox gets nothing, from
			// memory as from the database.
			mallory := nodeA.Account(nodeA.NewUser(t, fmt.Sprintf("mallory%v@example.org", secure), false))
			if got := list(mallory, inbox, all, true); len(got) != 0 {
				t.Errorf("another user lists %d of the inbox's messages", len(got))
			}

			// An expunge on node B: node A, reading the database, finds the
			// message gone; from memory it may still show a plain user's
			// (RFC 9051 7.5.1). An expunge on node A is gone from both.
			if _, err := b.Remove(ctx, inbox, store.UIDSet{{Start: uids[1], Stop: uids[1]}}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: uids[2], Stop: uids[2]}}); err != nil {
				t.Fatal(err)
			}
			uidsOf := func(ms []store.Message) []uint32 {
				var out []uint32
				for _, m := range ms {
					out = append(out, m.UID)
				}
				return out
			}
			if got := uidsOf(list(a, inbox, all, false)); !slices.Equal(got, uids[:1]) {
				t.Errorf("after the expunges, the database lists %v, want %v", got, uids[:1])
			}
			kept := uids[:2] // a plain user's message is kept in node A's memory
			if secure {
				kept = uids[:1] // a secure user's never is
			}
			if got := uidsOf(list(a, inbox, all, true)); !slices.Equal(got, kept) {
				t.Errorf("after the expunges, node A's memory lists %v, want %v", got, kept)
			}
		}
	})
}
