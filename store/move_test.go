package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// filesIn counts the regular files under a partition's directory.
func filesIn(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestMoveUser: a user's message files move to another partition and
// read the same there; the other user's stay; a second run has nothing to
// do; a copy left behind in the old partition is swept as an orphan.
func TestMoveUser(t *testing.T) {
	eachWith(t, storetest.Options{InlineMax: -1, MorePartitions: []string{"second"}}, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		second := e.BlobDir + "-second"
		a := e.NewUser(t, "a@example.org", false)
		b := e.NewUser(t, "b@example.org", true)
		for i, who := range []string{"a", "a", "a", "b"} {
			auth := a
			if who == "b" {
				auth = b
			}
			acct := e.Account(auth)
			storetest.Append(t, acct, storetest.Inbox(t, acct), storetest.Message("x@example.com", who+"@example.org", "m", string(rune('a'+i))), store.AppendOptions{})
		}
		// b is secure: its file is encrypted, and moves all the same.
		before := storetest.Messages(t, e.Account(a), "INBOX")
		if got := filesIn(t, e.BlobDir); got != 4 {
			t.Fatalf("%d files in the default partition, want 4", got)
		}
		if _, err := st.MoveUser(ctx, a.User.ID, "nowhere", nil); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("move to no partition: %v", err)
		}
		var calls int
		p, err := st.MoveUser(ctx, a.User.ID, "second", func(store.MoveProgress) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		if p.Moved != 3 || p.Bytes == 0 || calls != 1 {
			t.Fatalf("progress %+v after %d calls", p, calls)
		}
		if filesIn(t, e.BlobDir) != 1 || filesIn(t, second) != 3 {
			t.Fatalf("files: default %d, second %d", filesIn(t, e.BlobDir), filesIn(t, second))
		}
		if after := storetest.Messages(t, e.Account(a), "INBOX"); !slices.Equal(after, before) {
			t.Fatal("messages read differently after the move")
		}
		if p, err := st.MoveUser(ctx, a.User.ID, "second", nil); err != nil || p.Moved != 0 {
			t.Fatalf("second run: %+v, %v", p, err)
		}
		// New mail of the moved user goes to its partition (the other
		// user's, to the default still), by delivery as by append.
		acct := e.Account(a)
		storetest.Append(t, acct, storetest.Inbox(t, acct), storetest.Message("x@example.com", "a@example.org", "m", "new"), store.AppendOptions{})
		if _, err := st.Deliver(ctx, store.Delivery{UserID: a.User.ID, Raw: storetest.Message("x@example.com", "a@example.org", "m", "delivered")}); err != nil {
			t.Fatal(err)
		}
		if filesIn(t, e.BlobDir) != 1 || filesIn(t, second) != 5 {
			t.Fatalf("after new mail: default %d, second %d", filesIn(t, e.BlobDir), filesIn(t, second))
		}
		before = storetest.Messages(t, e.Account(a), "INBOX")
		// b's encrypted file moves too, and b still reads it.
		bBefore := storetest.Messages(t, e.Account(b), "INBOX")
		if p, err := st.MoveUser(ctx, b.User.ID, "second", nil); err != nil || p.Moved != 1 {
			t.Fatalf("move secure user: %+v, %v", p, err)
		}
		if got := storetest.Messages(t, e.Account(b), "INBOX"); !slices.Equal(got, bBefore) {
			t.Fatal("secure user's message changed by the move")
		}
		// A copy in the old partition (a move stopped before removing it)
		// is an orphan: the sweeper takes it and leaves the live one.
		if _, err := e.Blobs.CopyTo(ctx, firstBlob(t, e, a.User.ID), "second", "default"); err != nil {
			t.Fatal(err)
		}
		if n, err := st.SweepOrphans(ctx, -1); err != nil || n != 1 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		if filesIn(t, e.BlobDir) != 0 || filesIn(t, second) != 6 {
			t.Fatalf("after sweep: default %d, second %d", filesIn(t, e.BlobDir), filesIn(t, second))
		}
		if got := storetest.Messages(t, e.Account(a), "INBOX"); !slices.Equal(got, before) {
			t.Fatal("messages lost to the sweep")
		}
	})
}

func firstBlob(t *testing.T, e *storetest.Env, user int64) string {
	t.Helper()
	var id string
	if err := e.DB.GetContext(context.Background(), &id, e.DB.Rebind("SELECT blob_id FROM messages WHERE user_id = ? ORDER BY id LIMIT 1"), user); err != nil {
		t.Fatal(err)
	}
	return id
}
