package cache

import (
	"fmt"
	"testing"
	"time"
)

// Eviction is the in-process cache's own business (Redis evicts by its
// maxmemory policy), so this test is for Memory alone.
func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := testContext(t)
	m := NewMemory(MemoryOptions{MaxEntries: 3})
	defer m.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := m.Set(ctx, k, Entry{Value: []byte(k)}, 0); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	if _, ok, _ := m.Get(ctx, "a"); !ok { // a is now the most recently used
		t.Fatal("a missing before any eviction")
	}
	if err := m.RaiseSerial(ctx, "user:1", 4); err != nil { // serials count too
		t.Fatalf("RaiseSerial: %v", err)
	}
	if _, ok, _ := m.Get(ctx, "b"); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok, _ := m.Get(ctx, k); !ok {
			t.Errorf("%s evicted, want kept", k)
		}
	}
	if _, ok, _ := m.Serial(ctx, "user:1"); !ok {
		t.Error("serial evicted, want kept")
	}
	if n := m.lru.Len(); n != 3 || len(m.items) != 3 {
		t.Errorf("holding %d list items and %d map items, want 3", n, len(m.items))
	}
}

func TestMemoryBounded(t *testing.T) {
	ctx := testContext(t)
	tests := []struct {
		max, want int
	}{
		{0, defaultMaxEntries},
		{-1, defaultMaxEntries},
		{10, 10},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			m := NewMemory(MemoryOptions{MaxEntries: tt.max})
			defer m.Close()
			for i := range tt.want + 50 {
				if err := m.Set(ctx, fmt.Sprint(i), Entry{}, time.Hour); err != nil {
					t.Fatalf("Set: %v", err)
				}
			}
			if m.lru.Len() != tt.want || len(m.items) != tt.want {
				t.Fatalf("holding %d/%d items, want %d", m.lru.Len(), len(m.items), tt.want)
			}
		})
	}
}

// The zero value of MemoryOptions is usable, and so must a Memory from it be
// under concurrent mixed use (run with -race).
func TestMemoryConcurrentMixedUse(t *testing.T) {
	ctx := testContext(t)
	m := NewMemory(MemoryOptions{MaxEntries: 64})
	defer m.Close()
	sub, err := m.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range sub.C() {
		}
	}()
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			var err error
			for i := range 500 {
				k := fmt.Sprint((g * i) % 100)
				switch i % 5 {
				case 0:
					err = m.Set(ctx, k, Entry{Value: []byte(k), Serial: uint64(i)}, time.Millisecond)
				case 1:
					_, _, err = m.Get(ctx, k)
					if err != nil { // k may hold a counter
						err = nil
					}
				case 2:
					err = m.RaiseSerial(ctx, k, uint64(i))
				case 3:
					_, err = m.Incr(ctx, "n"+k, 1, time.Millisecond)
				case 4:
					err = m.Publish(ctx, Event{UserID: int64(g), Kind: "append", UID: uint32(i)})
				}
				if err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent use: %v", err)
		}
	}
	sub.Close()
	<-done
}
