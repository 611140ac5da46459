package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestListAt pages by index the way messages.list does: on, back, in
// jumps, in every order, and after the mailbox changed under remembered
// places; every page must be the one OFFSET gives.
func TestListAt(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, _, addr, prefix string) {
		e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{RedisAddr: addr, RedisPrefix: prefix})
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		appendAt := func(min int) {
			storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "m", "m"), store.AppendOptions{InternalDate: base.Add(time.Duration(min) * time.Minute)})
		}
		// Arrival times out of UID order, with ties.
		for i := range 23 {
			appendAt((i * 7) % 10)
		}
		check := func(scope string, sort store.Sort, start, limit int) {
			t.Helper()
			mb, err := a.Mailbox(ctx, inbox)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := listAt(ctx, e.Session, log, a, mb, scope, start, store.PageQuery{Sort: sort, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			want, err := a.List(ctx, inbox, store.ListQuery{Sort: sort, Offset: start, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			uids := func(ms []store.Message) (out []uint32) {
				for _, m := range ms {
					out = append(out, m.UID)
				}
				return out
			}
			if !slices.Equal(uids(got), uids(want)) {
				t.Errorf("sort %d, start %d, limit %d: %v, want %v", sort, start, limit, uids(got), uids(want))
			}
		}
		for _, sort := range []store.Sort{store.SortDateDesc, store.SortDateAsc, store.SortUID} {
			for start := 0; start < 30; start += 5 {
				check("s1", sort, start, 5)
			}
			for _, start := range []int{10, 0, 7, 12, 3, 22, 23, 24, 1} {
				check("s1", sort, start, 5)
			}
			check("s1", sort, 4, 3) // another limit: places are by index
			check("s1", sort, 8, 7)
		}
		// The mailbox changes: a message arrives among the first, one
		// goes; places of the old content must not be used.
		appendAt(20)
		appendAt(-1)
		for _, sort := range []store.Sort{store.SortDateDesc, store.SortDateAsc, store.SortUID} {
			for _, start := range []int{5, 10, 15, 0, 20} {
				check("s1", sort, start, 5)
			}
		}
		ms, err := a.List(ctx, inbox, store.ListQuery{Sort: store.SortDateDesc, Offset: 3, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: ms[0].UID, Stop: ms[0].UID}}); err != nil {
			t.Fatal(err)
		}
		for _, sort := range []store.Sort{store.SortDateDesc, store.SortDateAsc, store.SortUID} {
			for _, start := range []int{5, 10, 15, 0, 20} {
				check("s1", sort, start, 5)
				check("s2", sort, start, 5)
			}
		}
		mb, _ := a.Mailbox(ctx, inbox)
		if _, _, err := listAt(ctx, e.Session, log, a, mb, "s1", -1, store.PageQuery{Limit: 5}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("negative start: %v", err)
		}
	})
}

// TestListAtArrivals: messages that arrive move the remembered places
// instead of dropping them, so the next deep page after a delivery reads
// the page and nothing more (counted in rows read), and is still the page
// OFFSET gives; a message gone drops them.
func TestListAtArrivals(t *testing.T) {
	e := storetest.Open(t, sqlite(t), storetest.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	a := e.Account(e.NewUser(t, "alice@example.org", false))
	inbox := storetest.Inbox(t, a)
	storetest.Seed(t, e, a.UserID(), inbox, 2000)
	seedTime := time.Unix(1_600_000_000, 0) // storetest.Seed's first arrival, a minute apart
	const limit = 50
	queries := []store.PageQuery{
		{Sort: store.SortDateDesc, Limit: limit},
		{Sort: store.SortDateAsc, Limit: limit},
		{Sort: store.SortFlagged, Desc: true, Limit: limit},
		{Sort: store.SortSize, Desc: true, Limit: limit},
		{Sort: store.SortDateDesc, Filter: store.PageFilter{Unread: true}, Limit: limit},
	}
	page := func(scope string, q store.PageQuery, start int) int {
		t.Helper()
		mb, err := a.Mailbox(ctx, inbox)
		if err != nil {
			t.Fatal(err)
		}
		got, read, err := listAt(ctx, e.Session, log, a, mb, scope, start, q)
		if err != nil {
			t.Fatal(err)
		}
		// The same page by OFFSET from the start of the listing.
		all, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: q.Sort, Desc: q.Desc, Filter: q.Filter, Limit: start + limit})
		if err != nil {
			t.Fatal(err)
		}
		want := all[min(start, len(all)):]
		if len(got) != len(want) {
			t.Fatalf("%s at %d: %d messages, want %d", listing(q), start, len(got), len(want))
		}
		for i := range got {
			if got[i].UID != want[i].UID {
				t.Fatalf("%s at %d: #%d is UID %d, want %d", listing(q), start, i, got[i].UID, want[i].UID)
			}
		}
		return read
	}
	before := map[int][]uint32{} // each listing's UIDs, in order, before the arrivals
	for i, q := range queries {
		scope := fmt.Sprint("s", i)
		for start := 0; start <= 1000; start += limit {
			page(scope, q, start)
		}
		all, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: q.Sort, Desc: q.Desc, Filter: q.Filter, Limit: 1200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range all {
			before[i] = append(before[i], m.UID)
		}
	}
	// Arrivals: one newest (the top of the newest-first orders), one
	// among the old ones, flagged and unread.
	storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "new", "new"), store.AppendOptions{})
	storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "old", "old"),
		store.AppendOptions{Flags: store.FlagFlagged, InternalDate: seedTime.Add(1500*time.Minute + 30*time.Second)})
	for i, q := range queries {
		scope := fmt.Sprint("s", i)
		all, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: q.Sort, Desc: q.Desc, Filter: q.Filter, Limit: 1200})
		if err != nil {
			t.Fatal(err)
		}
		// Paging on, from where the last page served before the
		// arrivals ended (which they moved down by those before it):
		// the page, read from the moved place.
		for _, end := range []int{1000 + limit, 500} {
			next := slices.IndexFunc(all, func(m store.Message) bool { return m.UID == before[i][end-1] }) + 1
			if read := page(scope, q, next); read != limit {
				t.Errorf("%s: the page after a delivery at %d (was %d) read %d rows, want %d", listing(q), next, end, read, limit)
			}
		}
	}
	// A message gone: the places of the old content are not used.
	if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: 10, Stop: 10}}); err != nil {
		t.Fatal(err)
	}
	for i, q := range queries {
		if read := page(fmt.Sprint("s", i), q, 1000); read <= limit {
			t.Errorf("%s: after an expunge, a deep page read %d rows: old places used", listing(q), read)
		}
	}
}
