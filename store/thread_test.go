package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// threadMsg is a message with the headers threading reads.
func threadMsg(id, inReplyTo, refs string) []byte {
	h := "From: a@x.org\r\nTo: alice@example.org\r\nSubject: t " + id + "\r\nMessage-ID: <" + id + "@x>\r\n"
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + "@x>\r\n"
	}
	if refs != "" {
		h += "References: " + refs + "\r\n"
	}
	return []byte(h + "\r\nbody\r\n")
}

// TestThreads: a reply joins its parent's thread, a parent delivered
// after its replies joins theirs, a message that refers to two threads
// merges them, a copy keeps its thread; the threaded listing has one row
// per thread, its newest message in the folder, with the counts.
func TestThreads(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		archive := storetest.MailboxID(t, a, "Archive")
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		n := 0
		add := func(raw []byte) store.Appended {
			n++
			return storetest.Append(t, a, inbox, raw, store.AppendOptions{InternalDate: base.Add(time.Duration(n) * time.Minute)})
		}
		thread := func(r store.Appended) int64 {
			t.Helper()
			m, err := a.Message(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			return m.ThreadID
		}
		root := add(threadMsg("a", "", ""))
		reply := add(threadMsg("b", "a", "<a@x>"))
		child := add(threadMsg("d", "e", "")) // its parent comes next
		parent := add(threadMsg("e", "", ""))
		f := add(threadMsg("f", "x", ""))
		g := add(threadMsg("g", "y", ""))
		lone := add(threadMsg("z", "", ""))
		if thread(root) != root.ID || thread(reply) != root.ID {
			t.Errorf("reply: threads %d, %d; want %d", thread(root), thread(reply), root.ID)
		}
		if thread(parent) != thread(child) {
			t.Errorf("a parent after its reply: threads %d, %d", thread(parent), thread(child))
		}
		if thread(f) == thread(g) {
			t.Fatal("unrelated messages share a thread")
		}
		h := add(threadMsg("h", "y", "<x@x> <y@x>"))
		if thread(f) != thread(g) || thread(h) != thread(f) {
			t.Errorf("merge: threads %d, %d, %d", thread(f), thread(g), thread(h))
		}
		if _, err := a.Copy(ctx, inbox, store.UIDSet{{Start: reply.UID, Stop: reply.UID}}, archive); err != nil {
			t.Fatal(err)
		}

		// Threads, newest first: h's (f, g, h), lone, e's (d, e), a's (a, b).
		want := []uint32{h.UID, lone.UID, parent.UID, reply.UID}
		for _, desc := range []bool{true, false} {
			sort := store.SortDateDesc
			w := slices.Clone(want)
			if !desc {
				sort = store.SortDateAsc
				slices.Reverse(w)
			}
			var got []uint32
			q := store.PageQuery{Sort: sort, Threads: true, Limit: 1}
			for range 10 {
				page, err := a.ListPage(ctx, inbox, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page[0].UID)
				k := store.KeyOf(page[0], sort)
				q.After = &k
			}
			if !slices.Equal(got, w) {
				t.Errorf("threads desc=%v: %v, want %v", desc, got, w)
			}
			page, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: sort, Threads: true, Limit: 2, Skip: 1})
			if err != nil || len(page) != 2 || page[0].UID != w[1] || page[1].UID != w[2] {
				t.Errorf("threads desc=%v, skip 1: %v, %v", desc, page, err)
			}
		}
		if n, err := a.CountPage(ctx, inbox, store.PageQuery{Threads: true}); err != nil || n != 4 {
			t.Errorf("threads counted %d, %v; want 4", n, err)
		}
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: f.UID, Stop: f.UID}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		stats, err := a.ThreadStats(ctx, inbox, []int64{thread(h), thread(root), thread(lone)})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(stats[thread(h)], stats[thread(root)], stats[thread(lone)]); got != "{3 2} {2 2} {1 1}" {
			t.Errorf("thread stats %s", got)
		}
		// The thread across folders, oldest first: a, b and b's copy.
		msgs, err := a.Thread(ctx, root.ID, 0)
		if err != nil || len(msgs) != 3 || msgs[0].UID != root.UID || msgs[1].MailboxID == msgs[2].MailboxID || msgs[0].Info == nil {
			t.Errorf("thread across folders: %v, %v", msgs, err)
		}
		if msgs, err := a.Thread(ctx, root.ID, archive); err != nil || len(msgs) != 1 || msgs[0].MailboxID != archive {
			t.Errorf("thread in Archive: %v, %v", msgs, err)
		}
		// The key of a thread's newest message stays a place when that
		// message is deleted; the thread is then its next newest.
		first, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: store.SortDateDesc, Threads: true, Limit: 1})
		if err != nil || len(first) != 1 || first[0].UID != h.UID {
			t.Fatalf("first thread: %v, %v", first, err)
		}
		k := store.KeyOf(first[0], store.SortDateDesc)
		if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: h.UID, Stop: h.UID}}); err != nil {
			t.Fatal(err)
		}
		rest, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: store.SortDateDesc, Threads: true, After: &k, Limit: 3})
		var got []uint32
		for _, m := range rest {
			got = append(got, m.UID)
		}
		if err != nil || !slices.Equal(got, []uint32{lone.UID, g.UID, parent.UID}) {
			t.Errorf("threads after a deleted head: %v, %v", got, err)
		}

		// Threads with a filter: those with an unread message, each shown
		// by its newest unread one. Left: g's (f seen, g), lone, e's (d, e),
		// a's (a, b); mark g, e and b seen: g's thread is gone from the
		// unread ones (f is seen too), e's shows d, a's shows a.
		for _, r := range []store.Appended{g, parent, reply} {
			if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: r.UID, Stop: r.UID}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
				t.Fatal(err)
			}
		}
		unread := store.PageQuery{Sort: store.SortDateDesc, Threads: true, Filter: store.PageFilter{Unread: true}, Limit: 10}
		if got := pageUIDs(t, a, inbox, unread); !slices.Equal(got, []uint32{lone.UID, child.UID, root.UID}) {
			t.Errorf("unread threads: %v", got)
		}
		if n, err := a.CountPage(ctx, inbox, unread); err != nil || n != 3 {
			t.Errorf("unread threads counted %d, %v; want 3", n, err)
		}
		// In another order: by subject, each thread by its newest message
		// (g's "g", lone's "z", e's "e", a's "b"), a page at a time.
		bySubject := store.PageQuery{Sort: store.SortSubject, Threads: true, Limit: 2}
		first2 := pageUIDs(t, a, inbox, bySubject)
		if !slices.Equal(first2, []uint32{reply.UID, parent.UID}) {
			t.Errorf("threads by subject, first page: %v", first2)
		}
		page, err := a.ListPage(ctx, inbox, bySubject)
		if err != nil || len(page) != 2 {
			t.Fatalf("threads by subject: %v, %v", page, err)
		}
		k = store.KeyOf(page[1], store.SortSubject)
		bySubject.After = &k
		if got := pageUIDs(t, a, inbox, bySubject); !slices.Equal(got, []uint32{g.UID, lone.UID}) {
			t.Errorf("threads by subject, next page: %v", got)
		}
	})
}

// pageUIDs lists the UIDs of a page.
func pageUIDs(t *testing.T, a *store.Account, mailbox int64, q store.PageQuery) []uint32 {
	t.Helper()
	page, err := a.ListPage(context.Background(), mailbox, q)
	if err != nil {
		t.Fatal(err)
	}
	return uids(page)
}
