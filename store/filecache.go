package store

import (
	"bytes"
	"container/list"
	"sync"

	"basalt/message"
)

// What the store keeps in memory of message files, by file id: a file's id
// is random and never reused, and a file and the metadata parsed from it
// are written once (a copy of a message shares both), so an entry cannot
// go stale. Nothing of a secure user's mail is kept, so nothing readable
// of it outlives the sessions that hold the key. What the caches return
// is shared: callers only read it.
//
//   - infos holds decoded metadata. Reading and decoding the metadata of
//     every message a FETCH of ENVELOPE or BODYSTRUCTURE lists was the
//     largest single cost of IMAP's steady state (and a quarter of its
//     garbage), while clients fetch the same recent messages again and
//     again.
//   - bodies holds small messages decompressed: clients fetch new mail
//     right after it arrives, often from several devices, and
//     decompressing it each time was 6% of IMAP's CPU.
const (
	infoCacheBytes = 8 << 20  // counted in stored (JSON) bytes; decoded, a few times that
	bodyCacheBytes = 16 << 20 // counted in message bytes
	maxCachedBody  = 64 << 10 // larger messages are read from their files
)

// fileCache is a least-recently-used map of values by message file id,
// bounded by the sizes its entries are given.
type fileCache[K comparable, V any] struct {
	max   int
	mu    sync.Mutex
	size  int
	lru   list.List // of *fileEntry[V], most recently used at the front
	items map[K]*list.Element
}

type fileEntry[K comparable, V any] struct {
	id   K
	size int
	v    V
}

// get returns the value kept for the file id.
func (c *fileCache[K, V]) get(id K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		var zero V
		return zero, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*fileEntry[K, V]).v, true
}

// put keeps v, of the given size, for the file id.
func (c *fileCache[K, V]) put(id K, size int, v V) {
	if size > c.max/64 {
		return // one entry must not empty the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[K]*list.Element{}
	}
	if el, ok := c.items[id]; ok {
		c.remove(el)
	}
	c.items[id] = c.lru.PushFront(&fileEntry[K, V]{id: id, size: size, v: v})
	c.size += size
	for c.size > c.max {
		c.remove(c.lru.Back())
	}
}

// drop forgets what is kept for id.
func (c *fileCache[K, V]) drop(id K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.remove(el)
	}
}

func (c *fileCache[K, V]) remove(el *list.Element) {
	e := c.lru.Remove(el).(*fileEntry[K, V])
	delete(c.items, e.id)
	c.size -= e.size
}

// fileCaches are the store's caches of message files.
type fileCaches struct {
	infos  fileCache[string, *message.Info]
	bodies fileCache[string, []byte]
	rows   fileCache[fixedKey, fixedRow]
}

func newFileCaches() *fileCaches {
	return &fileCaches{infos: fileCache[string, *message.Info]{max: infoCacheBytes}, bodies: fileCache[string, []byte]{max: bodyCacheBytes}, rows: fileCache[fixedKey, fixedRow]{max: rowCacheEntries}}
}

// noteAppended keeps the metadata and, when small, the body of a plain
// user's message just appended: clients fetch new mail right after it
// arrives, and the first FETCH then need not read, decompress and decode
// what the append had in hand. The body is copied: the caller's buffer is
// its own.
func (c *fileCaches) noteAppended(id string, p *parsed) {
	c.infos.put(id, len(p.meta), p.info)
	if n := len(p.raw); n > 0 && n <= maxCachedBody {
		c.bodies.put(id, n, bytes.Clone(p.raw))
	}
}
