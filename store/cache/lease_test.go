package cache

import (
	"errors"
	"maps"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// TestLeases: members put in a set are listed until deleted or until their
// lease runs out; a renewal keeps them; sets and members are apart from
// other keys and from each other.
func TestLeases(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		want := func(set string, w map[string]string) {
			t.Helper()
			got, err := c.Leases(ctx, set)
			if err != nil {
				t.Fatalf("Leases(%q): %v", set, err)
			}
			g := map[string]string{}
			for k, v := range got {
				g[k] = string(v)
			}
			if !maps.Equal(g, w) {
				t.Fatalf("Leases(%q) = %v, want %v", set, g, w)
			}
		}
		want("conns:1", map[string]string{})
		if err := c.PutLeases(ctx, time.Minute); err != nil {
			t.Fatalf("PutLeases of nothing: %v", err)
		}
		// One call, two sets: the batch a node renews.
		if err := c.PutLeases(ctx, time.Minute,
			Lease{Set: "conns:1", Member: "a", Value: []byte("imap")},
			Lease{Set: "conns:1", Member: "b", Value: []byte("pop3")},
			Lease{Set: "conns:2", Member: "a", Value: []byte{0, 1, 255}},
		); err != nil {
			t.Fatalf("PutLeases: %v", err)
		}
		want("conns:1", map[string]string{"a": "imap", "b": "pop3"})
		want("conns:2", map[string]string{"a": "\x00\x01\xff"})
		// Lease sets do not meet entries of the same name.
		if _, ok, err := c.Get(ctx, "conns:1"); err != nil || ok {
			t.Fatalf("Get of a lease set's name = %v, %v; want missing", ok, err)
		}
		if err := c.Set(ctx, "conns:2", Entry{Value: []byte("x")}, 0); err != nil {
			t.Fatal(err)
		}
		want("conns:2", map[string]string{"a": "\x00\x01\xff"})

		if err := c.DeleteLeases(ctx, "conns:1", "a", "missing"); err != nil {
			t.Fatalf("DeleteLeases: %v", err)
		}
		want("conns:1", map[string]string{"b": "pop3"})
		if err := c.DeleteLeases(ctx, "conns:9"); err != nil {
			t.Fatalf("DeleteLeases of nothing: %v", err)
		}

		// A short lease runs out unless renewed; a put replaces the value.
		short := 300 * time.Millisecond
		if err := c.PutLeases(ctx, short, Lease{Set: "conns:3", Member: "kept", Value: []byte("1")}, Lease{Set: "conns:3", Member: "dies", Value: []byte("1")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(short / 2)
		if err := c.PutLeases(ctx, short, Lease{Set: "conns:3", Member: "kept", Value: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(short/2 + 50*time.Millisecond)
		want("conns:3", map[string]string{"kept": "2"})
		time.Sleep(short)
		want("conns:3", map[string]string{})

		for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
			if err := c.PutLeases(ctx, ttl, Lease{Set: "s", Member: "m"}); err == nil {
				t.Errorf("PutLeases with ttl %v: no error", ttl)
			}
		}
	})
}

// TestLeasesLongestTTLKeepsTheSet: on Redis a set lives as long as its
// longest lease, so a holder with a short lease does not cut another's
// longer one short.
func TestLeasesLongestTTLKeepsTheSet(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		ctx := testContext(t)
		c := newCache(t, kind, addr, prefix)
		if err := c.PutLeases(ctx, time.Minute, Lease{Set: "u", Member: "long", Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := c.PutLeases(ctx, 100*time.Millisecond, Lease{Set: "u", Member: "short", Value: []byte("y")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
		got, err := c.Leases(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got["long"]) != "x" {
			t.Fatalf("Leases = %q, want only the long lease", got)
		}
	})
}

// TestLeasesShared: a lease one node puts is read and deleted by another
// sharing the Redis; a node that closes without deleting leaves its
// members until their lease runs out.
func TestLeasesShared(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	ctx := testContext(t)
	a, b := newRedis(t, addr, prefix), newRedis(t, addr, prefix)
	t.Cleanup(func() { a.Close(); b.Close() })
	ttl := 500 * time.Millisecond
	if err := a.PutLeases(ctx, ttl, Lease{Set: "u", Member: "x", Value: []byte("from a")}, Lease{Set: "u", Member: "y", Value: []byte("from a")}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Leases(ctx, "u")
	if err != nil || len(got) != 2 || string(got["x"]) != "from a" {
		t.Fatalf("b reads %q, %v; want a's two leases", got, err)
	}
	// A Redis that forgot the script (restarted, flushed) is sent it again.
	if err := b.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.PutLeases(ctx, ttl, Lease{Set: "u", Member: "x", Value: []byte("from a")}); err != nil {
		t.Fatalf("PutLeases after SCRIPT FLUSH: %v", err)
	}
	if err := b.DeleteLeases(ctx, "u", "y"); err != nil {
		t.Fatal(err)
	}
	a.Close() // as if a died: nobody deletes x
	if err := a.PutLeases(ctx, ttl, Lease{Set: "u", Member: "z"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutLeases on a closed cache: %v, want ErrClosed", err)
	}
	if got, err := b.Leases(ctx, "u"); err != nil || len(got) != 1 {
		t.Fatalf("b reads %q, %v; want x alone", got, err)
	}
	eventually(t, "a's lease runs out", func() bool {
		got, err := b.Leases(ctx, "u")
		return err == nil && len(got) == 0
	})
}
