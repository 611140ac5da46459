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
				k := store.KeyOf(page[len(page)-1], sort)
				q.After = &k
			}
			if !slices.Equal(got, want) {
				t.Errorf("sort %d: pages give %v, the full list %v", sort, got, want)
			}
			// From a key, skipping some: the same as the offset.
			k := store.KeyOf(all[1], sort)
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

// sample is a message of TestListPageSorts with what its keys are made of.
type sample struct {
	from, subject string
	sentMin       int // Date header, minutes after base
	arrMin        int // arrival, minutes after base
	pad           int // body length
	flagged, seen bool
	attach        bool
}

func sampleRaw(s sample, base time.Time) []byte {
	date := base.Add(time.Duration(s.sentMin) * time.Minute).Format(time.RFC1123Z)
	head := "From: " + s.from + "\r\nTo: alice@example.org\r\nSubject: " + s.subject + "\r\nDate: " + date + "\r\nMIME-Version: 1.0\r\n"
	body := strings.Repeat("b", s.pad)
	if !s.attach {
		return []byte(head + "Content-Type: text/plain\r\n\r\n" + body + "\r\n")
	}
	return []byte(head + "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n" + body +
		"\r\n--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nPDF\r\n--XX--\r\n")
}

// TestListPageSorts: every order, both ways, with and without the quick
// filters, paged by keys three at a time and by skipping, gives the order
// worked out here from what the messages are; a key whose message is gone
// still places the next page.
func TestListPageSorts(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		samples := []sample{
			{"Bob <bob@x.org>", "Re: Hello", 5, 5, 10, true, false, false},
			{"carol@x.org", "hello", 1, 1, 40, false, true, true},
			{"bob <b2@x.org>", "[list] Apples", 3, 3, 20, true, true, false},
			{"Alice <a@x.org>", "Fwd: zebra", 3, 3, 20, false, false, true},
			{"dave@x.org", "apples", 9, 3, 70, false, false, false},
			{"Bob <bob@x.org>", "RE: re: hello", 0, 9, 5, true, true, true},
			{"Zed <z@x.org>", "Mango", 7, 0, 33, false, true, false},
			{"carol@x.org", "Aw: Mango", 2, 5, 10, false, false, false},
			{"bob <bob@x.org>", "hello", 8, 5, 11, true, false, false},
		}
		type known struct {
			uid  uint32
			keys map[store.Sort]store.PageKey
			s    sample
		}
		var all []known
		for _, s := range samples {
			var flags store.Flags
			if s.flagged {
				flags |= store.FlagFlagged
			}
			if s.seen {
				flags |= store.FlagSeen
			}
			raw := sampleRaw(s, base)
			r := storetest.Append(t, a, inbox, raw, store.AppendOptions{Flags: flags, InternalDate: base.Add(time.Duration(s.arrMin) * time.Minute)})
			arr := base.Add(time.Duration(s.arrMin) * time.Minute).Unix()
			from := strings.ToLower(strings.TrimSpace(strings.Split(s.from, "<")[0]))
			if !strings.Contains(s.from, "<") {
				from = s.from
			}
			all = append(all, known{uid: r.UID, s: s, keys: map[store.Sort]store.PageKey{
				store.SortDateDesc: {Date: arr, UID: r.UID},
				store.SortDateAsc:  {Date: arr, UID: r.UID},
				store.SortSent:     {N: base.Add(time.Duration(s.sentMin) * time.Minute).Unix(), UID: r.UID},
				store.SortFrom:     {S: from, UID: r.UID},
				store.SortSubject:  {S: baseSubject[s.subject], UID: r.UID},
				store.SortSize:     {N: int64(len(raw)), UID: r.UID},
				store.SortFlagged:  {N: b2i(s.flagged), Date: arr, UID: r.UID},
				store.SortUnread:   {N: b2i(!s.seen), Date: arr, UID: r.UID},
			}})
		}
		filters := []store.PageFilter{{}, {Unread: true}, {Flagged: true}, {Attachments: true}, {Unread: true, Flagged: true}}
		for sort := store.SortDateDesc; sort <= store.SortUnread; sort++ {
			for _, desc := range []bool{false, true} {
				for _, f := range filters {
					var want []uint32
					var kept []known
					for _, k := range all {
						if (f.Unread && k.s.seen) || (f.Flagged && !k.s.flagged) || (f.Attachments && !k.s.attach) {
							continue
						}
						kept = append(kept, k)
					}
					slices.SortFunc(kept, func(x, y known) int { return store.Compare(sort, desc, x.keys[sort], y.keys[sort]) })
					for _, k := range kept {
						want = append(want, k.uid)
					}
					name := fmt.Sprintf("sort %d desc %v filter %+v", sort, desc, f)
					var got []uint32
					q := store.PageQuery{Sort: sort, Desc: desc, Filter: f, Limit: 2}
					for range 20 {
						page, err := a.ListPage(ctx, inbox, q)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if len(page) == 0 {
							break
						}
						for _, m := range page {
							got = append(got, m.UID)
						}
						k := store.KeyOf(page[len(page)-1], sort)
						if k != all[page[len(page)-1].UID-1].keys[sort] {
							t.Errorf("%s: key %+v, want %+v", name, k, all[page[len(page)-1].UID-1].keys[sort])
						}
						q.After = &k
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s: pages %v, want %v", name, got, want)
					}
					for skip := 0; skip < len(want); skip++ {
						for after := -1; after+1+skip < len(want); after += 3 {
							q := store.PageQuery{Sort: sort, Desc: desc, Filter: f, Limit: 2, Skip: skip}
							start := skip
							if after >= 0 {
								k := all[want[after]-1].keys[sort]
								q.After = &k
								start = after + 1 + skip
							}
							page, err := a.ListPage(ctx, inbox, q)
							if err != nil {
								t.Fatal(err)
							}
							var uids []uint32
							for _, m := range page {
								uids = append(uids, m.UID)
							}
							if w := want[start:min(start+2, len(want))]; !slices.Equal(uids, w) {
								t.Errorf("%s: after #%d skip %d: %v, want %v", name, after, skip, uids, w)
							}
						}
					}
					n, err := a.CountPage(ctx, inbox, store.PageQuery{Filter: f})
					if err != nil || n != int64(len(want)) {
						t.Errorf("%s: count %d, %v; want %d", name, n, err, len(want))
					}
				}
			}
		}
		// A key whose message was deleted still places the page.
		for sort := store.SortDateDesc; sort <= store.SortUnread; sort++ {
			full, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: sort, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			k := store.KeyOf(full[3], sort)
			if sort == store.SortDateDesc {
				if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: full[3].UID, Stop: full[3].UID}}); err != nil {
					t.Fatal(err)
				}
				full = slices.Delete(full, 3, 4)
			}
			page, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: sort, After: &k, Limit: 2})
			if err != nil || len(page) != 2 || page[0].UID != full[len(full)-len(full)+3+b2u(sort != store.SortDateDesc)].UID {
				t.Errorf("sort %d: after a deleted message's key: %v, %v", sort, page, err)
			}
		}
	})
}

func b2u(b bool) int {
	if b {
		return 1
	}
	return 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// baseSubject is what the subject order sorts the samples' subjects by.
var baseSubject = map[string]string{
	"Re: Hello": "hello", "hello": "hello", "[list] Apples": "apples", "Fwd: zebra": "zebra", "apples": "apples",
	"RE: re: hello": "hello", "Mango": "mango", "Aw: Mango": "mango",
}
