package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/contacts"
)

func TestComposeUploads(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		for _, secure := range []bool{false, true} {
			addr := map[bool]string{false: "plain@example.org", true: "secure@example.org"}[secure]
			auth := e.NewUser(t, addr, secure)
			a := e.Account(auth)
			c, err := a.CreateCompose(ctx)
			if err != nil {
				t.Fatal(err)
			}
			secret := "attachment content that must not be readable on disk for a secure user " + addr
			up, err := a.AddUpload(ctx, c.ID, "notes.txt", "text/plain", strings.NewReader(secret), 1000)
			if err != nil || up.Size != int64(len(secret)) {
				t.Fatalf("upload: %+v %v", up, err)
			}
			if _, err := a.AddUpload(ctx, c.ID, "big.bin", "", bytes.NewReader(make([]byte, 1001)), 1000); !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("upload over the limit: %v", err)
			}
			ups, err := a.Uploads(ctx, c.ID)
			if err != nil || len(ups) != 1 || ups[0].Name != "notes.txt" {
				t.Fatalf("uploads: %+v %v", ups, err)
			}
			got, rc, err := a.OpenUpload(ctx, up.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != secret || got.Type != "text/plain" {
				t.Fatalf("read back %q %+v", b, got)
			}
			if secure {
				// Without the key the file opens to nothing.
				locked := e.Store.Account(auth.User.ID, nil)
				if _, _, err := locked.OpenUpload(ctx, up.ID); !errors.Is(err, store.ErrLocked) {
					t.Fatalf("secure upload without the key: %v", err)
				}
				if found := grepBlobs(t, e.BlobDir, "secure user"); found {
					t.Fatal("a secure user's upload is readable on disk")
				}
			} else if !grepBlobs(t, e.BlobDir, "secure user") {
				// The check above must be able to fail: a plain user's
				// small file is stored as written.
				t.Fatal("a plain user's upload is not found on disk")
			}
			if err := a.SetComposeDraft(ctx, c.ID, 5, 7); err != nil {
				t.Fatal(err)
			}
			if got, err := a.Compose(ctx, c.ID); err != nil || got.DraftMailboxID != 5 || got.DraftUID != 7 {
				t.Fatalf("compose: %+v %v", got, err)
			}
			// Another user sees none of it.
			other := e.Account(e.NewUser(t, "other-"+addr, false))
			if _, err := other.Compose(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("another user's compose: %v", err)
			}
			if _, _, err := other.OpenUpload(ctx, up.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("another user's upload: %v", err)
			}
			if _, err := other.AddUpload(ctx, c.ID, "x", "", strings.NewReader("x"), 10); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("upload to another user's compose: %v", err)
			}
			if err := other.DeleteUpload(ctx, up.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete another user's upload: %v", err)
			}
			if err := a.DeleteCompose(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.OpenUpload(ctx, up.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("upload of a deleted compose: %v", err)
			}
		}
		if n, err := e.Store.SweepUnreferenced(ctx); err != nil || n != 0 {
			t.Errorf("files left unreferenced after deletes: %d %v", n, err)
		}

		// PruneWebmail takes old composes and those of deleted users.
		clock := now
		st, err := store.New(store.Config{DB: e.DB, Blobs: e.Blobs, Cache: e.Cache, Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		auth := e.NewUser(t, "gone@example.org", false)
		a := st.Account(auth.User.ID, nil)
		c, _ := a.CreateCompose(ctx)
		up, err := a.AddUpload(ctx, c.ID, "a", "", strings.NewReader("abc"), 10)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := st.PruneWebmail(ctx, store.ComposeMaxAge); err != nil || n != 0 {
			t.Fatalf("prune of a fresh compose: %d %v", n, err)
		}
		if err := st.DeleteUser(ctx, auth.User.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := st.PruneWebmail(ctx, store.ComposeMaxAge); err != nil || n != 1 {
			t.Fatalf("prune after the user went: %d %v", n, err)
		}
		_ = up
		keep := e.Account(e.NewUser(t, "stays@example.org", false))
		old, _ := st.Account(keep.UserID(), nil).CreateCompose(ctx)
		clock = now.Add(store.ComposeMaxAge + time.Hour)
		if n, err := st.PruneWebmail(ctx, store.ComposeMaxAge); err != nil || n != 1 {
			t.Fatalf("prune of an old compose: %d %v", n, err)
		}
		if _, err := keep.Compose(ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old compose kept: %v", err)
		}
	})
}

// grepBlobs reports whether any file under dir contains s.
func grepBlobs(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	walkFiles(t, dir, func(b []byte) {
		if bytes.Contains(b, []byte(s)) {
			found = true
		}
	})
	return found
}

func TestChangesSince(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		other := e.Account(e.NewUser(t, "mallory@example.org", false))
		inbox := storetest.Inbox(t, a)
		m1 := storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "one", "1"), store.AppendOptions{})
		m2 := storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "two", "2"), store.AppendOptions{})
		c1, _ := contacts.Of(a).SaveContactIn(ctx, 0, contacts.Contact{Name: "Bob"})
		c2, _ := contacts.Of(a).SaveContactIn(ctx, 0, contacts.Contact{Name: "Carol"})

		s0, err := a.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := a.State(ctx); again != s0 {
			t.Fatalf("state moved without a change: %s %s", s0, again)
		}
		none, err := a.ChangesSince(ctx, s0, 100)
		if err != nil || none.NewState != s0 || len(none.Messages.Created)+len(none.Mailboxes.Updated) != 0 {
			t.Fatalf("changes with none: %+v %v", none, err)
		}

		m3 := storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "three", "3"), store.AppendOptions{})
		if _, err := a.SetFlags(ctx, inbox, store.UIDSet{{m1.UID, m1.UID}}, store.FlagAdd, store.FlagSeen, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Remove(ctx, inbox, store.UIDSet{{m2.UID, m2.UID}}); err != nil {
			t.Fatal(err)
		}
		box, err := a.CreateMailbox(ctx, "Projects", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).DeleteContacts(ctx, []int64{c2.ID}); err != nil {
			t.Fatal(err)
		}
		c1.Name = "Robert"
		if _, err := contacts.Of(a).SaveContactIn(ctx, 0, c1.Contact); err != nil {
			t.Fatal(err)
		}
		if err := contacts.Of(a).SaveSettings(ctx, map[string]string{"webmail.theme": "dark"}); err != nil {
			t.Fatal(err)
		}
		ch, err := a.ChangesSince(ctx, s0, 100)
		if err != nil {
			t.Fatal(err)
		}
		ref := func(uid uint32) store.MessageRef { return store.MessageRef{MailboxID: inbox, UID: uid} }
		if ch.NewState == s0 ||
			!slices.Equal(ch.Messages.Created, []store.MessageRef{ref(m3.UID)}) ||
			!slices.Equal(ch.Messages.Updated, []store.MessageRef{ref(m1.UID)}) ||
			!slices.Equal(ch.Messages.Destroyed, []store.MessageRef{ref(m2.UID)}) ||
			!slices.Equal(ch.Mailboxes.Created, []int64{box.ID}) ||
			!slices.Equal(ch.Mailboxes.Updated, []int64{inbox}) ||
			!slices.Equal(ch.Contacts.Destroyed, []int64{c2.ID}) ||
			!slices.Equal(ch.Contacts.Updated, []int64{c1.ID}) ||
			!ch.Settings {
			t.Fatalf("changes: %+v", ch)
		}
		// From the new state on, nothing again.
		if ch2, err := a.ChangesSince(ctx, ch.NewState, 100); err != nil || len(ch2.Messages.Created)+len(ch2.Messages.Updated)+len(ch2.Messages.Destroyed) != 0 || ch2.Settings {
			t.Fatalf("changes since the new state: %+v %v", ch2, err)
		}
		if err := a.DeleteMailbox(ctx, box.ID); err != nil {
			t.Fatal(err)
		}
		if ch3, err := a.ChangesSince(ctx, ch.NewState, 100); err != nil || !slices.Equal(ch3.Mailboxes.Destroyed, []int64{box.ID}) {
			t.Fatalf("mailbox destroyed: %+v %v", ch3, err)
		}
		// Too many changes, and states the account does not have.
		for range 3 {
			storetest.Append(t, a, inbox, storetest.Message("a@x.org", "alice@example.org", "more", "m"), store.AppendOptions{})
		}
		if _, err := a.ChangesSince(ctx, s0, 2); !errors.Is(err, store.ErrTooManyChanges) {
			t.Errorf("over the limit: %v", err)
		}
		for _, bad := range []string{"", "x", "99999999"} {
			if _, err := a.ChangesSince(ctx, bad, 100); !errors.Is(err, store.ErrStateUnknown) {
				t.Errorf("state %q: %v", bad, err)
			}
		}
		if _, err := other.ChangesSince(ctx, s0, 100); !errors.Is(err, store.ErrStateUnknown) {
			t.Errorf("another user's state: %v", err)
		}
	})
}

// walkFiles calls fn with the content of every regular file under dir.
func walkFiles(t *testing.T, dir string, fn func([]byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			fn(b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
