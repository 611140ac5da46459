package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// loginCacheMax bounds the remembered logins; past it the oldest go.
const loginCacheMax = 100_000

// loginCache remembers, for a short while, logins whose password checked
// out, as Dovecot's auth cache does: a client that reconnects (phones,
// IMAP clients with several connections) costs a hash lookup, not another
// argon2 computation of 64 MiB.
//
// What it keeps is only an HMAC, under a key made at random when the
// process starts and never stored, of the user's id, the stored password
// hash and the password; no password and nothing that opens a key. The
// stored hash has a fresh salt at every password change, so a change made
// on any node (read from SQL at every login) makes the old entries
// unreachable; a lock is checked from SQL at every login, cached or not,
// and a deleted user has no credentials to look up. Only a password that
// verified is ever put in, so a wrong one is never taken for good; the
// throttle counts every attempt as before.
//
// Secure users are left out: their login must unlock the private key,
// an argon2 derivation as costly as the check, so a cache could only save
// it by keeping the unlocked key, or the key that opens it, in memory
// between sessions, where a dump of the process would find it; and a
// cached entry would let anyone holding such a dump test passwords at
// HMAC speed instead of argon2's. Neither is acceptable for mail that
// must stay unreadable without the password.
type loginCache struct {
	key [32]byte
	ttl time.Duration
	max int

	mu       sync.Mutex
	entries  map[loginSum]time.Time     // expiry
	order    []loginSum                 // insertion order, to drop the oldest
	inflight map[loginSum]chan struct{} // logins being verified now
}

type loginSum [sha256.Size]byte

func newLoginCache(ttl time.Duration, max int) *loginCache {
	c := &loginCache{ttl: ttl, max: max, entries: make(map[loginSum]time.Time), inflight: make(map[loginSum]chan struct{})}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("login cache: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return c
}

// sum is the entry for a login: length-prefixed fields, so no two
// different inputs run together into the same bytes.
func (c *loginCache) sum(userID int64, hash, password string) loginSum {
	m := hmac.New(sha256.New, c.key[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(userID))
	m.Write(b[:])
	for _, f := range []string{hash, password} {
		binary.BigEndian.PutUint64(b[:], uint64(len(f)))
		m.Write(b[:])
		m.Write([]byte(f))
	}
	var s loginSum
	m.Sum(s[:0])
	return s
}

// has reports whether s was put in and has not expired.
func (c *loginCache) has(s loginSum, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.entries[s]
	return ok && now.Before(exp)
}

// claim makes the caller the one to verify s, unless another login is
// verifying the same user and password right now: then it waits for that
// one (a client opening ten connections at once costs one hash, not ten)
// and reports whether it verified. done must be called after a claim.
func (c *loginCache) claim(ctx context.Context, s loginSum, now time.Time) (cached bool, done func()) {
	for {
		c.mu.Lock()
		if exp, ok := c.entries[s]; ok && now.Before(exp) {
			c.mu.Unlock()
			return true, func() {}
		}
		wait, busy := c.inflight[s]
		if !busy {
			ch := make(chan struct{})
			c.inflight[s] = ch
			c.mu.Unlock()
			return false, func() {
				c.mu.Lock()
				delete(c.inflight, s)
				c.mu.Unlock()
				close(ch)
			}
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false, func() {}
		}
		// The other login may have failed (a wrong password is never
		// put in): then this one verifies for itself.
		if c.has(s, now) {
			return true, func() {}
		}
		now = time.Now()
	}
}

// put remembers s for the cache's lifetime from now.
func (c *loginCache) put(s loginSum, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[s]; !ok {
		c.order = append(c.order, s)
	}
	c.entries[s] = now.Add(c.ttl)
	// Drop from the front what has expired, and the oldest beyond max.
	n := 0
	for n < len(c.order) {
		exp, ok := c.entries[c.order[n]]
		if ok && now.Before(exp) && len(c.order)-n <= c.max {
			break
		}
		if ok && (!now.Before(exp) || len(c.order)-n > c.max) {
			delete(c.entries, c.order[n])
		}
		n++
	}
	c.order = c.order[n:] // the array's front is freed when append next moves it
}
