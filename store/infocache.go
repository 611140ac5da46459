package store

import (
	"container/list"
	"sync"

	"basalt/message"
)

// infoCacheBytes bounds the stored metadata the cache keeps decoded,
// counted in its stored (JSON) size; decoded it takes a few times that.
const infoCacheBytes = 8 << 20

// infoCache keeps decoded message metadata, by the message file it was
// parsed from. Reading and decoding the metadata of every message a FETCH
// of ENVELOPE or BODYSTRUCTURE lists was the largest single cost of IMAP's
// steady state (and a quarter of its garbage), while clients fetch the
// same recent messages again and again. A message file's id is random and
// never reused, and its metadata is written once, with its first row (a
// copy shares both), so an entry cannot go stale. Sealed metadata (secure
// users) is never kept, so nothing of it outlives the sessions that hold
// the key. The Info it returns is shared: callers only read it.
type infoCache struct {
	mu    sync.Mutex
	size  int
	lru   list.List // of *infoEntry, most recently used at the front
	items map[string]*list.Element
}

type infoEntry struct {
	blobID string
	size   int
	info   *message.Info
}

// get returns the Info of the message file blobID, if kept.
func (c *infoCache) get(blobID string) *message.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[blobID]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*infoEntry).info
}

// put keeps info, decoded from size bytes, for the message file blobID.
func (c *infoCache) put(blobID string, size int, info *message.Info) {
	if size > infoCacheBytes/64 {
		return // one message's metadata must not empty the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]*list.Element{}
	}
	if el, ok := c.items[blobID]; ok {
		c.remove(el)
	}
	c.items[blobID] = c.lru.PushFront(&infoEntry{blobID: blobID, size: size, info: info})
	c.size += size
	for c.size > infoCacheBytes {
		c.remove(c.lru.Back())
	}
}

func (c *infoCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*infoEntry)
	delete(c.items, e.blobID)
	c.size -= e.size
}
