package store

import (
	"context"
	"fmt"
	"sync"

	"basalt/store/cache"
)

// A protocol session that waits for changes (IMAP IDLE, the webmail's push
// channel) must not hold a bus subscription of its own: a subscription
// costs a goroutine and a queue, and thousands of idle sessions would
// multiply that. Instead one subscription per Store, started on the first
// Watch, feeds every Watch of this process; each Watch keeps at most
// watchMax events, merged where they say the same thing, and overflows
// into "resync everything" rather than into memory.

// watchMax bounds the events a Watch holds between two Takes. A watcher
// that falls further behind is told to resync, which costs it one re-read
// of what it follows instead of an unbounded queue.
const watchMax = 64

// Event is a change a Watch delivers: whose, of what kind, on which
// mailbox and message. Front ends name it here, not in store/cache.
type Event = cache.Event

// Watch receives the change events of one user, as they are committed by
// this or (with Redis) any other node. Wait on C, then Take what arrived.
// Its methods are safe for concurrent use.
type Watch struct {
	hub    *watchHub
	userID int64
	// wake holds a token when Take may have something; capacity 1, so a
	// burst of events costs one wake-up.
	wake chan struct{}
	stop func() bool // unregisters from the context, if any

	// prev and next link the hub's list of userID's watches; hub.mu.
	prev, next *Watch

	mu     sync.Mutex
	events []cache.Event
	resync bool
	closed bool
}

// watchHub is the per-Store fan-out. Its zero value is ready.
type watchHub struct {
	mu      sync.Mutex
	users   map[int64]*Watch // head of each user's list
	running bool             // the subscription is being read
}

// Watch returns a watch on userID's changes, which lasts until it is
// closed or ctx ends. The first Watch of a Store subscribes to the bus;
// later ones share that subscription.
func (s *Store) Watch(ctx context.Context, userID int64) (*Watch, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch user %d: %w", userID, err)
	}
	h := &s.watches
	w := &Watch{hub: h, userID: userID, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		// Subscribe returns once the subscription is live, so nothing
		// committed after Watch returns can be missed. It is not tied to
		// ctx: it serves every watch of this Store, and ends when the
		// cache is closed.
		sub, err := s.cache.Subscribe(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("watch user %d: %w", userID, err)
		}
		h.running = true
		go h.pump(sub)
	}
	if h.users == nil {
		h.users = map[int64]*Watch{}
	}
	if head := h.users[userID]; head != nil {
		w.next, head.prev = head, w
	}
	h.users[userID] = w
	if ctx.Done() != nil {
		w.stop = context.AfterFunc(ctx, w.Close)
	}
	return w, nil
}

// pump reads the subscription and hands each event to the watches of its
// user; a resync from the bus (a subscriber that fell behind, a Redis
// connection that came back) goes to every watch.
func (h *watchHub) pump(sub *cache.Subscription) {
	for ev := range sub.C() {
		h.dispatch(ev)
	}
	// The cache was closed: no more events will come, so every watch
	// resyncs once and then hears nothing; a new Watch subscribes again
	// (and fails if the cache stays closed).
	h.mu.Lock()
	h.running = false
	h.mu.Unlock()
	h.dispatch(cache.Event{Kind: cache.KindResync})
}

func (h *watchHub) dispatch(ev cache.Event) {
	if ev.Kind == cache.KindRevoke {
		return // the session service's, about connections, not mail
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.Kind == cache.KindResync {
		for _, head := range h.users {
			for w := head; w != nil; w = w.next {
				w.deliver(ev)
			}
		}
		return
	}
	for w := h.users[ev.UserID]; w != nil; w = w.next {
		w.deliver(ev)
	}
}

// deliver queues ev, merging it into an event for the same message (or
// mailbox) and kind, and wakes the watcher. Called with hub.mu held.
func (w *Watch) deliver(ev cache.Event) {
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
		return
	case w.resync:
		// Everything will be re-read: nothing more to remember.
	case ev.Kind == cache.KindResync:
		w.resync, w.events = true, nil
	default:
		merged := false
		for i := range w.events {
			q := &w.events[i]
			if q.MailboxID == ev.MailboxID && q.Kind == ev.Kind && q.UID == ev.UID {
				q.ModSeq, q.Serial = max(q.ModSeq, ev.ModSeq), max(q.Serial, ev.Serial)
				merged = true
				break
			}
		}
		if !merged {
			if len(w.events) >= watchMax {
				w.resync, w.events = true, nil
			} else {
				w.events = append(w.events, ev)
			}
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// C returns the channel that receives a value when Take has something.
// A value may come with nothing to take (it raced an earlier Take).
func (w *Watch) C() <-chan struct{} { return w.wake }

// Take returns the events since the last Take, oldest first, and whether
// the watcher must instead re-read everything it follows (resync): events
// were lost, or more arrived than a Watch keeps.
func (w *Watch) Take() (events []cache.Event, resync bool) {
	select {
	case <-w.wake:
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	events, resync = w.events, w.resync
	w.events, w.resync = nil, false
	return events, resync
}

// UserID returns the user the watch follows.
func (w *Watch) UserID() int64 { return w.userID }

// Close ends the watch; it is safe to call more than once.
func (w *Watch) Close() {
	h := w.hub
	h.mu.Lock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		h.mu.Unlock()
		return
	}
	w.closed, w.events = true, nil
	stop := w.stop
	w.mu.Unlock()
	if w.prev != nil {
		w.prev.next = w.next
	} else if h.users[w.userID] == w {
		if w.next != nil {
			h.users[w.userID] = w.next
		} else {
			delete(h.users, w.userID)
		}
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
}
