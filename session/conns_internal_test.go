package session

import (
	"testing"
	"time"
)

// TestHeardBurst: a burst of changes of distinct users, all within
// changeMemory (a domain's users renamed), is noted in time linear in its
// size, and notes older than changeMemory are still dropped.
func TestHeardBurst(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := newConns(&Service{now: func() time.Time { return now }})
	// Pruning at every event past a fixed size visits the whole map each
	// time: some 2·10⁹ visits for this burst, where doubling makes it a
	// few hundred thousand.
	const burst = 60_000
	start := time.Now()
	for id := range int64(burst) {
		r.heard(id)
		if id%1000 == 0 && time.Since(start) > 5*time.Second {
			t.Fatalf("%d changes noted in %v: the notes are pruned at each one", id, time.Since(start))
		}
	}
	if len(r.changed) != burst {
		t.Fatalf("%d notes kept, want %d (all within changeMemory)", len(r.changed), burst)
	}
	// Once they are old, the next growth past the mark drops them.
	now = now.Add(2 * changeMemory)
	for id := int64(burst); len(r.changed) >= burst && id < 4*burst; id++ {
		r.heard(id)
	}
	if _, ok := r.changed[0]; ok || len(r.changed) >= burst {
		t.Errorf("%d notes kept after they aged, want the old ones dropped", len(r.changed))
	}
	if !r.changedSince(int64(burst), now.Add(-time.Second)) {
		t.Error("a fresh note was dropped")
	}
}
