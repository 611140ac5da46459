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

func TestListPage(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		// Arrival times out of UID order, with ties.
		for _, min := range []int{5, 1, 3, 3, 3, 9, 0, 5} {
			storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "m", "m"), store.AppendOptions{InternalDate: base.Add(time.Duration(min) * time.Minute)})
		}
		for _, sort := range []store.Sort{store.SortDateDesc, store.SortDateAsc, store.SortUID} {
			all, err := a.List(ctx, inbox, store.ListQuery{Sort: sort})
			if err != nil {
				t.Fatal(err)
			}
			var want []uint32
			for _, m := range all {
				want = append(want, m.UID)
			}
			// Page by page from a key, as messages.list's after does.
			var got []uint32
			q := store.PageQuery{Sort: sort, Limit: 3, WithInfo: true}
			for {
				page, err := a.ListPage(ctx, inbox, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				if page[0].Info == nil {
					t.Fatal("no info with WithInfo")
				}
				for _, m := range page {
					got = append(got, m.UID)
				}
				k := store.KeyOf(page[len(page)-1])
				q.After = &k
			}
			if !slices.Equal(got, want) {
				t.Errorf("sort %d: pages give %v, the full list %v", sort, got, want)
			}
			// From a key, skipping some: the same as the offset.
			k := store.KeyOf(all[1])
			page, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: sort, After: &k, Skip: 2, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			var skipped []uint32
			for _, m := range page {
				skipped = append(skipped, m.UID)
			}
			if !slices.Equal(skipped, want[4:7]) {
				t.Errorf("sort %d: after the 2nd, skipping 2: %v, want %v", sort, skipped, want[4:7])
			}
		}
		if _, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: store.SortDateDesc}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("no limit: %v", err)
		}
		other := e.Account(e.NewUser(t, "mallory@example.org", false))
		// As List: rows are the account's own only (callers check the
		// mailbox is, with Mailbox, to tell notFound).
		if ms, err := other.ListPage(ctx, inbox, store.PageQuery{Sort: store.SortDateDesc, Limit: 3}); len(ms) != 0 || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("another user's mailbox: %d messages, %v", len(ms), err)
		}
	})
}
