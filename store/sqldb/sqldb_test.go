package sqldb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/internal/testsupport"
)

func open(t *testing.T, db testsupport.Database) *DB {
	t.Helper()
	d, err := Open(context.Background(), Config{Driver: db.Driver, DSN: db.DSN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestMigrate(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		d := open(t, db)
		ms, err := d.Migrations()
		if err != nil || len(ms) == 0 {
			t.Fatalf("migrations: %v, %v", ms, err)
		}
		// Several nodes migrating at once: each migration applies once.
		var wg sync.WaitGroup
		applied := make([]int, 3)
		errs := make([]error, 3)
		for i := range applied {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := open(t, db)
				applied[i], errs[i] = n.Migrate(ctx)
			}()
		}
		wg.Wait()
		total := 0
		for i := range applied {
			if errs[i] != nil && db.Driver == MySQL {
				t.Fatalf("concurrent migrate: %v", errs[i])
			}
			total += applied[i]
		}
		if db.Driver == MySQL && total != len(ms) {
			t.Fatalf("concurrent migrations applied %d, want %d", total, len(ms))
		}
		if n, err := d.Migrate(ctx); err != nil || n != 0 {
			t.Fatalf("re-migrate applied %d, %v", n, err)
		}
		// A migration missing below the newest applied one (two branches
		// landed in the other order) is applied too.
		if _, err := d.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = 8"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ExecContext(ctx, "ALTER TABLE blobs DROP COLUMN data"); err != nil {
			t.Fatal(err)
		}
		if n, err := d.Migrate(ctx); err != nil || n != 1 {
			t.Fatalf("migrate with version 8 missing applied %d, %v; want 1", n, err)
		}
		if _, err := d.ExecContext(ctx, "SELECT data FROM blobs WHERE 1 = 0"); err != nil {
			t.Fatalf("the missing migration was not applied: %v", err)
		}
		v, err := d.Version(ctx)
		if err != nil || v != ms[len(ms)-1].Version {
			t.Fatalf("version %d, %v", v, err)
		}
		for _, table := range []string{"domains", "users", "mailboxes", "messages", "blobs", "counters", "expunged", "user_keys"} {
			if _, err := d.ExecContext(ctx, "SELECT 1 FROM "+table+" WHERE 1 = 0"); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
	})
}

// TestDialectsAgree: both dialects have the same tables and columns.
func TestDialectsAgree(t *testing.T) {
	cols := map[string][]string{}
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		d := open(t, db)
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// table_xinfo lists generated columns too, as information_schema
		// does. The full-text index (message_text) is each dialect's own:
		// an FTS5 table and its shadow tables, an InnoDB table.
		q := "SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE 'message_text%'"
		if db.Driver == MySQL {
			q = "SELECT CONCAT(table_name, '.', column_name) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name NOT LIKE 'message_text%'"
		}
		var got []string
		if err := d.SelectContext(ctx, &got, q); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		cols[db.Driver] = got
	})
	if s, m := cols[SQLite], cols[MySQL]; m != nil && !slices.Equal(s, m) {
		t.Fatalf("schemas differ:\nsqlite: %v\nmysql:  %v", s, m)
	}
}

func TestTx(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		d := open(t, db)
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ins := d.Rebind("INSERT INTO domains (name, created_at) VALUES (?, 0)")
		boom := errors.New("boom")
		err := d.Tx(ctx, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, ins, "rolled.back"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx error = %v", err)
		}
		var n int
		d.GetContext(ctx, &n, "SELECT COUNT(*) FROM domains")
		if n != 0 {
			t.Fatal("a failed transaction left its row")
		}
		if err := d.Tx(ctx, func(tx *sqlx.Tx) error { _, err := tx.ExecContext(ctx, ins, "kept"); return err }); err != nil {
			t.Fatal(err)
		}
		_, err = d.ExecContext(ctx, ins, "kept")
		if !IsDuplicate(err) {
			t.Fatalf("IsDuplicate(%v) = false", err)
		}
		if IsDuplicate(boom) || IsDuplicate(nil) {
			t.Fatal("IsDuplicate of a non-duplicate")
		}
		// Counters add up under concurrent writers.
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := d.Tx(ctx, func(tx *sqlx.Tx) error {
					_, err := tx.ExecContext(ctx, d.Rebind(d.AddCounterSQL()), "c", 1, 5)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		var v int64
		if err := d.GetContext(ctx, &v, "SELECT value FROM counters WHERE name = 'c' AND day = 1"); err != nil || v != 100 {
			t.Fatalf("counter = %d, %v; want 100", v, err)
		}
	})
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- comment\nCREATE TABLE a (x INT);\n\nCREATE TABLE b (\n  y INT -- trailing\n);\nSELECT 1")
	want := []string{"CREATE TABLE a (x INT)", "CREATE TABLE b (\n  y INT -- trailing\n)", "SELECT 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("splitStatements = %q", got)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []Config{
		{Driver: "postgres", DSN: "x"},
		{Driver: SQLite},
		{Driver: MySQL, DSN: "::not a dsn::"},
		{Driver: MySQL, DSN: "root@tcp(127.0.0.1:1)/x?timeout=1s"},
	} {
		if d, err := Open(ctx, c); err == nil {
			d.Close()
			t.Errorf("Open(%+v) succeeded", c)
		} else if strings.Contains(err.Error(), "%!") {
			t.Errorf("bad error text: %v", err)
		}
	}
}

// TestExecWaitsWithWriters: on SQLite a statement outside a transaction
// waits its turn with the write transactions, holding no connection
// meanwhile. Waiting on SQLite's own lock instead, the statements took
// every pool connection while the transaction holding the lock waited for
// one to read with, until the busy timeout (30 s) broke the knot.
func TestExecWaitsWithWriters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := Open(ctx, Config{Driver: SQLite, DSN: testsupport.SQLiteDSN(t), MaxOpenConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ins := d.Rebind("INSERT INTO domains (name, created_at) VALUES (?, 0)")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			// A transaction that reads outside itself while it holds the
			// write lock, as the store's do through the pool.
			errs <- d.Tx(ctx, func(tx *sqlx.Tx) error {
				if _, err := tx.ExecContext(ctx, ins, fmt.Sprintf("tx%d.example", i)); err != nil {
					return err
				}
				time.Sleep(5 * time.Millisecond)
				var n int
				return d.Get(ctx, &n, "SELECT COUNT(*) FROM domains")
			})
		}()
		go func() {
			defer wg.Done()
			_, err := d.ExecContext(ctx, ins, fmt.Sprintf("exec%d.example", i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a writer: %v (stuck behind SQLite's lock?)", err)
		}
	}
	var n int
	if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM domains"); err != nil || n != 16 {
		t.Fatalf("domains = %d, %v; want 16", n, err)
	}
}

// TestStatementCache: on SQLite reads and writes outside transactions run
// from statements prepared once, each query text prepared once however
// often it runs; past maxCached texts (IN lists of every length) queries
// run unprepared and still answer; a query that cannot be prepared gets
// its error from the database as before.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	d := open(t, testsupport.Database{Driver: SQLite, DSN: testsupport.SQLiteDSN(t)})
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	base := d.nstmts.Load()
	for i := range 3 {
		if _, err := d.ExecContext(ctx, "INSERT INTO domains (name, created_at) VALUES (?, 0)", fmt.Sprintf("d%d.example", i)); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM domains WHERE created_at = ?", 0); err != nil || n != i+1 {
			t.Fatalf("count = %d, %v; want %d", n, err, i+1)
		}
	}
	if got := d.nstmts.Load() - base; got != 2 {
		t.Fatalf("%d statements prepared for 2 query texts run 3 times each", got)
	}
	for k := range maxCached + 10 {
		q := "SELECT COUNT(*) FROM domains WHERE name IN (?" + strings.Repeat(", ?", k) + ")"
		args := make([]any, k+1)
		for i := range args {
			args[i] = "d1.example"
		}
		var n int
		if err := d.GetContext(ctx, &n, q, args...); err != nil || n != 1 {
			t.Fatalf("IN list of %d: %d, %v", k+1, n, err)
		}
	}
	if got := d.nstmts.Load(); got != maxCached {
		t.Fatalf("%d statements kept, want the bound %d", got, maxCached)
	}
	var n int
	if err := d.GetContext(ctx, &n, "SELECT COUNT(*) FROM no_such_table"); err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Fatalf("query of a missing table: %v", err)
	}
}
