package webmail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/webmail"
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
			c, err := webmail.Of(a).CreateCompose(ctx)
			if err != nil {
				t.Fatal(err)
			}
			secret := "attachment content that must not be readable on disk for a secure user " + addr
			up, err := webmail.Of(a).AddUpload(ctx, c.ID, "notes.txt", "text/plain", strings.NewReader(secret), 1000)
			if err != nil || up.Size != int64(len(secret)) {
				t.Fatalf("upload: %+v %v", up, err)
			}
			if _, err := webmail.Of(a).AddUpload(ctx, c.ID, "big.bin", "", bytes.NewReader(make([]byte, 1001)), 1000); !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("upload over the limit: %v", err)
			}
			ups, err := webmail.Of(a).Uploads(ctx, c.ID)
			if err != nil || len(ups) != 1 || ups[0].Name != "notes.txt" {
				t.Fatalf("uploads: %+v %v", ups, err)
			}
			got, rc, err := webmail.Of(a).OpenUpload(ctx, up.ID)
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
				if _, _, err := webmail.Of(locked).OpenUpload(ctx, up.ID); !errors.Is(err, store.ErrLocked) {
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
			if err := webmail.Of(a).SetComposeDraft(ctx, c.ID, 5, 7); err != nil {
				t.Fatal(err)
			}
			if got, err := webmail.Of(a).Compose(ctx, c.ID); err != nil || got.DraftMailboxID != 5 || got.DraftUID != 7 {
				t.Fatalf("compose: %+v %v", got, err)
			}
			// Another user sees none of it.
			other := e.Account(e.NewUser(t, "other-"+addr, false))
			if _, err := webmail.Of(other).Compose(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("another user's compose: %v", err)
			}
			if _, _, err := webmail.Of(other).OpenUpload(ctx, up.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("another user's upload: %v", err)
			}
			if _, err := webmail.Of(other).AddUpload(ctx, c.ID, "x", "", strings.NewReader("x"), 10); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("upload to another user's compose: %v", err)
			}
			if err := webmail.Of(other).DeleteUpload(ctx, up.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete another user's upload: %v", err)
			}
			if err := webmail.Of(a).DeleteCompose(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := webmail.Of(a).OpenUpload(ctx, up.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("upload of a deleted compose: %v", err)
			}
		}
		if n, err := e.Store.SweepUnreferenced(ctx); err != nil || n != 0 {
			t.Errorf("files left unreferenced after deletes: %d %v", n, err)
		}

		// Prune takes old composes and those of deleted users.
		clock := now
		st, err := store.New(store.Config{DB: e.DB, Blobs: e.Blobs, Cache: e.Cache, Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		auth := e.NewUser(t, "gone@example.org", false)
		a := st.Account(auth.User.ID, nil)
		c, _ := webmail.Of(a).CreateCompose(ctx)
		up, err := webmail.Of(a).AddUpload(ctx, c.ID, "a", "", strings.NewReader("abc"), 10)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := webmail.Prune(ctx, st, webmail.ComposeMaxAge); err != nil || n != 0 {
			t.Fatalf("prune of a fresh compose: %d %v", n, err)
		}
		if err := st.DeleteUser(ctx, auth.User.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := webmail.Prune(ctx, st, webmail.ComposeMaxAge); err != nil || n != 1 {
			t.Fatalf("prune after the user went: %d %v", n, err)
		}
		// The deleted user's upload went with it: its row, its file's row
		// and the file.
		for _, q := range []struct{ what, query, arg string }{
			{"upload row", "SELECT COUNT(*) FROM webmail_uploads WHERE blob_id = ?", up.BlobID},
			{"file row", "SELECT COUNT(*) FROM blobs WHERE id = ?", up.BlobID},
		} {
			var n int
			if err := e.DB.GetContext(ctx, &n, e.DB.Rebind(q.query), q.arg); err != nil || n != 0 {
				t.Errorf("%s of the pruned upload: %d left, %v", q.what, n, err)
			}
		}
		if rc, err := e.Blobs.Open(ctx, up.Part, up.BlobID, nil); err == nil {
			rc.Close()
			if up.Part != blob.Inline {
				t.Error("the pruned upload's file is still there")
			}
		}
		keep := e.Account(e.NewUser(t, "stays@example.org", false))
		old, _ := webmail.Of(st.Account(keep.UserID(), nil)).CreateCompose(ctx)
		clock = now.Add(webmail.ComposeMaxAge + time.Hour)
		if n, err := webmail.Prune(ctx, st, webmail.ComposeMaxAge); err != nil || n != 1 {
			t.Fatalf("prune of an old compose: %d %v", n, err)
		}
		if _, err := webmail.Of(keep).Compose(ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
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
