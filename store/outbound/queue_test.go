package outbound_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/outbound"
)

func queueFiles(t *testing.T, e *storetest.Env) int {
	t.Helper()
	n := 0
	if err := e.Blobs.Walk(context.Background(), func(blob.Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func claimOne(t *testing.T, q *outbound.Queue, lease time.Duration) outbound.Entry {
	t.Helper()
	got, err := q.Claim(context.Background(), 10, lease)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %d entries, %v; want 1", len(got), err)
	}
	return got[0]
}

func rcptState(o outbound.Entry) map[string]outbound.RcptStatus {
	m := map[string]outbound.RcptStatus{}
	for _, r := range o.Rcpts {
		m[r.Address] = r.Status
	}
	return m
}

// TestOutboundLifecycle: an entry is durable with its file, claimed once,
// rescheduled with per-recipient results, and gone with its file when the
// last recipient is done; the sweepers never take a queued file.
func TestOutboundLifecycle(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		st := e.Store
		q := outbound.New(st)
		msg := storetest.Message("Alice@Example.org", "bob@remote.test", "out", "hello")
		id, err := q.Enqueue(ctx, "Alice@Example.org", []string{"bob@remote.test", "Carol@Remote.test", "bob@REMOTE.test"}, msg)
		if err != nil {
			t.Fatal(err)
		}
		if at, ok, err := q.Next(ctx); err != nil || !ok || time.Since(at) > time.Minute {
			t.Fatalf("next due %v %v %v, want now", at, ok, err)
		}
		// The sweepers must leave a queued file alone, however old.
		if n, err := st.SweepOrphans(ctx, 0); err != nil || n != 0 {
			t.Fatalf("SweepOrphans took %d (%v)", n, err)
		}
		if n, err := st.SweepUnreferenced(ctx); err != nil || n != 0 {
			t.Fatalf("SweepUnreferenced took %d (%v)", n, err)
		}
		if queueFiles(t, e) != 1 {
			t.Fatal("the queued file is gone")
		}

		o := claimOne(t, q, time.Hour)
		if o.ID != id || o.From != "alice@example.org" || o.Size != int64(len(msg)) || o.Attempts != 0 {
			t.Fatalf("claimed %+v", o)
		}
		if want := []string{"bob@remote.test", "carol@remote.test"}; !slices.Equal(o.Pending(), want) {
			t.Fatalf("pending %v, want %v (normalised, deduplicated)", o.Pending(), want)
		}
		rc, err := q.Open(ctx, &o)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(body) != string(msg) {
			t.Fatalf("queued content differs (%v)", err)
		}
		if again, err := q.Claim(ctx, 10, time.Hour); err != nil || len(again) != 0 {
			t.Fatalf("a claimed entry was claimed again: %d, %v", len(again), err)
		}

		// Bob is delivered, Carol deferred until later.
		later := time.Now().Add(time.Hour)
		done, err := q.Update(ctx, &o, outbound.Update{
			Results: []outbound.Result{
				{Address: "bob@remote.test", Status: outbound.RcptSent, Reply: "250 2.0.0 ok"},
				{Address: "carol@remote.test", Status: outbound.RcptPending, Reply: "451 4.3.0 later"},
			},
			Attempted: true, LastError: "451 4.3.0 later", Next: later,
		})
		if err != nil || done {
			t.Fatalf("update: done=%v %v", done, err)
		}
		if got, err := q.Claim(ctx, 10, time.Hour); err != nil || len(got) != 0 {
			t.Fatalf("an entry due in an hour was claimed: %d, %v", len(got), err)
		}
		list, err := q.Entries(ctx, 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
		l := list[0]
		if l.Attempts != 1 || l.LastError != "451 4.3.0 later" || l.NextAttempt.UnixMilli() != later.UnixMilli() {
			t.Fatalf("listed %+v", l)
		}
		if s := rcptState(l); s["bob@remote.test"] != outbound.RcptSent || s["carol@remote.test"] != outbound.RcptPending {
			t.Fatalf("recipient states %v", s)
		}
		if l.Rcpts[1].Reply != "451 4.3.0 later" {
			t.Fatalf("carol's reply %q", l.Rcpts[1].Reply)
		}

		// Due again: the second claim carries the state of the first.
		if _, err := q.Update(ctx, &o, outbound.Update{Next: time.Now().Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		o = claimOne(t, q, time.Hour)
		if o.Attempts != 1 || !slices.Equal(o.Pending(), []string{"carol@remote.test"}) {
			t.Fatalf("reclaimed %+v", o)
		}
		done, err = q.Update(ctx, &o, outbound.Update{
			Results:   []outbound.Result{{Address: "carol@remote.test", Status: outbound.RcptSent, Reply: "250 ok"}},
			Attempted: true, Next: time.Now().Add(time.Hour),
		})
		if err != nil || !done {
			t.Fatalf("last recipient sent: done=%v %v", done, err)
		}
		if list, err := q.Entries(ctx, 0); err != nil || len(list) != 0 {
			t.Fatalf("queue after done: %v %v", list, err)
		}
		if _, ok, err := q.Next(ctx); err != nil || ok {
			t.Fatalf("an empty queue has a next entry (%v)", err)
		}
		if n := queueFiles(t, e); n != 0 {
			t.Fatalf("%d files left after the entry was done", n)
		}
		var rows int
		if err := e.DB.GetContext(ctx, &rows, "SELECT COUNT(*) FROM blobs"); err != nil || rows != 0 {
			t.Fatalf("%d blobs rows left (%v)", rows, err)
		}
	})
}

// TestOutboundFailuresKeepEntry: a failed recipient keeps the entry until
// the failure is reported.
func TestOutboundFailuresKeepEntry(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		st := e.Store
		q := outbound.New(st)
		if _, err := q.Enqueue(ctx, "a@example.org", []string{"x@remote.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		o := claimOne(t, q, time.Hour)
		failed := outbound.Result{Address: "x@remote.test", Status: outbound.RcptFailed, Reply: "550 5.1.1 no such user"}
		done, err := q.Update(ctx, &o, outbound.Update{Results: []outbound.Result{failed}, Attempted: true, Next: time.Now()})
		if err != nil || done {
			t.Fatalf("unreported failure: done=%v %v", done, err)
		}
		o = claimOne(t, q, time.Hour)
		if len(o.Pending()) != 0 || len(o.Unreported()) != 1 || o.Unreported()[0].Reply != failed.Reply {
			t.Fatalf("reclaimed %+v", o)
		}
		failed.Notified = true
		done, err = q.Update(ctx, &o, outbound.Update{Results: []outbound.Result{failed}, Next: time.Now()})
		if err != nil || !done {
			t.Fatalf("reported failure: done=%v %v", done, err)
		}
		if n := queueFiles(t, e); n != 0 {
			t.Fatalf("%d files left", n)
		}
	})
}

// TestOutboundLease: a claimer whose lease ran out and was claimed again
// can write nothing more (the fencing token); a deleted entry likewise.
func TestOutboundLease(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		st := e.Store
		q := outbound.New(st)
		if _, err := q.Enqueue(ctx, "", []string{"x@remote.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		stale := claimOne(t, q, -time.Millisecond) // a lease already over
		fresh := claimOne(t, q, time.Hour)
		sent := outbound.Update{Results: []outbound.Result{{Address: "x@remote.test", Status: outbound.RcptSent}}, Attempted: true, Next: time.Now()}
		if _, err := q.Update(ctx, &stale, sent); !errors.Is(err, outbound.ErrLeaseLost) {
			t.Fatalf("stale claimer's update: %v, want ErrLeaseLost", err)
		}
		list, _ := q.Entries(ctx, 0)
		if len(list) != 1 || list[0].Attempts != 0 || rcptState(list[0])["x@remote.test"] != outbound.RcptPending {
			t.Fatalf("the stale update changed the entry: %+v", list)
		}
		if err := q.Delete(ctx, fresh.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Update(ctx, &fresh, sent); !errors.Is(err, outbound.ErrLeaseLost) {
			t.Fatalf("update of a deleted entry: %v, want ErrLeaseLost", err)
		}
		if err := q.Delete(ctx, fresh.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
		if n := queueFiles(t, e); n != 0 {
			t.Fatalf("%d files left after delete", n)
		}
		var unclaimed outbound.Entry
		if _, err := q.Update(ctx, &unclaimed, sent); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("update without a claim: %v, want ErrInvalid", err)
		}
	})
}

// TestOutboundClaimRace: two nodes on one database, four claimers each,
// racing for the same entries: every entry is claimed exactly once.
func TestOutboundClaimRace(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		a := storetest.Open(t, db, storetest.Options{})
		b := storetest.Open(t, db, storetest.Options{BlobDir: a.BlobDir})
		const n = 40
		for i := range n {
			q := outbound.New(a.Store)
			if i%2 == 1 {
				q = outbound.New(b.Store)
			}
			if _, err := q.Enqueue(ctx, "a@example.org", []string{"x@remote.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu     sync.Mutex
			counts = map[int64]int{}
			wg     sync.WaitGroup
		)
		for w := range 8 {
			q := outbound.New(a.Store)
			if w%2 == 1 {
				q = outbound.New(b.Store)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := q.Claim(ctx, 3, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, o := range got {
						counts[o.ID]++
					}
					total := len(counts)
					mu.Unlock()
					if len(got) == 0 && total == n {
						return
					}
					if len(got) == 0 {
						if _, ok, err := q.Next(ctx); err != nil || !ok {
							t.Errorf("next: %v %v", ok, err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(counts) != n {
			t.Fatalf("%d of %d entries claimed", len(counts), n)
		}
		for id, c := range counts {
			if c != 1 {
				t.Errorf("entry %d claimed %d times", id, c)
			}
		}
	})
}

func TestEnqueueErrors(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		q := outbound.New(e.Store)
		tests := []struct {
			name string
			from string
			to   []string
		}{
			{"no recipients", "a@example.org", nil},
			{"bad recipient", "a@example.org", []string{"x@remote.test", "not an address"}},
			{"bad sender", "<>", []string{"x@remote.test"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := q.Enqueue(ctx, tt.from, tt.to, []byte("x")); !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("got %v, want ErrInvalid", err)
				}
			})
		}
		if n := queueFiles(t, e); n != 0 {
			t.Fatalf("refused enqueues left %d files", n)
		}
		// A write that fails after the file is written leaves no file.
		cctx, cancel := context.WithCancel(ctx)
		outbound.SetAfterBlobWrite(q, cancel)
		if _, err := q.Enqueue(cctx, "a@example.org", []string{"x@remote.test"}, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled enqueue: %v", err)
		}
		if n := queueFiles(t, e); n != 0 {
			t.Fatalf("a failed enqueue left %d files", n)
		}
		if list, err := q.Entries(ctx, 0); err != nil || len(list) != 0 {
			t.Fatalf("a failed enqueue left rows: %v %v", list, err)
		}
	})
}
