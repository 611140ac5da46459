package cache

import (
	"container/list"
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// defaultMaxEntries bounds a Memory cache whose options leave MaxEntries 0.
const defaultMaxEntries = 100_000

// MemoryOptions configures NewMemory. The zero value is usable.
type MemoryOptions struct {
	// MaxEntries bounds the number of entries, counters and serials held
	// together; the least recently used is evicted first. 0 means 100 000.
	MaxEntries int
}

// Memory is the in-process Cache used when no Redis is configured: an LRU
// map and a bus that reaches the subscribers of this process only.
type Memory struct {
	max int
	bus *hub

	mu    sync.Mutex
	lru   *list.List               // of *memItem, most recently used at the front
	items map[string]*list.Element // by namespaced key, see keyOf and scopeOf
	// locks are kept apart from the LRU: evicting a held lock would hand
	// it to a second holder.
	locks     map[string]memLock
	lockSweep int // sweep expired locks when the map reaches this size
	// leases are kept apart from the LRU too: evicting a live member
	// would hide it from its set's readers.
	leases     map[string]map[string]memLease // by set, then member
	leaseSweep int                            // sweep expired members when len(leases) reaches this
	closed     bool
}

type memLease struct {
	value   []byte
	expires time.Time
}

type memLock struct {
	token   string
	expires time.Time
}

// minLockSweep is the map size below which expired locks are left until
// someone touches their key.
const minLockSweep = 64

var _ Cache = (*Memory)(nil)

type memKind uint8

const (
	kindEntry memKind = iota
	kindCounter
	kindSerial
)

type memItem struct {
	key     string
	kind    memKind
	value   []byte
	serial  uint64 // the entry's serial, or the scope's for kindSerial
	counter int64
	expires time.Time // zero: never
}

// keyOf and scopeOf keep keys and serial scopes apart in the one map, as the
// Redis implementation does in its key space.
func keyOf(key string) string      { return "k:" + key }
func scopeOf(scope string) string  { return "s:" + scope }
func lockOf(key string) string     { return "l:" + key }
func leaseSetOf(set string) string { return "h:" + set }

// NewMemory returns an empty in-process cache.
func NewMemory(opts MemoryOptions) *Memory {
	m := opts.MaxEntries
	if m <= 0 {
		m = defaultMaxEntries
	}
	return &Memory{
		max:    m,
		bus:    newHub(subscriptionBuffer),
		lru:    list.New(),
		items:  make(map[string]*list.Element),
		locks:  make(map[string]memLock),
		leases: make(map[string]map[string]memLease),
	}
}

// lookup returns the live item under k and marks it recently used; an
// expired item is removed and reported missing. Callers hold m.mu.
func (m *Memory) lookup(k string, now time.Time) *memItem {
	el, ok := m.items[k]
	if !ok {
		return nil
	}
	it := el.Value.(*memItem)
	if !it.expires.IsZero() && !now.Before(it.expires) {
		m.lru.Remove(el)
		delete(m.items, k)
		return nil
	}
	m.lru.MoveToFront(el)
	return it
}

// insert adds it as the most recently used item, replacing any item under
// the same key, and evicts from the back to stay within max. Callers hold
// m.mu.
func (m *Memory) insert(it *memItem) {
	if el, ok := m.items[it.key]; ok {
		el.Value = it
		m.lru.MoveToFront(el)
		return
	}
	m.items[it.key] = m.lru.PushFront(it)
	for m.lru.Len() > m.max {
		back := m.lru.Back()
		m.lru.Remove(back)
		delete(m.items, back.Value.(*memItem).key)
	}
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Get returns a copy of the entry under key, so callers may keep or change
// it without touching the cache.
func (m *Memory) Get(ctx context.Context, key string) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Entry{}, false, fmt.Errorf("cache: get %q: %w", key, ErrClosed)
	}
	it := m.lookup(keyOf(key), time.Now())
	if it == nil {
		return Entry{}, false, nil
	}
	if it.kind != kindEntry {
		return Entry{}, false, fmt.Errorf("cache: get %q: key holds a counter", key)
	}
	return Entry{Value: clone(it.value), Serial: it.serial}, true, nil
}

// Set stores a copy of e.Value.
func (m *Memory) Set(ctx context.Context, key string, e Entry, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("cache: set %q: %w", key, err)
	}
	it := &memItem{key: keyOf(key), kind: kindEntry, value: clone(e.Value), serial: e.Serial}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: set %q: %w", key, ErrClosed)
	}
	it.expires = expiry(time.Now(), ttl)
	m.insert(it)
	return nil
}

func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: delete %d keys: %w", len(keys), ErrClosed)
	}
	for _, key := range keys {
		if el, ok := m.items[keyOf(key)]; ok {
			m.lru.Remove(el)
			delete(m.items, keyOf(key))
		}
	}
	return nil
}

func (m *Memory) Serial(ctx context.Context, scope string) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, false, fmt.Errorf("cache: read serial of %q: %w", scope, ErrClosed)
	}
	it := m.lookup(scopeOf(scope), time.Now())
	if it == nil {
		return 0, false, nil
	}
	return it.serial, true, nil
}

func (m *Memory) RaiseSerial(ctx context.Context, scope string, serial uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: raise serial of %q: %w", scope, ErrClosed)
	}
	if it := m.lookup(scopeOf(scope), time.Now()); it != nil {
		it.serial = max(it.serial, serial)
		return nil
	}
	m.insert(&memItem{key: scopeOf(scope), kind: kindSerial, serial: serial})
	return nil
}

func (m *Memory) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, fmt.Errorf("cache: increment %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, fmt.Errorf("cache: increment %q: %w", key, ErrClosed)
	}
	now := time.Now()
	it := m.lookup(keyOf(key), now)
	if it == nil {
		m.insert(&memItem{key: keyOf(key), kind: kindCounter, counter: delta, expires: expiry(now, ttl)})
		return delta, nil
	}
	if it.kind != kindCounter {
		return 0, fmt.Errorf("cache: increment %q: key holds an entry, not a counter", key)
	}
	// Redis refuses to overflow; so does this, rather than wrap a
	// throttling counter around to a negative number.
	if (delta > 0 && it.counter > math.MaxInt64-delta) || (delta < 0 && it.counter < math.MinInt64-delta) {
		return 0, fmt.Errorf("cache: increment %q by %d: counter would overflow", key, delta)
	}
	it.counter += delta
	return it.counter, nil
}

// Publish delivers ev to this process's subscribers.
func (m *Memory) Publish(ctx context.Context, ev Event) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return fmt.Errorf("cache: publish %s event: %w", ev.Kind, ErrClosed)
	}
	m.bus.broadcast(ev)
	return nil
}

func (m *Memory) Subscribe(ctx context.Context) (*Subscription, error) {
	s, err := m.bus.subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("cache: subscribe: %w", err)
	}
	return s, nil
}

func (m *Memory) TryLock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if err := checkLockTTL(ttl); err != nil {
		return "", false, fmt.Errorf("cache: lock %q: %w", key, err)
	}
	token, err := newLockToken()
	if err != nil {
		return "", false, fmt.Errorf("cache: lock %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", false, fmt.Errorf("cache: lock %q: %w", key, ErrClosed)
	}
	now := time.Now()
	if l, ok := m.locks[key]; ok && now.Before(l.expires) {
		return "", false, nil
	}
	m.sweepLocks(now)
	m.locks[key] = memLock{token: token, expires: now.Add(ttl)}
	return token, true, nil
}

// sweepLocks drops expired locks once the map has doubled since the last
// sweep, so locks nobody asks for again cost amortised constant time.
// Callers hold m.mu.
func (m *Memory) sweepLocks(now time.Time) {
	if len(m.locks) < max(m.lockSweep, minLockSweep) {
		return
	}
	for k, l := range m.locks {
		if !now.Before(l.expires) {
			delete(m.locks, k)
		}
	}
	m.lockSweep = 2 * len(m.locks)
}

func (m *Memory) RefreshLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if err := checkLockTTL(ttl); err != nil {
		return false, fmt.Errorf("cache: refresh lock %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, fmt.Errorf("cache: refresh lock %q: %w", key, ErrClosed)
	}
	now := time.Now()
	l, ok := m.locks[key]
	if !ok || l.token != token || !now.Before(l.expires) {
		return false, nil
	}
	m.locks[key] = memLock{token: token, expires: now.Add(ttl)}
	return true, nil
}

func (m *Memory) Unlock(ctx context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: unlock %q: %w", key, ErrClosed)
	}
	if l, ok := m.locks[key]; ok && l.token == token {
		delete(m.locks, key)
	}
	return nil
}

func (m *Memory) Locked(ctx context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, fmt.Errorf("cache: look at lock %q: %w", key, ErrClosed)
	}
	l, ok := m.locks[key]
	return ok && time.Now().Before(l.expires), nil
}

func (m *Memory) PutLeases(ctx context.Context, ttl time.Duration, leases ...Lease) error {
	if err := checkLockTTL(ttl); err != nil {
		return fmt.Errorf("cache: put %d leases: %w", len(leases), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: put %d leases: %w", len(leases), ErrClosed)
	}
	now := time.Now()
	m.sweepLeases(now)
	for _, l := range leases {
		set := m.leases[l.Set]
		if set == nil {
			set = make(map[string]memLease)
			m.leases[l.Set] = set
		}
		set[l.Member] = memLease{value: clone(l.Value), expires: now.Add(ttl)}
	}
	return nil
}

// sweepLeases drops expired members, and the sets they leave empty, once
// the number of sets has doubled since the last sweep: the sets of users
// nobody lists again cost amortised constant time. Callers hold m.mu.
func (m *Memory) sweepLeases(now time.Time) {
	if len(m.leases) < max(m.leaseSweep, minLockSweep) {
		return
	}
	for name, set := range m.leases {
		for member, l := range set {
			if !now.Before(l.expires) {
				delete(set, member)
			}
		}
		if len(set) == 0 {
			delete(m.leases, name)
		}
	}
	m.leaseSweep = 2 * len(m.leases)
}

func (m *Memory) DeleteLeases(ctx context.Context, set string, members ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: delete leases of %q: %w", set, ErrClosed)
	}
	s := m.leases[set]
	for _, member := range members {
		delete(s, member)
	}
	if s != nil && len(s) == 0 {
		delete(m.leases, set)
	}
	return nil
}

func (m *Memory) Leases(ctx context.Context, set string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("cache: read leases of %q: %w", set, ErrClosed)
	}
	now := time.Now()
	out := make(map[string][]byte)
	s := m.leases[set]
	for member, l := range s {
		if !now.Before(l.expires) {
			delete(s, member)
			continue
		}
		out[member] = clone(l.value)
	}
	if s != nil && len(s) == 0 {
		delete(m.leases, set)
	}
	return out, nil
}

func (m *Memory) Ping(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("cache: ping: %w", ErrClosed)
	}
	return nil
}

// Close drops every item and ends every subscription.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.lru.Init()
	m.items = make(map[string]*list.Element)
	m.locks = make(map[string]memLock)
	m.leases = make(map[string]map[string]memLease)
	m.mu.Unlock()
	m.bus.close()
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
