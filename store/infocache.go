package store

import (
	"bytes"
	"container/list"
	"sync"

	"basalt/message"
)

// infoCacheBytes bounds the stored metadata the cache keeps decoded,
// counted in its stored (JSON) size; decoded it takes a few times that.
const infoCacheBytes = 8 << 20

// infoCache keeps decoded message metadata. Decoding the JSON of every
// message a FETCH of ENVELOPE or BODYSTRUCTURE lists was the largest single
// cost of IMAP's steady state, while clients fetch the same recent
// messages again and again. An entry is used only when the stored bytes
// just read are the very bytes it was decoded from, so it can never be
// stale; sealed metadata (secure users) is never kept, so nothing of it
// outlives the sessions that hold the key. The Info it returns is shared:
// callers only read it.
type infoCache struct {
	mu    sync.Mutex
	size  int
	lru   list.List // of *infoEntry, most recently used at the front
	items map[int64]*list.Element
}

type infoEntry struct {
	id   int64
	raw  []byte
	info *message.Info
}

// get returns the Info decoded from raw for message id, if kept.
func (c *infoCache) get(id int64, raw []byte) *message.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return nil
	}
	e := el.Value.(*infoEntry)
	if !bytes.Equal(e.raw, raw) {
		return nil
	}
	c.lru.MoveToFront(el)
	return e.info
}

// put keeps info, decoded from raw, for message id.
func (c *infoCache) put(id int64, raw []byte, info *message.Info) {
	if len(raw) > infoCacheBytes/64 {
		return // one message's metadata must not empty the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[int64]*list.Element{}
	}
	if el, ok := c.items[id]; ok {
		c.remove(el)
	}
	e := &infoEntry{id: id, raw: bytes.Clone(raw), info: info}
	c.items[id] = c.lru.PushFront(e)
	c.size += len(e.raw)
	for c.size > infoCacheBytes {
		c.remove(c.lru.Back())
	}
}

func (c *infoCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*infoEntry)
	delete(c.items, e.id)
	c.size -= len(e.raw)
}
