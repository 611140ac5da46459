package rpc

import (
	"context"
	"errors"
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
