package pop3

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// testMessages are stored as they are: one in CRLF, one with bare LFs,
// lines starting with dots and no line end at its end (as IMAP APPEND may
// leave it), and one larger than a read chunk.
var testMessages = []string{
	string(storetest.Message("ann@example.org", "bob@example.org", "first", "hello\n.leading dot\n..two dots\n.")),
	"From: x@example.org\nSubject: bare LF\n\n.dot\nline 2\nline 3\nno end",
	string(storetest.SizedMessage(100 << 10)),
}

// TestSession walks every command of a session over a real socket, on
// each SQL backend: sizes are those of what RETR sends, DELE only marks,
// RSET unmarks, and QUIT removes what is marked, visibly to the store.
func TestSession(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		bob := h.user("bob@example.org", false)
		h.deliver(bob, testMessages...)
		var total int64
		for _, m := range testMessages {
			total += int64(len(crlf(m)))
		}

		c := h.dial()
		caps := c.multi("CAPA")
		for _, want := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN LOGIN", "STLS", "IMPLEMENTATION Basalt"} {
			if !strings.Contains(caps, want+"\r\n") {
				t.Errorf("CAPA lacks %q:\n%s", want, caps)
			}
		}
		c.expect("USER bob@example.org", "+OK")
		c.expect("PASS "+storetest.Password, fmt.Sprintf("+OK Logged in, maildrop has 3 messages (%d octets)", total))
		if caps := c.multi("CAPA"); strings.Contains(caps, "USER") || strings.Contains(caps, "SASL") || strings.Contains(caps, "STLS") {
			t.Errorf("CAPA after login offers logging in:\n%s", caps)
		}
		c.expect("STAT", fmt.Sprintf("+OK 3 %d", total))

		var list strings.Builder
		for i, m := range testMessages {
			fmt.Fprintf(&list, "%d %d\r\n", i+1, len(crlf(m)))
		}
		if got := c.multi("LIST"); got != list.String() {
			t.Fatalf("LIST = %q, want %q", got, list.String())
		}
		c.expect("LIST 2", fmt.Sprintf("+OK 2 %d", len(crlf(testMessages[1]))))

		uidl := c.multi("UIDL")
		ids := map[string]bool{}
		for i, l := range strings.Split(strings.TrimSuffix(uidl, "\r\n"), "\r\n") {
			n, id, _ := strings.Cut(l, " ")
			if n != strconv.Itoa(i+1) || len(id) < 1 || len(id) > 70 || strings.ContainsAny(id, " \t") || ids[id] {
				t.Fatalf("UIDL line %q (in %q)", l, uidl)
			}
			ids[id] = true
			c.expect("UIDL "+n, "+OK "+n+" "+id)
		}

		for i, m := range testMessages {
			c.expect(fmt.Sprintf("RETR %d", i+1), fmt.Sprintf("+OK %d octets", len(crlf(m))))
			body := c.body()
			if got := unstuff(body); got != crlf(m) {
				t.Fatalf("RETR %d = %.80q, want %.80q", i+1, got, crlf(m))
			}
		}
		// Lines that start with a dot went out with another in front.
		c.expect("RETR 2", "+OK")
		if body := c.body(); !strings.Contains(body, "\r\n..dot\r\n") {
			t.Fatalf("RETR 2 not dot-stuffed: %q", body)
		}
		c.expect("TOP 2 0", "+OK")
		if got := c.body(); got != "From: x@example.org\r\nSubject: bare LF\r\n\r\n" {
			t.Fatalf("TOP 2 0 = %q", got)
		}
		c.expect("TOP 2 2", "+OK")
		if got := c.body(); got != "From: x@example.org\r\nSubject: bare LF\r\n\r\n..dot\r\nline 2\r\n" {
			t.Fatalf("TOP 2 2 = %q", got)
		}

		// RETR set \Seen; TOP did not count.
		for _, m := range h.inbox(bob) {
			if !m.Flags.Has(store.FlagSeen) {
				t.Fatalf("message UID %d not \\Seen after RETR", m.UID)
			}
		}

		c.expect("DELE 1", "+OK")
		c.expect("STAT", fmt.Sprintf("+OK 2 %d", total-int64(len(crlf(testMessages[0])))))
		for _, cmd := range []string{"DELE 1", "RETR 1", "TOP 1 0", "LIST 1", "UIDL 1"} {
			c.expect(cmd, "-ERR Message 1 already deleted")
		}
		if got := c.multi("LIST"); strings.HasPrefix(got, "1 ") {
			t.Fatalf("LIST shows a deleted message: %q", got)
		}
		c.expect("RSET", fmt.Sprintf("+OK Maildrop has 3 messages (%d octets)", total))
		c.expect("LIST 1", "+OK 1 ")
		c.expect("NOOP", "+OK")
		c.expect("DELE 1", "+OK")
		c.expect("DELE 3", "+OK")
		if n := len(h.inbox(bob)); n != 3 {
			t.Fatalf("DELE removed from the store before QUIT: %d messages", n)
		}
		c.expect("QUIT", "+OK Bye, 2 messages removed, 1 left")
		c.expectClosed()
		left := h.inbox(bob)
		if len(left) != 1 || left[0].Size != int64(len(testMessages[1])) {
			t.Fatalf("after QUIT the INBOX holds %+v, want message 2 only", left)
		}

		// The unique id of a message is the same in the next session.
		c = h.dial()
		c.login("bob@example.org")
		id := strings.Fields(c.expect("UIDL 1", "+OK 1 "))[2]
		if !ids[id] {
			t.Fatalf("UIDL in a new session %q, not one of %v", id, ids)
		}
		c.expect("QUIT", "+OK Bye, 1 messages left")
	})
}

// TestLoginDelay: with a login delay configured it is advertised (RFC
// 2449 6.5) and kept: a second login within it is refused with the
// LOGIN-DELAY response code (RFC 2449 8.1.1), and only for that user.
func TestLoginDelay(t *testing.T) {
	h := start(t, setup{cfg: Config{LoginDelay: 15 * time.Minute}})
	h.user("bob@example.org", false)
	h.user("carol@example.org", false)
	c := h.dial()
	if caps := c.multi("CAPA"); !strings.Contains(caps, "LOGIN-DELAY 900\r\n") {
		t.Fatalf("CAPA lacks LOGIN-DELAY 900:\n%s", caps)
	}
	c.login("bob@example.org")
	c.expect("QUIT", "+OK")
	c = h.dial()
	c.expect("USER bob@example.org", "+OK")
	c.expect("PASS "+storetest.Password, "-ERR [LOGIN-DELAY]")
	c = h.dial()
	c.login("carol@example.org")
	c.expect("QUIT", "+OK")
}

// TestSecureUser: an encrypted-at-rest user's messages come out decrypted,
// with sizes that match.
func TestSecureUser(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		sec := h.user("sec@example.org", true)
		h.deliver(sec, testMessages...)
		c := h.dial()
		c.login("sec@example.org")
		for i, m := range testMessages {
			c.expect(fmt.Sprintf("LIST %d", i+1), fmt.Sprintf("+OK %d %d", i+1, len(crlf(m))))
			c.expect(fmt.Sprintf("RETR %d", i+1), fmt.Sprintf("+OK %d octets", len(crlf(m))))
			if got := unstuff(c.body()); got != crlf(m) {
				t.Fatalf("RETR %d = %.80q, want %.80q", i+1, got, crlf(m))
			}
		}
		c.expect("QUIT", "+OK")
	})
}

// TestDroppedConnection: a connection that drops, or times out, after
// DELE deletes nothing (RFC 1939 3, 6); QUIT after DELE removes.
func TestDroppedConnection(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db, cfg: Config{IdleTimeout: time.Second}})
		bob := h.user("bob@example.org", false)
		h.deliver(bob, testMessages...)

		c := h.dial()
		c.login("bob@example.org")
		c.expect("DELE 1", "+OK")
		c.expect("DELE 2", "+OK")
		c.nc.Close()
		h.waitConnections(0)
		if n := len(h.inbox(bob)); n != 3 {
			t.Fatalf("a dropped connection removed messages: %d left", n)
		}

		// Silent past the idle timeout: closed without an answer, and
		// nothing removed either.
		c = h.dial()
		c.login("bob@example.org")
		c.expect("DELE 3", "+OK")
		c.expectClosed()
		if n := len(h.inbox(bob)); n != 3 {
			t.Fatalf("an idle timeout removed messages: %d left", n)
		}

		c = h.dial()
		c.login("bob@example.org")
		c.expect("DELE 2", "+OK")
		c.expect("QUIT", "+OK")
		left := h.inbox(bob)
		if len(left) != 2 {
			t.Fatalf("QUIT after DELE left %d messages, want 2", len(left))
		}
		got := storetest.Messages(t, bob, "INBOX")
		if got[0] != testMessages[0] || got[1] != testMessages[2] {
			t.Fatal("QUIT removed the wrong message")
		}
	})
}

// TestInUse: one session per maildrop, whether the second login comes to
// the same server, to another on the same store, or to another node
// sharing the database and Redis.
func TestInUse(t *testing.T) {
	addr, prefix := testsupport.Redis(t)
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h1 := start(t, setup{db: db, opts: storetest.Options{RedisAddr: addr, RedisPrefix: prefix + db.Driver + ":"}})
		node2 := storetest.Open(t, db, storetest.Options{RedisAddr: addr, RedisPrefix: prefix + db.Driver + ":", BlobDir: h1.env.BlobDir})
		h2 := start(t, setup{env: node2})
		h3 := start(t, setup{env: h1.env}) // a second server in the same process
		bob := h1.user("bob@example.org", false)
		h1.deliver(bob, testMessages[0])

		c1 := h1.dial()
		c1.login("bob@example.org")
		for _, h := range []*harness{h1, h2, h3} {
			c := h.dial()
			c.expect("USER bob@example.org", "+OK")
			c.expect("PASS "+storetest.Password, "-ERR [IN-USE]")
			// Still in AUTHORIZATION: a busy maildrop is not an error
			// of the client's, and it may try again.
			c.expect("STAT", "-ERR")
			c.expect("QUIT", "+OK")
		}
		c1.expect("QUIT", "+OK")
		c1.expectClosed()
		c2 := h2.dial()
		c2.login("bob@example.org")
		c2.expect("STAT", "+OK 1 ")
		c2.expect("QUIT", "+OK")
	})
}

// TestBadInput: every malformed or misplaced command gets -ERR and loses
// nothing; the session goes on until too many have come.
func TestBadInput(t *testing.T) {
	h := start(t, setup{cfg: Config{MaxBadCommands: 100}})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, testMessages...)
	c := h.dial()
	for _, tc := range []struct{ cmd, want string }{
		{"", "-ERR Unknown command"},
		{"FROB", "-ERR Unknown command"},
		{"STAT", "-ERR Not logged in"},
		{"LIST", "-ERR Not logged in"},
		{"RETR 1", "-ERR Not logged in"},
		{"NOOP", "-ERR Not logged in"},
		{"PASS x", "-ERR PASS must follow USER"},
		{"USER", "-ERR USER needs a name"},
		{"APOP bob@example.org 0123456789abcdef0123456789abcdef", "-ERR APOP is not supported"},
		{"CAPA x", "-ERR Too many arguments"},
		{"STLS now", "-ERR Too many arguments"},
		{"AUTH FOO", "-ERR Unsupported authentication mechanism"},
		{"AUTH PLAIN !!!", "-ERR Malformed base64"},
		{"AUTH PLAIN a b", "-ERR Too many arguments"},
	} {
		c.expect(tc.cmd, tc.want)
	}
	// USER followed by anything but PASS forgets the name.
	c.expect("USER bob@example.org", "+OK")
	c.expect("NOOP", "-ERR")
	c.expect("PASS "+storetest.Password, "-ERR PASS must follow USER")
	c.login("bob@example.org")
	for _, tc := range []struct{ cmd, want string }{
		{"FROB", "-ERR Unknown command"},
		{"USER bob@example.org", "-ERR Command not valid in this state"},
		{"PASS x", "-ERR Command not valid in this state"},
		{"AUTH PLAIN", "-ERR Command not valid in this state"},
		{"STLS", "-ERR Command not valid in this state"},
		{"STAT 1", "-ERR Too many arguments"},
		{"LIST 1 2", "-ERR Too many arguments"},
		{"UIDL 1 2", "-ERR Too many arguments"},
		{"RSET 1", "-ERR Too many arguments"},
		{"NOOP 1", "-ERR Too many arguments"},
		{"RETR", "-ERR Message number required"},
		{"DELE", "-ERR Message number required"},
		{"RETR 1 2", "-ERR Too many arguments"},
		{"TOP 1", "-ERR TOP needs a message number and a line count"},
		{"TOP 1 2 3", "-ERR Too many arguments"},
		{"TOP 1 -1", "-ERR The line count must be a non-negative number"},
		{"TOP 1 +1", "-ERR The line count must be a non-negative number"},
		{"TOP 1 x", "-ERR The line count must be a non-negative number"},
		{"RETR 0", "-ERR No such message"},
		{"RETR 4", "-ERR No such message"},
		{"LIST 4", "-ERR No such message"},
		{"DELE 99999999999", "-ERR No such message"},
		{"RETR -1", "-ERR Message numbers are decimal digits"},
		{"RETR +1", "-ERR Message numbers are decimal digits"},
		{"RETR 1x", "-ERR Message numbers are decimal digits"},
		{"RETR 0x1", "-ERR Message numbers are decimal digits"},
		{"DELE 1.0", "-ERR Message numbers are decimal digits"},
	} {
		c.expect(tc.cmd, tc.want)
	}
	// Lower case and a bare LF are taken.
	c.write("stat\n")
	if l := c.line(); !strings.HasPrefix(l, "+OK 3 ") {
		t.Fatalf("lower-case stat with a bare LF: %q", l)
	}
	c.expect("QUIT", "+OK Bye, 3 messages left")
	if n := len(h.inbox(bob)); n != 3 {
		t.Fatalf("bad input lost messages: %d left", n)
	}
}

// TestTooManyBadCommands: the connection closes at the limit, which
// failed logins count toward.
func TestTooManyBadCommands(t *testing.T) {
	h := start(t, setup{cfg: Config{MaxBadCommands: 3}})
	h.user("bob@example.org", false)
	c := h.dial()
	c.expect("FROB", "-ERR Unknown command")
	c.expect("USER bob@example.org", "+OK")
	c.expect("PASS wrong", "-ERR [AUTH] Authentication failed")
	c.expect("STAT", "-ERR Not logged in; too many errors, closing connection")
	c.expectClosed()
	h.waitConnections(0)
}

// TestLongLines: a line beyond the limit is refused without being held,
// and the session goes on.
func TestLongLines(t *testing.T) {
	h := start(t, setup{})
	h.user("bob@example.org", false)
	c := h.dial()
	c.expect("NOOP "+strings.Repeat("x", 505), "-ERR Not logged in") // 512 with CRLF
	c.expect("NOOP "+strings.Repeat("x", 506), "-ERR Line too long")
	c.expect("USER "+strings.Repeat("y", 1<<20), "-ERR Line too long")
	c.login("bob@example.org")
	c.expect("STAT", "+OK 0 0")
	// A SASL response may be longer than a command, but not unbounded.
	c2 := h.dial()
	c2.expect("AUTH PLAIN", "+ ")
	c2.expect(strings.Repeat("A", 10000), "-ERR Authentication response too long")
	c2.expect("QUIT", "+OK")
}

// TestPipelining: commands sent together are answered in order (RFC 2449
// 6.6).
func TestPipelining(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, testMessages[0], testMessages[1])
	c := h.dial()
	c.write("USER bob@example.org\r\nPASS " + storetest.Password + "\r\nSTAT\r\nLIST\r\nRETR 2\r\nDELE 1\r\nQUIT\r\n")
	for _, want := range []string{"+OK", "+OK Logged in", "+OK 2 "} {
		if l := c.line(); !strings.HasPrefix(l, want) {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK 2 messages") {
		t.Fatalf("LIST: %q", l)
	}
	c.body()
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("RETR: %q", l)
	}
	if got := unstuff(c.body()); got != crlf(testMessages[1]) {
		t.Fatalf("pipelined RETR = %q", got)
	}
	for _, want := range []string{"+OK Message 1 deleted", "+OK Bye"} {
		if l := c.line(); !strings.HasPrefix(l, want) {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	if n := len(h.inbox(bob)); n != 1 {
		t.Fatalf("%d messages left, want 1", n)
	}
}

// TestMessageGoneMeanwhile: a message another client removes after the
// login is answered -ERR, and QUIT still removes the rest.
func TestMessageGoneMeanwhile(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, testMessages...)
	c := h.dial()
	c.login("bob@example.org")
	msgs := h.inbox(bob)
	if _, err := bob.Remove(context.Background(), storetest.Inbox(t, bob), store.UIDSet{{Start: msgs[1].UID, Stop: msgs[1].UID}}); err != nil {
		t.Fatal(err)
	}
	c.expect("RETR 2", "-ERR Message 2 was removed by another client")
	c.expect("DELE 1", "+OK")
	c.expect("DELE 2", "+OK")
	c.expect("QUIT", "+OK")
	if left := h.inbox(bob); len(left) != 1 || left[0].UID != msgs[2].UID {
		t.Fatalf("left %+v, want message 3", left)
	}
}

// TestReconnectAfterQuit: QUIT releases the maildrop before its +OK, so a
// client reconnecting the moment it reads the +OK finds the maildrop free
// (as Python's poplib test did in CI), with and without messages to remove.
func TestReconnectAfterQuit(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	msgs := make([]string, 0, 60)
	for i := range 60 {
		msgs = append(msgs, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))
	}
	h.deliver(bob, msgs...)
	c := h.dial()
	c.login("bob@example.org")
	for i := range 50 {
		if i%2 == 0 {
			c.expect("DELE 1", "+OK")
		}
		c.expect("QUIT", "+OK")
		c = h.dial()
		c.login("bob@example.org")
	}
	c.expect("QUIT", "+OK")
	if n := len(h.inbox(bob)); n != 35 {
		t.Fatalf("%d messages left, want 35", n)
	}
}

// TestLockSurvivesRedisRestart: a POP3 lock is not in the cache, so a
// Redis restart hands no maildrop to a second node's session; and a
// holder whose lock went (its lease taken over) hears of it at once,
// before it removes anything.
func TestLockSurvivesRedisRestart(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		rs := testsupport.StartRedis(t)
		o := storetest.Options{RedisAddr: rs.Addr, RedisPrefix: "t:"}
		h1 := start(t, setup{db: db, opts: o})
		o.BlobDir = h1.env.BlobDir
		h2 := start(t, setup{env: storetest.Open(t, db, o)})
		bob := h1.user("bob@example.org", false)
		h1.deliver(bob, testMessages...)

		c1 := h1.dial()
		c1.login("bob@example.org")
		rs.Restart()
		c := h2.dial()
		c.expect("USER bob@example.org", "+OK")
		c.expect("PASS "+storetest.Password, "-ERR [IN-USE]")
		c.expect("QUIT", "+OK")

		// The holder's row is taken from under it (as a lease that ran
		// out and was taken by another session would be).
		c1.expect("DELE 1", "+OK")
		if _, err := h1.env.DB.ExecContext(context.Background(), "DELETE FROM maildrop_locks"); err != nil {
			t.Fatal(err)
		}
		c2 := h2.dial()
		c2.login("bob@example.org")
		c1.expect("QUIT", "-ERR [IN-USE]")
		c2.expect("STAT", fmt.Sprintf("+OK %d ", len(testMessages)))
		c2.expect("QUIT", "+OK")
		if n := len(h1.inbox(bob)); n != len(testMessages) {
			t.Fatalf("the old holder removed messages: %d left of %d", n, len(testMessages))
		}
	})
}

// TestLoginWithoutRedis: with Redis down a POP3 login still works: the
// throttle counts on this node, the lock is in SQL, and the login delay
// is let go rather than refuse the user.
func TestLoginWithoutRedis(t *testing.T) {
	rs := testsupport.StartRedis(t)
	h := start(t, setup{cfg: Config{LoginDelay: time.Minute}, opts: storetest.Options{RedisAddr: rs.Addr, RedisPrefix: "t:"}})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, testMessages...)
	rs.Stop()
	c := h.dial()
	c.login("bob@example.org")
	c.expect("DELE 1", "+OK")
	c.expect("QUIT", "+OK")
	if n := len(h.inbox(bob)); n != len(testMessages)-1 {
		t.Fatalf("%d messages left, want %d", n, len(testMessages)-1)
	}
}
