package store

import (
	"testing"

	"basalt/message"
)

// The cache answers by message file, and stays within its budget however
// much passes through it.
func TestInfoCache(t *testing.T) {
	var c infoCache
	a := &message.Info{}
	c.put("b1", 100, a)
	if got := c.get("b1"); got != a {
		t.Fatalf("get = %p, want %p", got, a)
	}
	if c.get("b2") != nil {
		t.Error("an unknown file has an entry")
	}
	c.put("big", infoCacheBytes/64+1, a)
	if c.get("big") != nil {
		t.Error("an oversized entry was kept")
	}
	for i := range 3 * infoCacheBytes / 4096 {
		c.put(string(rune(i))+"x", 4096, a)
	}
	if c.size > infoCacheBytes || len(c.items) != c.lru.Len() {
		t.Fatalf("size %d over %d, or items %d != lru %d", c.size, infoCacheBytes, len(c.items), c.lru.Len())
	}
	if c.get("b1") != nil {
		t.Error("the least recently used entry was not evicted")
	}
}
