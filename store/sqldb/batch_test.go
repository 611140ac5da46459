package sqldb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/internal/testsupport"
)

// batchDB opens an unmigrated SQLite file with one table to write to.
func batchDB(t *testing.T) *DB {
	t.Helper()
	d := open(t, testsupport.Database{Driver: SQLite, DSN: testsupport.SQLiteDSN(t)})
	if _, err := d.DB.Exec("CREATE TABLE w (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return d
}

func keys(t *testing.T, d *DB) map[string]bool {
	t.Helper()
	var ks []string
	if err := d.Select(context.Background(), &ks, "SELECT k FROM w"); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range ks {
		out[k] = true
	}
	return out
}

// Writes that wait together commit together, and each still gets its own
// outcome: a failing write is undone alone, a panic reaches its own
// caller, and a write that ends the whole SQLite transaction (as an
// interrupted statement does) costs the others a rerun, not their write.
// A batch that succeeds runs each write once; one that fails, at most
// twice.
func TestWriteBatches(t *testing.T) {
	errRefused := errors.New("refused")
	insert := func(k string) func(tx *sqlx.Tx) error {
		return func(tx *sqlx.Tx) error {
			_, err := tx.Exec("INSERT INTO w (k) VALUES (?)", k)
			return err
		}
	}
	for _, tc := range []struct {
		name string
		// odd is the fourth write of the batch; nil means a plain insert.
		odd       func(tx *sqlx.Tx) error
		wantErr   error // what the odd write's caller gets
		wantPanic bool
		wantOdd   bool // whether the odd write's row is there
	}{
		{name: "all succeed"},
		{name: "one fails after writing", odd: func(tx *sqlx.Tx) error {
			if err := insert("odd")(tx); err != nil {
				return err
			}
			return errRefused
		}, wantErr: errRefused},
		{name: "one breaks a constraint", odd: insert("first"), wantErr: errAny},
		{name: "one panics after writing", odd: func(tx *sqlx.Tx) error {
			if err := insert("odd")(tx); err != nil {
				return err
			}
			panic("boom")
		}, wantPanic: true},
		{name: "one ends the whole transaction", odd: func(tx *sqlx.Tx) error {
			if err := insert("odd")(tx); err != nil {
				return err
			}
			if _, err := tx.Exec("ROLLBACK"); err != nil {
				return err
			}
			return errRefused
		}, wantErr: errRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d := batchDB(t)
			// The first write holds the writer until the others queue up
			// behind it, so they make one batch.
			const n = 8
			release := make(chan struct{})
			started := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := d.Tx(ctx, func(tx *sqlx.Tx) error {
					close(started)
					<-release
					return insert("first")(tx)
				})
				if err != nil {
					t.Errorf("first write: %v", err)
				}
			}()
			<-started
			errs := make([]error, n)
			panics := make([]any, n)
			runs := make([]atomic.Int32, n)
			for i := range n {
				fn := insert(fmt.Sprintf("w%d", i))
				if i == 4 && tc.odd != nil {
					fn = tc.odd
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { panics[i] = recover() }()
					errs[i] = d.Tx(ctx, func(tx *sqlx.Tx) error {
						runs[i].Add(1)
						return fn(tx)
					})
				}()
			}
			waitQueued(t, d, n)
			before := d.writer.commits.Load()
			close(release)
			wg.Wait()
			got := keys(t, d)
			for i := range n {
				if i == 4 && tc.odd != nil {
					switch {
					case tc.wantPanic && panics[i] == nil:
						t.Errorf("the panicking write's caller did not panic (err %v)", errs[i])
					case tc.wantErr == errAny && errs[i] == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(errs[i], tc.wantErr):
						t.Errorf("odd write: err %v, want %v", errs[i], tc.wantErr)
					}
					continue
				}
				if errs[i] != nil || panics[i] != nil {
					t.Errorf("write %d: err %v, panic %v", i, errs[i], panics[i])
				}
				if k := fmt.Sprintf("w%d", i); !got[k] {
					t.Errorf("row %s missing after its write returned nil", k)
				}
			}
			for i := range n {
				r := runs[i].Load()
				if tc.odd == nil && r != 1 || r > 2 {
					t.Errorf("write %d ran %d times", i, r)
				}
			}
			if got["odd"] != tc.wantOdd {
				t.Errorf("the odd write's row present = %v, want %v", got["odd"], tc.wantOdd)
			}
			if !got["first"] {
				t.Error("the first write's row is missing")
			}
			// One commit for the first write, one for the queued batch (two
			// when it had to run again).
			if c := d.writer.commits.Load() - before; c < 2 || c > 3 {
				t.Errorf("%d commits for 1+%d writes, want the queued ones batched", c, n)
			}
		})
	}
}

// errAny in a test case means "some error".
var errAny = errors.New("any error")

// waitQueued waits until n writes wait behind the one running.
func waitQueued(t *testing.T, d *DB, n int) {
	t.Helper()
	for range 10000 {
		d.writer.mu.Lock()
		q := len(d.writer.pending)
		d.writer.mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("writes did not queue up")
}

// A single statement outside a transaction (ExecContext) batches with the
// transactions, and one whose context is already done does not run.
func TestExecBatches(t *testing.T) {
	ctx := context.Background()
	d := batchDB(t)
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.ExecContext(done, "INSERT INTO w (k) VALUES ('cancelled')"); !errors.Is(err, context.Canceled) {
		t.Fatalf("exec with a done context: %v", err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := d.ExecContext(ctx, "INSERT INTO w (k) VALUES (?)", fmt.Sprint(i))
			if err != nil {
				t.Error(err)
				return
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				t.Errorf("rows affected %d, %v", n, err)
			}
		}()
	}
	wg.Wait()
	got := keys(t, d)
	if len(got) != 20 || got["cancelled"] {
		t.Fatalf("rows %v", got)
	}
}

// Short statements run without their context's watch (Short), but one whose
// context has ended does not run at all.
func TestQuickStatements(t *testing.T) {
	ctx := context.Background()
	d := batchDB(t)
	done, cancel := context.WithCancel(ctx)
	cancel()
	var n int
	if err := d.GetContext(done, &n, "SELECT COUNT(*) FROM w"); !errors.Is(err, context.Canceled) {
		t.Errorf("read with a done context: %v", err)
	}
	err := d.Tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := d.TxExec(done, tx, "INSERT INTO w (k) VALUES ('gone')"); !errors.Is(err, context.Canceled) {
			t.Errorf("write with a done context: %v", err)
		}
		_, err := d.TxExec(ctx, tx, "INSERT INTO w (k) VALUES ('kept')")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(t, d); len(got) != 1 || !got["kept"] {
		t.Fatalf("rows %v, want kept alone", got)
	}
}
