package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/contacts"
	"basalt/store/outbound"
)

const (
	rL = store.RightLookup
	rR = store.RightRead
	rS = store.RightSeen
	rW = store.RightWrite
	rI = store.RightInsert
	rK = store.RightCreate
	rX = store.RightDeleteMailbox
	rT = store.RightDeleteMessages
	rE = store.RightExpunge
	rA = store.RightAdmin
)

func TestParseRights(t *testing.T) {
	for _, c := range []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: ""},
		{in: "lrswipkxtea", want: "lrswipkxtea"},
		{in: "aetxkpiwsrl", want: "lrswipkxtea"},
		{in: "lrc", want: "lrk"},   // RFC 4314 2.1.1: c is k here
		{in: "lrd", want: "lrxte"}, // and d is xte
		{in: "lrt", want: "lrt"},
		{in: "lrQ", bad: true}, // RFC 4314 3.1: upper case is refused
		{in: "lr0", bad: true},
		{in: "l r", bad: true},
	} {
		r, err := store.ParseRights(c.in)
		if c.bad {
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("ParseRights(%q) = %v, %v; want ErrInvalid", c.in, r, err)
			}
			continue
		}
		if err != nil || r.String() != c.want {
			t.Errorf("ParseRights(%q) = %q, %v; want %q", c.in, r, err, c.want)
		}
		var back store.Rights
		if b, _ := r.MarshalText(); back.UnmarshalText(b) != nil || back != r {
			t.Errorf("text round trip of %q gave %q", r, back)
		}
	}
	if store.AllRights.String() != "lrswipkxtea" {
		t.Fatalf("AllRights = %q", store.AllRights)
	}
}

// shareFix is an owner whose mailboxes Team and Team/Sub (three messages
// in Team: unseen, seen and \Deleted) are shared with a viewer, and an
// unshared Private; the viewer has a message of its own; carol is a third
// user of the same domain.
type shareFix struct {
	e                          *storetest.Env
	owner, viewer, carol       *store.Account
	view                       *store.Account // owner's mail as the viewer sees it
	ownerAddr, viewerAddr      string
	carolAddr                  string
	team, sub, private         int64
	msgs                       []store.Appended
	privateMsg                 store.Appended
	viewerInbox                int64
	viewerMsg                  store.Appended
	ownerID, viewerID, carolID int64
}

func newShareFix(t *testing.T, e *storetest.Env, domain string, viewerSecure bool) *shareFix {
	t.Helper()
	ctx := context.Background()
	f := &shareFix{e: e, ownerAddr: "owner@" + domain, viewerAddr: "viewer@" + domain, carolAddr: "carol@" + domain}
	oa, va, ca := e.NewUser(t, f.ownerAddr, false), e.NewUser(t, f.viewerAddr, viewerSecure), e.NewUser(t, f.carolAddr, false)
	f.owner, f.viewer, f.carol = e.Account(oa), e.Account(va), e.Account(ca)
	f.ownerID, f.viewerID, f.carolID = oa.User.ID, va.User.ID, ca.User.ID
	if _, err := f.owner.CreateMailbox(ctx, "Team/Sub", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.owner.CreateMailbox(ctx, "Private", ""); err != nil {
		t.Fatal(err)
	}
	f.team, f.sub, f.private = storetest.MailboxID(t, f.owner, "Team"), storetest.MailboxID(t, f.owner, "Team/Sub"), storetest.MailboxID(t, f.owner, "Private")
	for i, fl := range []store.Flags{0, store.FlagSeen, store.FlagDeleted} {
		f.msgs = append(f.msgs, storetest.Append(t, f.owner, f.team, storetest.Message("x@example.net", f.ownerAddr, fmt.Sprintf("team %d", i), "hello team"), store.AppendOptions{Flags: fl}))
	}
	f.privateMsg = storetest.Append(t, f.owner, f.private, storetest.Message("x@example.net", f.ownerAddr, "private", "secret"), store.AppendOptions{})
	f.viewerInbox = storetest.Inbox(t, f.viewer)
	f.viewerMsg = storetest.Append(t, f.viewer, f.viewerInbox, storetest.Message("y@example.net", f.viewerAddr, "mine", "viewer's own"), store.AppendOptions{Flags: store.FlagFlagged})
	var err error
	if f.view, err = f.viewer.Shared(f.ownerID); err != nil {
		t.Fatal(err)
	}
	return f
}

// grant gives the viewer r on Team and Team/Sub.
func (f *shareFix) grant(t *testing.T, r store.Rights) {
	t.Helper()
	for _, mb := range []int64{f.team, f.sub} {
		if err := f.owner.Grant(context.Background(), mb, f.viewerAddr, r); err != nil {
			t.Fatalf("grant %q: %v", r, err)
		}
	}
}

// snapshot renders everything an operation through the share could
// change: the owner's and the viewer's mailboxes, messages and usage, the
// grants, and the viewer's own seen state and subscriptions.
func (f *shareFix) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, a := range []*store.Account{f.owner, f.viewer} {
		mbs, err := a.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mbs {
			fmt.Fprintf(&b, "%d %s %d/%d/%d next %d modseq %d sub %v\n", m.ID, m.Name, m.Messages, m.Unseen, m.Size, m.UIDNext, m.HighestModSeq, m.Subscribed)
			msgs, err := a.List(ctx, m.ID, store.ListQuery{})
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range msgs {
				fmt.Fprintf(&b, "  uid %d flags %d %v modseq %d\n", msg.UID, msg.Flags, msg.Keywords, msg.ModSeq)
			}
			gs, err := a.Grants(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gs {
				fmt.Fprintf(&b, "  grant %s %v %s\n", g.Grantee, g.Domain, g.Rights)
			}
		}
		u, err := f.e.Store.UserByID(ctx, a.UserID())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "usage %d/%d\n", u.UsedBytes, u.MessageCount)
	}
	for _, table := range []string{"shared_seen", "shared_subscriptions"} {
		var n int
		if err := f.e.DB.GetContext(ctx, &n, f.e.DB.Rebind("SELECT COUNT(*) FROM "+table+" WHERE user_id = ?"), f.viewerID); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d\n", table, n)
	}
	return b.String()
}

// TestShareRights: every operation through a share, granted exactly the
// rights it needs, works; missing any one of them it fails (ErrNotFound
// without "l", ErrForbidden otherwise) and changes nothing.
func TestShareRights(t *testing.T) {
	all := store.UIDSet{{Start: 1}}
	type op struct {
		name string
		need store.Rights
		// forbiddenWithoutL: the operation refuses without "l" rather than
		// reporting a missing mailbox (creating under an invisible parent).
		forbiddenWithoutL bool
		run               func(ctx context.Context, f *shareFix) error
	}
	ops := []op{
		{name: "Mailboxes", need: rL, run: func(ctx context.Context, f *shareFix) error {
			ms, err := f.view.Mailboxes(ctx)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m.ID == f.team {
					return nil
				}
			}
			return store.ErrNotFound
		}},
		{name: "Mailbox", need: rL, run: func(ctx context.Context, f *shareFix) error { _, err := f.view.Mailbox(ctx, f.team); return err }},
		{name: "MailboxByName", need: rL, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.MailboxByName(ctx, "Team")
			return err
		}},
		{name: "MyRights", need: rL, run: func(ctx context.Context, f *shareFix) error { _, err := f.view.MyRights(ctx, f.team); return err }},
		{name: "SharedMailboxes", need: rL, run: func(ctx context.Context, f *shareFix) error {
			ms, err := f.viewer.SharedMailboxes(ctx)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m.ID == f.team {
					return nil
				}
			}
			return store.ErrNotFound
		}},
		{name: "Subscribe", need: rL, run: func(ctx context.Context, f *shareFix) error { return f.view.Subscribe(ctx, f.team, true) }},
		{name: "CreateMailbox", need: rL | rK, forbiddenWithoutL: true, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.CreateMailbox(ctx, "Team/New/Deeper", "")
			return err
		}},
		{name: "RenameMailbox", need: rL | rK | rX, run: func(ctx context.Context, f *shareFix) error {
			return f.view.RenameMailbox(ctx, f.sub, "Team/Renamed")
		}},
		{name: "DeleteMailbox", need: rL | rX, run: func(ctx context.Context, f *shareFix) error { return f.view.DeleteMailbox(ctx, f.sub) }},
		{name: "Append", need: rL | rI, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.Append(ctx, f.team, storetest.Message("v@x", "o@x", "appended", "by the viewer"), store.AppendOptions{})
			return err
		}},
		{name: "List", need: rL | rR, run: func(ctx context.Context, f *shareFix) error {
			ms, err := f.view.List(ctx, f.team, store.ListQuery{WithInfo: true})
			if err == nil && len(ms) != 3 {
				err = fmt.Errorf("listed %d messages", len(ms))
			}
			return err
		}},
		{name: "Message", need: rL | rR, run: func(ctx context.Context, f *shareFix) error { _, err := f.view.Message(ctx, f.msgs[0].ID); return err }},
		{name: "Open", need: rL | rR, run: func(ctx context.Context, f *shareFix) error {
			rc, err := f.view.Open(ctx, f.msgs[0].ID)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{name: "Vanished", need: rL | rR, run: func(ctx context.Context, f *shareFix) error { _, err := f.view.Vanished(ctx, f.team, 0); return err }},
		{name: `SetFlags \Seen`, need: rL | rR | rS, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.SetFlags(ctx, f.team, all, store.FlagAdd, store.FlagSeen, nil)
			return err
		}},
		{name: `SetFlags \Flagged`, need: rL | rR | rW, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.SetFlags(ctx, f.team, all, store.FlagAdd, store.FlagFlagged, nil)
			return err
		}},
		{name: "SetFlags keyword", need: rL | rR | rW, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.SetFlags(ctx, f.team, all, store.FlagAdd, 0, []string{"$Important"})
			return err
		}},
		{name: `SetFlags \Deleted`, need: rL | rR | rT, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.SetFlags(ctx, f.team, all, store.FlagAdd, store.FlagDeleted, nil)
			return err
		}},
		{name: "Expunge", need: rL | rR | rE, run: func(ctx context.Context, f *shareFix) error {
			gone, err := f.view.Expunge(ctx, f.team, nil)
			if err == nil && !slices.Equal(gone, []uint32{f.msgs[2].UID}) {
				err = fmt.Errorf("expunged %v", gone)
			}
			return err
		}},
		{name: "Remove", need: rL | rR | rT | rE, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.Remove(ctx, f.team, store.UIDSet{{Start: f.msgs[0].UID, Stop: f.msgs[0].UID}})
			return err
		}},
		{name: "Copy", need: rL | rR | rI, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.Copy(ctx, f.team, all, f.sub)
			return err
		}},
		{name: "Move", need: rL | rR | rT | rE | rI, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.Move(ctx, f.team, all, f.sub)
			return err
		}},
		{name: "CopyTo own", need: rL | rR, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.CopyTo(ctx, f.team, all, f.viewer, f.viewerInbox)
			return err
		}},
		{name: "MoveTo own", need: rL | rR | rT | rE, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.view.MoveTo(ctx, f.team, all, f.viewer, f.viewerInbox)
			return err
		}},
		{name: "CopyTo shared", need: rL | rI, run: func(ctx context.Context, f *shareFix) error {
			_, err := f.viewer.CopyTo(ctx, f.viewerInbox, all, f.view, f.team)
			return err
		}},
		{name: "Grant", need: rL | rA, run: func(ctx context.Context, f *shareFix) error { return f.view.Grant(ctx, f.team, f.carolAddr, rL|rR) }},
		{name: "Grants", need: rL | rA, run: func(ctx context.Context, f *shareFix) error { _, err := f.view.Grants(ctx, f.team); return err }},
	}
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		for i, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				f := newShareFix(t, e, fmt.Sprintf("op%d.example", i), false)
				for bit := store.Rights(1); bit <= rA; bit <<= 1 {
					if !op.need.Has(bit) {
						continue
					}
					f.grant(t, op.need&^bit)
					before := f.snapshot(t)
					err := op.run(ctx, f)
					want := store.ErrForbidden
					if bit == rL && !op.forbiddenWithoutL {
						want = store.ErrNotFound
					}
					if !errors.Is(err, want) {
						t.Errorf("without %q: got %v, want %v", bit, err, want)
					}
					if after := f.snapshot(t); after != before {
						t.Errorf("without %q the store changed:\n%s---\n%s", bit, before, after)
					}
				}
				f.grant(t, op.need)
				if err := op.run(ctx, f); err != nil {
					t.Fatalf("with %q: %v", op.need, err)
				}
			})
		}
	})
}

// TestShareIsolation: through a share with every right, no id of the
// owner's unshared mailboxes and messages, the viewer's own, or a third
// user's reaches anything, and nothing changes.
func TestShareIsolation(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "iso.example", false)
		f.grant(t, store.AllRights)
		m := e.Account(e.NewUser(t, "mallory@else.example", false))
		storetest.Append(t, m, storetest.Inbox(t, m), storetest.Message("a@x", "b@x", "other", "third user's"), store.AppendOptions{})
		before := f.snapshot(t)
		mBefore := storetest.Messages(t, m, "INBOX")

		var mbIDs, msgIDs []int64
		if err := e.DB.SelectContext(ctx, &mbIDs, "SELECT id FROM mailboxes"); err != nil {
			t.Fatal(err)
		}
		if err := e.DB.SelectContext(ctx, &msgIDs, "SELECT id FROM messages"); err != nil {
			t.Fatal(err)
		}
		mbIDs = append(mbIDs, 0, -1, 1<<40)
		all := store.UIDSet{{Start: 1}}
		v := f.view
		for _, id := range mbIDs {
			if id == f.team || id == f.sub {
				continue
			}
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s on mailbox %d: got %v, want ErrNotFound", what, id, err)
				}
			}
			_, err := v.Mailbox(ctx, id)
			check("Mailbox", err)
			_, err = v.MyRights(ctx, id)
			check("MyRights", err)
			_, err = v.List(ctx, id, store.ListQuery{})
			check("List", err)
			_, err = v.Vanished(ctx, id, 0)
			check("Vanished", err)
			_, err = v.Append(ctx, id, storetest.Message("a@x", "b@x", "s", "b"), store.AppendOptions{})
			check("Append", err)
			_, err = v.SetFlags(ctx, id, all, store.FlagAdd, store.FlagDeleted, nil)
			check("SetFlags", err)
			_, err = v.Expunge(ctx, id, nil)
			check("Expunge", err)
			_, err = v.Remove(ctx, id, all)
			check("Remove", err)
			_, err = v.Copy(ctx, id, all, f.team)
			check("Copy from", err)
			_, err = v.Copy(ctx, f.team, all, id)
			check("Copy to", err)
			_, err = v.Move(ctx, id, all, f.team)
			check("Move from", err)
			_, err = v.Move(ctx, f.team, all, id)
			check("Move to", err)
			_, err = v.CopyTo(ctx, id, all, f.viewer, f.viewerInbox)
			check("CopyTo from", err)
			_, err = f.viewer.CopyTo(ctx, f.viewerInbox, all, v, id)
			check("CopyTo into", err)
			check("RenameMailbox", v.RenameMailbox(ctx, id, "Team/Stolen"))
			check("DeleteMailbox", v.DeleteMailbox(ctx, id))
			check("Subscribe", v.Subscribe(ctx, id, true))
			check("Grant", v.Grant(ctx, id, f.carolAddr, store.AllRights))
			_, err = v.Grants(ctx, id)
			check("Grants", err)
		}
		shared := map[int64]bool{}
		for _, m := range f.msgs {
			shared[m.ID] = true
		}
		for _, id := range msgIDs {
			if shared[id] {
				continue
			}
			if _, err := v.Message(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Message %d: got %v, want ErrNotFound", id, err)
			}
			if _, err := v.Open(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Open %d: got %v, want ErrNotFound", id, err)
			}
		}
		// Names outside the share: a top-level mailbox is the owner's alone,
		// and a child of an unshared one is refused the same way, whether
		// the parent exists or not.
		for _, name := range []string{"Mine", "Private/Sub", "Nowhere/Sub"} {
			if _, err := v.CreateMailbox(ctx, name, ""); !errors.Is(err, store.ErrForbidden) {
				t.Errorf("CreateMailbox %q: got %v, want ErrForbidden", name, err)
			}
		}
		if err := v.RenameMailbox(ctx, f.sub, "Private/Sub"); !errors.Is(err, store.ErrForbidden) {
			t.Errorf("rename under an unshared mailbox: got %v, want ErrForbidden", err)
		}
		if _, err := v.MailboxByName(ctx, "Private"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MailboxByName Private: got %v", err)
		}
		ms, err := v.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		if !slices.Equal(names, []string{"Team", "Team/Sub"}) {
			t.Errorf("shared listing = %v", names)
		}
		if after := f.snapshot(t); after != before {
			t.Errorf("the store changed:\n%s---\n%s", before, after)
		}
		if !slices.Equal(storetest.Messages(t, m, "INBOX"), mBefore) {
			t.Error("the third user's mail changed")
		}
		// Owner-only parts of an account.
		forbidden := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrForbidden) {
				t.Errorf("%s through a share: got %v, want ErrForbidden", what, err)
			}
		}
		_, err = contacts.Of(v).Contacts(ctx)
		forbidden("Contacts", err)
		_, err = contacts.Of(v).Contact(ctx, 1)
		forbidden("Contact", err)
		_, err = contacts.Of(v).SaveContact(ctx, contacts.Contact{Name: "x", Email: "x@y"})
		forbidden("SaveContact", err)
		forbidden("DeleteContact", contacts.Of(v).DeleteContact(ctx, 1))
		_, err = contacts.Of(v).Settings(ctx)
		forbidden("Settings", err)
		forbidden("SaveSettings", contacts.Of(v).SaveSettings(ctx, map[string]string{"k": "v"}))
		_, _, err = v.Rules(ctx)
		forbidden("Rules", err)
		forbidden("SaveRules", v.SaveRules(ctx, store.Vacation{}, store.Forwarding{}))
		_, err = v.VacationReplyDue(ctx, "a@b", time.Hour)
		forbidden("VacationReplyDue", err)
		_, err = v.ReceivedToday(ctx)
		forbidden("ReceivedToday", err)
		_, err = v.SentToday(ctx)
		forbidden("SentToday", err)
		_, err = outbound.New(f.e.Store).EnqueueFor(ctx, v, f.ownerAddr, []string{"x@example.net"}, []byte("Subject: x\r\n\r\nx\r\n"))
		forbidden("EnqueueFor", err)
		// A handle across users is refused.
		mv, err := m.Shared(f.ownerID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.view.CopyTo(ctx, f.team, all, mv, f.team); !errors.Is(err, store.ErrForbidden) {
			t.Errorf("CopyTo an account of another user: got %v", err)
		}
		if back, err := f.view.Shared(f.viewerID); err != nil || back.IsShared() || back.UserID() != f.viewerID {
			t.Errorf("Shared(own id) = %+v, %v", back, err)
		}
	})
}

func flagsOf(t *testing.T, a *store.Account, mailbox int64) map[uint32]store.Flags {
	t.Helper()
	ms, err := a.List(context.Background(), mailbox, store.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]store.Flags{}
	for _, m := range ms {
		out[m.UID] = m.Flags
	}
	return out
}

func unseenOf(t *testing.T, a *store.Account, mailbox int64) int64 {
	t.Helper()
	m, err := a.Mailbox(context.Background(), mailbox)
	if err != nil {
		t.Fatal(err)
	}
	return m.Unseen
}

// TestSharedSeen: on shared mail \Seen is each reader's own: the owner's
// flag is untouched, other readers see their own, and the counts follow.
func TestSharedSeen(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "seen.example", false)
		f.grant(t, rL|rR|rS|rW|rI)
		if err := f.owner.Grant(ctx, f.team, f.carolAddr, rL|rR|rS); err != nil {
			t.Fatal(err)
		}
		carol, err := f.carol.Shared(f.ownerID)
		if err != nil {
			t.Fatal(err)
		}
		u0, u1, u2 := f.msgs[0].UID, f.msgs[1].UID, f.msgs[2].UID
		sub, err := e.Store.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()

		// The owner's \Seen on message 1 is not the readers'.
		if got := flagsOf(t, f.view, f.team); got[u1].Has(store.FlagSeen) || got[u0].Has(store.FlagSeen) {
			t.Fatalf("the viewer sees the owner's \\Seen: %v", got)
		}
		if n := unseenOf(t, f.view, f.team); n != 3 {
			t.Fatalf("viewer's unseen = %d, want 3", n)
		}
		ups, err := f.view.SetFlags(ctx, f.team, store.UIDSet{{Start: u0, Stop: u0}}, store.FlagAdd, store.FlagSeen, nil)
		if err != nil || len(ups) != 1 || !ups[0].Flags.Has(store.FlagSeen) || ups[0].ModSeq <= f.msgs[2].ModSeq {
			t.Fatalf("viewer's STORE +\\Seen = %+v, %v", ups, err)
		}
		select {
		case ev := <-sub.C():
			if ev.UserID != f.ownerID || ev.MailboxID != f.team || ev.Kind != "flags" || ev.UID != u0 {
				t.Fatalf("event = %+v, want the owner's flags event", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event for the viewer's \\Seen")
		}
		if got := flagsOf(t, f.view, f.team); !got[u0].Has(store.FlagSeen) || got[u1].Has(store.FlagSeen) {
			t.Fatalf("viewer's flags = %v", got)
		}
		if got := flagsOf(t, f.owner, f.team); got[u0].Has(store.FlagSeen) || !got[u1].Has(store.FlagSeen) {
			t.Fatalf("owner's flags = %v", got)
		}
		if got := flagsOf(t, carol, f.team); got[u0].Has(store.FlagSeen) || got[u1].Has(store.FlagSeen) {
			t.Fatalf("carol's flags = %v", got)
		}
		if m, err := f.view.Message(ctx, f.msgs[0].ID); err != nil || !m.Flags.Has(store.FlagSeen) {
			t.Fatalf("viewer's Message = %v, %v", m.Flags, err)
		}
		for _, c := range []struct {
			who  string
			a    *store.Account
			want int64
		}{{"owner", f.owner, 2}, {"viewer", f.view, 2}, {"carol", carol, 3}} {
			if n := unseenOf(t, c.a, f.team); n != c.want {
				t.Errorf("%s's unseen = %d, want %d", c.who, n, c.want)
			}
		}
		sms, err := f.viewer.SharedMailboxes(ctx)
		if err != nil || len(sms) != 2 || sms[0].ID != f.team || sms[0].Unseen != 2 || sms[0].Messages != 3 {
			t.Fatalf("SharedMailboxes = %+v, %v", sms, err)
		}
		// Replacing the flags: the viewer's \Seen goes, \Flagged comes, and
		// \Deleted stays as it was: the viewer has no "t".
		ups, err = f.view.SetFlags(ctx, f.team, nil, store.FlagReplace, store.FlagFlagged, nil)
		if err != nil || len(ups) != 3 {
			t.Fatal(ups, err)
		}
		if got := flagsOf(t, f.view, f.team); got[u0] != store.FlagFlagged || got[u1] != store.FlagFlagged || got[u2] != store.FlagFlagged|store.FlagDeleted {
			t.Fatalf("after FLAGS (\\Flagged): %v", got)
		}
		if got := flagsOf(t, f.owner, f.team); got[u1] != store.FlagFlagged|store.FlagSeen || got[u0] != store.FlagFlagged {
			t.Fatalf("owner's flags after the viewer's FLAGS: %v", got)
		}
		// Without "s" carol's \Seen is dropped with the rest kept; with
		// nothing she may change, the STORE is refused.
		if _, err := carol.SetFlags(ctx, f.team, nil, store.FlagAdd, store.FlagFlagged, nil); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("carol without w: %v", err)
		}
		// An append with \Seen: the viewer's, not the owner's.
		res, err := f.view.Append(ctx, f.team, storetest.Message("a@x", "b@x", "seen append", "x"), store.AppendOptions{Flags: store.FlagSeen | store.FlagAnswered})
		if err != nil {
			t.Fatal(err)
		}
		if got := flagsOf(t, f.view, f.team)[res.UID]; got != store.FlagSeen|store.FlagAnswered {
			t.Fatalf("viewer's flags of its append = %v", got)
		}
		if got := flagsOf(t, f.owner, f.team)[res.UID]; got != store.FlagAnswered {
			t.Fatalf("owner's flags of the viewer's append = %v", got)
		}
		// A copy and a move, by the viewer and then the owner, keep each
		// reader's \Seen.
		cp, err := f.view.Copy(ctx, f.team, store.UIDSet{{Start: res.UID, Stop: res.UID}}, f.sub)
		if err != nil {
			t.Fatal(err)
		}
		if got := flagsOf(t, f.view, f.sub)[cp.Pairs[0].Dst]; !got.Has(store.FlagSeen) {
			t.Fatalf("viewer's copy lost its \\Seen: %v", got)
		}
		mv, err := f.owner.Move(ctx, f.sub, nil, f.team)
		if err != nil {
			t.Fatal(err)
		}
		if got := flagsOf(t, f.view, f.team)[mv.Pairs[0].Dst]; !got.Has(store.FlagSeen) {
			t.Fatalf("owner's move lost the viewer's \\Seen: %v", got)
		}
		if got := flagsOf(t, f.owner, f.team)[mv.Pairs[0].Dst]; got.Has(store.FlagSeen) {
			t.Fatalf("owner's move set the owner's \\Seen: %v", got)
		}
		checkCounts(t, e, f.owner)
		// The viewer's unseen count agrees with its listing.
		for _, mb := range []int64{f.team, f.sub} {
			var unseen int64
			for _, fl := range flagsOf(t, f.view, mb) {
				if !fl.Has(store.FlagSeen) {
					unseen++
				}
			}
			if n := unseenOf(t, f.view, mb); n != unseen {
				t.Errorf("viewer's unseen count of %d = %d, listing says %d", mb, n, unseen)
			}
		}
	})
}

// TestDomainShare: a domain-wide share reaches every user of the domain
// (under Shared Folders) and nobody else; a direct grant adds to it and
// moves the mailbox under Other Users.
func TestDomainShare(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "corp.example", false)
		dave := e.Account(e.NewUser(t, "dave@other.example", false))
		if err := e.Store.AddDomainAlias(ctx, "corp-alias.example", "corp.example"); err != nil {
			t.Fatal(err)
		}
		if err := f.owner.Grant(ctx, f.team, "other.example", rL|rR); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("share with another domain: %v", err)
		}
		if err := f.owner.Grant(ctx, f.team, "CORP-alias.example", rL|rR); err != nil {
			t.Fatal(err)
		}
		gs, err := f.owner.Grants(ctx, f.team)
		if err != nil || len(gs) != 1 || gs[0].Grantee != "corp.example" || !gs[0].Domain || gs[0].Rights != rL|rR || gs[0].MailboxName != "Team" {
			t.Fatalf("grants = %+v, %v", gs, err)
		}
		for _, a := range []*store.Account{f.viewer, f.carol} {
			sms, err := a.SharedMailboxes(ctx)
			if err != nil || len(sms) != 1 || !sms[0].DomainShare || sms[0].OwnerAddress != f.ownerAddr || sms[0].Name != "Team" || sms[0].Rights != rL|rR || sms[0].OwnerID != f.ownerID {
				t.Fatalf("shared with user %d: %+v, %v", a.UserID(), sms, err)
			}
			v, _ := a.Shared(f.ownerID)
			if ms, err := v.List(ctx, f.team, store.ListQuery{}); err != nil || len(ms) != 3 {
				t.Fatalf("domain member lists %d, %v", len(ms), err)
			}
		}
		if sms, err := f.owner.SharedMailboxes(ctx); err != nil || len(sms) != 0 {
			t.Fatalf("the owner's own mailboxes are not shared with it: %+v, %v", sms, err)
		}
		if sms, err := dave.SharedMailboxes(ctx); err != nil || len(sms) != 0 {
			t.Fatalf("another domain sees %+v, %v", sms, err)
		}
		dv, _ := dave.Shared(f.ownerID)
		if _, err := dv.List(ctx, f.team, store.ListQuery{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another domain lists: %v", err)
		}
		// A direct grant on top: the union of rights, under Other Users.
		if err := f.owner.Grant(ctx, f.team, f.viewerAddr, rL|rI); err != nil {
			t.Fatal(err)
		}
		sms, err := f.viewer.SharedMailboxes(ctx)
		if err != nil || len(sms) != 1 || sms[0].DomainShare || sms[0].Rights != rL|rR|rI || sms[0].OwnerAddress != f.ownerAddr || sms[0].Name != "Team" {
			t.Fatalf("direct and domain grants: %+v, %v", sms, err)
		}
		if r, err := f.view.MyRights(ctx, f.team); err != nil || r != rL|rR|rI {
			t.Fatalf("MyRights = %q, %v", r, err)
		}
		if r, err := f.owner.MyRights(ctx, f.team); err != nil || r != store.AllRights {
			t.Fatalf("owner's MyRights = %q, %v", r, err)
		}
		all, err := e.Store.GrantsFor(ctx, f.ownerID)
		if err != nil || len(all) != 2 {
			t.Fatalf("GrantsFor = %+v, %v", all, err)
		}
	})
}

// TestGrantRevokeAndGrantees: grants name users by address or login
// name; revoking takes effect at once, on handles already open too.
func TestGrantRevokeAndGrantees(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "rev.example", false)
		if err := e.Store.AddIdentifier(ctx, f.viewerID, "viewer-login"); err != nil {
			t.Fatal(err)
		}
		if err := f.owner.Grant(ctx, f.team, "Viewer-Login", rL|rR); err != nil {
			t.Fatal(err)
		}
		gs, err := f.owner.Grants(ctx, f.team)
		if err != nil || len(gs) != 1 || gs[0].Grantee != f.viewerAddr || gs[0].Domain {
			t.Fatalf("grant by login name recorded as %+v, %v", gs, err)
		}
		if _, err := f.view.List(ctx, f.team, store.ListQuery{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			grantee string
			want    error
		}{
			{"nobody@rev.example", store.ErrNotFound},
			{f.ownerAddr, store.ErrInvalid},
			{"bad address@", store.ErrInvalid},
			{"unknown.example", store.ErrNotFound},
		} {
			if err := f.owner.Grant(ctx, f.team, c.grantee, rL); !errors.Is(err, c.want) {
				t.Errorf("grant to %q: got %v, want %v", c.grantee, err, c.want)
			}
		}
		if err := f.owner.Grant(ctx, f.private, f.viewerAddr, store.Rights(1<<15)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown right bits: %v", err)
		}
		if err := f.owner.Grant(ctx, f.team, strings.ToUpper(f.viewerAddr), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.view.List(ctx, f.team, store.ListQuery{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("list after revoke: %v", err)
		}
		if sms, err := f.viewer.SharedMailboxes(ctx); err != nil || len(sms) != 0 {
			t.Fatalf("shared after revoke: %+v, %v", sms, err)
		}
		// Revoking what is not granted is no error.
		if err := f.owner.Grant(ctx, f.team, f.viewerAddr, 0); err != nil {
			t.Fatal(err)
		}
	})
}

func countRows(t *testing.T, e *storetest.Env, table, where string, args ...any) int {
	t.Helper()
	var n int
	if err := e.DB.GetContext(context.Background(), &n, e.DB.Rebind("SELECT COUNT(*) FROM "+table+" WHERE "+where), args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShareCleanup: deleting the mailbox, the viewer or the owner takes
// the grants, the viewers' seen state and subscriptions with it.
func TestShareCleanup(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		setup := func(domain string) *shareFix {
			f := newShareFix(t, e, domain, false)
			f.grant(t, rL|rR|rS|rX)
			if err := f.owner.Grant(ctx, f.team, domain, rL); err != nil {
				t.Fatal(err)
			}
			for _, mb := range []int64{f.team, f.sub} {
				if err := f.view.Subscribe(ctx, mb, true); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.view.SetFlags(ctx, f.team, nil, store.FlagAdd, store.FlagSeen, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := f.view.Copy(ctx, f.team, nil, f.sub); !errors.Is(err, store.ErrForbidden) {
				t.Fatalf("copy without i: %v", err)
			}
			if n := countRows(t, e, "shared_seen", "user_id = ?", f.viewerID); n != 3 {
				t.Fatalf("%d seen rows, want 3", n)
			}
			return f
		}
		// The mailbox: deleted by the viewer, through the share.
		f := setup("c1.example")
		if err := f.view.DeleteMailbox(ctx, f.sub); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, e, "mailbox_grants", "mailbox_id = ?", f.sub) + countRows(t, e, "shared_subscriptions", "mailbox_id = ?", f.sub); n != 0 {
			t.Fatalf("%d rows left of a deleted mailbox", n)
		}
		if err := f.owner.DeleteMailbox(ctx, f.team); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, e, "mailbox_grants", "mailbox_id = ?", f.team) + countRows(t, e, "shared_seen", "user_id = ?", f.viewerID) +
			countRows(t, e, "shared_subscriptions", "user_id = ?", f.viewerID); n != 0 {
			t.Fatalf("%d rows left of a deleted mailbox", n)
		}
		// Expunged messages take their seen rows.
		f = setup("c2.example")
		if _, err := f.owner.Remove(ctx, f.team, store.UIDSet{{Start: f.msgs[0].UID, Stop: f.msgs[0].UID}}); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, e, "shared_seen", "user_id = ?", f.viewerID); n != 2 {
			t.Fatalf("%d seen rows after an expunge, want 2", n)
		}
		// The viewer.
		if err := e.Store.DeleteUser(ctx, f.viewerID); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, e, "mailbox_grants", "grantee_user_id = ?", f.viewerID) + countRows(t, e, "shared_seen", "user_id = ?", f.viewerID) +
			countRows(t, e, "shared_subscriptions", "user_id = ?", f.viewerID); n != 0 {
			t.Fatalf("%d rows left of a deleted viewer", n)
		}
		if n := countRows(t, e, "mailbox_grants", "mailbox_id = ?", f.team); n != 1 {
			t.Fatalf("the domain grant went with the viewer: %d left", n)
		}
		// The owner.
		f = setup("c3.example")
		if err := e.Store.DeleteUser(ctx, f.ownerID); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, e, "mailbox_grants", "mailbox_id IN (?, ?)", f.team, f.sub) + countRows(t, e, "shared_seen", "user_id = ?", f.viewerID) +
			countRows(t, e, "shared_subscriptions", "user_id = ?", f.viewerID); n != 0 {
			t.Fatalf("%d rows left of a deleted owner", n)
		}
		if sms, err := f.viewer.SharedMailboxes(ctx); err != nil || len(sms) != 0 {
			t.Fatalf("shared after the owner went: %+v, %v", sms, err)
		}
	})
}

// TestShareSecureOwner: a secure user's mail cannot be shared, and a grant
// that got into the table anyway gives nothing.
func TestShareSecureOwner(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		sa := e.NewUser(t, "sealed@sec.example", true)
		owner := e.Account(sa)
		viewer := e.Account(e.NewUser(t, "viewer@sec.example", false))
		inbox := storetest.Inbox(t, owner)
		storetest.Append(t, owner, inbox, storetest.Message("a@x", "b@x", "s", "sealed"), store.AppendOptions{})
		for _, grantee := range []string{"viewer@sec.example", "sec.example"} {
			err := owner.Grant(ctx, inbox, grantee, rL|rR)
			if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), "encrypted") {
				t.Fatalf("sharing a secure user's mailbox with %s: %v", grantee, err)
			}
		}
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind("INSERT INTO mailbox_grants (mailbox_id, grantee_user_id, rights, created_at) VALUES (?, ?, 'lr', 0)"), inbox, viewer.UserID()); err != nil {
			t.Fatal(err)
		}
		v, _ := viewer.Shared(sa.User.ID)
		if _, err := v.List(ctx, inbox, store.ListQuery{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("list a secure owner's mailbox: %v", err)
		}
		if sms, err := viewer.SharedMailboxes(ctx); err != nil || len(sms) != 0 {
			t.Fatalf("a secure owner's mailbox is listed: %+v, %v", sms, err)
		}
	})
}

// TestShareQuota: what a viewer puts into a shared mailbox is charged to
// the owner, and refused by the owner's quota.
func TestShareQuota(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "quota.example", false)
		f.grant(t, rL|rR|rI)
		ou, _ := e.Store.UserByID(ctx, f.ownerID)
		vu, _ := e.Store.UserByID(ctx, f.viewerID)
		raw := storetest.SizedMessage(4000)
		if _, err := f.view.Append(ctx, f.team, raw, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		ou2, _ := e.Store.UserByID(ctx, f.ownerID)
		vu2, _ := e.Store.UserByID(ctx, f.viewerID)
		if ou2.UsedBytes != ou.UsedBytes+4000 || ou2.MessageCount != ou.MessageCount+1 || vu2.UsedBytes != vu.UsedBytes {
			t.Fatalf("usage: owner %d->%d, viewer %d->%d", ou.UsedBytes, ou2.UsedBytes, vu.UsedBytes, vu2.UsedBytes)
		}
		q := ou2.UsedBytes + 1000
		if err := e.Store.SetLimits(ctx, f.ownerID, "", store.LimitOverrides{QuotaBytes: &q}); err != nil {
			t.Fatal(err)
		}
		before := f.snapshot(t)
		if _, err := f.view.Append(ctx, f.team, raw, store.AppendOptions{}); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("append over the owner's quota: %v", err)
		}
		if _, err := f.view.Copy(ctx, f.team, nil, f.sub); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("copy over the owner's quota: %v", err)
		}
		if _, err := f.viewer.CopyTo(ctx, f.viewerInbox, nil, f.view, f.team); err != nil {
			t.Fatalf("a small copy within the owner's quota: %v", err)
		}
		if after := f.snapshot(t); after == before {
			t.Fatal("the copy into the shared mailbox changed nothing")
		}
		checkCounts(t, e, f.owner)
		checkCounts(t, e, f.viewer)
	})
}

// TestShareCopyAcrossUsers: copies between a viewer's own mail and a
// shared mailbox, both ways, with a secure viewer: the copy is sealed to
// the viewer's key on the way in and readable by the owner on the way
// out; flags follow the rights; a failure part-way leaves nothing.
func TestShareCopyAcrossUsers(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "xcopy.example", true)
		f.grant(t, rL|rR|rS|rI|rT|rE) // no w: \Flagged and keywords do not travel into Team
		if _, err := f.view.SetFlags(ctx, f.team, store.UIDSet{{Start: f.msgs[0].UID, Stop: f.msgs[0].UID}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		want := storetest.Messages(t, f.owner, "Team")

		// Into the viewer's own INBOX: sealed to its key, its own \Seen kept.
		res, err := f.view.CopyTo(ctx, f.team, nil, f.viewer, f.viewerInbox)
		if err != nil || len(res.Pairs) != 3 {
			t.Fatalf("CopyTo own = %+v, %v", res, err)
		}
		got := storetest.Messages(t, f.viewer, "INBOX")
		if len(got) != 4 || !slices.Equal(got[1:], want) {
			t.Fatalf("copied messages differ")
		}
		fl := flagsOf(t, f.viewer, f.viewerInbox)
		if !fl[res.Pairs[0].Dst].Has(store.FlagSeen|store.FlagEncrypted) || fl[res.Pairs[1].Dst].Has(store.FlagSeen) || !fl[res.Pairs[2].Dst].Has(store.FlagDeleted) {
			t.Fatalf("flags of the copies: %v", fl)
		}
		locked := e.Store.Account(f.viewerID, nil)
		if _, err := locked.Open(ctx, f.msgs[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the owner's message through the viewer's own account: %v", err)
		}
		if rc, err := locked.Open(ctx, mustMessageID(t, f.viewer, f.viewerInbox, res.Pairs[0].Dst)); err == nil {
			rc.Close()
			t.Fatal("a copy into a secure user's mailbox opens without its key")
		}

		// Out of the viewer's own INBOX into Team: readable by the owner;
		// \Flagged is dropped (no "w").
		before := storetest.Messages(t, f.owner, "Team")
		res, err = f.viewer.CopyTo(ctx, f.viewerInbox, store.UIDSet{{Start: f.viewerMsg.UID, Stop: f.viewerMsg.UID}}, f.view, f.team)
		if err != nil || len(res.Pairs) != 1 {
			t.Fatalf("CopyTo shared = %+v, %v", res, err)
		}
		after := storetest.Messages(t, f.owner, "Team")
		if len(after) != len(before)+1 || !strings.Contains(after[len(after)-1], "viewer's own") {
			t.Fatal("the owner cannot read the viewer's copy")
		}
		if fl := flagsOf(t, f.owner, f.team)[res.Pairs[0].Dst]; fl != 0 {
			t.Fatalf("copy into Team has flags %v without w", fl)
		}

		// A move out of Team: the originals go.
		res, err = f.view.MoveTo(ctx, f.team, store.UIDSet{{Start: f.msgs[1].UID, Stop: f.msgs[1].UID}}, f.viewer, f.viewerInbox)
		if err != nil || len(res.Pairs) != 1 {
			t.Fatalf("MoveTo = %+v, %v", res, err)
		}
		if _, ok := flagsOf(t, f.owner, f.team)[f.msgs[1].UID]; ok {
			t.Fatal("the moved message is still in Team")
		}

		// A copy that fails part-way (the viewer's quota holds one more
		// message of the three) leaves the target as it was.
		vu, _ := e.Store.UserByID(ctx, f.viewerID)
		q := vu.UsedBytes + int64(len(want[0])) + 10
		if err := e.Store.SetLimits(ctx, f.viewerID, "", store.LimitOverrides{QuotaBytes: &q}); err != nil {
			t.Fatal(err)
		}
		inbox := storetest.Messages(t, f.viewer, "INBOX")
		if _, err := f.view.CopyTo(ctx, f.team, nil, f.viewer, f.viewerInbox); !errors.Is(err, store.ErrOverQuota) {
			t.Fatalf("copy over quota: %v", err)
		}
		if !slices.Equal(storetest.Messages(t, f.viewer, "INBOX"), inbox) {
			t.Fatal("a failed copy left messages behind")
		}
		checkCounts(t, e, f.owner)
		checkCounts(t, e, f.viewer)
	})
}

func mustMessageID(t *testing.T, a *store.Account, mailbox int64, uid uint32) int64 {
	t.Helper()
	ms, err := a.List(context.Background(), mailbox, store.ListQuery{UIDs: store.UIDSet{{Start: uid, Stop: uid}}})
	if err != nil || len(ms) != 1 {
		t.Fatalf("message UID %d: %v", uid, err)
	}
	return ms[0].ID
}

// TestShareHierarchy: mailboxes created under a shared one inherit its
// grants (RFC 4314 4), whoever creates them; subscriptions are each
// user's own.
func TestShareHierarchy(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		f := newShareFix(t, e, "tree.example", false)
		if err := f.owner.Grant(ctx, f.team, f.viewerAddr, rL|rR|rK|rX); err != nil {
			t.Fatal(err)
		}
		if _, err := f.owner.CreateMailbox(ctx, "Team/ByOwner", ""); err != nil {
			t.Fatal(err)
		}
		m, err := f.view.CreateMailbox(ctx, "Team/ByViewer/Deep", "")
		if err != nil || m.Name != "Team/ByViewer/Deep" {
			t.Fatalf("viewer's create = %+v, %v", m, err)
		}
		ms, err := f.view.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		if !slices.Equal(names, []string{"Team", "Team/ByOwner", "Team/ByViewer", "Team/ByViewer/Deep"}) {
			t.Fatalf("viewer sees %v", names)
		}
		// Renaming keeps the grants; moving to the top is the owner's alone.
		if err := f.view.RenameMailbox(ctx, m.ID, "Team/Moved"); err != nil {
			t.Fatal(err)
		}
		if err := f.view.RenameMailbox(ctx, m.ID, "Top"); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("rename to the top: %v", err)
		}
		if r, err := f.view.MyRights(ctx, m.ID); err != nil || r != rL|rR|rK|rX {
			t.Fatalf("rights after rename = %q, %v", r, err)
		}
		// Subscriptions.
		if err := f.view.Subscribe(ctx, f.team, true); err != nil {
			t.Fatal(err)
		}
		if err := f.owner.Subscribe(ctx, f.team, false); err != nil {
			t.Fatal(err)
		}
		vm, _ := f.view.Mailbox(ctx, f.team)
		om, _ := f.owner.Mailbox(ctx, f.team)
		if !vm.Subscribed || om.Subscribed {
			t.Fatalf("subscribed: viewer %v, owner %v", vm.Subscribed, om.Subscribed)
		}
		if err := f.view.Subscribe(ctx, f.team, false); err != nil {
			t.Fatal(err)
		}
		if err := f.view.Subscribe(ctx, f.private, false); err != nil {
			t.Fatalf("unsubscribing needs no right: %v", err)
		}
		if vm, _ := f.view.Mailbox(ctx, f.team); vm.Subscribed {
			t.Fatal("unsubscribe did not stick")
		}
		// Without "r" a mailbox is listed without its counts (STATUS needs "r").
		if err := f.owner.Grant(ctx, f.team, f.viewerAddr, rL); err != nil {
			t.Fatal(err)
		}
		if vm, err := f.view.Mailbox(ctx, f.team); err != nil || vm.Messages != 0 || vm.Size != 0 || vm.Unseen != 0 {
			t.Fatalf("counts without r: %+v, %v", vm, err)
		}
	})
}

// BenchmarkSharedMailbox50k: reading a 100,000-message mailbox through a
// share whose viewer has seen half of it, against the owner reading it: a
// 50-message page (the viewer's \Seen overlaid) and the mailbox with the
// viewer's unseen count (SELECT/STATUS).
func BenchmarkSharedMailbox50k(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(b, db, storetest.Options{})
		oa := e.NewUser(b, "owner@example.org", false)
		owner := e.Account(oa)
		viewer := e.Account(e.NewUser(b, "viewer@example.org", false))
		mb, err := owner.CreateMailbox(ctx, "Big", "")
		if err != nil {
			b.Fatal(err)
		}
		const n = 100_000
		storetest.Seed(b, e, owner.UserID(), mb.ID, n)
		if err := owner.Grant(ctx, mb.ID, "viewer@example.org", rL|rR|rS); err != nil {
			b.Fatal(err)
		}
		for start := 0; start < n/2; start += 500 {
			if _, err := e.DB.ExecContext(ctx, e.DB.Rebind(`INSERT INTO shared_seen (user_id, mailbox_id, message_id)
				SELECT ?, mailbox_id, id FROM messages WHERE mailbox_id = ? AND uid > ? AND uid <= ?`), viewer.UserID(), mb.ID, start, start+500); err != nil {
				b.Fatal(err)
			}
		}
		if db.Driver == "mysql" {
			e.DB.ExecContext(ctx, "ANALYZE TABLE shared_seen")
		} else {
			e.DB.ExecContext(ctx, "ANALYZE")
		}
		view, _ := viewer.Shared(owner.UserID())
		if m, err := view.Mailbox(ctx, mb.ID); err != nil || m.Unseen != n/2 {
			b.Fatalf("viewer's unseen = %d, %v", m.Unseen, err)
		}
		for _, who := range []struct {
			name string
			a    *store.Account
		}{{"owner", owner}, {"viewer", view}} {
			b.Run("page/"+who.name, func(b *testing.B) {
				for b.Loop() {
					ms, err := who.a.List(ctx, mb.ID, store.ListQuery{Sort: store.SortDateDesc, Limit: 50, WithInfo: true})
					if err != nil || len(ms) != 50 {
						b.Fatalf("list: %d, %v", len(ms), err)
					}
				}
			})
			b.Run("mailbox/"+who.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := who.a.Mailbox(ctx, mb.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
