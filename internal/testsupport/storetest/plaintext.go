package storetest

import (
	"bytes"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FindPlaintext returns where needle is stored in the clear: the message
// files, the SQLite database and its -wal and -shm beside it, or any row
// of any MariaDB table. Tests of secure users look for a canary with it.
func (e *Env) FindPlaintext(t testing.TB, needle []byte) []string {
	t.Helper()
	var found []string
	dirs := []string{e.BlobDir}
	if e.Database.Driver == "sqlite" {
		dirs = append(dirs, filepath.Dir(e.Database.DSN))
	}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, needle) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", dir, err)
		}
	}
	if e.Database.Driver != "mysql" {
		return found
	}
	var tables []string
	if err := e.DB.DB.Select(&tables, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		rows, err := e.DB.DB.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if bytes.Contains(v, needle) {
					found = append(found, "mysql "+table+"."+cols[i])
				}
			}
		}
		rows.Close()
	}
	return found
}
