package delivery_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/store"
	"basalt/store/outbound"
)

func ids(es []outbound.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// TestQueueAdmin, with the queue runner relaying to a smarthost: listings
// filter by state, recipient, domain and age and page by cursor; a held
// entry is not attempted while the runner runs until it is released; an
// entry deferred for an hour goes at once on a retry; a deleted one never
// goes.
func TestQueueAdmin(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	rs := newRelayServer(t, relayOptions{rcptReply: func(rcpt string, try int) error {
		if rcpt == "slow@later.test" && try == 1 {
			return reply(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")
		}
		return nil
	}})
	cfg := quick(rs.addr)
	cfg.Backoff = []time.Duration{time.Hour}
	q := delivery.NewQueue(cfg, e.Store, &localBox{}, testLogger(t))
	oq := q
	raw := []byte("Subject: x\r\n\r\nx\r\n")
	for _, to := range [][]string{{"a@held.test"}, {"b@other.test", "c@held.test"}, {"d@other.test"}} {
		if err := q.Enqueue(ctx, "alice@example.org", to, raw); err != nil {
			t.Fatal(err)
		}
	}
	all := entries(t, e.Store)
	held, other, gone := all[0].ID, all[1].ID, all[2].ID
	if err := oq.Hold(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := oq.Hold(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("hold of no entry: %v", err)
	}
	list := func(f outbound.Filter) []int64 {
		t.Helper()
		var out []int64
		for range 100 {
			p, err := oq.List(ctx, f)
			if err != nil {
				t.Fatalf("list %+v: %v", f, err)
			}
			out = append(out, ids(p.Entries)...)
			if p.Next == "" {
				return out
			}
			f.Cursor = p.Next
		}
		t.Fatal("paging did not end")
		return nil
	}
	for _, tc := range []struct {
		f    outbound.Filter
		want []int64
	}{
		{outbound.Filter{Limit: 1}, []int64{held, other, gone}},
		{outbound.Filter{State: outbound.StateHeld}, []int64{held}},
		{outbound.Filter{State: outbound.StateQueued}, []int64{other, gone}},
		{outbound.Filter{Domain: "held.test", Limit: 1}, []int64{held, other}},
		{outbound.Filter{Recipient: "D@other.test"}, []int64{gone}},
		{outbound.Filter{OlderThan: time.Hour}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("list %+v = %v, want %v", tc.f, got, tc.want)
		}
	}
	for _, bad := range []outbound.Filter{{State: "lost"}, {Cursor: "x"}, {Domain: "a b"}, {Limit: 5000}} {
		if _, err := oq.List(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("list %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if err := oq.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	runQueue(t, q)
	testsupport.WaitFor(t, 10*time.Second, "the entry not held to go", func() bool { return slices.Equal(ids(entries(t, e.Store)), []int64{held}) })
	time.Sleep(4 * cfg.PollInterval) // several rounds of the runner
	if txs := rs.transactions(); len(txs) != 1 || !slices.Equal(txs[0].to, []string{"b@other.test", "c@held.test"}) {
		t.Fatalf("transactions with one entry held: %+v", txs)
	}
	if got, _ := oq.Get(ctx, held); !got.Held || got.Attempts != 0 {
		t.Fatalf("held entry %+v", got)
	}
	if err := oq.Release(ctx, held); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the released entry to go", queueEmpty(t, e.Store))

	// Deferred for an hour, then retried now.
	if err := q.Enqueue(ctx, "alice@example.org", []string{"slow@later.test"}, raw); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "a first attempt", func() bool {
		l := entries(t, e.Store)
		return len(l) == 1 && l[0].Attempts == 1 && time.Until(l[0].NextAttempt) > 30*time.Minute
	})
	if got := list(outbound.Filter{State: outbound.StateDeferred}); len(got) != 1 {
		t.Fatalf("deferred listing %v", got)
	}
	if err := oq.RetryNow(ctx, entries(t, e.Store)[0].ID); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the retried entry to go", queueEmpty(t, e.Store))
	for _, tx := range rs.transactions() {
		if slices.Contains(tx.to, "d@other.test") {
			t.Fatal("a deleted entry was relayed")
		}
	}
}
