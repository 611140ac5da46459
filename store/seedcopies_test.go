package store_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestSeedCopies: storetest.SeedCopies's messages are what appends and
// copies would have made, as the store reads them: counts, UIDs, arrival
// and sent orders, the metadata, a thread each, one shared file
// referenced once per message (opened from any of them, released by
// removing them all). 2,500 crosses the MariaDB statements' 1,000 rows.
func TestSeedCopies(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		mb, err := a.CreateMailbox(ctx, "Big", "")
		if err != nil {
			t.Fatal(err)
		}
		const n = 2500
		storetest.SeedCopies(t, e, a, mb.ID, n)

		got, err := a.Mailbox(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, err := a.ListPage(ctx, mb.ID, store.PageQuery{Sort: store.SortDateAsc, Limit: 1, WithInfo: true})
		if err != nil || len(first) != 1 {
			t.Fatalf("first message: %v, %v", first, err)
		}
		size := first[0].Size
		if got.Messages != n || got.Unseen != n || got.UIDNext != n+1 || got.HighestModSeq < n || got.Size != n*size {
			t.Fatalf("mailbox after seeding %d: %+v (each %d bytes)", n, got, size)
		}
		for _, c := range []struct {
			sort store.Sort
			desc bool
			skip int
			want int // the number k of the first message of the page
		}{
			{store.SortDateAsc, false, 1000, 1001},
			{store.SortDateDesc, false, 0, n},
			{store.SortSubject, false, 1999, 2000}, // one subject: by UID
			{store.SortSent, true, 10, n - 10},
			{store.SortUID, false, 42, 43},
		} {
			page, err := a.ListPage(ctx, mb.ID, store.PageQuery{Sort: c.sort, Desc: c.desc, Skip: c.skip, Limit: 3, WithInfo: true})
			if err != nil || len(page) != 3 {
				t.Fatalf("sort %v skip %d: %d messages, %v", c.sort, c.skip, len(page), err)
			}
			for i, m := range page {
				k := c.want + i
				if c.desc || c.sort == store.SortDateDesc {
					k = c.want - i
				}
				if m.UID != uint32(k) || m.ThreadID != m.ID || m.Info.Envelope.Subject != "Seeded message" ||
					len(m.Info.Envelope.From) != 1 || m.Info.Envelope.From[0].Mailbox != "sender" ||
					m.InternalDate.Sub(first[0].InternalDate).Minutes() != float64(k-1) {
					t.Fatalf("sort %v skip %d, row %d: want message %d, got UID %d thread %d (id %d) %+v at %v",
						c.sort, c.skip, i, k, m.UID, m.ThreadID, m.ID, m.Info.Envelope, m.InternalDate)
				}
			}
		}
		if cnt, err := a.CountPage(ctx, mb.ID, store.PageQuery{Filter: store.PageFilter{Unread: true}}); err != nil || cnt != n {
			t.Fatalf("unread count: %d, %v", cnt, err)
		}
		last, err := a.ListPage(ctx, mb.ID, store.PageQuery{Sort: store.SortDateDesc, Limit: 1})
		if err != nil || len(last) != 1 {
			t.Fatalf("last message: %v, %v", last, err)
		}
		if th, err := a.Thread(ctx, last[0].ThreadID, mb.ID); err != nil || len(th) != 1 || th[0].ID != last[0].ID {
			t.Fatalf("the last message's thread: %+v, %v", th, err)
		}
		r, err := a.Open(ctx, last[0].ID)
		if err != nil {
			t.Fatalf("open a copy: %v", err)
		}
		raw, err := io.ReadAll(r)
		r.Close()
		if err != nil || !strings.Contains(string(raw), "A line of text in a seeded message.") {
			t.Fatalf("a copy's file: %q, %v", raw, err)
		}

		var blobs []struct {
			ID   string `db:"id"`
			Refs int    `db:"refs"`
		}
		if err := e.DB.SelectContext(ctx, &blobs, e.DB.Rebind("SELECT id, refs FROM blobs WHERE id IN (SELECT blob_id FROM messages WHERE mailbox_id = ?)"), mb.ID); err != nil {
			t.Fatal(err)
		}
		if len(blobs) != 1 || blobs[0].Refs != n {
			t.Fatalf("files: %+v, want one referenced %d times", blobs, n)
		}
		if gone, err := a.Remove(ctx, mb.ID, store.UIDSet{{Start: 1, Stop: 0}}); err != nil || len(gone) != n {
			t.Fatalf("remove all: %d, %v", len(gone), err)
		}
		var refs int
		if err := e.DB.GetContext(ctx, &refs, e.DB.Rebind("SELECT COALESCE(SUM(refs), 0) FROM blobs WHERE id = ?"), blobs[0].ID); err != nil || refs != 0 {
			t.Fatalf("the file after removing every message: %d references, %v", refs, err)
		}
	})
}
