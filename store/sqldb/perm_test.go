package sqldb

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSQLiteFilesPrivate: in a data directory that already exists (so
// MkdirAll's 0700 does not apply), the database and its -wal and -shm are
// created readable by their owner alone, whatever the umask lets through;
// a database that exists keeps the mode it has.
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the common umask, which makes 0644 files
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "basalt.db")
	ctx := context.Background()
	d, err := Open(ctx, Config{Driver: SQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, "INSERT INTO domains (name, created_at) VALUES ('example.org', 0)"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), m)
		}
	}

	kept := filepath.Join(t.TempDir(), "kept.db")
	if err := os.WriteFile(kept, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	k, err := Open(ctx, Config{Driver: SQLite, DSN: kept})
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	if fi, err := os.Stat(kept); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("an existing database's mode changed: %v %v", fi.Mode().Perm(), err)
	}
}
