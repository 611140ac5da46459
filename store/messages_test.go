package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/contacts"
	"basalt/store/outbound"
)

// checkCounts asserts that the mailbox's and the user's counters agree
// with the messages actually there.
func checkCounts(t *testing.T, e *storetest.Env, a *store.Account) {
	t.Helper()
	ctx := context.Background()
	mbs, err := a.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total, count int64
	for _, m := range mbs {
		msgs, err := a.List(ctx, m.ID, store.ListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var size, unseen int64
		for _, msg := range msgs {
			size += msg.Size
			if !msg.Flags.Has(store.FlagSeen) {
				unseen++
			}
		}
		if m.Messages != int64(len(msgs)) || m.Size != size || m.Unseen != unseen {
			t.Errorf("mailbox %s counts %d/%d bytes/%d unseen, actual %d/%d/%d", m.Name, m.Messages, m.Size, m.Unseen, len(msgs), size, unseen)
		}
		total += size
		count += int64(len(msgs))
	}
	u, err := e.Store.UserByID(ctx, a.UserID())
	if err != nil {
		t.Fatal(err)
	}
	if u.UsedBytes != total || u.MessageCount != count {
		t.Errorf("user usage %d bytes/%d messages, actual %d/%d", u.UsedBytes, u.MessageCount, total, count)
	}
}

func readAll(t *testing.T, a *store.Account, id int64) []byte {
	t.Helper()
	rc, err := a.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("open message %d: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMessageLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		archive := storetest.MailboxID(t, a, "Archive")

		var raws [][]byte
		for i := range 5 {
			raw := storetest.Message("bob@example.org", "alice@example.org", fmt.Sprintf("Subject %d", i), fmt.Sprintf("body %d", i))
			raws = append(raws, raw)
			res := storetest.Append(t, a, inbox, raw, store.AppendOptions{InternalDate: time.Unix(int64(1_700_000_000+i*60), 0)})
			if res.UID != uint32(i+1) {
				t.Fatalf("append %d got UID %d", i, res.UID)
			}
		}
		msgs, err := a.List(ctx, inbox, store.ListQuery{Sort: store.SortDateDesc, Limit: 2, Offset: 1, WithInfo: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || msgs[0].UID != 4 || msgs[1].UID != 3 {
			t.Fatalf("date-desc page = %v", uids(msgs))
		}
		if msgs[0].Info == nil || msgs[0].Info.Envelope.Subject != "Subject 3" {
			t.Fatalf("info not decoded: %+v", msgs[0].Info)
		}
		if got := readAll(t, a, msgs[0].ID); string(got) != string(raws[3]) {
			t.Fatalf("body round trip differs")
		}
		page, err := a.List(ctx, inbox, store.ListQuery{AfterUID: 2, Limit: 2})
		if err != nil || !slices.Equal(uids(page), []uint32{3, 4}) {
			t.Fatalf("keyset page = %v, %v", uids(page), err)
		}
		set, err := a.List(ctx, inbox, store.ListQuery{UIDs: store.UIDSet{{Start: 1, Stop: 1}, {Start: 4, Stop: 0}}})
		if err != nil || !slices.Equal(uids(set), []uint32{1, 4, 5}) {
			t.Fatalf("uid set = %v, %v", uids(set), err)
		}

		// Flags.
		ups, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 2}}, store.FlagAdd, store.FlagSeen|store.FlagFlagged, []string{"$Important", "work"})
		if err != nil || len(ups) != 2 {
			t.Fatalf("SetFlags = %+v, %v", ups, err)
		}
		mb, _ := a.Mailbox(ctx, inbox)
		if ups[0].ModSeq != mb.HighestModSeq || mb.Unseen != 3 {
			t.Fatalf("modseq %d vs mailbox %d, unseen %d", ups[0].ModSeq, mb.HighestModSeq, mb.Unseen)
		}
		before := mb.HighestModSeq
		// Setting what is already set changes nothing, not even the modseq.
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		if mb, _ := a.Mailbox(ctx, inbox); mb.HighestModSeq != before {
			t.Fatalf("no-op STORE moved modseq %d -> %d", before, mb.HighestModSeq)
		}
		ups, err = a.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagRemove, store.FlagFlagged, []string{"WORK"})
		if err != nil || ups[0].Flags != store.FlagSeen || !slices.Equal(ups[0].Keywords, []string{"$Important"}) {
			t.Fatalf("remove flags = %+v, %v", ups, err)
		}
		if _, err := a.SetFlags(ctx, inbox, nil, store.FlagAdd, 0, []string{"bad word"}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("bad keyword: %v", err)
		}
		changed, err := a.List(ctx, inbox, store.ListQuery{ChangedSince: before})
		if err != nil || !slices.Equal(uids(changed), []uint32{1}) {
			t.Fatalf("changed since %d = %v, %v", before, uids(changed), err)
		}

		// Copy keeps flags and shares the file; move leaves no trace behind.
		cp, err := a.Copy(ctx, inbox, store.UIDSet{{Start: 1, Stop: 2}}, archive)
		if err != nil || len(cp.Pairs) != 2 || cp.Pairs[0] != (store.UIDPair{Src: 1, Dst: 1}) {
			t.Fatalf("copy = %+v, %v", cp, err)
		}
		arch, _ := a.List(ctx, archive, store.ListQuery{})
		if !arch[0].Flags.Has(store.FlagSeen) || string(readAll(t, a, arch[0].ID)) != string(raws[0]) {
			t.Fatalf("copy lost flags or body: %+v", arch[0])
		}
		mv, err := a.Move(ctx, inbox, store.UIDSet{{Start: 3, Stop: 3}}, archive)
		if err != nil || len(mv.Pairs) != 1 || mv.Pairs[0].Dst != 3 {
			t.Fatalf("move = %+v, %v", mv, err)
		}
		left, _ := a.List(ctx, inbox, store.ListQuery{})
		if !slices.Equal(uids(left), []uint32{1, 2, 4, 5}) {
			t.Fatalf("inbox after move = %v", uids(left))
		}
		checkCounts(t, e, a)
		// Into the mailbox itself: a new UID, the old one gone (RFC 6851
		// 3.3), and so for a copy.
		mv, err = a.Move(ctx, archive, store.UIDSet{{Start: 3, Stop: 3}}, archive)
		if err != nil || len(mv.Pairs) != 1 || mv.Pairs[0] != (store.UIDPair{Src: 3, Dst: 4}) {
			t.Fatalf("move into itself = %+v, %v", mv, err)
		}
		cp, err = a.Copy(ctx, archive, store.UIDSet{{Start: 4, Stop: 4}}, archive)
		if err != nil || len(cp.Pairs) != 1 || cp.Pairs[0] != (store.UIDPair{Src: 4, Dst: 5}) {
			t.Fatalf("copy into itself = %+v, %v", cp, err)
		}
		if got, _ := a.List(ctx, archive, store.ListQuery{}); !slices.Equal(uids(got), []uint32{1, 2, 4, 5}) {
			t.Fatalf("archive after moving and copying into itself = %v", uids(got))
		}
		checkCounts(t, e, a)

		// Expunge takes only \Deleted messages.
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}, {Start: 4, Stop: 4}}, store.FlagAdd, store.FlagDeleted, nil); err != nil {
			t.Fatal(err)
		}
		mbBefore, _ := a.Mailbox(ctx, inbox)
		gone, err := a.Expunge(ctx, inbox, nil)
		if err != nil || !slices.Equal(gone, []uint32{1, 4}) {
			t.Fatalf("expunge = %v, %v", gone, err)
		}
		// UID 3 was moved out earlier, 1 and 4 expunged now.
		if v, err := a.Vanished(ctx, inbox, 0); err != nil || !slices.Equal(v, []uint32{1, 3, 4}) {
			t.Fatalf("vanished since 0 = %v, %v", v, err)
		}
		if v, err := a.Vanished(ctx, inbox, mbBefore.HighestModSeq); err != nil || !slices.Equal(v, []uint32{1, 4}) {
			t.Fatalf("vanished since %d = %v, %v", mbBefore.HighestModSeq, v, err)
		}
		// The copy in Archive still reads: the shared file was kept.
		if string(readAll(t, a, arch[0].ID)) != string(raws[0]) {
			t.Fatal("expunging the original broke its copy")
		}
		if _, err := a.Remove(ctx, archive, store.UIDSet{{Start: 1, Stop: 0}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Open(ctx, arch[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("removed message still opens: %v", err)
		}
		checkCounts(t, e, a)
		// Only messages 2 and 5 remain: their files and nothing else.
		if n := countBlobs(t, e); n != 2 {
			t.Fatalf("%d message files on disk, want 2", n)
		}
	})
}

func uids(ms []store.Message) []uint32 {
	out := make([]uint32, len(ms))
	for i, m := range ms {
		out[i] = m.UID
	}
	return out
}

// countBlobs counts the message bodies kept: files, and rows holding
// small messages themselves.
func countBlobs(t *testing.T, e *storetest.Env) int {
	t.Helper()
	var inline int
	if err := e.DB.GetContext(context.Background(), &inline, "SELECT COUNT(*) FROM blobs WHERE part = ''"); err != nil {
		t.Fatal(err)
	}
	return countFiles(t, e) + inline
}

// countFiles counts the message files on disk.
func countFiles(t *testing.T, e *storetest.Env) int {
	t.Helper()
	n := 0
	if err := e.Blobs.Walk(context.Background(), func(blob.Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConcurrentAppendsExact: 50 appends at once keep UIDs, quota, counts
// and daily counters exact, and a quota that fits only some of them lets
// exactly those in.
func TestConcurrentAppendsExact(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		const n = 50
		msg := storetest.SizedMessage(1000)
		run := func(a *store.Account, mb int64) (ok, over int) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := a.Append(ctx, mb, msg, store.AppendOptions{Inbound: true, RemoteIP: "192.0.2.1"})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, store.ErrOverQuota):
						over++
					default:
						t.Errorf("append: %v", err)
					}
				}()
			}
			wg.Wait()
			return ok, over
		}
		if ok, _ := run(a, inbox); ok != n {
			t.Fatalf("%d of %d appends succeeded", ok, n)
		}
		msgs, _ := a.List(ctx, inbox, store.ListQuery{})
		for i, m := range msgs {
			if m.UID != uint32(i+1) {
				t.Fatalf("UIDs not 1..%d: %v", n, uids(msgs))
			}
		}
		checkCounts(t, e, a)
		if got, _ := a.ReceivedToday(ctx); got != n*1000 {
			t.Fatalf("received today = %d, want %d", got, n*1000)
		}

		// Quota for 20 of them: exactly 20 get in.
		b := e.Account(e.NewUser(t, "bob@example.org", false))
		q := int64(20 * 1000)
		if err := e.Store.SetLimits(ctx, b.UserID(), "", store.LimitOverrides{QuotaBytes: &q}); err != nil {
			t.Fatal(err)
		}
		ok, over := run(b, storetest.Inbox(t, b))
		if ok != 20 || over != 30 {
			t.Fatalf("with quota for 20: %d ok, %d over quota", ok, over)
		}
		checkCounts(t, e, b)
		if got, _ := b.ReceivedToday(ctx); got != 20*1000 {
			t.Fatalf("refused appends were counted: %d", got)
		}
		// Nothing refused left a file behind.
		if c := countBlobs(t, e); c != n+20 {
			t.Fatalf("%d message files, want %d", c, n+20)
		}
	})
}

func TestLimits(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		maxRecv, daily, perIP, send := int64(3000), int64(5000), int64(4000), int64(2500)
		if err := e.Store.SetLimits(ctx, a.UserID(), "", store.LimitOverrides{MaxRecvSize: &maxRecv, DailyRecvBytes: &daily, DailyRecvPerIP: &perIP, DailySendBytes: &send}); err != nil {
			t.Fatal(err)
		}
		in := func(size int, ip string) error {
			_, err := a.Append(ctx, inbox, storetest.SizedMessage(size), store.AppendOptions{Inbound: true, RemoteIP: ip})
			return err
		}
		if err := in(3001, "192.0.2.1"); !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("over receive size: %v", err)
		}
		// The receive size limit is for deliveries, not the user's own appends.
		if _, err := a.Append(ctx, inbox, storetest.SizedMessage(3001), store.AppendOptions{}); err != nil {
			t.Fatalf("own append over receive size: %v", err)
		}
		if err := in(3000, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if err := in(1500, "192.0.2.1"); !errors.Is(err, store.ErrDailyLimit) {
			t.Fatalf("over per-IP daily: %v", err)
		}
		if err := in(1500, "192.0.2.2"); err != nil {
			t.Fatalf("another IP: %v", err)
		}
		if err := in(1000, "192.0.2.3"); !errors.Is(err, store.ErrDailyLimit) {
			t.Fatalf("over daily receive: %v", err)
		}
		// Sending counts each recipient's copy, in the transaction that
		// queues it.
		if _, err := outbound.New(e.Store).EnqueueFor(ctx, a, "a@example.org", []string{"x@remote.test", "y@remote.test"}, bytes.Repeat([]byte("x"), 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := outbound.New(e.Store).EnqueueFor(ctx, a, "a@example.org", []string{"x@remote.test"}, bytes.Repeat([]byte("x"), 1000)); !errors.Is(err, store.ErrDailyLimit) {
			t.Fatalf("over daily send: %v", err)
		}
		if got, _ := a.SentToday(ctx); got != 2000 {
			t.Fatalf("refused send was counted: %d", got)
		}
		if q, err := outbound.New(e.Store).Entries(ctx, 10); err != nil || len(q) != 1 {
			t.Fatalf("queue holds %d entries (%v), want the one sent", len(q), err)
		}
		checkCounts(t, e, a)
	})
}

// TestIsolation: user A, holding every id of user B's, can neither read,
// change nor move any of B's mail through the store API.
func TestIsolation(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		b := e.Account(e.NewUser(t, "bob@example.org", false))
		aInbox, bInbox := storetest.Inbox(t, a), storetest.Inbox(t, b)
		bArchive := storetest.MailboxID(t, b, "Archive")
		bMsg := storetest.Append(t, b, bInbox, storetest.Message("x@example.org", "bob@example.org", "secret", "bob's secret"), store.AppendOptions{})
		storetest.Append(t, a, aInbox, storetest.Message("x@example.org", "alice@example.org", "mine", "alice's"), store.AppendOptions{})
		bGone := storetest.Append(t, b, bInbox, storetest.Message("x@example.org", "bob@example.org", "gone", "expunged"), store.AppendOptions{})
		if _, err := b.Remove(ctx, bInbox, store.UIDSet{{Start: bGone.UID, Stop: bGone.UID}}); err != nil {
			t.Fatal(err)
		}
		if v, _ := b.Vanished(ctx, bInbox, 0); len(v) != 1 {
			t.Fatalf("B's own vanished = %v", v)
		}
		bc, err := contacts.Of(b).SaveContact(ctx, contacts.Contact{Name: "B's friend"})
		if err != nil {
			t.Fatal(err)
		}
		all := store.UIDSet{{Start: 1, Stop: 0}}
		notFound := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s on another user's id: got %v, want ErrNotFound", what, err)
			}
		}
		_, err = a.Mailbox(ctx, bInbox)
		notFound("Mailbox", err)
		_, err = a.Message(ctx, bMsg.ID)
		notFound("Message", err)
		_, err = a.Open(ctx, bMsg.ID)
		notFound("Open", err)
		if ms, err := a.List(ctx, bInbox, store.ListQuery{WithInfo: true}); err != nil || len(ms) != 0 {
			t.Errorf("List of B's inbox = %d messages, %v", len(ms), err)
		}
		_, err = a.SetFlags(ctx, bInbox, all, store.FlagAdd, store.FlagDeleted, nil)
		notFound("SetFlags", err)
		_, err = a.Copy(ctx, bInbox, all, aInbox)
		notFound("Copy from", err)
		_, err = a.Copy(ctx, aInbox, all, bInbox)
		notFound("Copy to", err)
		_, err = a.Move(ctx, bInbox, all, aInbox)
		notFound("Move from", err)
		_, err = a.Move(ctx, aInbox, all, bArchive)
		notFound("Move to", err)
		_, err = a.Expunge(ctx, bInbox, nil)
		notFound("Expunge", err)
		if v, err := a.Vanished(ctx, bInbox, 0); err != nil || len(v) != 0 {
			t.Errorf("Vanished of B's inbox = %v, %v", v, err)
		}
		_, err = a.Remove(ctx, bInbox, all)
		notFound("Remove", err)
		notFound("RenameMailbox", a.RenameMailbox(ctx, bArchive, "Stolen"))
		notFound("DeleteMailbox", a.DeleteMailbox(ctx, bArchive))
		notFound("Subscribe", a.Subscribe(ctx, bArchive, false))
		_, err = contacts.Of(a).Contact(ctx, bc.ID)
		notFound("Contact", err)
		_, err = contacts.Of(a).SaveContact(ctx, contacts.Contact{ID: bc.ID, Name: "overwritten"})
		notFound("SaveContact", err)
		notFound("DeleteContact", contacts.Of(a).DeleteContact(ctx, bc.ID))
		_, err = a.Append(ctx, bInbox, storetest.Message("a", "b", "c", "d"), store.AppendOptions{})
		notFound("Append", err)

		// B's mail is as it was.
		ms, err := b.List(ctx, bInbox, store.ListQuery{})
		if err != nil || len(ms) != 1 || ms[0].Flags != 0 {
			t.Fatalf("B's inbox changed: %+v, %v", ms, err)
		}
		if string(readAll(t, b, bMsg.ID)) == "" {
			t.Fatal("B's message unreadable")
		}
		if c, err := contacts.Of(b).Contact(ctx, bc.ID); err != nil || c.Name != "B's friend" {
			t.Fatalf("B's contact changed: %+v, %v", c, err)
		}
		checkCounts(t, e, a)
		checkCounts(t, e, b)
	})
}

func TestSecureUserNeedsKey(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		auth := e.NewUser(t, "sec@example.org", true)
		if auth.Key == nil {
			t.Fatal("login did not unlock the key")
		}
		a := e.Account(auth)
		inbox := storetest.Inbox(t, a)
		raw := storetest.Message("x@example.org", "sec@example.org", "hello", "private words")
		// Delivery needs no key.
		res := storetest.Append(t, e.Store.Account(auth.User.ID, nil), inbox, raw, store.AppendOptions{Inbound: true})
		if got := readAll(t, a, res.ID); string(got) != string(raw) {
			t.Fatal("secure round trip differs")
		}
		m, err := a.Message(ctx, res.ID)
		if err != nil || m.Info.Envelope.Subject != "hello" || !m.Flags.Has(store.FlagEncrypted) {
			t.Fatalf("secure metadata: %+v, %v", m, err)
		}
		locked := e.Store.Account(auth.User.ID, nil)
		if _, err := locked.Open(ctx, res.ID); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("open without key: %v", err)
		}
		if _, err := locked.List(ctx, inbox, store.ListQuery{WithInfo: true}); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("list info without key: %v", err)
		}
		if ms, err := locked.List(ctx, inbox, store.ListQuery{}); err != nil || len(ms) != 1 {
			t.Fatalf("flags-only listing needs no key: %v", err)
		}
	})
}

func TestEventsAndSerial(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		auth := e.NewUser(t, "alice@example.org", false)
		a := e.Account(auth)
		sub, err := e.Store.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		inbox := storetest.Inbox(t, a)
		res := storetest.Append(t, a, inbox, storetest.Message("a@x.test", "b@x.test", "s", "b"), store.AppendOptions{})
		select {
		case ev := <-sub.C():
			if ev.UserID != auth.User.ID || ev.MailboxID != inbox || ev.Kind != "append" || ev.UID != res.UID || ev.ModSeq != res.ModSeq || ev.Serial == 0 {
				t.Fatalf("event = %+v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event for an append")
		}
		u, _ := e.Store.UserByID(ctx, auth.User.ID)
		if u.MessageCount != 1 || u.Serial <= auth.User.Serial {
			t.Fatalf("cached user is stale after append: %+v", u)
		}
	})
}

// TestAppendMalformed: whatever bytes arrive are stored as they came and
// counted exactly; a parse that finds no headers is still a message.
func TestAppendMalformed(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		for _, raw := range []string{"", "x", "no header at all", "Subject: =?bogus?Q?x?=\r\n\r\n", "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nunterminated"} {
			res := storetest.Append(t, a, inbox, []byte(raw), store.AppendOptions{})
			if got := readAll(t, a, res.ID); string(got) != raw {
				t.Fatalf("stored %q, read back %q", raw, got)
			}
		}
		checkCounts(t, e, a)
	})
}

// A STORE that changes nothing and an EXPUNGE that finds nothing \Deleted
// write nothing: the user's serial, bumped by every write, stays.
func TestNoOpWritesSkipped(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		auth := e.NewUser(t, "alice@example.org", false)
		a := e.Account(auth)
		inbox := storetest.Inbox(t, a)
		res := storetest.Append(t, a, inbox, storetest.Message("a@x.test", "b@x.test", "s", "b"), store.AppendOptions{Flags: store.FlagSeen})
		one := store.UIDSet{{Start: res.UID, Stop: res.UID}}
		serial := func() uint64 {
			t.Helper()
			u, err := e.Store.UserByID(ctx, auth.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			return u.Serial
		}
		for _, tc := range []struct {
			name    string
			op      func() error
			changes bool
		}{
			{"add a flag it has", func() error {
				_, err := a.SetFlags(ctx, inbox, one, store.FlagAdd, store.FlagSeen, nil)
				return err
			}, false},
			{"expunge with nothing deleted", func() error { _, err := a.Expunge(ctx, inbox, nil); return err }, false},
			{"add a flag it lacks", func() error {
				_, err := a.SetFlags(ctx, inbox, one, store.FlagAdd, store.FlagDeleted, nil)
				return err
			}, true},
			{"add it again", func() error {
				_, err := a.SetFlags(ctx, inbox, one, store.FlagAdd, store.FlagDeleted, nil)
				return err
			}, false},
			{"expunge the deleted one", func() error {
				gone, err := a.Expunge(ctx, inbox, nil)
				if err == nil && (len(gone) != 1 || gone[0] != res.UID) {
					t.Errorf("expunged %v, want [%d]", gone, res.UID)
				}
				return err
			}, true},
		} {
			before := serial()
			if err := tc.op(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if after := serial(); (after != before) != tc.changes {
				t.Errorf("%s: serial %d -> %d, want a write %v", tc.name, before, after, tc.changes)
			}
		}
	})
}

// TestKeyChangedDuringAppend: a message sealed to a key that is replaced
// before its rows commit is sealed again to the new key, never committed
// unreadable.
func TestKeyChangedDuringAppend(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		auth := e.NewUser(t, "sec@example.org", true)
		// A second process on the same database: the administrative command.
		admin := storetest.Open(t, db, storetest.Options{BlobDir: e.BlobDir})
		var once sync.Once
		store.SetAfterBlobWrite(e.Store, func() {
			once.Do(func() {
				if err := admin.Session.ResetPassword(ctx, auth.User.ID, "brand new password", true); err != nil {
					t.Errorf("reset: %v", err)
				}
			})
		})
		a := e.Store.Account(auth.User.ID, nil)
		res := storetest.Append(t, a, storetest.Inbox(t, a), storetest.Message("a@x.test", "sec@example.org", "s", "body"), store.AppendOptions{Inbound: true})
		fresh, err := e.Session.Authenticate(ctx, "sec@example.org", "brand new password", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := e.Account(fresh).Open(ctx, res.ID)
		if err != nil {
			t.Fatalf("the new key cannot open mail appended during the reset: %v", err)
		}
		defer rc.Close()
		if b, _ := io.ReadAll(rc); len(b) == 0 {
			t.Fatal("empty message")
		}
		if n := countBlobs(t, e); n != 1 {
			t.Fatalf("%d message files, want 1 (the first sealing removed)", n)
		}
	})
}

// A small message of a plain user is kept in memory once appended (or
// read), and read back the same; nothing of a secure user's is kept,
// metadata or body.
func TestFilesCached(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		plain := e.Account(e.NewUser(t, "plain@example.org", false))
		raw := storetest.Message("x@example.org", "plain@example.org", "hello", "plain words")
		res := storetest.Append(t, plain, storetest.Inbox(t, plain), raw, store.AppendOptions{})
		if infos, bodies := store.FilesCached(e.Store); infos != 1 || bodies != 1 {
			t.Fatalf("cached %d metadata, %d bodies of a plain user's message just appended, want 1, 1", infos, bodies)
		}
		for range 2 {
			if got := readAll(t, plain, res.ID); string(got) != string(raw) {
				t.Fatalf("read %q, want %q", got, raw)
			}
		}
		if _, err := plain.Message(ctx, res.ID); err != nil {
			t.Fatal(err)
		}
		if infos, bodies := store.FilesCached(e.Store); infos != 1 || bodies != 1 {
			t.Fatalf("cached %d metadata, %d bodies of a plain user's message, want 1, 1", infos, bodies)
		}
		auth := e.NewUser(t, "sec@example.org", true)
		sec := e.Account(auth)
		inbox := storetest.Inbox(t, sec)
		res = storetest.Append(t, sec, inbox, storetest.Message("x@example.org", "sec@example.org", "secret", "private words"), store.AppendOptions{})
		readAll(t, sec, res.ID)
		if _, err := sec.List(ctx, inbox, store.ListQuery{WithInfo: true}); err != nil {
			t.Fatal(err)
		}
		if infos, bodies := store.FilesCached(e.Store); infos != 1 || bodies != 1 {
			t.Fatalf("cached %d metadata, %d bodies after reading a secure user's message, want still 1, 1", infos, bodies)
		}
	})
}

// OpenListed serves a listed small message of a plain user from the body
// cache without reading its row again, so a message expunged since the
// listing still reads (as an IMAP session not yet told of the expunge
// expects), where Open answers not found; a secure user's is read, and
// decrypted, as Open reads it.
func TestOpenListed(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		plain := e.Account(e.NewUser(t, "plain@example.org", false))
		inbox := storetest.Inbox(t, plain)
		raw := storetest.Message("x@example.org", "plain@example.org", "hello", "plain words")
		storetest.Append(t, plain, inbox, raw, store.AppendOptions{})
		msgs, err := plain.List(ctx, inbox, store.ListQuery{})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("list: %d messages, %v", len(msgs), err)
		}
		read := func(a *store.Account, m store.Message) []byte {
			t.Helper()
			rc, err := a.OpenListed(ctx, m)
			if err != nil {
				t.Fatalf("open listed message: %v", err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		for range 2 { // from the file, then from the cache
			if got := read(plain, msgs[0]); string(got) != string(raw) {
				t.Fatalf("read %q, want %q", got, raw)
			}
		}
		if _, err := plain.SetFlags(ctx, inbox, nil, store.FlagAdd, store.FlagDeleted, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Expunge(ctx, inbox, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Open(ctx, msgs[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Open of an expunged message: %v, want not found", err)
		}
		if got := read(plain, msgs[0]); string(got) != string(raw) {
			t.Fatalf("listed, then expunged: read %q, want %q", got, raw)
		}

		sec := e.Account(e.NewUser(t, "sec@example.org", true))
		secInbox := storetest.Inbox(t, sec)
		secRaw := storetest.Message("x@example.org", "sec@example.org", "secret", "private words")
		storetest.Append(t, sec, secInbox, secRaw, store.AppendOptions{})
		if msgs, err = sec.List(ctx, secInbox, store.ListQuery{}); err != nil || len(msgs) != 1 {
			t.Fatalf("list: %d messages, %v", len(msgs), err)
		}
		if got := read(sec, msgs[0]); string(got) != string(secRaw) {
			t.Fatalf("secure user's message read %q, want %q", got, secRaw)
		}
		if _, bodies := store.FilesCached(e.Store); bodies != 1 {
			t.Fatalf("%d bodies cached, want 1 (the plain user's only)", bodies)
		}
	})
}
