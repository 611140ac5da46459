package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"basalt/store/cache"
)

// Throttle limits password guessing. It counts failed logins in the
// shared cache, so every node sees the same counts, in four scopes:
//
//   - an account from one network (/24; IPv6 /48): the guesses against
//     one account from one place, however many addresses that place has;
//   - an account from everywhere: an attacker spread over many networks
//     (IPv6 makes that cheap) is still bounded per account;
//   - one address (IPv6: its /64) and one network, across accounts: a
//     spray of one guess at each of many accounts.
//
// A scope gets Limit attempts in a row; then it is banned for BanTime,
// after which it gets one more attempt and a ban twice as long, and so on
// up to MaxBan. A scope's count lasts Window from its first failure (a
// fixed window), and the doubling with it. So a flood of guesses gets
// Limit tries and then a trickle, while a user who mistyped waits a
// minute, not a day.
//
// The address, network and account-wide scopes hit people other than the
// guesser: everyone behind an office or carrier NAT, or the account's
// owner. They do not apply to an account from a network it has logged in
// from within TrustFor: a user who logs in from the same network as an
// attacker is held only by its own failures. A user new to that network
// waits out at most MaxBan.
//
// Begin counts an attempt before its password is checked, and Succeeded
// gives the count back: parallel attempts cannot all slip in under the
// limit while their hashes are being computed (the session service calls
// Begin in the hash slot, after Check has turned away what is banned
// without counting it). The one attempt allowed after a ban is a lock
// (cache.TryLock) held for the next ban, so of parallel attempts exactly
// one gets it.
//
// When the shared cache fails (Redis down), counting goes on in Local, an
// in-process cache, so that logins go on; a warning says so, once a minute
// at most, and the shared cache is tried again after a short pause.
type Throttle struct {
	Cache cache.Cache
	Local cache.Cache
	Log   *slog.Logger

	// Failures allowed in a row before bans start; 0 turns a scope off.
	// The address, network and account-wide limits must be larger than
	// the logins that can be in the hash slots at once (each counted
	// until it is decided) across the nodes.
	PerAccount    int64 // an account from one network
	PerAccountAll int64 // an account from all networks
	PerIP         int64 // an address (IPv6 /64), across accounts
	PerNet        int64 // a /24 (IPv6 /48), across accounts
	Window        time.Duration
	BanTime       time.Duration
	MaxBan        time.Duration
	TrustFor      time.Duration

	fb     fallback // over Cache and Local, set up at the first use
	fbOnce sync.Once
}

// scope is one count an attempt is checked against.
type scope struct {
	key   string
	limit int64
}

// heldBan is a ban an attempt took (the one try after a ban).
type heldBan struct {
	key, token string
}

// Attempt is a login attempt being checked: Succeeded gives it back.
type Attempt struct {
	t      *Throttle
	c      cache.Cache // where it was counted
	keys   []string
	bans   []heldBan
	trust  string // the trust mark a success sets, "" for none
	local  bool
	closed bool
}

// networks returns the address (IPv4, or an IPv6 /64) and network (/24,
// /48) of ip as strings.
func networks(ip netip.Addr) (host, network string) {
	ip = ip.Unmap()
	hostBits, netBits := 32, 24
	if ip.Is6() {
		hostBits, netBits = 64, 48
	}
	h, _ := ip.Prefix(hostBits)
	n, _ := ip.Prefix(netBits)
	return h.String(), n.String()
}

// banFor is the ban after the k-th attempt past the limit (k from 0):
// BanTime doubled k times, at most MaxBan.
func (t *Throttle) banFor(k int64) time.Duration {
	d := t.BanTime
	for ; k > 0 && d < t.MaxBan; k-- {
		d *= 2
	}
	return min(d, t.MaxBan)
}

// Begin counts an attempt at account (a stable name of the account: its
// id when it exists, else the login as given, lowered) from ip, and
// returns ErrThrottled when a scope it falls in is banned.
func (t *Throttle) Begin(ctx context.Context, account string, ip netip.Addr) (*Attempt, error) {
	var a *Attempt
	err := t.counts().do(ctx, cacheFailed, func(c cache.Cache, local bool) error {
		var err error
		a, err = t.begin(ctx, c, account, ip)
		if a != nil {
			a.local = local
		}
		return err
	})
	return a, err
}

// counts is where the throttle counts: Cache, or Local while Cache fails.
func (t *Throttle) counts() *fallback {
	t.fbOnce.Do(func() {
		t.fb = fallback{shared: t.Cache, local: t.Local, log: t.Log, what: "login throttle"}
	})
	return &t.fb
}

// cacheFailed tells the cache's failures from the throttle's refusal.
func cacheFailed(err error) bool { return !errors.Is(err, ErrThrottled) }

// scopes returns the scopes an attempt at account from ip falls in, and
// the key of the trust mark a success there sets ("" for none).
func (t *Throttle) scopes(ctx context.Context, c cache.Cache, account string, ip netip.Addr) ([]scope, string, error) {
	host, network := networks(ip)
	scopes := []scope{{key: "an:" + account + "|" + network, limit: t.PerAccount}}
	trust := ""
	trusted := false
	if t.TrustFor > 0 {
		trust = "authok:" + account + "|" + network
		_, ok, err := c.Get(ctx, trust)
		if err != nil {
			return nil, "", fmt.Errorf("login throttle: %w", err)
		}
		trusted = ok
	}
	if !trusted {
		scopes = append(scopes,
			scope{key: "a:" + account, limit: t.PerAccountAll},
			scope{key: "ip:" + host, limit: t.PerIP},
			scope{key: "net:" + network, limit: t.PerNet})
	}
	return scopes, trust, nil
}

// Check reports ErrThrottled when an attempt at account from ip would be
// refused now, counting nothing and taking no ban: a refused client is
// turned away before it waits for anything. Begin decides for good.
func (t *Throttle) Check(ctx context.Context, account string, ip netip.Addr) error {
	return t.counts().do(ctx, cacheFailed, func(c cache.Cache, _ bool) error {
		return t.check(ctx, c, account, ip)
	})
}

func (t *Throttle) check(ctx context.Context, c cache.Cache, account string, ip netip.Addr) error {
	scopes, _, err := t.scopes(ctx, c, account, ip)
	if err != nil {
		return err
	}
	for _, s := range scopes {
		if s.limit <= 0 {
			continue
		}
		n, err := c.Incr(ctx, "authfail:"+s.key, 0, t.Window)
		if err != nil {
			return fmt.Errorf("login throttle: %w", err)
		}
		if n < s.limit {
			continue
		}
		banned, err := c.Locked(ctx, "authban:"+s.key)
		if err != nil {
			return fmt.Errorf("login throttle: %w", err)
		}
		if banned {
			return ErrThrottled
		}
	}
	return nil
}

func (t *Throttle) begin(ctx context.Context, c cache.Cache, account string, ip netip.Addr) (*Attempt, error) {
	scopes, trust, err := t.scopes(ctx, c, account, ip)
	if err != nil {
		return nil, err
	}
	a := &Attempt{t: t, c: c, trust: trust}
	for _, s := range scopes {
		if s.limit <= 0 {
			continue
		}
		key := "authfail:" + s.key
		n, err := c.Incr(ctx, key, 1, t.Window)
		if err != nil {
			a.undo(ctx)
			return nil, fmt.Errorf("login throttle: %w", err)
		}
		a.keys = append(a.keys, key)
		if n < s.limit {
			continue
		}
		ban := "authban:" + s.key
		token, ok, err := c.TryLock(ctx, ban, t.banFor(n-s.limit))
		if err != nil {
			a.undo(ctx)
			return nil, fmt.Errorf("login throttle: %w", err)
		}
		if !ok {
			// A refused attempt is no guess: it neither counts nor
			// lengthens the ban, and the bans this attempt took in
			// other scopes go back.
			a.undo(ctx)
			return nil, ErrThrottled
		}
		a.bans = append(a.bans, heldBan{key: ban, token: token})
	}
	return a, nil
}

// undo takes back what a refused attempt counted and the bans it took.
func (a *Attempt) undo(ctx context.Context) {
	for _, k := range a.keys {
		a.c.Incr(ctx, k, -1, a.t.Window)
	}
	for _, b := range a.bans {
		a.c.Unlock(ctx, b.key, b.token)
	}
	a.keys, a.bans = nil, nil
}

// Abandon gives back the count and bans of an attempt that was never
// decided (the store failed before the password was judged): it was no
// guess, and no success either, so it marks no network trusted.
func (a *Attempt) Abandon(ctx context.Context) {
	if a == nil || a.closed {
		return
	}
	a.closed = true
	a.undo(ctx)
}

// Succeeded gives back the count of an attempt that succeeded and the
// bans it took (it was no guess, and a ban it took came of attempts
// still undecided when it began), and marks the network trusted for the
// account.
func (a *Attempt) Succeeded(ctx context.Context) error {
	if a == nil || a.closed {
		return nil
	}
	a.closed = true
	var errs []error
	for _, k := range a.keys {
		if _, err := a.c.Incr(ctx, k, -1, a.t.Window); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range a.bans {
		if err := a.c.Unlock(ctx, b.key, b.token); err != nil {
			errs = append(errs, err)
		}
	}
	if a.trust != "" {
		if err := a.c.Set(ctx, a.trust, cache.Entry{}, a.t.TrustFor); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("login throttle: %w", err)
	}
	return nil
}

// Trust marks ip's network trusted for account, as Succeeded does, for a
// login decided without an Attempt (one the verified-login cache admits,
// which is no guess and is not counted).
func (t *Throttle) Trust(ctx context.Context, account string, ip netip.Addr) error {
	if t.TrustFor <= 0 {
		return nil
	}
	_, network := networks(ip)
	key := "authok:" + account + "|" + network
	return t.counts().do(ctx, func(error) bool { return true }, func(c cache.Cache, _ bool) error {
		return c.Set(ctx, key, cache.Entry{}, t.TrustFor)
	})
}

// Local reports whether the attempt was counted on this node alone (the
// shared cache had failed).
func (a *Attempt) Local() bool { return a != nil && a.local }

// accountKey is the throttle's name for an account: its id when the login
// names one, so that all its login names count together, else the login
// as typed, lowered.
func accountKey(userID int64, login string) string {
	if userID > 0 {
		return fmt.Sprintf("u%d", userID)
	}
	l := strings.ToLower(strings.TrimSpace(login))
	if len(l) > 128 {
		// A guesser picks the login: keep the key short whatever it sends.
		sum := sha256.Sum256([]byte(l))
		l = hex.EncodeToString(sum[:])
	}
	return "l:" + l
}

// ParseClientIP reads a client address as front ends have it: an IP
// address, or host:port as net.Conn.RemoteAddr().String() gives it.
func ParseClientIP(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client address %q: %w", s, err)
	}
	return a.Unmap(), nil
}
