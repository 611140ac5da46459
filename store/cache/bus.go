package cache

import (
	"context"
	"sync"
)

// subscriptionBuffer is how many events a subscriber may fall behind before
// it starts losing them and is told to resync.
const subscriptionBuffer = 1024

// hub fans events out to the subscriptions of one process. Both Cache
// implementations use it: Memory broadcasts on Publish, Redis broadcasts
// what its single Redis subscription receives, so a thousand IDLE sessions
// cost one Redis connection, not a thousand.
type hub struct {
	size int

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

func newHub(size int) *hub {
	return &hub{size: size, subs: make(map[*Subscription]struct{})}
}

// subscribe registers a new subscription that lives until it is closed, ctx
// ends or the hub is closed.
func (h *hub) subscribe(ctx context.Context) (*Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Subscription{
		hub:    h,
		max:    h.size,
		out:    make(chan Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	go s.pump()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	s.mu.Lock()
	s.stopCtx = stop
	s.mu.Unlock()
	return s, nil
}

// broadcast queues ev for every subscription. It never blocks on a
// subscriber.
func (h *hub) broadcast(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.deliver(ev)
	}
}

func (h *hub) remove(s *Subscription) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// close closes every subscription and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	subs := h.subs
	h.subs = make(map[*Subscription]struct{})
	h.mu.Unlock()
	// Outside h.mu: Subscription.Close takes it to unregister.
	for s := range subs {
		s.Close()
	}
}

// Subscription receives events from a Cache's bus. Its channel is closed
// when the subscription ends.
type Subscription struct {
	hub  *hub
	max  int
	out  chan Event    // handed out by C; unbuffered, the queue is the buffer
	wake chan struct{} // capacity 1: "the queue may have something"
	done chan struct{} // closed by Close

	exited    chan struct{} // closed when pump has returned (and closed out)
	closeOnce sync.Once

	mu      sync.Mutex
	queue   []Event // ring buffer, grown on demand up to max
	head, n int
	dropped bool // the queue overflowed; a resync is owed
	closed  bool
	stopCtx func() bool
}

// C returns the channel the events arrive on. It is closed when the
// subscription ends (Close, its context, or the Cache's Close).
func (s *Subscription) C() <-chan Event { return s.out }

// Close ends the subscription and closes its channel; events still queued
// are discarded. It is safe to call more than once and from any goroutine.
func (s *Subscription) Close() error {
	s.closeOnce.Do(func() {
		s.hub.remove(s)
		s.mu.Lock()
		s.closed = true
		s.queue, s.head, s.n = nil, 0, 0
		stop := s.stopCtx
		s.mu.Unlock()
		if stop != nil {
			stop()
		}
		close(s.done)
	})
	// Wait so that C is closed by the time Close returns.
	<-s.exited
	return nil
}

// deliver queues ev without blocking. When the queue is full the event is
// lost and the subscriber owes a resync, which pump queues as soon as there
// is room.
func (s *Subscription) deliver(ev Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.dropped {
		// pump clears dropped as it makes room, so the queue is full here;
		// the event is lost like the ones before it.
		s.mu.Unlock()
		return
	}
	if !s.push(ev) {
		s.dropped = true
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push appends ev to the ring and reports whether there was room. The ring
// starts small and doubles up to max because most subscribers (idle IMAP
// sessions) never hold more than a few events, and a full-size buffer each
// would cost tens of kilobytes per session. Callers hold s.mu.
func (s *Subscription) push(ev Event) bool {
	if s.n == len(s.queue) {
		if s.n >= s.max {
			return false
		}
		grown := make([]Event, min(max(2*len(s.queue), 16), s.max))
		for i := range s.n {
			grown[i] = s.queue[(s.head+i)%len(s.queue)]
		}
		s.queue, s.head = grown, 0
	}
	s.queue[(s.head+s.n)%len(s.queue)] = ev
	s.n++
	return true
}

// pop takes the oldest queued event. Taking one makes room, so a resync owed
// since an overflow is queued right behind the events that made it.
func (s *Subscription) pop() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return Event{}, false
	}
	ev := s.queue[s.head]
	s.queue[s.head] = Event{}
	s.head = (s.head + 1) % len(s.queue)
	s.n--
	if s.dropped {
		s.push(Event{Kind: KindResync})
		s.dropped = false
	}
	return ev, true
}

// pump moves events from the queue to the subscriber's channel, one
// goroutine per subscription, so that a resync is delivered as soon as the
// subscriber catches up even if nothing else is ever published.
func (s *Subscription) pump() {
	defer close(s.exited)
	defer close(s.out)
	for {
		ev, ok := s.pop()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- ev:
		case <-s.done:
			return
		}
	}
}
