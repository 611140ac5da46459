package cache

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	Addr     string // host:port
	Username string
	Password string
	DB       int
	// Prefix namespaces all keys AND the pub/sub channel, so several
	// Basalt installations (or tests) can share one Redis.
	Prefix   string
	PoolSize int // 0: go-redis's default (10 per CPU)
	TLS      bool
	// Logger receives reconnections and undecodable events; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Redis is the Cache used when Redis is configured; it shares entries,
// serials, counters and events with every process using the same Redis and
// Prefix.
type Redis struct {
	client  *redis.Client
	prefix  string
	channel string
	log     *slog.Logger
	raise   *redis.Script
	unlock  *redis.Script
	refresh *redis.Script
	leases  *redis.Script
	bus     *hub

	mu     sync.Mutex // guards the fields below: the Redis subscription, started on first Subscribe
	ps     *redis.PubSub
	fwd    chan struct{} // closed when forward returns
	closed bool
}

var _ Cache = (*Redis)(nil)

// raiseSerialLua sets KEYS[1] to ARGV[1] unless it already holds a larger
// number. The serials are compared as decimal strings (longer is larger,
// then lexically) because Lua numbers are doubles and would round serials
// above 2^53.
const raiseSerialLua = `
local cur = redis.call('GET', KEYS[1])
local new = ARGV[1]
if (not cur) or (#new > #cur) or (#new == #cur and new > cur) then
	redis.call('SET', KEYS[1], new)
	return 1
end
return 0
`

// unlockLua deletes the lock KEYS[1] only if it still holds the token
// ARGV[1]: a holder whose lock expired must not release its successor's.
const unlockLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`

// refreshLockLua gives the lock KEYS[1] a new lifetime of ARGV[2]
// milliseconds only if it still holds the token ARGV[1].
const refreshLockLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

// putLeasesLua sets the members ARGV[2], ARGV[4], ... of the hash KEYS[1]
// to the values after each, and has the hash live at least ARGV[1]
// milliseconds more: a hash whose holders all died goes away with their
// last lease, and no holder's shorter ttl cuts another's longer one.
const putLeasesLua = `
for i = 2, #ARGV, 2 do
	redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
`

// leaseHeader is the big-endian expiry (Unix milliseconds) before each
// lease's value: members of a hash cannot expire one by one, so readers
// skip, and delete, those past it. The expiry is the writer's clock; the
// nodes' clocks are taken to agree to well within a lease.
const leaseHeader = 8

// entryFormat is the first byte of every stored entry. Counters are stored
// as decimal text by INCRBY, so the byte also tells an entry from a counter
// when a caller mixes up keys; change it if the layout ever changes.
const entryFormat = 0

// entryHeader is the format byte and the big-endian serial before the value.
const entryHeader = 1 + 8

// NewRedis connects to Redis and pings it, so a wrong address or password
// fails at start rather than on first use.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	if opts.Addr == "" {
		return nil, errors.New("cache: connect to redis: no address configured")
	}
	o := &redis.Options{
		Addr:     opts.Addr,
		Username: opts.Username,
		Password: opts.Password,
		DB:       opts.DB,
		PoolSize: opts.PoolSize,
		// Named so that CLIENT LIST tells which connections are Basalt's
		// and of which installation.
		ClientName: clientName(opts.Prefix),
		// A command already retries (MaxRetries) on a new connection;
		// go-redis's default of five dials 100 ms apart for each of
		// those made every cache call take about 2 s while Redis is
		// down, and callers that go on without the cache (logins) wait
		// for several. One dial per try fails in milliseconds.
		DialerRetries: 1,
	}
	if opts.TLS {
		host, _, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("cache: connect to redis at %s: %w", opts.Addr, err)
		}
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Redis{
		client:  redis.NewClient(o),
		prefix:  opts.Prefix,
		channel: opts.Prefix + "events",
		log:     log.With("component", "cache", "redis", opts.Addr),
		raise:   redis.NewScript(raiseSerialLua),
		unlock:  redis.NewScript(unlockLua),
		refresh: redis.NewScript(refreshLockLua),
		leases:  redis.NewScript(putLeasesLua),
		bus:     newHub(subscriptionBuffer),
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.client.Close()
		return nil, fmt.Errorf("cache: connect to redis at %s: %w", opts.Addr, err)
	}
	return r, nil
}

// clientName is "basalt" plus the prefix with anything Redis refuses in a
// client name (spaces, newlines) replaced.
func clientName(prefix string) string {
	if prefix == "" {
		return "basalt"
	}
	return "basalt:" + strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, prefix)
}

func (r *Redis) key(key string) string      { return r.prefix + keyOf(key) }
func (r *Redis) scope(scope string) string  { return r.prefix + scopeOf(scope) }
func (r *Redis) lock(key string) string     { return r.prefix + lockOf(key) }
func (r *Redis) leaseSet(set string) string { return r.prefix + leaseSetOf(set) }

// fail wraps err with what was being done, and turns go-redis's closed
// client error into ErrClosed so callers see the same error from both
// implementations.
func fail(err error, format string, args ...any) error {
	if errors.Is(err, redis.ErrClosed) {
		err = ErrClosed
	}
	return fmt.Errorf("cache: "+format+": %w", append(args, err)...)
}

func (r *Redis) Get(ctx context.Context, key string) (Entry, bool, error) {
	b, err := r.client.Get(ctx, r.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fail(err, "get %q", key)
	}
	if len(b) < entryHeader || b[0] != entryFormat {
		return Entry{}, false, fmt.Errorf("cache: get %q: stored value is not an entry (a counter?)", key)
	}
	return Entry{Value: b[entryHeader:], Serial: binary.BigEndian.Uint64(b[1:entryHeader])}, true, nil
}

func (r *Redis) Set(ctx context.Context, key string, e Entry, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("cache: set %q: %w", key, err)
	}
	b := make([]byte, entryHeader+len(e.Value))
	b[0] = entryFormat
	binary.BigEndian.PutUint64(b[1:entryHeader], e.Serial)
	copy(b[entryHeader:], e.Value)
	if err := r.client.Set(ctx, r.key(key), b, ttl).Err(); err != nil {
		return fail(err, "set %q", key)
	}
	return nil
}

func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = r.key(k)
	}
	if err := r.client.Del(ctx, ks...).Err(); err != nil {
		return fail(err, "delete %d keys", len(keys))
	}
	return nil
}

func (r *Redis) Serial(ctx context.Context, scope string) (uint64, bool, error) {
	s, err := r.client.Get(ctx, r.scope(scope)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fail(err, "read serial of %q", scope)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("cache: read serial of %q: %w", scope, err)
	}
	return n, true, nil
}

func (r *Redis) RaiseSerial(ctx context.Context, scope string, serial uint64) error {
	err := r.raise.Run(ctx, r.client, []string{r.scope(scope)}, strconv.FormatUint(serial, 10)).Err()
	if err != nil {
		return fail(err, "raise serial of %q to %d", scope, serial)
	}
	return nil
}

// Incr creates the counter with its expiry (SET NX PX) and adds to it in one
// MULTI, so the window starts exactly once and concurrent callers on any
// node never both start it.
func (r *Redis) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, fmt.Errorf("cache: increment %q: %w", key, err)
	}
	k := r.key(key)
	var incr *redis.IntCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if ttl > 0 {
			p.SetNX(ctx, k, 0, ttl)
		}
		incr = p.IncrBy(ctx, k, delta)
		return nil
	})
	if err != nil {
		return 0, fail(err, "increment %q", key)
	}
	return incr.Val(), nil
}

func (r *Redis) Publish(ctx context.Context, ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("cache: publish %s event: %w", ev.Kind, err)
	}
	if err := r.client.Publish(ctx, r.channel, b).Err(); err != nil {
		return fail(err, "publish %s event", ev.Kind)
	}
	return nil
}

// Subscribe starts this process's one Redis subscription if it is not
// running yet, waiting for Redis to confirm it, and then registers a local
// subscription fed by it. While that connection is down (go-redis
// reconnects on its own) events are lost; every subscription gets a
// KindResync once it is back.
func (r *Redis) Subscribe(ctx context.Context) (*Subscription, error) {
	if err := r.listen(ctx); err != nil {
		return nil, err
	}
	s, err := r.bus.subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("cache: subscribe: %w", err)
	}
	return s, nil
}

// listen makes sure the Redis subscription is running. It is started on
// first use, so commands that never subscribe (the CLI) hold no pub/sub
// connection, and then kept until Close.
func (r *Redis) listen(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("cache: subscribe: %w", ErrClosed)
	}
	if r.ps != nil {
		return nil
	}
	ps := r.client.Subscribe(ctx, r.channel)
	// Events published before Redis confirms the subscription would be
	// missed, so wait for the confirmation before Subscribe returns.
	msg, err := ps.Receive(ctx)
	if err != nil {
		ps.Close()
		return fail(err, "subscribe to %s", r.channel)
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		ps.Close()
		return fmt.Errorf("cache: subscribe to %s: unexpected first reply %T", r.channel, msg)
	}
	// go-redis's channel pings the connection when it is quiet and
	// reconnects (and resubscribes) when it breaks. Its own buffer only
	// needs to absorb bursts: forward never blocks on subscribers.
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(subscriptionBuffer))
	r.ps = ps
	r.fwd = make(chan struct{})
	go r.forward(ch, r.fwd)
	return nil
}

// forward decodes what the Redis subscription receives and broadcasts it to
// the local subscriptions, until the PubSub is closed.
func (r *Redis) forward(ch <-chan any, done chan<- struct{}) {
	defer close(done)
	for msg := range ch {
		switch m := msg.(type) {
		case *redis.Subscription:
			// The first confirmation was consumed in listen, so this one
			// follows a reconnection: whatever was published while the
			// connection was down is lost, and every subscriber must
			// re-read its state.
			if m.Kind == "subscribe" {
				r.log.Warn("event subscription reconnected; asking subscribers to resync", "channel", m.Channel)
				r.bus.broadcast(Event{Kind: KindResync})
			}
		case *redis.Message:
			var ev Event
			if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil {
				r.log.Error("dropping undecodable event", "channel", m.Channel, "err", err)
				continue
			}
			r.bus.broadcast(ev)
		}
	}
}

// TryLock is SET NX PX: the lock and its expiry are set in one step, so a
// holder that dies at any point leaves a lock that expires.
func (r *Redis) TryLock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if err := checkLockTTL(ttl); err != nil {
		return "", false, fmt.Errorf("cache: lock %q: %w", key, err)
	}
	token, err := newLockToken()
	if err != nil {
		return "", false, fmt.Errorf("cache: lock %q: %w", key, err)
	}
	ok, err := r.client.SetNX(ctx, r.lock(key), token, ttl).Result()
	if err != nil {
		return "", false, fail(err, "lock %q", key)
	}
	if !ok {
		return "", false, nil
	}
	return token, true, nil
}

func (r *Redis) RefreshLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if err := checkLockTTL(ttl); err != nil {
		return false, fmt.Errorf("cache: refresh lock %q: %w", key, err)
	}
	n, err := r.refresh.Run(ctx, r.client, []string{r.lock(key)}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fail(err, "refresh lock %q", key)
	}
	return n == 1, nil
}

func (r *Redis) Unlock(ctx context.Context, key, token string) error {
	if err := r.unlock.Run(ctx, r.client, []string{r.lock(key)}, token).Err(); err != nil {
		return fail(err, "unlock %q", key)
	}
	return nil
}

func (r *Redis) Locked(ctx context.Context, key string) (bool, error) {
	n, err := r.client.Exists(ctx, r.lock(key)).Result()
	if err != nil {
		return false, fail(err, "look at lock %q", key)
	}
	return n == 1, nil
}

// PutLeases runs one script per set, all in one pipeline. The script is
// sent by its hash; a Redis that does not know it (restarted, flushed) is
// sent it once, and the pipeline again.
func (r *Redis) PutLeases(ctx context.Context, ttl time.Duration, leases ...Lease) error {
	if err := checkLockTTL(ttl); err != nil {
		return fmt.Errorf("cache: put %d leases: %w", len(leases), err)
	}
	if len(leases) == 0 {
		return nil
	}
	expires := make([]byte, leaseHeader)
	binary.BigEndian.PutUint64(expires, uint64(time.Now().Add(ttl).UnixMilli()))
	bySet := map[string][]any{}
	var order []string
	for _, l := range leases {
		args, ok := bySet[l.Set]
		if !ok {
			order = append(order, l.Set)
			args = []any{ttl.Milliseconds()}
		}
		bySet[l.Set] = append(args, l.Member, append(append(make([]byte, 0, leaseHeader+len(l.Value)), expires...), l.Value...))
	}
	run := func() error {
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, set := range order {
				r.leases.EvalSha(ctx, p, []string{r.leaseSet(set)}, bySet[set]...)
			}
			return nil
		})
		return err
	}
	err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err = r.leases.Load(ctx, r.client).Err(); err == nil {
			err = run()
		}
	}
	if err != nil {
		return fail(err, "put %d leases", len(leases))
	}
	return nil
}

func (r *Redis) DeleteLeases(ctx context.Context, set string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	if err := r.client.HDel(ctx, r.leaseSet(set), members...).Err(); err != nil {
		return fail(err, "delete leases of %q", set)
	}
	return nil
}

// Leases reads the whole hash and leaves out the members whose lease ran
// out, deleting them (a second round trip, only when there are some).
func (r *Redis) Leases(ctx context.Context, set string) (map[string][]byte, error) {
	all, err := r.client.HGetAll(ctx, r.leaseSet(set)).Result()
	if err != nil {
		return nil, fail(err, "read leases of %q", set)
	}
	now := uint64(time.Now().UnixMilli())
	out := make(map[string][]byte, len(all))
	var expired []string
	for member, v := range all {
		if len(v) < leaseHeader || binary.BigEndian.Uint64([]byte(v[:leaseHeader])) <= now {
			expired = append(expired, member)
			continue
		}
		out[member] = []byte(v[leaseHeader:])
	}
	if len(expired) > 0 {
		// A member renewed between the read and this delete is lost
		// until its holder's next renewal: that holder was late by most
		// of a lease already.
		if err := r.client.HDel(ctx, r.leaseSet(set), expired...).Err(); err != nil {
			r.log.Warn("delete expired leases", "set", set, "err", err)
		}
	}
	return out, nil
}

func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fail(err, "ping redis")
	}
	return nil
}

// Close ends every subscription, then the Redis subscription and the
// connection pool.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ps, fwd := r.ps, r.fwd
	r.mu.Unlock()

	var errs []error
	if ps != nil {
		if err := ps.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cache: close redis subscription: %w", err))
		}
		<-fwd
	}
	r.bus.close()
	if err := r.client.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cache: close redis client: %w", err))
	}
	return errors.Join(errs...)
}
