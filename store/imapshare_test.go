package store_test

import (
	"context"
	"errors"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// FirstUnseen is the first message its user has not seen: by the
// message's \Seen on the owner's mailbox, by the viewer's own on a share;
// it needs "r" there, and "l" to know of the mailbox at all.
func TestFirstUnseen(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		f := newShareFix(t, storetest.Open(t, db, storetest.Options{}), "example.org", false)
		want := func(a *store.Account, wantUID uint32) {
			t.Helper()
			got, err := a.FirstUnseen(ctx, f.team)
			if err != nil || got != wantUID {
				t.Errorf("FirstUnseen = %d, %v; want %d", got, err, wantUID)
			}
		}
		// Team holds UIDs 1 (unseen), 2 (\Seen) and 3 (\Deleted).
		want(f.owner, 1)
		if _, err := f.owner.SetFlags(ctx, f.team, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		want(f.owner, 3)

		if _, err := f.view.FirstUnseen(ctx, f.team); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("without a grant: %v, want ErrNotFound", err)
		}
		f.grant(t, rL)
		if _, err := f.view.FirstUnseen(ctx, f.team); !errors.Is(err, store.ErrForbidden) {
			t.Errorf("without r: %v, want ErrForbidden", err)
		}
		f.grant(t, rL|rR|rS)
		// The owner's \Seen is not the viewer's.
		want(f.view, 1)
		if _, err := f.view.SetFlags(ctx, f.team, store.UIDSet{{Start: 1, Stop: 2}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		want(f.view, 3)
		if _, err := f.view.SetFlags(ctx, f.team, store.UIDSet{{Start: 3, Stop: 3}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		want(f.view, 0)
		// Another reader's \Seen is not the viewer's either.
		carol, err := f.carol.Shared(f.ownerID)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.owner.Grant(ctx, f.team, f.carolAddr, rL|rR); err != nil {
			t.Fatal(err)
		}
		want(carol, 1)
		want(f.owner, 3)
	})
}
