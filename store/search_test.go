package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func TestSearch(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		other := e.Account(e.NewUser(t, "mallory@example.org", false))
		inbox := storetest.Inbox(t, a)
		day := func(d int) time.Time { return time.Date(2026, 3, d, 12, 0, 0, 0, time.UTC) }
		// uid: flags, size, date
		msgs := []struct {
			flags store.Flags
			size  int
			date  time.Time
		}{
			{store.FlagSeen, 1000, day(1)},
			{0, 2000, day(2)},
			{store.FlagSeen | store.FlagDeleted, 3000, day(3)},
			{store.FlagFlagged, 4000, day(4)},
			{store.FlagDeleted, 5000, day(5)},
		}
		for _, m := range msgs {
			storetest.Append(t, a, inbox, storetest.SizedMessage(m.size), store.AppendOptions{Flags: m.flags, InternalDate: m.date})
		}
		for _, tc := range []struct {
			name string
			q    store.SearchQuery
			want []uint32
		}{
			{"all", store.SearchQuery{}, []uint32{1, 2, 3, 4, 5}},
			{"seen", store.SearchQuery{FlagsSet: store.FlagSeen}, []uint32{1, 3}},
			{"unseen", store.SearchQuery{FlagsClear: store.FlagSeen}, []uint32{2, 4, 5}},
			{"seen and deleted", store.SearchQuery{FlagsSet: store.FlagSeen | store.FlagDeleted}, []uint32{3}},
			{"deleted not seen", store.SearchQuery{FlagsSet: store.FlagDeleted, FlagsClear: store.FlagSeen}, []uint32{5}},
			{"larger", store.SearchQuery{Larger: 3000}, []uint32{4, 5}},
			{"smaller", store.SearchQuery{Smaller: 3000}, []uint32{1, 2}},
			{"since", store.SearchQuery{Since: day(4).Truncate(24 * time.Hour)}, []uint32{4, 5}},
			{"before", store.SearchQuery{Before: day(2).Truncate(24 * time.Hour)}, []uint32{1}},
			{"uids", store.SearchQuery{UIDs: store.UIDSet{{Start: 2, Stop: 3}, {Start: 5, Stop: 0}}}, []uint32{2, 3, 5}},
			{"page", store.SearchQuery{AfterUID: 2, Limit: 2}, []uint32{3, 4}},
			{"none", store.SearchQuery{UIDs: store.UIDSet{}}, nil},
		} {
			got, err := a.Search(ctx, inbox, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var uids []uint32
			for _, m := range got {
				uids = append(uids, m.UID)
			}
			if !slices.Equal(uids, tc.want) {
				t.Errorf("%s: got UIDs %v, want %v", tc.name, uids, tc.want)
			}
			if len(got) > 0 && got[0].Size == 0 {
				t.Errorf("%s: rows come without their size", tc.name)
			}
			if tc.q.Limit == 0 {
				n, err := a.CountMessages(ctx, inbox, tc.q)
				if err != nil || n != int64(len(tc.want)) {
					t.Errorf("%s: count = %d, %v; want %d", tc.name, n, err, len(tc.want))
				}
			}
		}

		uids, err := a.UIDs(ctx, inbox)
		if err != nil || !slices.Equal(uids, []uint32{1, 2, 3, 4, 5}) {
			t.Fatalf("UIDs = %v, %v", uids, err)
		}
		empty := storetest.MailboxID(t, a, "Trash")
		if uids, err := a.UIDs(ctx, empty); err != nil || uids == nil || len(uids) != 0 {
			t.Fatalf("UIDs of an empty mailbox = %#v, %v; want an empty list", uids, err)
		}

		// Another user's mailbox is not there, whatever its id.
		if _, err := other.UIDs(ctx, inbox); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UIDs of another user's mailbox: %v, want ErrNotFound", err)
		}
		if got, err := other.Search(ctx, inbox, store.SearchQuery{}); err != nil || len(got) != 0 {
			t.Errorf("search of another user's mailbox = %d messages, %v", len(got), err)
		}
		if n, err := other.CountMessages(ctx, inbox, store.SearchQuery{}); err != nil || n != 0 {
			t.Errorf("count of another user's mailbox = %d, %v", n, err)
		}
	})
}

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

// TestFindShared: a mailbox shared with the viewer is searched as the
// owner's, with "r" on it (RFC 4314 4); without "l" it is not there, and
// the read state, the viewer's own there, is not searched.
func TestFindShared(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		f := newShareFix(t, storetest.Open(t, db, storetest.Options{}), "example.org", false)
		team := store.MailQuery{Mailboxes: []int64{f.team}, Groups: [][]store.SearchTerm{{{Kind: store.TermText, Words: []string{"team"}}}}}
		if _, err := f.view.FindMessages(ctx, team); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("without a grant: %v, want ErrNotFound", err)
		}
		f.grant(t, rL)
		if _, err := f.view.FindMessages(ctx, team); !errors.Is(err, store.ErrForbidden) {
			t.Errorf("without r: %v, want ErrForbidden", err)
		}
		f.grant(t, rL|rR|rS)
		hits, err := f.view.FindMessages(ctx, team)
		if err != nil || len(hits) != len(f.msgs) {
			t.Fatalf("with r: %v, %v; want the %d team messages", hits, err, len(f.msgs))
		}
		for _, h := range hits {
			if h.MailboxID != f.team {
				t.Errorf("hit outside Team: %+v", h)
			}
		}
		// Private is not granted: asked with Team, nothing is searched.
		both := team
		both.Mailboxes = []int64{f.team, f.private}
		if _, err := f.view.FindMessages(ctx, both); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("with an ungranted mailbox: %v, want ErrNotFound", err)
		}
		for _, term := range []store.SearchTerm{{Kind: store.TermUnread}, {Kind: store.TermRead}, {Kind: store.TermFlags, Flags: store.FlagSeen}} {
			q := team
			q.Groups = append(q.Groups, []store.SearchTerm{term})
			if _, err := f.view.FindMessages(ctx, q); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("term %+v on a share: %v, want ErrInvalid", term, err)
			}
		}
	})
}
