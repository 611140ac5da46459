package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Entry is a cached value with the serial of its scope at the time the
// value was read from the store.
type Entry struct {
	Value  []byte
	Serial uint64
}

// Event is a change announced on the bus. The JSON tags are the wire format
// between nodes and are kept short because every change to a mailbox sends
// one.
type Event struct {
	UserID    int64  `json:"u"`
	MailboxID int64  `json:"m,omitempty"`
	Kind      string `json:"k"` // e.g. "append", "flags", "expunge", "mailbox", "user", KindResync
	UID       uint32 `json:"uid,omitempty"`
	ModSeq    uint64 `json:"ms,omitempty"`
	Serial    uint64 `json:"s,omitempty"`
	// Session names the protocol session a KindRevoke event ends; empty,
	// every one of UserID's.
	Session string `json:"sid,omitempty"`
}

// KindResync is the Kind of the event delivered to a subscriber that missed
// events, either because it fell behind or because the bus lost its
// connection for a while. Its other fields are zero: the subscriber must
// re-read all the state it follows.
const KindResync = "resync"

// KindRevoke is the Kind of the event by which the session service asks
// every node to end protocol connections (IMAP, POP3, SMTP submission)
// of UserID: the one named by Session, or all of them. It changes no
// mail, and the store's watches (IMAP IDLE, webmail push) pass it over.
const KindRevoke = "revoke"

// ErrClosed is returned by operations on a closed Cache.
var ErrClosed = errors.New("cache: closed")

// Cache is the shared cache and event bus. Implementations are safe for
// concurrent use.
//
// Keys given to Get, Set, Delete and Incr share one namespace: Get of a
// counter's key or Incr of an entry's key is an error. Serial scopes are a
// namespace of their own.
type Cache interface {
	Get(ctx context.Context, key string) (Entry, bool, error)
	// Set stores e under key; ttl 0 means no expiry.
	Set(ctx context.Context, key string, e Entry, ttl time.Duration) error
	// Delete removes entries and counters; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Serial returns the current serial of scope (false when unknown, e.g.
	// after eviction or restart).
	Serial(ctx context.Context, scope string) (uint64, bool, error)
	// RaiseSerial sets scope's serial to max(current, serial) atomically,
	// so out-of-order announcements from several nodes never move it
	// backwards.
	RaiseSerial(ctx context.Context, scope string, serial uint64) error
	// Incr adds delta to an integer counter and returns the new value; ttl
	// applies when the key is created (a fixed window), e.g. failures per
	// IP per day. ttl 0 means the counter never expires.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Publish announces ev to every subscriber.
	Publish(ctx context.Context, ev Event) error
	// Subscribe delivers every event published after it returns (by any
	// process sharing the Redis) until the subscription is closed or ctx
	// ends.
	Subscribe(ctx context.Context) (*Subscription, error)
	// TryLock takes the lock named key for ttl unless someone holds it:
	// ok reports whether it was taken, and token proves it to RefreshLock
	// and Unlock. A holder that dies without unlocking loses the lock when
	// ttl runs out, so a holder that lives longer refreshes it. Lock keys
	// are a namespace of their own, apart from entries and serials.
	TryLock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
	// RefreshLock gives a held lock a new ttl from now; false means the
	// lock is no longer the token's (it expired, and may be someone
	// else's).
	RefreshLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error)
	// Unlock releases the lock if token still holds it; a lock that has
	// expired or passed to another holder is left alone.
	Unlock(ctx context.Context, key, token string) error
	// Locked reports whether someone holds the lock named key, without
	// taking it.
	Locked(ctx context.Context, key string) (bool, error)
	// PutLeases stores each lease's Value as its Member of its Set, to
	// live for ttl from now (a member already there is replaced, its
	// lease renewed): in one round trip however many leases, so a holder
	// renews all of its own in one batch. A holder that dies without
	// deleting its members loses them when their lease runs out. Lease
	// sets are a namespace of their own.
	PutLeases(ctx context.Context, ttl time.Duration, leases ...Lease) error
	// DeleteLeases removes members of set; missing ones are not an error.
	DeleteLeases(ctx context.Context, set string, members ...string) error
	// Leases returns the members of set whose lease has not run out, with
	// their values.
	Leases(ctx context.Context, set string) (map[string][]byte, error)
	Ping(ctx context.Context) error
	// Close ends every subscription (their channels are closed) and
	// releases the connections; later calls fail with ErrClosed.
	Close() error
}

// Lease is a member of a lease set (Cache.PutLeases): a value that lives
// while its holder renews it, such as a node's live connection.
type Lease struct {
	Set, Member string
	Value       []byte
}

// checkLockTTL rejects lock lifetimes that cannot be honoured: a lock
// must expire (a holder may die), and Redis counts in milliseconds.
func checkLockTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("lock ttl %v: must be at least a millisecond", ttl)
	}
	return nil
}

// newLockToken returns a token no other holder can guess or collide with.
func newLockToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// checkTTL rejects negative TTLs, which neither implementation could honour
// in a way a caller would expect.
func checkTTL(ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("negative ttl %v", ttl)
	}
	return nil
}
