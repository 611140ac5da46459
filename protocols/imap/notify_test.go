package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// waitFor reads responses until one contains sub, failing after limit.
func (c *client) waitFor(sub string, limit time.Duration) (string, time.Duration) {
	c.t.Helper()
	start := time.Now()
	for {
		left := limit - time.Since(start)
		if left <= 0 {
			c.t.Fatalf("no %q within %v", sub, limit)
		}
		l, err := c.readResponse(left)
		if err != nil {
			c.t.Fatalf("waiting for %q: %v (got %q)", sub, err, l)
		}
		if strings.Contains(l, sub) {
			return l, time.Since(start)
		}
	}
}

// idle starts IDLE and waits for the continuation.
func (c *client) idle() string {
	c.t.Helper()
	tag := c.next()
	c.send(tag + " IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		c.t.Fatalf("IDLE: got %q, want a continuation", l)
	}
	return tag
}

func (c *client) done(tag string) []string {
	c.t.Helper()
	c.send("DONE\r\n")
	u, st := c.until(tag)
	if !strings.HasPrefix(st, "OK") {
		c.t.Fatalf("IDLE ended with %q", st)
	}
	return u
}

// Changes made by any other session reach an IDLE session within a
// second: a delivery through the store, and another IMAP session's flag
// changes and expunges.
func TestIdleSeesOtherSessions(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		opts := storetest.Options{}
		if kind == "redis" {
			opts.RedisAddr, opts.RedisPrefix = addr, prefix
		}
		h := start(t, setup{opts: opts})
		alice := h.user("alice@example.org", false)
		h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
		h.deliver(alice, "INBOX", msg("two", "2"), store.AppendOptions{})

		a := h.dial(t)
		a.login("alice@example.org")
		a.ok("SELECT INBOX")
		b := h.dial(t)
		b.login("alice@example.org")
		b.ok("SELECT INBOX")

		tag := a.idle()
		h.deliver(alice, "INBOX", msg("three", "3"), store.AppendOptions{})
		if _, took := a.waitFor("* 3 EXISTS", time.Second); took > time.Second {
			t.Errorf("EXISTS took %v", took)
		}
		b.ok(`STORE 1 +FLAGS (\Flagged)`)
		// a selected INBOX first: its messages are recent to a.
		if l, took := a.waitFor("FETCH", time.Second); l != `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))` || took > time.Second {
			t.Errorf("flag change reached IDLE as %q after %v", l, took)
		}
		b.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
		a.waitFor(`* 2 FETCH (UID 2 FLAGS (\Deleted \Recent))`, time.Second)
		b.ok("EXPUNGE")
		a.waitFor("* 2 EXPUNGE", time.Second)
		if u := a.done(tag); len(u) != 0 {
			t.Errorf("after IDLE: %q", u)
		}
		// The views agree: two messages, UIDs 1 and 3, in both sessions.
		for _, c := range []*client{a, b} {
			u := c.ok("FETCH 1:* UID")
			if len(u) != 2 || u[0] != "* 1 FETCH (UID 1)" || u[1] != "* 2 FETCH (UID 3)" {
				t.Errorf("view after the changes: %q", u)
			}
		}
	})
}

// Without IDLE, changes are reported after commands; an EXPUNGE waits for
// a command that allows it (RFC 9051 7.5.1), and the message stays
// numbered until then.
func TestPollRules(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	for i := 0; i < 3; i++ {
		h.deliver(alice, "INBOX", msg("m", "x"), store.AppendOptions{})
	}
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("SELECT INBOX")
	acct := h.env.Account(alice)
	inbox := storetest.Inbox(t, acct)
	ctx := context.Background()
	if _, err := acct.Remove(ctx, inbox, store.UIDSet{{Start: 2, Stop: 2}}); err != nil {
		t.Fatal(err)
	}
	h.deliver(alice, "INBOX", msg("new", "x"), store.AppendOptions{})
	time.Sleep(200 * time.Millisecond) // let the events arrive

	// FETCH: no EXPUNGE, and the expunged message 2 cannot be shown. The
	// library reports changes only after a command that succeeded.
	u, st := a.do("FETCH 1:3 UID")
	mustNot(t, u, "EXPUNGE")
	must(t, u, "* 3 FETCH (UID 3)")
	if !strings.HasPrefix(st, "NO [EXPUNGEISSUED]") {
		t.Errorf("FETCH of an expunged message ended %q", st)
	}
	// SEARCH: still no EXPUNGE; the new message is announced with a
	// number that counts the expunged one, which is still message 2.
	u = a.ok("SEARCH ALL")
	must(t, u, "* SEARCH 1 3")
	must(t, u, "* 4 EXISTS")
	mustNot(t, u, "EXPUNGE")
	// UID FETCH of it shows nothing; UID commands may expunge (RFC 9051
	// 7.5.1), so the EXPUNGE comes now.
	u = a.ok("UID FETCH 2 UID")
	if len(u) != 1 || u[0] != "* 2 EXPUNGE" {
		t.Errorf("UID FETCH of an expunged message = %q", u)
	}
	if u := a.ok("NOOP"); len(u) != 0 {
		t.Errorf("NOOP = %q", u)
	}
	u = a.ok("FETCH 1:* UID")
	if len(u) != 3 || u[2] != "* 3 FETCH (UID 4)" {
		t.Errorf("after NOOP: %q", u)
	}
}

// A session whose selected mailbox is deleted by another is told BYE.
func TestSelectedMailboxDeleted(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("CREATE Doomed")
	a.ok("SELECT Doomed")
	b := h.dial(t)
	b.login("alice@example.org")
	b.ok("DELETE Doomed")
	waitBye(t, a)
}

// waitBye sends NOOPs until the server says BYE and closes the
// connection: the change that causes it reaches the session through the
// change bus, which may take a moment after the command that made it.
func waitBye(t *testing.T, c *client) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		tag := fmt.Sprintf("w%d", i)
		c.send(tag + " NOOP\r\n")
		for {
			l, err := c.readResponse(time.Second)
			if strings.HasPrefix(l, "* BYE") {
				if got, closed := c.closed(); !closed {
					t.Fatalf("BYE, then %q and the connection stayed open", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("no BYE: %v", err)
			}
			if strings.HasPrefix(l, tag+" ") {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no BYE within 2s")
}

// With Redis, a change made through another Basalt process (another
// Store and Server over the same MariaDB and Redis) reaches an IDLE
// session within a second.
func TestIdleAcrossProcesses(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	dsn := testsupport.MySQLDSN(t)
	db := testsupport.Database{Driver: "mysql", DSN: dsn}
	opts := storetest.Options{RedisAddr: addr, RedisPrefix: prefix}
	node1 := start(t, setup{db: db, opts: opts})
	opts.BlobDir = node1.env.BlobDir
	node2 := start(t, setup{db: db, opts: opts})
	alice := node1.user("alice@example.org", false)
	node1.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})

	a := node1.dial(t)
	a.login("alice@example.org")
	a.ok("SELECT INBOX")
	tag := a.idle()

	// Delivered through node 2's store.
	acct2 := node2.env.Store.Account(alice.User.ID, nil)
	storetest.Append(t, acct2, storetest.Inbox(t, acct2), msg("two", "2"), store.AppendOptions{})
	if _, took := a.waitFor("* 2 EXISTS", time.Second); took > time.Second {
		t.Errorf("EXISTS took %v", took)
	}
	// Changed through node 2's IMAP server.
	b := node2.dial(t)
	b.login("alice@example.org")
	b.ok("SELECT INBOX")
	b.ok(`STORE 2 +FLAGS (\Seen)`)
	a.waitFor(`* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`, time.Second)
	b.ok("MOVE 1 Archive")
	a.waitFor("* 1 EXPUNGE", time.Second)
	a.done(tag)
}

// Deleting the selected mailbox in the same session is not a reason to
// disconnect: the client knows, and its commands there fail NONEXISTENT.
func TestSelectedMailboxDeletedBySelf(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("CREATE Doomed")
	a.ok("APPEND Doomed {14+}\r\nSubject: x\r\n\r\n")
	a.ok("SELECT Doomed")
	a.ok("DELETE Doomed")
	a.ok("NOOP")
	a.expect("FETCH 1 FLAGS", "NO [NONEXISTENT]")
	a.ok("SELECT INBOX")
}

// A line other than DONE ends IDLE with BAD; the library then goes on
// without waiting for the session's Idle, which must not overlap the next
// command (run with -race).
func TestIdleEndedBadly(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("SELECT INBOX")
	for i := 0; i < 20; i++ {
		tag := a.idle()
		h.deliver(alice, "INBOX", msg("during idle", "x"), store.AppendOptions{})
		a.send("NOT-DONE\r\na-next NOOP\r\n")
		if _, st := a.until(tag); !strings.HasPrefix(st, "BAD") {
			t.Fatalf("IDLE ended with %q", st)
		}
		if _, st := a.until("a-next"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("NOOP after IDLE: %q", st)
		}
	}
	a.ok("FETCH 1:* UID")
}

// When more changes come between two commands than a watch keeps, the
// session is told to resync, and the resync loses nothing: every flag
// change and expunge is reported at the next command, read from the
// store's modseqs rather than from the events.
func TestResyncAfterOverflow(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	acct := h.env.Account(alice)
	inbox := storetest.Inbox(t, acct)
	for i := 0; i < 120; i++ {
		h.deliver(alice, "INBOX", msg(fmt.Sprint("m", i), "x"), store.AppendOptions{})
	}
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("SELECT INBOX")
	ctx := context.Background()
	// 100 changes of one message each, well over what a watch keeps (64).
	for uid := uint32(1); uid <= 90; uid++ {
		if _, err := acct.SetFlags(ctx, inbox, store.UIDSet{{Start: uid, Stop: uid}}, store.FlagAdd, store.FlagFlagged, nil); err != nil {
			t.Fatal(err)
		}
	}
	for uid := uint32(111); uid <= 120; uid++ {
		if _, err := acct.Remove(ctx, inbox, store.UIDSet{{Start: uid, Stop: uid}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the events arrive
	u := a.ok("NOOP")
	fetches, expunged := 0, []string{}
	for _, l := range u {
		switch {
		case strings.HasSuffix(l, `FLAGS (\Flagged \Recent))`):
			fetches++
		case strings.HasSuffix(l, " EXPUNGE"):
			expunged = append(expunged, strings.TrimSuffix(strings.TrimPrefix(l, "* "), " EXPUNGE"))
		}
	}
	// Highest first, so that each number is still the client's.
	if want := "120 119 118 117 116 115 114 113 112 111"; fetches != 90 || strings.Join(expunged, " ") != want {
		t.Errorf("after the overflow: %d FETCH FLAGS (want 90), EXPUNGE %v (want %s)", fetches, expunged, want)
	}
	if u := a.ok("FETCH 1:* UID"); len(u) != 110 {
		t.Errorf("view after the resync: %d messages, want 110", len(u))
	}
}

// Events lost while the Redis subscription is down (here: published
// where this node never listens) are made up for when it comes back: the
// cache tells every watch to resync, and an IDLE session reports the
// changes it missed, expunges and flag changes included.
func TestResyncAfterRedisReconnect(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	db := testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(t)}
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx := context.Background()
	pubsubIDs := func() map[string]bool {
		list, err := rc.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, l := range strings.Split(list, "\n") {
			if strings.Contains(l, " sub=1 ") || strings.Contains(l, " psub=1 ") {
				id, _, _ := strings.Cut(strings.TrimPrefix(l, "id="), " ")
				ids[id] = true
			}
		}
		return ids
	}
	before := pubsubIDs()
	node1 := start(t, setup{db: db, opts: storetest.Options{RedisAddr: addr, RedisPrefix: prefix}})
	// The other node's events go where node 1 does not listen: lost.
	_, otherPrefix := testsupport.Redis(t)
	node2 := start(t, setup{db: db, opts: storetest.Options{RedisAddr: addr, RedisPrefix: otherPrefix, BlobDir: node1.env.BlobDir}})
	alice := node1.user("alice@example.org", false)
	for i := 0; i < 3; i++ {
		node1.deliver(alice, "INBOX", msg(fmt.Sprint("m", i), "x"), store.AppendOptions{})
	}
	a := node1.dial(t)
	a.login("alice@example.org") // node 1 subscribes
	a.ok("SELECT INBOX")
	var mine []string
	for id := range pubsubIDs() {
		if !before[id] {
			mine = append(mine, id)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("node 1's subscription: %v", mine)
	}
	tag := a.idle()

	acct2 := node2.env.Store.Account(alice.User.ID, nil)
	inbox := storetest.Inbox(t, acct2)
	if _, err := acct2.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, store.FlagFlagged, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := acct2.Remove(ctx, inbox, store.UIDSet{{Start: 2, Stop: 2}}); err != nil {
		t.Fatal(err)
	}
	storetest.Append(t, acct2, inbox, msg("new", "x"), store.AppendOptions{})
	if l, err := a.readResponse(500 * time.Millisecond); err == nil {
		t.Fatalf("node 1 heard of node 2's change (%q): the test needs it lost", l)
	}
	// The subscription drops and comes back.
	if err := rc.Do(ctx, "CLIENT", "KILL", "ID", mine[0]).Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		l, err := a.readResponse(time.Until(deadline))
		if err != nil {
			break
		}
		got[l] = true
	}
	for _, want := range []string{`* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`, "* 4 EXISTS", "* 4 RECENT", "* 2 EXPUNGE"} {
		if !got[want] {
			t.Errorf("after the reconnect IDLE got %q, lacking %q", keysOf(got), want)
		}
	}
	a.done(tag)
	if u := a.ok("FETCH 1:* UID"); len(u) != 3 || u[2] != "* 3 FETCH (UID 4)" {
		t.Errorf("view after the resync: %q", u)
	}
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
