package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestPutDeferred(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{}, "p1", "p2")
	bodies := map[string][]byte{}
	parts := map[string]bool{}
	for i := range 8 {
		id := NewID()
		bodies[id] = []byte(strings.Repeat(fmt.Sprintf("message %d ", i), 100))
		info, err := s.PutDeferred(ctx, id, bytes.NewReader(bodies[id]), nil)
		if err != nil {
			t.Fatal(err)
		}
		parts[info.Partition] = true
		// Named and complete before the sync.
		if got, err := read(t, s, info.Partition, id, nil); err != nil || !bytes.Equal(got, bodies[id]) {
			t.Fatalf("deferred blob before Sync: %v", err)
		}
	}
	var names []string
	for p := range parts {
		names = append(names, p)
	}
	if err := s.Sync(ctx, names...); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx, "nope"); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("Sync of an unknown partition: %v", err)
	}
	// No temp files left, and an existing id is still never overwritten.
	n := 0
	s.Walk(ctx, func(e Entry) error {
		if e.Temp {
			t.Errorf("temp file left: %s", e.Path)
		}
		n++
		return nil
	})
	if n != len(bodies) {
		t.Fatalf("walked %d blobs, want %d", n, len(bodies))
	}
	for id := range bodies {
		if _, err := s.PutDeferred(ctx, id, strings.NewReader("other"), nil); !errors.Is(err, os.ErrExist) {
			t.Fatalf("PutDeferred over an existing blob: %v", err)
		}
		break
	}
}

// BenchmarkPutDeferred10 writes ten 4 KB blobs and makes them durable with
// one Sync: the unit of group commit.
func BenchmarkPutDeferred10(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, Options{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 256)
	for b.Loop() {
		for range 10 {
			if _, err := s.PutDeferred(ctx, NewID(), bytes.NewReader(body), nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Sync(ctx, "p1"); err != nil {
			b.Fatal(err)
		}
	}
}
