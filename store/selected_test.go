package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// ClaimRecent hands each message to one claimer only, however many race
// for it (RFC 3501 2.3.2: recent in exactly one session).
func TestClaimRecent(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		for range 4 {
			storetest.Append(t, a, inbox, []byte("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
		}
		if n, err := a.RecentCount(ctx, inbox); err != nil || n != 4 {
			t.Fatalf("RecentCount = %d, %v; want 4", n, err)
		}
		// Twenty claimers race for UIDs below 3, then below 5.
		for _, upto := range []uint32{3, 5} {
			got := make([]uint32, 20)
			var wg sync.WaitGroup
			for i := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					from, err := a.ClaimRecent(ctx, inbox, upto)
					if err != nil {
						t.Error(err)
						return
					}
					got[i] = upto - from
				}()
			}
			wg.Wait()
			var total uint32
			for _, n := range got {
				total += n
			}
			if total != 2 {
				t.Errorf("claims below %d: %v, adding up to %d, want 2", upto, got, total)
			}
		}
		if n, err := a.RecentCount(ctx, inbox); err != nil || n != 0 {
			t.Fatalf("RecentCount after the claims = %d, %v", n, err)
		}
		// Claiming backwards claims nothing.
		if from, err := a.ClaimRecent(ctx, inbox, 2); err != nil || from != 2 {
			t.Fatalf("ClaimRecent(2) = %d, %v; want nothing (2)", from, err)
		}
		// An append by a session with the mailbox selected claims in its
		// own transaction: the unclaimed message before it and itself.
		storetest.Append(t, a, inbox, []byte("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
		res, err := a.Append(ctx, inbox, []byte("Subject: y\r\n\r\ny\r\n"), store.AppendOptions{ClaimRecent: true})
		if err != nil || res.UID != 6 || res.RecentFrom != 5 {
			t.Fatalf("Append with ClaimRecent = UID %d, RecentFrom %d, %v; want 6, 5", res.UID, res.RecentFrom, err)
		}
		if n, err := a.RecentCount(ctx, inbox); err != nil || n != 0 {
			t.Fatalf("RecentCount after a claiming append = %d, %v", n, err)
		}
		if from, err := a.ClaimRecent(ctx, inbox, 7); err != nil || from != 7 {
			t.Fatalf("ClaimRecent(7) after a claiming append = %d, %v; want nothing (7)", from, err)
		}
	})
}

// The keyword list of a mailbox grows with STORE, APPEND and COPY, in one
// case-insensitive list; a mailbox from before the list (NULL) has it
// gathered from its messages once.
func TestMailboxKeywords(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		kws := func(id int64) []string {
			t.Helper()
			k, err := a.Keywords(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		if k := kws(inbox); len(k) != 0 {
			t.Fatalf("a new mailbox's keywords: %q", k)
		}
		storetest.Append(t, a, inbox, []byte("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{Keywords: []string{"Zed", "$Label1"}})
		storetest.Append(t, a, inbox, []byte("Subject: y\r\n\r\ny\r\n"), store.AppendOptions{})
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: 2, Stop: 2}}, store.FlagAdd, 0, []string{"alpha", "ZED"}); err != nil {
			t.Fatal(err)
		}
		if k, want := kws(inbox), []string{"$Label1", "Zed", "alpha"}; !slices.Equal(k, want) {
			t.Fatalf("keywords after APPEND and STORE: %q, want %q", k, want)
		}
		// Removing a keyword leaves the list: FLAGS never shrinks.
		if _, err := a.SetFlags(ctx, inbox, nil, store.FlagRemove, 0, []string{"alpha"}); err != nil {
			t.Fatal(err)
		}
		other, err := a.CreateMailbox(ctx, "Other", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Copy(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}}, other.ID); err != nil {
			t.Fatal(err)
		}
		if k, want := kws(other.ID), []string{"$Label1", "Zed"}; !slices.Equal(k, want) {
			t.Fatalf("keywords after COPY: %q, want %q", k, want)
		}
		// As a mailbox made before the list was kept.
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind("UPDATE mailboxes SET keywords = NULL WHERE id = ?"), inbox); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, 0, []string{"beta"}); err != nil {
			t.Fatal(err)
		}
		// One spelling of each keyword, whatever the case: the first
		// met in the messages' lists in byte order ("$Label1 Zed beta"
		// before "ZED").
		if k, want := kws(inbox), []string{"$Label1", "Zed", "beta"}; !slices.Equal(k, want) {
			t.Fatalf("keywords gathered from the messages: %q, want %q", k, want)
		}
		if k, want := kws(inbox), []string{"$Label1", "Zed", "beta"}; !slices.Equal(k, want) {
			t.Fatalf("keywords read again: %q, want %q", k, want)
		}
	})
}

// List and SetFlags by a set of many ranges see exactly the set, whether
// it is read as the span around it (dense) or range by range (sparse).
func TestListManyRanges(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		for range 12 {
			storetest.Append(t, a, inbox, []byte("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
		}
		for _, tc := range []struct {
			set  store.UIDSet
			want []uint32
		}{
			{store.UIDSet{{1, 1}, {3, 3}, {5, 6}, {9, 8}, {12, 12}}, []uint32{1, 3, 5, 6, 8, 9, 12}},
			{store.UIDSet{{2, 2}, {4, 4}, {7, 0}}, []uint32{2, 4, 7, 8, 9, 10, 11, 12}},
			{store.UIDSet{{11, 11}, {1, 1}, {6, 6}}, []uint32{1, 6, 11}},
			{store.UIDSet{{1, 1}, {3, 3}, {500, 600}}, []uint32{1, 3}},
		} {
			msgs, err := a.List(ctx, inbox, store.ListQuery{UIDs: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			var got []uint32
			for _, m := range msgs {
				got = append(got, m.UID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List %v = %v, want %v", tc.set, got, tc.want)
			}
		}
		// A write over such a set changes exactly the set.
		ups, err := a.SetFlags(ctx, inbox, store.UIDSet{{2, 2}, {4, 4}, {6, 7}, {10, 10}}, store.FlagAdd, store.FlagFlagged, nil)
		if err != nil {
			t.Fatal(err)
		}
		flagged, err := a.List(ctx, inbox, store.ListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for _, m := range flagged {
			if m.Flags.Has(store.FlagFlagged) {
				got = append(got, m.UID)
			}
		}
		if want := []uint32{2, 4, 6, 7, 10}; !slices.Equal(got, want) || len(ups) != len(want) {
			t.Errorf("SetFlags over many ranges flagged %v (%d updates), want %v", got, len(ups), want)
		}
	})
}
