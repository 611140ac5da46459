package imap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/cache"
)

// refusingCache is a cache whose bus refuses to publish while refuse is
// set, as Redis does when its connection fails: the change is committed,
// and nobody is told.
type refusingCache struct {
	cache.Cache
	refuse  atomic.Bool
	refused atomic.Int64
}

func (c *refusingCache) Publish(ctx context.Context, ev cache.Event) error {
	if c.refuse.Load() {
		c.refused.Add(1)
		return errors.New("publish refused by the test")
	}
	return c.Cache.Publish(ctx, ev)
}

// A change whose announcement is lost (the publish failed) still reaches
// a selected session: at NOOP, at the poll after any other command, and
// within IDLE, which re-reads the store after IdleRecheck of silence. On
// SQLite with the in-process bus, and across two nodes over MariaDB and
// Redis, where the change is made on the other node (through its store,
// and through its IMAP server).
func TestLostPublishStillSeen(t *testing.T) {
	for _, kind := range []string{"sqlite", "mysql-redis"} {
		t.Run(kind, func(t *testing.T) {
			var (
				db        testsupport.Database
				opts      storetest.Options
				refusing  refusingCache
				wrap      = func(c cache.Cache) cache.Cache { refusing.Cache = c; return &refusing }
				cfg       = Config{IdleRecheck: 200 * time.Millisecond}
				node1, h2 *harness
			)
			if kind == "sqlite" {
				db = testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
				opts.WrapCache = wrap
				node1 = start(t, setup{db: db, opts: opts, cfg: cfg})
				h2 = node1
			} else {
				addr, prefix := testsupport.Redis(t)
				db = testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(t)}
				opts.RedisAddr, opts.RedisPrefix = addr, prefix
				node1 = start(t, setup{db: db, opts: opts, cfg: cfg})
				opts.BlobDir, opts.WrapCache = node1.env.BlobDir, wrap
				h2 = start(t, setup{db: db, opts: opts, cfg: cfg})
			}
			alice := node1.user("alice@example.org", false)
			node1.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
			a := node1.dial(t)
			a.login("alice@example.org")
			a.ok("SELECT INBOX")
			b := h2.dial(t)
			b.login("alice@example.org")
			b.ok("EXAMINE INBOX")

			other := h2.env.Account(alice)
			inbox := storetest.Inbox(t, other)
			ctx := context.Background()
			refusing.refuse.Store(true)

			// NOOP: a delivery and a flag change, both unannounced.
			storetest.Append(t, other, inbox, msg("two", "2"), store.AppendOptions{})
			if _, err := other.SetFlags(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, store.FlagFlagged, nil); err != nil {
				t.Fatal(err)
			}
			u := a.ok("NOOP")
			if want := []string{"* 2 EXISTS", "* 2 RECENT", `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`}; !equalLines(u, want) {
				t.Errorf("NOOP after unannounced changes = %q, want %q", u, want)
			}
			// The poll after another command.
			storetest.Append(t, other, inbox, msg("three", "3"), store.AppendOptions{})
			u = a.ok("FETCH 1 UID")
			if want := []string{"* 1 FETCH (UID 1)", "* 3 EXISTS", "* 3 RECENT"}; !equalLines(u, want) {
				t.Errorf("FETCH after an unannounced delivery = %q, want %q", u, want)
			}
			// A flag change through the other node's IMAP server.
			b.ok("SELECT INBOX")
			b.ok(`STORE 2 +FLAGS (\Seen)`)
			if u := a.ok("NOOP"); !equalLines(u, []string{`* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`}) {
				t.Errorf("NOOP after another node's STORE = %q", u)
			}
			// IDLE finds a lost change on its own.
			tag := a.idle()
			storetest.Append(t, other, inbox, msg("four", "4"), store.AppendOptions{})
			a.waitFor("* 4 EXISTS", 3*time.Second)
			a.waitFor("* 4 RECENT", time.Second)
			if u := a.done(tag); len(u) != 0 {
				t.Errorf("after IDLE: %q", u)
			}
			if refusing.refused.Load() < 5 {
				t.Fatalf("only %d publishes were refused: the test did not lose the announcements", refusing.refused.Load())
			}
		})
	}
}

func equalLines(got, want []string) bool {
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

var recentLine = regexp.MustCompile(`^\* (\d+) RECENT$`)

// recentOf returns the count of the RECENT response among u, -1 if none.
func recentOf(u []string) int {
	for _, l := range u {
		if m := recentLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return -1
}

// \Recent (RFC 3501 2.3.2): a message is recent to exactly one session,
// the first to select the mailbox after it arrived; EXAMINE shows what is
// unclaimed without claiming it (6.3.2); mail arriving while a session has
// the mailbox selected, and what the session itself appends or copies
// there, is recent to it; STATUS RECENT, FETCH FLAGS and SEARCH NEW, OLD,
// RECENT agree.
func TestRecent(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		alice := h.user("alice@example.org", false)
		h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
		h.deliver(alice, "INBOX", msg("two", "2"), store.AppendOptions{Flags: store.FlagSeen})

		c := h.dial(t)
		c.login("alice@example.org")
		must(t, c.ok("STATUS INBOX (RECENT)"), "* STATUS INBOX (RECENT 2)")
		// EXAMINE sees them as recent and leaves them so.
		u := c.ok("EXAMINE INBOX")
		must(t, u, "* 2 RECENT")
		if u := c.ok("FETCH 1:* FLAGS"); !equalLines(u, []string{`* 1 FETCH (FLAGS (\Recent))`, `* 2 FETCH (FLAGS (\Seen \Recent))`}) {
			t.Errorf("FETCH under EXAMINE = %q", u)
		}
		c.ok("UNSELECT")
		must(t, c.ok("STATUS INBOX (RECENT)"), "* STATUS INBOX (RECENT 2)")

		a := h.dial(t)
		a.login("alice@example.org")
		must(t, a.ok("SELECT INBOX"), "* 2 RECENT")
		b := h.dial(t)
		b.login("alice@example.org")
		must(t, b.ok("SELECT INBOX"), "* 0 RECENT")
		must(t, c.ok("STATUS INBOX (RECENT)"), "* STATUS INBOX (RECENT 0)")
		for _, tc := range []struct {
			c            *client
			query, want  string
			fetch1Recent bool
		}{
			{a, "RECENT", "* SEARCH 1 2", true},
			{a, "NEW", "* SEARCH 1", true},
			{a, "OLD", "* SEARCH", true},
			{b, "RECENT", "* SEARCH", false},
			{b, "NEW", "* SEARCH", false},
			{b, "OLD", "* SEARCH 1 2", false},
		} {
			if u := tc.c.ok("SEARCH " + tc.query); !equalLines(u, []string{tc.want}) {
				t.Errorf("SEARCH %s = %q, want %q", tc.query, u, tc.want)
			}
			want := `* 1 FETCH (FLAGS ())`
			if tc.fetch1Recent {
				want = `* 1 FETCH (FLAGS (\Recent))`
			}
			if u := tc.c.ok("FETCH 1 FLAGS"); !equalLines(u, []string{want}) {
				t.Errorf("FETCH 1 FLAGS = %q, want %q", u, want)
			}
		}
		// Mail arriving while both have INBOX selected: recent to the
		// first to see it.
		h.deliver(alice, "INBOX", msg("three", "3"), store.AppendOptions{})
		if u := b.ok("NOOP"); !equalLines(u, []string{"* 3 EXISTS", "* 1 RECENT"}) {
			t.Errorf("b's NOOP = %q", u)
		}
		if u := a.ok("NOOP"); !equalLines(u, []string{"* 3 EXISTS"}) {
			t.Errorf("a's NOOP = %q", u)
		}
		must(t, b.ok("FETCH 3 FLAGS"), `* 3 FETCH (FLAGS (\Recent))`)
		must(t, a.ok("FETCH 3 FLAGS"), `* 3 FETCH (FLAGS ())`)
		// What a session appends or copies into its selected mailbox is
		// recent to it.
		u = a.ok("APPEND INBOX {14+}\r\nSubject: a\r\n\r\n")
		if !equalLines(u, []string{"* 4 EXISTS", "* 3 RECENT"}) {
			t.Errorf("APPEND into the selected mailbox = %q", u)
		}
		if u := a.ok("COPY 3 INBOX"); !equalLines(u, []string{"* 5 EXISTS", "* 4 RECENT"}) {
			t.Errorf("COPY into the selected mailbox = %q", u)
		}
		must(t, a.ok("FETCH 5 FLAGS"), `* 5 FETCH (FLAGS (\Recent))`)
		must(t, b.ok("NOOP"), "* 5 EXISTS")
		must(t, b.ok("SEARCH RECENT"), "* SEARCH 3")
		// A session's recent messages stay its own until it deselects;
		// the next to select finds none.
		must(t, a.ok("SELECT INBOX"), "* 0 RECENT")
		// IMAP4rev2 has no \Recent (RFC 9051 appendix E).
		h.deliver(alice, "INBOX", msg("six", "6"), store.AppendOptions{})
		d := h.dial(t)
		d.login("alice@example.org")
		d.ok("ENABLE IMAP4rev2")
		mustNot(t, d.ok("SELECT INBOX"), "RECENT")
		must(t, d.ok("FETCH 6 FLAGS"), `* 6 FETCH (FLAGS ())`)
	})
}

// Sessions racing to select a mailbox, on two nodes over one database,
// never both get a message as recent, and none is lost: the RECENT counts
// of each round add up to what arrived.
func TestRecentRace(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		node1 := start(t, setup{db: db})
		node2 := start(t, setup{db: db, opts: storetest.Options{BlobDir: node1.env.BlobDir}})
		alice := node1.user("alice@example.org", false)
		var cs []*client
		for i := range 6 {
			h := node1
			if i%2 == 1 {
				h = node2
			}
			c := h.dial(t)
			c.login("alice@example.org")
			cs = append(cs, c)
		}
		for round := range 4 {
			for range 3 {
				node1.deliver(alice, "INBOX", msg("m", "x"), store.AppendOptions{})
			}
			counts := make([]int, len(cs))
			var wg sync.WaitGroup
			for i, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tag := fmt.Sprintf("r%d", round)
					c.send(tag + " SELECT INBOX\r\n")
					var u []string
					for {
						l, err := c.readResponse(10 * time.Second)
						if err != nil {
							counts[i] = -100
							return
						}
						if strings.HasPrefix(l, tag+" ") {
							break
						}
						u = append(u, l)
					}
					counts[i] = recentOf(u)
				}()
			}
			wg.Wait()
			sum := 0
			for _, n := range counts {
				sum += n
			}
			if sum != 3 {
				t.Fatalf("round %d: RECENT counts %v add up to %d, want 3", round, counts, sum)
			}
		}
	})
}

// keywordChecker follows what a client has been told, as imaptest does:
// every keyword a FETCH shows must have been announced by a FLAGS
// response before it (RFC 3501 7.2.6).
type keywordChecker struct {
	t     *testing.T
	known map[string]bool
}

var (
	flagsLine      = regexp.MustCompile(`^\* FLAGS \(([^)]*)\)$`)
	fetchFlagsPart = regexp.MustCompile(`^\* \d+ FETCH \(.*FLAGS \(([^)]*)\)`)
)

func (k *keywordChecker) check(what string, lines []string) {
	k.t.Helper()
	for _, l := range lines {
		if m := flagsLine.FindStringSubmatch(l); m != nil {
			k.known = map[string]bool{}
			for _, f := range strings.Fields(m[1]) {
				k.known[strings.ToLower(f)] = true
			}
			continue
		}
		if m := fetchFlagsPart.FindStringSubmatch(l); m != nil {
			for _, f := range strings.Fields(m[1]) {
				if !strings.HasPrefix(f, `\`) && !k.known[strings.ToLower(f)] {
					k.t.Errorf("%s: %q shows keyword %s, which no FLAGS announced before it (%q)", what, l, f, lines)
				}
			}
		}
	}
}

// Keywords: FLAGS on SELECT lists every keyword in use in the mailbox
// (kept by the store, not gathered from the messages), and a keyword new
// to the mailbox, brought by this session's STORE or APPEND or by another
// session, is announced in FLAGS before any FETCH shows it.
func TestKeywordsAnnounced(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		alice := h.user("alice@example.org", false)
		h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{Keywords: []string{"$Label1"}})
		h.deliver(alice, "INBOX", msg("two", "2"), store.AppendOptions{})

		a := h.dial(t)
		a.login("alice@example.org")
		k := &keywordChecker{t: t}
		u := a.ok("SELECT INBOX")
		k.check("SELECT", u)
		must(t, u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1)`)
		must(t, u, `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk \*)]`)

		// This session's STORE of a new keyword.
		u = a.ok("STORE 2 +FLAGS (Project)")
		k.check("STORE", u)
		if want := []string{`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1 Project)`,
			`* 2 FETCH (UID 2 FLAGS (Project \Recent))`}; !equalLines(u, want) {
			t.Errorf("STORE of a new keyword = %q, want %q", u, want)
		}
		// .SILENT: FLAGS, and no FETCH.
		u = a.ok("STORE 1 +FLAGS.SILENT (Quiet)")
		k.check("STORE .SILENT", u)
		if want := []string{`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1 Project Quiet)`}; !equalLines(u, want) {
			t.Errorf("STORE .SILENT of a new keyword = %q, want %q", u, want)
		}
		// A known keyword: just the FETCH.
		if u := a.ok("STORE 1 +FLAGS (Project)"); !equalLines(u, []string{`* 1 FETCH (FLAGS ($Label1 Project Quiet \Recent))`}) {
			t.Errorf("STORE of a known keyword = %q", u)
		}
		// APPEND into the selected mailbox.
		u = a.ok("APPEND INBOX (Appended) {14+}\r\nSubject: x\r\n\r\n")
		k.check("APPEND", u)
		must(t, u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1 Appended Project Quiet)`)
		k.check("FETCH", a.ok("FETCH 1:* FLAGS"))

		// Another session's keyword: a FETCH before the poll hides it,
		// the poll announces it and then shows the message's flags.
		b := h.dial(t)
		b.login("alice@example.org")
		b.ok("SELECT INBOX")
		b.ok("STORE 2 +FLAGS (Elsewhere)")
		u = a.ok("FETCH 2 FLAGS")
		k.check("FETCH after another session's STORE", u)
		if want := []string{`* 2 FETCH (FLAGS (Project \Recent))`,
			`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1 Appended Elsewhere Project Quiet)`,
			`* 2 FETCH (UID 2 FLAGS (Elsewhere Project \Recent))`}; !equalLines(u, want) {
			t.Errorf("FETCH after another session's STORE = %q, want %q", u, want)
		}
		// A COPY from another mailbox brings its keywords along.
		b.ok("CREATE Other")
		b.ok("APPEND Other (Copied) {14+}\r\nSubject: y\r\n\r\n")
		b.ok("SELECT Other")
		b.ok("COPY 1 INBOX")
		u = a.ok("NOOP")
		k.check("NOOP after another session's COPY", u)
		must(t, u, `Appended Copied Elsewhere Project Quiet)`)
		k.check("FETCH", a.ok("FETCH 1:* FLAGS"))
		// A new session's SELECT lists them all.
		c := h.dial(t)
		c.login("alice@example.org")
		must(t, c.ok("EXAMINE INBOX"), `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1 Appended Copied Elsewhere Project Quiet)`)
	})
}

// BenchmarkPollHistory: what NOOP costs in a mailbox of 1,000 messages
// with no expunge history and with 100,000 expunged messages behind it,
// and in one of 100,000 messages with that history: when nothing changed,
// and after another session changed a message. The cost must not grow
// with the history (it did: every poll read every tombstone) nor with the
// mailbox (SQLite read every message when asked for the changed ones in
// UID order).
func BenchmarkPollHistory(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		for _, size := range []struct{ messages, history int }{{1000, 0}, {1000, 100_000}, {100_000, 100_000}} {
			b.Run(fmt.Sprintf("messages=%d/expunged=%d", size.messages, size.history), func(b *testing.B) {
				d := db
				if d.Driver == "sqlite" {
					d.DSN = testsupport.SQLiteDSN(b)
				} else {
					d.DSN = testsupport.MySQLDSN(b)
				}
				h := start(b, setup{db: d})
				alice := h.env.NewUser(b, "alice@example.org", false)
				acct := h.env.Account(alice)
				inbox := storetest.Inbox(b, acct)
				storetest.Seed(b, h.env, alice.User.ID, inbox, size.messages)
				storetest.SeedExpunged(b, h.env, inbox, size.history)
				c := h.dial(b)
				c.login("alice@example.org")
				c.ok("SELECT INBOX")
				b.Run("unchanged", func(b *testing.B) {
					for b.Loop() {
						if u := c.ok("NOOP"); len(u) != 0 {
							b.Fatalf("NOOP = %q", u)
						}
					}
				})
				// The message's \Flagged is toggled: the state lasts
				// from one run of the benchmark function to the next.
				op := store.FlagAdd
				b.Run("one-change", func(b *testing.B) {
					ctx := context.Background()
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						if _, err := acct.SetFlags(ctx, inbox, store.UIDSet{{Start: 500, Stop: 500}}, op, store.FlagFlagged, nil); err != nil {
							b.Fatal(err)
						}
						if op == store.FlagAdd {
							op = store.FlagRemove
						} else {
							op = store.FlagAdd
						}
						b.StartTimer()
						if u := c.ok("NOOP"); len(u) != 1 {
							b.Fatalf("NOOP = %q", u)
						}
					}
				})
			})
		}
	})
}

// STORE on messages another session expunged, not yet announced, changes
// the others and answers OK, as Dovecot does (RFC 2180 4.2.1 leaves the
// choice open; clients and imaptest take a NO as the whole STORE lost).
func TestStoreOnExpungedElsewhere(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	for range 3 {
		h.deliver(alice, "INBOX", msg("m", "x"), store.AppendOptions{})
	}
	b := h.dial(t)
	b.login("alice@example.org")
	b.ok("SELECT INBOX")
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("SELECT INBOX")
	b.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	// FETCH may not announce the expunge (RFC 9051 7.5.1): message 2 is
	// still numbered for a, and gone.
	mustNot(t, a.ok("FETCH 1 UID"), "EXPUNGE")
	u, st := a.do(`STORE 1:3 +FLAGS (\Seen)`)
	if st != "OK STORE completed" || !equalLines(u, []string{`* 1 FETCH (FLAGS (\Seen))`, `* 3 FETCH (FLAGS (\Seen))`}) {
		t.Errorf("STORE over an expunged message = %q %q", u, st)
	}
	if u, st := a.do(`STORE 2 +FLAGS (\Flagged)`); st != "OK STORE completed" || len(u) != 0 {
		t.Errorf("STORE of only the expunged message = %q %q", u, st)
	}
	must(t, a.ok("NOOP"), "* 2 EXPUNGE")
}

// The spans of UIDs recent to a session answer membership and counts.
func TestRecentSpans(t *testing.T) {
	sel := &selected{uids: []uint32{1, 2, 3, 5, 8, 9, 10, 20}, recent: []uidSpan{{2, 4}, {8, 9}, {10, 21}}}
	for uid, want := range map[uint32]bool{1: false, 2: true, 3: true, 4: false, 5: false, 7: false, 8: true, 9: false, 10: true, 20: true, 21: false} {
		if got := sel.isRecent(uid); got != want {
			t.Errorf("isRecent(%d) = %v, want %v", uid, got, want)
		}
	}
	if n := sel.numRecent(); n != 5 { // 2 3 8 10 20
		t.Errorf("numRecent = %d, want 5", n)
	}
	if (&selected{}).isRecent(1) {
		t.Error("no spans: recent")
	}
}

// A session whose claims interleave with another's gets a span for each;
// once their messages are expunged the spans go, so that a long session
// keeps no more spans than it has messages. Spans above the view (its own
// APPEND's, before a poll) stay.
func TestRecentSpansPruned(t *testing.T) {
	for _, by := range []string{"this session", "another session"} {
		sel := &selected{}
		for uid := uint32(1); uid <= 10_000; uid += 2 {
			sel.uids = append(sel.uids, uid)
			sel.addRecent(uid, uid+1) // the other session claimed uid+1
			if len(sel.uids) <= 5 {
				continue
			}
			var err error
			if by == "this session" {
				err = (&session{sel: sel}).expunged([]uint32{sel.uids[0]}, func(uint32) error { return nil })
			} else {
				sel.gone = map[uint32]struct{}{sel.uids[0]: {}}
				err = sel.announceGone(func(uint32) error { return nil })
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(sel.recent) != 5 || sel.numRecent() != 5 {
			t.Errorf("expunged by %s: %d spans, %d recent; want 5 and 5", by, len(sel.recent), sel.numRecent())
		}
	}
	sel := &selected{}
	sel.uids, sel.recent = []uint32{1, 2, 3, 5, 8, 9, 10, 20}, []uidSpan{{2, 4}, {4, 5}, {6, 8}, {8, 9}, {10, 21}, {30, 40}}
	sel.pruneRecent()
	if want := []uidSpan{{2, 4}, {8, 9}, {10, 21}, {30, 40}}; !slices.Equal(sel.recent, want) {
		t.Errorf("pruned to %v, want %v", sel.recent, want)
	}
}

// A client that sends its next command before the last one's answer
// hears of changes after the run it sent, not after each command in it:
// the store is looked at once per run (Poll), which is most of what a
// busy pipelining client's commands cost. A command sent to hear of
// changes (NOOP) still hears of them, pipelined or not, as does one that
// added messages to the selected mailbox (APPEND, COPY), and a change is
// not held back past the last command of the run.
func TestPipelinedPolls(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
	a := h.dial(t)
	a.login("alice@example.org")
	a.ok("SELECT INBOX")
	n := 1
	arrive := func() {
		t.Helper()
		h.deliver(alice, "INBOX", msg("more", "x"), store.AppendOptions{})
		n++
	}
	exists := func() string { return fmt.Sprintf("* %d EXISTS", n) }
	// run sends cmds in one write and returns the responses before each
	// one's tagged answer.
	run := func(cmds ...string) [][]string {
		t.Helper()
		var b strings.Builder
		tags := make([]string, len(cmds))
		for i, c := range cmds {
			tags[i] = a.next()
			b.WriteString(tags[i] + " " + c + "\r\n")
		}
		a.send(b.String())
		out := make([][]string, len(cmds))
		for i, tag := range tags {
			var status string
			out[i], status = a.until(tag)
			if !strings.HasPrefix(status, "OK") {
				t.Fatalf("%s: %s", cmds[i], status)
			}
		}
		return out
	}

	arrive()
	got := run("FETCH 1 (FLAGS)", "FETCH 1 (UID)", "FETCH 1 (UID)")
	mustNot(t, got[0], "EXISTS")
	mustNot(t, got[1], "EXISTS")
	must(t, got[2], exists())

	arrive()
	got = run("NOOP", "FETCH 1 (UID)")
	must(t, got[0], exists())

	arrive()
	got = run("FETCH 1 (UID)")
	must(t, got[0], exists())

	// The client's own APPEND and COPY into the selected mailbox are
	// announced at once (RFC 9051 6.3.12), pipelined or not.
	n++
	got = run("APPEND INBOX {3+}\r\nabc", "FETCH 1 (UID)")
	must(t, got[0], exists())
	n++
	got = run("COPY 1 INBOX", "FETCH 1 (UID)")
	must(t, got[0], exists())

	// A run longer than maxDeferredPolls is looked at on the way.
	arrive()
	cmds := make([]string, maxDeferredPolls+3)
	for i := range cmds {
		cmds[i] = "FETCH 1 (UID)"
	}
	got = run(cmds...)
	at := -1
	for i, u := range got {
		if _, ok := find(u, exists()); ok {
			at = i
			break
		}
	}
	if at < 0 || at > maxDeferredPolls {
		t.Fatalf("EXISTS after command %d of a run of %d, want by %d", at, len(cmds), maxDeferredPolls)
	}
}
