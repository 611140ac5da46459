package spine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store/blob"
	"basalt/store/internal/spine"
)

// TestBlobRows: rows added in one call (more than are kept prepared, and
// more inline bytes than one statement carries) all land with one
// reference; releasing references returns a file only once its last one
// goes, and a file kept in its row goes with the transaction instead.
func TestBlobRows(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		sp := e.Store.Spine(spine.Lend())
		ctx := context.Background()

		big := bytes.Repeat([]byte("x"), 1500<<10) // three of them pass one statement's bound
		var rows []spine.BlobRow
		for i := range 3 {
			rows = append(rows, spine.BlobRow{ID: fmt.Sprintf("inline-%d", i), Part: blob.Inline, Size: int64(len(big)), Stored: int64(len(big)), Data: big})
		}
		for i := range spine.FewArgs {
			rows = append(rows, spine.BlobRow{ID: fmt.Sprintf("file-%d", i), Part: "default", Size: int64(100 + i), Stored: int64(90 + i)})
		}
		if err := sp.DB.Tx(ctx, func(tx *sqlx.Tx) error { return sp.AddBlobRows(ctx, tx, rows...) }); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			var got struct {
				Part   string `db:"part"`
				Size   int64  `db:"size"`
				Stored int64  `db:"stored"`
				Refs   int    `db:"refs"`
				Data   []byte `db:"data"`
			}
			if err := sp.DB.GetContext(ctx, &got, sp.Rebind("SELECT part, size, stored, refs, data FROM blobs WHERE id = ?"), r.ID); err != nil {
				t.Fatalf("row %s: %v", r.ID, err)
			}
			if got.Part != r.Part || got.Size != r.Size || got.Stored != r.Stored || got.Refs != 1 || !bytes.Equal(got.Data, r.Data) {
				t.Errorf("row %s: part %q size %d stored %d refs %d data %d bytes; want %+v with one reference", r.ID, got.Part, got.Size, got.Stored, got.Refs, len(got.Data), r.Part)
			}
		}

		release := func(refs map[string]int) []spine.BlobRef {
			t.Helper()
			var doomed []spine.BlobRef
			if err := sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
				var err error
				doomed, err = sp.ReleaseBlobs(ctx, tx, refs)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(doomed, func(a, b spine.BlobRef) int { return strings.Compare(a.ID, b.ID) })
			return doomed
		}
		// file-0 is shared: a second reference, so that one release
		// leaves it.
		if err := sp.DB.Tx(ctx, func(tx *sqlx.Tx) error { return sp.RefBlobs(ctx, tx, map[string]int{"file-0": 1}) }); err != nil {
			t.Fatal(err)
		}
		got := release(map[string]int{"file-0": 1, "file-1": 1, "inline-0": 1})
		if want := []spine.BlobRef{{ID: "file-1", Part: "default"}}; !slices.Equal(got, want) {
			t.Fatalf("released %v, want %v: only a file whose last reference went", got, want)
		}
		var n int
		if err := sp.DB.GetContext(ctx, &n, sp.Rebind("SELECT COUNT(*) FROM blobs WHERE id = ?"), "inline-0"); err != nil || n != 0 {
			t.Fatalf("inline row after its last reference: %d rows, %v", n, err)
		}
		if err := sp.DB.GetContext(ctx, &n, sp.Rebind("SELECT refs FROM blobs WHERE id = ?"), "file-0"); err != nil || n != 1 {
			t.Fatalf("shared file after one release: refs %d, %v", n, err)
		}
		var doomed []spine.BlobRef
		if err := sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
			var err error
			doomed, err = sp.ReleaseBlob(ctx, tx, "file-0", 1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if want := []spine.BlobRef{{ID: "file-0", Part: "default"}}; !slices.Equal(doomed, want) {
			t.Fatalf("last release of the shared file: %v, want %v", doomed, want)
		}
	})
}

// TestQuota: FitsQuota is the quota rule, and ChargeUser moves a user's
// bytes and message count both ways.
func TestQuota(t *testing.T) {
	for _, c := range []struct {
		quota, used, size int64
		over              bool
	}{
		{0, 1 << 40, 1 << 40, false}, // no quota
		{100, 0, 100, false},         // exactly full
		{100, 1, 100, true},
		{100, 100, 0, false}, // nothing more
		{100, 150, 1, true},  // over already
	} {
		err := spine.FitsQuota(c.quota, c.used, c.size)
		if errors.Is(err, spine.ErrOverQuota) != c.over || (err != nil && !c.over) {
			t.Errorf("FitsQuota(%d, %d, %d) = %v, over %v", c.quota, c.used, c.size, err, c.over)
		}
	}
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		sp := e.Store.Spine(spine.Lend())
		ctx := context.Background()
		id := e.NewUser(t, "quota@example.org", false).User.ID
		for _, step := range []struct{ bytes, msgs, wantBytes, wantMsgs int64 }{
			{1000, 2, 1000, 2},
			{500, 0, 1500, 2},
			{-1200, -1, 300, 1},
		} {
			if err := sp.WriteUser(ctx, id, func(tx *sqlx.Tx, _ *spine.Change) error {
				return sp.ChargeUser(ctx, tx, id, step.bytes, step.msgs)
			}); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Bytes int64 `db:"used_bytes"`
				Msgs  int64 `db:"message_count"`
			}
			if err := sp.DB.GetContext(ctx, &got, sp.Rebind("SELECT used_bytes, message_count FROM users WHERE id = ?"), id); err != nil {
				t.Fatal(err)
			}
			if got.Bytes != step.wantBytes || got.Msgs != step.wantMsgs {
				t.Fatalf("after charging %d bytes, %d messages: %+v, want %d, %d", step.bytes, step.msgs, got, step.wantBytes, step.wantMsgs)
			}
		}
	})
}
