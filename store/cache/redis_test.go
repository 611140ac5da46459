package cache

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"basalt/internal/testsupport"
)

// Two NewRedis instances on one prefix stand for two Basalt nodes.
func TestRedisCrossProcess(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	ctx := testContext(t)
	a := newCache(t, "redis", addr, prefix)
	b := newCache(t, "redis", addr, prefix)

	onB := subscribe(t, ctx, b)
	onA := subscribe(t, ctx, a)
	for i := range 10 {
		publish(t, ctx, a, Event{UserID: 5, MailboxID: 2, Kind: "append", UID: uint32(i), ModSeq: 1<<60 + uint64(i)})
	}
	for _, s := range []*Subscription{onB, onA} {
		for i := range 10 {
			want := Event{UserID: 5, MailboxID: 2, Kind: "append", UID: uint32(i), ModSeq: 1<<60 + uint64(i)}
			if ev := recv(t, s); ev != want {
				t.Fatalf("event %d = %+v, want %+v", i, ev, want)
			}
		}
	}

	if err := a.Set(ctx, "user:5", Entry{Value: []byte("rec"), Serial: 3}, 0); err != nil {
		t.Fatalf("Set on a: %v", err)
	}
	if e, ok, err := b.Get(ctx, "user:5"); err != nil || !ok || string(e.Value) != "rec" || e.Serial != 3 {
		t.Fatalf("Get on b = %+v, %v, %v; want the entry set on a", e, ok, err)
	}
	// Nodes announce serials out of order; neither moves it backwards.
	if err := a.RaiseSerial(ctx, "user:5", 1<<53+1); err != nil {
		t.Fatalf("RaiseSerial on a: %v", err)
	}
	if err := b.RaiseSerial(ctx, "user:5", 1<<53); err != nil {
		t.Fatalf("RaiseSerial on b: %v", err)
	}
	if s, ok, err := b.Serial(ctx, "user:5"); err != nil || !ok || s != 1<<53+1 {
		t.Fatalf("Serial on b = %d, %v, %v; want %d", s, ok, err, uint64(1<<53+1))
	}
	if _, err := a.Incr(ctx, "fails", 2, time.Hour); err != nil {
		t.Fatalf("Incr on a: %v", err)
	}
	if n, err := b.Incr(ctx, "fails", 1, time.Hour); err != nil || n != 3 {
		t.Fatalf("Incr on b = %d, %v; want 3", n, err)
	}
}

func TestRedisPrefixIsolation(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	_, other := testsupport.Redis(t)
	ctx := testContext(t)
	mine := newCache(t, "redis", addr, prefix)
	theirs := newCache(t, "redis", addr, other)
	sub := subscribe(t, ctx, mine)

	if err := theirs.Set(ctx, "k", Entry{Value: []byte("theirs"), Serial: 1}, 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := theirs.RaiseSerial(ctx, "user:1", 9); err != nil {
		t.Fatalf("RaiseSerial: %v", err)
	}
	if _, err := theirs.Incr(ctx, "n", 5, 0); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	publish(t, ctx, theirs, Event{UserID: 1, Kind: "append", UID: 666})

	if _, ok, err := mine.Get(ctx, "k"); err != nil || ok {
		t.Errorf("Get sees the other prefix's key (found %v, err %v)", ok, err)
	}
	if _, ok, err := mine.Serial(ctx, "user:1"); err != nil || ok {
		t.Errorf("Serial sees the other prefix's serial (known %v, err %v)", ok, err)
	}
	if n, err := mine.Incr(ctx, "n", 1, 0); err != nil || n != 1 {
		t.Errorf("Incr = %d, %v; want 1, a counter of its own", n, err)
	}
	// Redis delivers in order on one connection: had the other prefix's
	// event reached this subscriber, it would arrive before this one.
	marker := Event{UserID: 1, Kind: "append", UID: 1}
	publish(t, ctx, mine, marker)
	if ev := recv(t, sub); ev != marker {
		t.Fatalf("first event = %+v, want own marker %+v", ev, marker)
	}
}

// The Redis subscription must survive its connection being killed: the
// subscribers are told to resync (events may have been lost) and events
// published afterwards arrive.
func TestRedisSubscriptionSurvivesReconnect(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	ctx := testContext(t)
	c := newCache(t, "redis", addr, prefix)
	sub := subscribe(t, ctx, c)
	before := Event{UserID: 1, Kind: "append", UID: 1}
	publish(t, ctx, c, before)
	if ev := recv(t, sub); ev != before {
		t.Fatalf("got %+v, want %+v", ev, before)
	}

	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	if n := killPubSub(t, ctx, admin, clientName(prefix)); n == 0 {
		t.Fatal("found no pub/sub connection of this cache to kill")
	}

	if ev := recv(t, sub); ev.Kind != KindResync {
		t.Fatalf("after the connection was killed got %+v, want a resync", ev)
	}
	after := Event{UserID: 1, Kind: "append", UID: 2}
	publish(t, ctx, c, after)
	if ev := recv(t, sub); ev != after {
		t.Fatalf("after reconnecting got %+v, want %+v", ev, after)
	}
	// A subscription made after the reconnection works too.
	late := subscribe(t, ctx, c)
	publish(t, ctx, c, before)
	for _, s := range []*Subscription{sub, late} {
		if ev := recv(t, s); ev != before {
			t.Fatalf("got %+v, want %+v", ev, before)
		}
	}
}

// killPubSub kills the pub/sub connections named name (CLIENT KILL TYPE
// pubsub, narrowed to this test's connections so that tests running in
// parallel against the same Redis are left alone) and returns how many.
func killPubSub(t *testing.T, ctx context.Context, admin *redis.Client, name string) int {
	t.Helper()
	list, err := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	killed := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := make(map[string]string)
		for _, f := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] != name {
			continue
		}
		n, err := admin.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Int()
		if err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", fields["id"], err)
		}
		killed += n
	}
	return killed
}

func TestNewRedisUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	r, err := NewRedis(ctx, RedisOptions{Addr: addr})
	if err == nil {
		r.Close()
		t.Fatal("NewRedis to a closed port: no error")
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connect to redis") {
		t.Fatalf("error %q does not say what failed and where", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("NewRedis took %v to fail", d)
	}

	if _, err := NewRedis(ctx, RedisOptions{}); err == nil {
		t.Fatal("NewRedis without an address: no error")
	}
}

func TestClientName(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"", "basalt"},
		{"prod:", "basalt:prod:"},
		{"a b\nc", "basalt:a_b_c"},
	}
	for _, tt := range tests {
		if got := clientName(tt.prefix); got != tt.want {
			t.Errorf("clientName(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}
