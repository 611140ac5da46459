package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"basalt/store"
	"basalt/store/cache"
)

// The live protocol connections. A user's state is checked at login, but
// an IMAP client stays logged in for days (IDLE), so a suspension, a lock,
// a protocol turned off, a new password, a rename or a deletion must also
// reach the connections already open, and an administrator must be able
// to see and end them. Each protocol connection registers here once
// logged in (Front.Open) with a hook that ends it the protocol's way; the
// registry ends it when the store announces a change of its user
// (store.KindUser) that no longer allows it, or when it is revoked
// (Service.RevokeProtocol).
//
// Both reach every node: the store announces its changes on the cache's
// bus, and a revoke is published there too (cache.KindRevoke), so with
// Redis a node ends its own connections whichever node made the change.
// The registry itself is each node's own: it lives in memory, as the
// connections do. So that any node can list them all, each node also
// lists its connections in the shared cache (a lease set per user,
// cache.PutLeases): once at login, deleted at the end, and renewed in one
// batch every third of Config.ConnLease. A node that dies without
// deleting them loses them when the lease runs out.

// ProtocolSession is a live, logged-in protocol connection.
type ProtocolSession struct {
	// ID names the connection to RevokeProtocol: the protocol, a dash
	// and 16 hex digits (web session ids are 32 hex digits).
	ID       string
	UserID   int64
	Protocol store.Protocol
	Remote   string    // the client's address (host:port)
	Started  time.Time // when it logged in
	Node     string    // the node it is open on (Service's node name)
}

// Conn is a protocol connection's place in the registry. The protocol
// closes it when the connection ends.
type Conn struct {
	ProtocolSession
	r       *conns
	epoch   int64  // the user's AuthEpoch at login
	address string // the user's address at login
	end     func(reason string)
	ending  sync.Once
	// unlisting deletes the connection's listing in the shared cache,
	// once.
	unlisting sync.Once
}

// Close takes the connection out of the registry and out of the shared
// cache's listing; it is safe to call more than once and on a nil Conn.
func (c *Conn) Close() {
	if c != nil {
		c.r.remove(c)
		c.unlisting.Do(func() { c.r.unlist(c) })
	}
}

// stop has the connection ended by its protocol, once. The hook runs on
// a goroutine of its own: a protocol lets the store write in progress
// finish first (an IMAP APPEND, an SMTP DATA), which must not hold up the
// registry; so does the deletion of its listing, which must not hold up
// the bus.
func (c *Conn) stop(reason string) {
	c.r.remove(c)
	c.ending.Do(func() {
		go c.end(reason)
		go c.unlisting.Do(func() { c.r.unlist(c) })
	})
}

// connListing is a connection's value in its user's lease set in the
// shared cache (connSet); the keys are short, as one is written per
// connection at each renewal.
type connListing struct {
	Protocol store.Protocol `json:"p"`
	Remote   string         `json:"r"`
	Started  int64          `json:"s"` // Unix milliseconds
	Node     string         `json:"n"`
}

// connSet names userID's lease set of connections in the shared cache.
func connSet(userID int64) string { return "conns:" + strconv.FormatInt(userID, 10) }

func (c *Conn) lease() cache.Lease {
	v, _ := json.Marshal(connListing{Protocol: c.Protocol, Remote: c.Remote, Started: c.Started.UnixMilli(), Node: c.Node})
	return cache.Lease{Set: connSet(c.UserID), Member: c.ID, Value: v}
}

// listTimeout bounds a login's wait for its listing and a connection's
// end's for its deletion: a cache that does not answer must not hold up
// the protocols.
const listTimeout = 5 * time.Second

// refusal says why u, as it is now, may no longer use c ("" if it may).
func (c *Conn) refusal(u store.User, now time.Time) string {
	switch {
	case u.Suspended():
		return "account suspended"
	case u.Locked(now):
		return "account locked"
	case u.DeniedProtocols.Has(c.Protocol):
		return "access over " + string(c.Protocol) + " turned off"
	case u.AuthEpoch != c.epoch:
		return "password changed"
	case u.Address != c.address: // the user's rename or its domain's
		return "account renamed"
	}
	return ""
}

// changeMemory is how long the registry remembers that a user changed:
// a login whose state was read before a change but that registers only
// after its announcement is checked again (see Front.Open).
const changeMemory = time.Minute

// conns is the registry of one Service.
type conns struct {
	s *Service
	// bg counts the goroutines the registry starts, but the pump, which
	// ends with the cache: Service.Close waits for them, once it has
	// cancelled ctx, which their store reads wait on.
	bg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	byID   map[string]*Conn
	byUser map[int64]map[*Conn]struct{}
	// changed holds when a change of each user was last heard, for
	// changeMemory; it is pruned when it grows past pruneAt.
	changed   map[int64]time.Time
	pruneAt   int
	listening bool      // the bus subscription is being read
	since     time.Time // when it started
	resyncing bool      // a resync's recheck of every user runs
	// pending holds the users whose connections wait to be checked again
	// after a change, and checking says a goroutine works through them
	// (queue): the pump only notes them, so that a store slow to answer
	// holds up neither a revoke nor the bus.
	pending  map[int64]struct{}
	checking bool
	// renewing says the renewal of this node's listings runs.
	renewing bool
	// beforeRecheck, when set (tests), runs before a user is read again.
	beforeRecheck atomic.Pointer[func(userID int64)]
}

func newConns(s *Service) *conns {
	ctx, cancel := context.WithCancel(context.Background())
	return &conns{s: s, ctx: ctx, cancel: cancel, byID: map[string]*Conn{}, byUser: map[int64]map[*Conn]struct{}{}, changed: map[int64]time.Time{}, pruneAt: minPruneAt,
		pending: map[int64]struct{}{}}
}

// minPruneAt is the size of conns.changed below which it is never pruned.
const minPruneAt = 1024

// listen subscribes to the bus unless it is being read already. It is
// not tied to a caller's context: it serves every connection of the
// Service, and ends when the cache is closed. It starts with the first
// connection, so that a node that serves no protocol holds no
// subscription.
func (r *conns) listen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listening {
		return nil
	}
	sub, err := r.s.cache.Subscribe(context.Background())
	if err != nil {
		return fmt.Errorf("follow user changes: %w", err)
	}
	r.listening, r.since = true, r.s.now()
	go r.pump(sub)
	return nil
}

func (r *conns) pump(sub *cache.Subscription) {
	for ev := range sub.C() {
		switch ev.Kind {
		case cache.KindRevoke:
			r.revokeHere(ev.UserID, ev.Session)
		case store.KindUser:
			r.heard(ev.UserID)
			r.queue(ev.UserID)
		case cache.KindResync:
			// Changes may have been missed: every user with a
			// connection here is read again, off the pump, one at a
			// time.
			r.mu.Lock()
			if !r.resyncing && r.goBG(r.recheckAll) {
				r.resyncing = true
			}
			r.mu.Unlock()
		}
	}
	// The cache was closed: nothing more will be heard; a later Open
	// subscribes again (and fails while the cache stays closed).
	r.mu.Lock()
	r.listening = false
	r.mu.Unlock()
}

// heard notes that userID changed now, forgetting older notes.
func (r *conns) heard(userID int64) {
	now := r.s.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed[userID] = now
	if len(r.changed) > r.pruneAt {
		// A burst of changes (a domain's users renamed or given a
		// plan: one event each) keeps every note within changeMemory:
		// pruning again only once the map has doubled keeps each
		// event's share of the work constant, where pruning at each
		// one past a fixed size made a burst of n cost n² under the
		// lock every login takes.
		for id, t := range r.changed {
			if now.Sub(t) > changeMemory {
				delete(r.changed, id)
			}
		}
		r.pruneAt = max(minPruneAt, 2*len(r.changed))
	}
}

// queue has userID's connections checked again, off the pump: by the
// one goroutine that works through the users queued, each once however
// many of its changes came in meanwhile. A user without a connection here
// is not queued (a login registering meanwhile checks itself, Front.Open).
func (r *conns) queue(userID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byUser[userID]) == 0 {
		return
	}
	r.pending[userID] = struct{}{}
	if !r.checking && r.goBG(r.checkPending) {
		r.checking = true
	}
}

func (r *conns) checkPending() {
	for {
		r.mu.Lock()
		var id int64
		found := false
		for id = range r.pending {
			found = true
			break
		}
		if !found {
			r.checking = false
			r.mu.Unlock()
			return
		}
		delete(r.pending, id)
		r.mu.Unlock()
		r.recheck(id)
	}
}

// users returns the connections of userID.
func (r *conns) users(userID int64) []*Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cs []*Conn
	for c := range r.byUser[userID] {
		cs = append(cs, c)
	}
	return cs
}

// goBG runs f in the background unless the Service is closed; r.mu is
// held, as Close holds it to close done, so that no goroutine starts
// once Close waits for them.
func (r *conns) goBG(f func()) bool {
	select {
	case <-r.s.done:
		return false
	default:
	}
	r.bg.Go(f)
	return true
}

// recheck reads userID again and ends its connections that the user as
// it is now does not allow. A store that does not answer ends nothing:
// an outage must not log everyone out.
func (r *conns) recheck(userID int64) {
	if f := r.beforeRecheck.Load(); f != nil {
		(*f)(userID)
	}
	cs := r.users(userID)
	if len(cs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	u, err := r.s.store.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		for _, c := range cs {
			c.stop("account deleted")
		}
		return
	}
	if err != nil {
		r.s.log.Warn("check protocol sessions", "user", userID, "err", err)
		return
	}
	now := r.s.now()
	for _, c := range cs {
		if why := c.refusal(u, now); why != "" {
			c.stop(why)
		}
	}
}

func (r *conns) recheckAll() {
	r.mu.Lock()
	ids := make([]int64, 0, len(r.byUser))
	for id := range r.byUser {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.recheck(id)
	}
	r.mu.Lock()
	r.resyncing = false
	r.mu.Unlock()
}

// revokeHere ends userID's connection id on this node, or all of them
// when id is "", and returns how many it ended.
func (r *conns) revokeHere(userID int64, id string) int {
	var cs []*Conn
	if id == "" {
		cs = r.users(userID)
	} else {
		r.mu.Lock()
		if c := r.byID[id]; c != nil && c.UserID == userID {
			cs = append(cs, c)
		}
		r.mu.Unlock()
	}
	for _, c := range cs {
		c.stop("session revoked")
	}
	return len(cs)
}

func (r *conns) add(c *Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[c.ID] = c
	m := r.byUser[c.UserID]
	if m == nil {
		m = map[*Conn]struct{}{}
		r.byUser[c.UserID] = m
	}
	m[c] = struct{}{}
}

// registered reports whether c is still in the registry.
func (r *conns) registered(c *Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[c.ID] == c
}

// list puts c in the shared cache's listing. A connection that ended
// while it was being written may have been deleted before: its listing
// is deleted again. A cache that fails leaves the connection unlisted
// until the next renewal.
func (r *conns) list(c *Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	if err := r.s.cache.PutLeases(ctx, r.s.cfg.ConnLease, c.lease()); err != nil {
		r.s.log.Warn("list protocol session", "session", c.ID, "err", err)
		return
	}
	if !r.registered(c) {
		r.unlist(c)
	}
}

// unlist deletes c's listing in the shared cache.
func (r *conns) unlist(c *Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	if err := r.s.cache.DeleteLeases(ctx, connSet(c.UserID), c.ID); err != nil {
		r.s.log.Warn("unlist protocol session", "session", c.ID, "err", err)
	}
}

// renew starts the renewal of this node's listings unless it runs or
// the Service is closed. It starts with the first connection, so that a
// node serving no protocol does not run it.
func (r *conns) renew() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.renewing {
		return
	}
	r.renewing = r.goBG(func() { r.renewEvery(r.s.cfg.ConnLease / 3) })
}

func (r *conns) renewEvery(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.s.done:
			return
		case <-t.C:
			r.renewAll(every)
		}
	}
}

// renewAll renews the listing of every connection of this node in one
// batch. As with list, a connection that ended during the write is
// deleted again.
func (r *conns) renewAll(within time.Duration) {
	r.mu.Lock()
	cs := make([]*Conn, 0, len(r.byID))
	leases := make([]cache.Lease, 0, len(r.byID))
	for _, c := range r.byID {
		cs = append(cs, c)
		leases = append(leases, c.lease())
	}
	r.mu.Unlock()
	if len(cs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, within)
	defer cancel()
	if err := r.s.cache.PutLeases(ctx, r.s.cfg.ConnLease, leases...); err != nil {
		r.s.log.Warn("renew the listing of protocol sessions", "sessions", len(cs), "err", err)
		return
	}
	for _, c := range cs {
		if !r.registered(c) {
			r.unlist(c)
		}
	}
}

// elsewhere returns userID's connections listed in the shared cache by
// other nodes (this node's own are in the registry, which is the truth
// about them).
func (r *conns) elsewhere(ctx context.Context, userID int64) ([]ProtocolSession, error) {
	m, err := r.s.cache.Leases(ctx, connSet(userID))
	if err != nil {
		return nil, fmt.Errorf("list protocol sessions of user %d: %w", userID, err)
	}
	var out []ProtocolSession
	for id, v := range m {
		var l connListing
		if err := json.Unmarshal(v, &l); err != nil {
			r.s.log.Warn("undecodable protocol session listing", "user", userID, "session", id, "err", err)
			continue
		}
		if l.Node == r.s.node {
			continue
		}
		out = append(out, ProtocolSession{ID: id, UserID: userID, Protocol: l.Protocol, Remote: l.Remote, Started: time.UnixMilli(l.Started), Node: l.Node})
	}
	return out, nil
}

func (r *conns) remove(c *Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[c.ID] != c {
		return
	}
	delete(r.byID, c.ID)
	m := r.byUser[c.UserID]
	delete(m, c)
	if len(m) == 0 {
		delete(r.byUser, c.UserID)
	}
}

// changedSince reports whether a change of userID may have been
// announced at or after t without the connection registered to hear it:
// one was heard, or nothing was listening yet (or not since long enough
// to know).
func (r *conns) changedSince(userID int64, t time.Time) bool {
	if t.IsZero() || r.s.now().Sub(t) >= changeMemory {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.listening || !r.since.Before(t) {
		return true
	}
	at, ok := r.changed[userID]
	return ok && !at.Before(t)
}

// Open registers a connection of f's protocol that auth logged in from
// remote; end is how the protocol ends it (IMAP: BYE, RFC 9051 7.1.5;
// POP3: close; SMTP: 421, RFC 5321 3.8), given why in a few words. end
// is called at most once, on a goroutine of its own, and possibly just
// as the connection ends by itself. The connection closes the returned
// Conn when it ends.
func (f *Front) Open(auth *Auth, remote string, end func(reason string)) *Conn {
	r := f.s.conns
	var b [8]byte
	rand.Read(b[:])
	c := &Conn{
		ProtocolSession: ProtocolSession{ID: string(f.proto) + "-" + hex.EncodeToString(b[:]), UserID: auth.User.ID,
			Protocol: f.proto, Remote: remote, Started: f.s.now(), Node: f.s.node},
		r: r, epoch: auth.User.AuthEpoch, address: auth.User.Address, end: end,
	}
	if err := r.listen(); err != nil {
		// The connection is still ended by a revoke from this node;
		// changes are seen once the bus is back (the next Open).
		f.s.log.Warn("protocol session", "err", err)
	}
	r.add(c)
	r.list(c)
	r.renew()
	// The user was read at login, maybe before the subscription above was
	// live, or before a change whose announcement came in meanwhile: such
	// a login is read again now that it will hear the next change.
	if r.changedSince(auth.User.ID, auth.checked) {
		r.mu.Lock()
		r.goBG(func() { r.recheck(auth.User.ID) })
		r.mu.Unlock()
	}
	return c
}

// ProtocolSessions lists userID's live protocol connections on every
// node sharing the cache, newest first. When the cache cannot be read it
// lists this node's alone, with the error.
func (s *Service) ProtocolSessions(ctx context.Context, userID int64) ([]ProtocolSession, error) {
	cs := s.conns.users(userID)
	out := make([]ProtocolSession, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.ProtocolSession)
	}
	others, err := s.conns.elsewhere(ctx, userID)
	out = append(out, others...)
	slices.SortFunc(out, func(a, b ProtocolSession) int {
		return cmp.Or(b.Started.Compare(a.Started), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

// RevokeProtocol ends userID's protocol connection id, or all of them
// when id is "": at once on this node, and on the others through the
// bus. It returns how many it ended or asked to end: those open here, and
// those listed by other nodes. A connection id that is neither is not
// announced (0, nil).
func (s *Service) RevokeProtocol(ctx context.Context, userID int64, id string) (int, error) {
	n := s.conns.revokeHere(userID, id)
	others, err := s.conns.elsewhere(ctx, userID)
	switch {
	case err != nil && id != "" && n == 0:
		return 0, fmt.Errorf("revoke protocol session %s: %w", id, err)
	case err != nil:
		// Revoking all of them does not need the count.
		s.log.Warn("revoke protocol sessions", "user", userID, "err", err)
	case id == "":
		n += len(others)
	case n == 0:
		if !slices.ContainsFunc(others, func(p ProtocolSession) bool { return p.ID == id }) {
			return 0, nil
		}
		n = 1
	}
	if err := s.cache.Publish(context.WithoutCancel(ctx), cache.Event{UserID: userID, Kind: cache.KindRevoke, Session: id}); err != nil {
		return n, fmt.Errorf("revoke protocol sessions of user %d: %w", userID, err)
	}
	return n, nil
}

// IsProtocolSessionID reports whether id has the form of a protocol
// session's id (ProtocolSession.ID).
func IsProtocolSessionID(id string) bool {
	proto, h, ok := strings.Cut(id, "-")
	if !ok || len(h) != 16 {
		return false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return false
	}
	switch store.Protocol(proto) {
	case store.ProtoIMAP, store.ProtoPOP3, store.ProtoSMTP:
		return true
	}
	return false
}
