package store

import (
	"bytes"
	"testing"

	"basalt/message"
)

// The cache answers only for the very bytes an entry was decoded from, and
// stays within its budget however much passes through it.
func TestInfoCache(t *testing.T) {
	var c infoCache
	a := &message.Info{}
	c.put(1, []byte(`{"a":1}`), a)
	if got := c.get(1, []byte(`{"a":1}`)); got != a {
		t.Fatalf("get with the same bytes = %p, want %p", got, a)
	}
	for _, tc := range []struct {
		name string
		id   int64
		raw  string
	}{
		{"other bytes for the id", 1, `{"a":2}`},
		{"other id", 2, `{"a":1}`},
	} {
		if got := c.get(tc.id, []byte(tc.raw)); got != nil {
			t.Errorf("%s: got an entry", tc.name)
		}
	}
	// The caller's buffer may be reused: the entry keeps its own copy.
	buf := []byte(`{"b":1}`)
	c.put(3, buf, a)
	copy(buf, `{"b":9}`)
	if c.get(3, []byte(`{"b":1}`)) != a {
		t.Error("entry changed with the caller's buffer")
	}
	big := bytes.Repeat([]byte("x"), infoCacheBytes/64+1)
	c.put(4, big, a)
	if c.get(4, big) != nil {
		t.Error("an oversized entry was kept")
	}
	raw := bytes.Repeat([]byte("y"), 4096)
	for id := int64(10); id < 10+3*infoCacheBytes/4096; id++ {
		c.put(id, raw, a)
	}
	if c.size > infoCacheBytes || len(c.items) != c.lru.Len() {
		t.Fatalf("size %d over %d, or items %d != lru %d", c.size, infoCacheBytes, len(c.items), c.lru.Len())
	}
	if c.get(10, raw) != nil {
		t.Error("the least recently used entry was not evicted")
	}
}
