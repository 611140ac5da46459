package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestKeywordLimit: adding past the keyword limit is refused and loses
// none of the keywords a message has.
func TestKeywordLimit(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		storetest.Append(t, a, inbox, storetest.Message("a@x.test", "b@x.test", "s", "b"), store.AppendOptions{})
		var kws []string
		for i := range 60 {
			kws = append(kws, fmt.Sprintf("k%02d", i))
		}
		if _, err := a.SetFlags(ctx, inbox, nil, store.FlagAdd, 0, kws); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetFlags(ctx, inbox, nil, store.FlagAdd, 0, []string{"x1", "x2", "x3", "x4", "x5"}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("adding past the limit: %v", err)
		}
		ms, _ := a.List(ctx, inbox, store.ListQuery{})
		if !slices.Equal(ms[0].Keywords, kws) {
			t.Fatalf("keywords after a refused add: %d of 60", len(ms[0].Keywords))
		}
	})
}

// TestStoreManyMessages: one STORE over more messages than SQL takes
// placeholders at once.
func TestStoreManyMessages(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		mb, err := a.CreateMailbox(ctx, "Big", "")
		if err != nil {
			t.Fatal(err)
		}
		const n = 70_000 // past MariaDB's 65,535 placeholders and SQLite's 32,766
		storetest.Seed(t, e, a.UserID(), mb.ID, n)
		ups, err := a.SetFlags(ctx, mb.ID, store.UIDSet{{Start: 1, Stop: 0}}, store.FlagAdd, store.FlagSeen, nil)
		if err != nil || len(ups) != n {
			t.Fatalf("SetFlags over %d: %d updates, %v", n, len(ups), err)
		}
		unseen, err := a.List(ctx, mb.ID, store.ListQuery{ChangedSince: ups[0].ModSeq - 1, Limit: 1, Sort: store.SortUID, AfterUID: n - 1})
		if err != nil || len(unseen) != 1 || !unseen[0].Flags.Has(store.FlagSeen) {
			t.Fatalf("last message after STORE: %+v, %v", unseen, err)
		}
	})
}

// TestServerFlags: clients cannot set or clear what the server records.
func TestServerFlags(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		msg := storetest.Message("a@x.test", "b@x.test", "s", "b")
		res := storetest.Append(t, a, inbox, msg, store.AppendOptions{Flags: store.FlagSeen | store.FlagEncrypted | store.FlagInfected, SystemFlags: store.FlagSpoofed})
		m, _ := a.Message(ctx, res.ID)
		if m.Flags != store.FlagSeen|store.FlagSpoofed {
			t.Fatalf("append flags = %d", m.Flags)
		}
		ups, err := a.SetFlags(ctx, inbox, nil, store.FlagReplace, store.FlagFlagged|store.FlagEncrypted, nil)
		if err != nil || ups[0].Flags != store.FlagFlagged|store.FlagSpoofed {
			t.Fatalf("replace flags = %+v, %v", ups, err)
		}
	})
}

// SetFlags says which messages it changed, so that a session can tell its
// own changes from other sessions': a message that had the flag already
// keeps its modseq and is not Changed.
func TestSetFlagsChanged(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		msg := storetest.Message("bob@example.org", "alice@example.org", "hi", "body")
		seen := storetest.Append(t, a, inbox, msg, store.AppendOptions{Flags: store.FlagSeen})
		unseen := storetest.Append(t, a, inbox, msg, store.AppendOptions{})
		ups, err := a.SetFlags(context.Background(), inbox, store.UIDSet{{Start: seen.UID, Stop: unseen.UID}}, store.FlagAdd, store.FlagSeen, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != 2 || ups[0].Changed || ups[0].ModSeq != seen.ModSeq || !ups[1].Changed || ups[1].ModSeq <= unseen.ModSeq {
			t.Errorf("updates = %+v; want the seen one unchanged at modseq %d, the other changed above %d", ups, seen.ModSeq, unseen.ModSeq)
		}
	})
}
