package store

import (
	"fmt"
	"testing"
)

// The cache answers by message file, and stays within its budget however
// much passes through it.
func TestFileCache(t *testing.T) {
	const max = 1 << 20
	c := fileCache[string, string]{max: max}
	c.put("b1", 100, "one")
	if v, ok := c.get("b1"); !ok || v != "one" {
		t.Fatalf("get = %q, %v", v, ok)
	}
	if _, ok := c.get("b2"); ok {
		t.Error("an unknown file has an entry")
	}
	c.put("big", max/64+1, "big")
	if _, ok := c.get("big"); ok {
		t.Error("an oversized entry was kept")
	}
	for i := range 3 * max / 4096 {
		c.put(fmt.Sprint(i), 4096, "x")
	}
	if c.size > max || len(c.items) != c.lru.Len() {
		t.Fatalf("size %d over %d, or items %d != lru %d", c.size, max, len(c.items), c.lru.Len())
	}
	if _, ok := c.get("b1"); ok {
		t.Error("the least recently used entry was not evicted")
	}
}
