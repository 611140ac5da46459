package imap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func TestStore(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		alice := h.user("alice@example.org", false)
		for i := 0; i < 4; i++ {
			h.deliver(alice, "INBOX", msg(fmt.Sprint("m", i), "x"), store.AppendOptions{})
		}
		// A webmail mark the client cannot see must survive STORE FLAGS.
		acct := h.env.Account(alice)
		inbox := storetest.Inbox(t, acct)
		if _, err := acct.SetFlags(context.Background(), inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, store.FlagTagged, nil); err != nil {
			t.Fatal(err)
		}
		c := h.dial(t)
		c.login("alice@example.org")
		c.ok("SELECT INBOX")

		// The messages are recent to this first session to select INBOX
		// (RFC 3501 2.3.2). A new keyword is announced in FLAGS before
		// the FETCH that shows it (RFC 3501 7.2.6), which the poll after
		// STORE writes, with the UID.
		u := c.ok(`STORE 1:2 +FLAGS (\Flagged $Important)`)
		if want := []string{`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Important)`,
			`* 1 FETCH (UID 1 FLAGS (\Flagged $Important \Recent))`, `* 2 FETCH (UID 2 FLAGS (\Flagged $Important \Recent))`}; !slices.Equal(u, want) {
			t.Errorf("STORE of a new keyword = %q, want %q", u, want)
		}
		must(t, c.ok(`STORE 2 -FLAGS (\Flagged)`), `* 2 FETCH (FLAGS ($Important \Recent))`)
		must(t, c.ok(`STORE 1 FLAGS (\Seen \Answered $Junk)`), `* 1 FETCH (FLAGS (\Seen \Answered $Junk \Recent))`)
		if u := c.ok(`STORE 3 +FLAGS.SILENT (\Draft)`); len(u) != 0 {
			t.Errorf("STORE .SILENT answered %q", u)
		}
		must(t, c.ok(`FETCH 3 FLAGS`), `* 3 FETCH (FLAGS (\Draft \Recent))`)
		must(t, c.ok(`UID STORE 4 +FLAGS \Deleted`), `* 4 FETCH (UID 4 FLAGS (\Deleted \Recent))`)
		// \Recent is the server's and is ignored.
		must(t, c.ok(`STORE 3 -FLAGS (\Recent)`), `* 3 FETCH (FLAGS (\Draft \Recent))`)
		m, err := acct.List(context.Background(), inbox, store.ListQuery{UIDs: store.UIDSet{{Start: 1, Stop: 1}}})
		if err != nil || !m[0].Flags.Has(store.FlagTagged|store.FlagJunk|store.FlagSeen) {
			t.Fatalf("after STORE FLAGS the webmail's mark is gone: %v %v", m, err)
		}

		for _, tc := range []struct{ cmd, want string }{
			{`STORE 1 +FLAGS (\Bogus)`, "BAD"},
			{`STORE 1 FOO (\Seen)`, "BAD"},
			{`STORE 9 +FLAGS (\Seen)`, "BAD"},
			{`STORE 1 +FLAGS (bad"kw)`, "BAD"},
			{`STORE 1 +FLAGS ($a%b)`, "BAD"},
		} {
			c.expect(tc.cmd, tc.want)
		}
		// UID STORE of UIDs not in the mailbox changes nothing.
		if u := c.ok(`UID STORE 50:60 +FLAGS (\Seen)`); len(u) != 0 {
			t.Errorf("UID STORE 50:60 = %q", u)
		}
		c.ok("EXAMINE INBOX")
		c.expect(`STORE 1 +FLAGS (\Seen)`, "NO")
		c.ok("UNSELECT")
		c.expect(`STORE 1 +FLAGS (\Seen)`, "BAD")
	})
}

func TestCopyMoveExpunge(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		alice := h.user("alice@example.org", false)
		for i := 1; i <= 5; i++ {
			h.deliver(alice, "INBOX", msg(fmt.Sprint("m", i), "x"), store.AppendOptions{})
		}
		c := h.dial(t)
		c.login("alice@example.org")
		c.ok("SELECT INBOX")

		// COPY answers COPYUID (RFC 4315).
		_, st := c.do("COPY 1:2 Archive")
		if !strings.HasPrefix(st, "OK [COPYUID ") || !strings.Contains(st, " 1:2 1:2]") {
			t.Errorf("COPY = %q", st)
		}
		c.expect("COPY 1 Nowhere", "NO [TRYCREATE]")
		c.expect("COPY 9 Archive", "BAD")
		c.expect("COPY 1", "BAD")
		if _, st := c.do("UID COPY 99 Archive"); st != "OK COPY completed" {
			t.Errorf("UID COPY of a UID not in the mailbox = %q", st)
		}
		// Copying into the selected mailbox announces the new message.
		u := c.ok("COPY 5 INBOX")
		must(t, u, "* 6 EXISTS")

		// MOVE: COPYUID untagged, then EXPUNGE for each (RFC 6851).
		u = c.ok("MOVE 2:3 Trash")
		must(t, u, "* OK [COPYUID ")
		must(t, u, "* 3 EXPUNGE")
		must(t, u, "* 2 EXPUNGE")
		u = c.ok("UID MOVE 4 Trash")
		must(t, u, "* 2 EXPUNGE")
		// Into the mailbox itself: a new UID (TestCopyMoveSameMailbox).
		u = c.ok("MOVE 3 INBOX")
		must(t, u, "* 3 EXPUNGE")
		must(t, c.ok("STATUS Trash (MESSAGES)"), "MESSAGES 3")
		u = c.ok("FETCH 1:* UID")
		if len(u) != 3 || !strings.Contains(u[2], "UID 7") {
			t.Errorf("after moves INBOX holds %q", u)
		}

		// EXPUNGE removes \Deleted messages; UID EXPUNGE only those named.
		c.ok(`STORE 1:3 +FLAGS.SILENT (\Deleted)`)
		u = c.ok("UID EXPUNGE 5")
		if len(u) != 1 || u[0] != "* 2 EXPUNGE" {
			t.Errorf("UID EXPUNGE 5 = %q", u)
		}
		u = c.ok("EXPUNGE")
		if len(u) != 2 || u[0] != "* 2 EXPUNGE" || u[1] != "* 1 EXPUNGE" {
			t.Errorf("EXPUNGE = %q", u)
		}
		// The library answers a malformed UID set NO [SERVERBUG], not BAD.
		c.expect("UID EXPUNGE x", "NO")

		// CLOSE expunges silently; UNSELECT does not; EXAMINE never does.
		c.ok("SELECT Trash")
		c.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
		c.ok("EXAMINE Trash")
		if u := c.ok("CLOSE"); len(u) != 0 {
			t.Errorf("CLOSE after EXAMINE said %q", u)
		}
		must(t, c.ok("STATUS Trash (MESSAGES)"), "MESSAGES 3")
		c.ok("SELECT Trash")
		c.ok("UNSELECT")
		must(t, c.ok("STATUS Trash (MESSAGES)"), "MESSAGES 3")
		c.ok("SELECT Trash")
		if u := c.ok("CLOSE"); len(u) != 0 {
			t.Errorf("CLOSE said %q", u)
		}
		must(t, c.ok("STATUS Trash (MESSAGES)"), "MESSAGES 2")
		c.expect("EXPUNGE", "BAD")
	})
}

func TestAppend(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		h.user("alice@example.org", false)
		c := h.dial(t)
		c.login("alice@example.org")
		body := "From: a@example.org\r\nSubject: appended\r\n\r\nhello\r\n"

		// Synchronizing literal: wait for the continuation.
		tag := c.next()
		c.send(fmt.Sprintf("%s APPEND Drafts (\\Draft \\Seen kw1) \"05-Nov-2026 14:15:16 +0100\" {%d}\r\n", tag, len(body)))
		if l := c.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("APPEND: got %q, want a continuation", l)
		}
		c.send(body + "\r\n")
		_, st := c.until(tag)
		if !strings.HasPrefix(st, "OK [APPENDUID ") || !strings.Contains(st, " 1]") {
			t.Fatalf("APPEND = %q", st)
		}
		c.ok("SELECT Drafts")
		f := must(t, c.ok("FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])"), "* 1 FETCH")
		for _, want := range []string{`FLAGS (\Seen \Draft kw1 \Recent)`, `INTERNALDATE " 5-Nov-2026 13:15:16 +0000"`, body} {
			if !strings.Contains(f, want) {
				t.Errorf("appended message %q lacks %q", f, want)
			}
		}
		// LITERAL+ (RFC 7888): no continuation; the selected mailbox
		// hears of the new message before the tagged OK.
		u := c.ok(fmt.Sprintf("APPEND Drafts {%d+}\r\n%s", len(body), body))
		must(t, u, "* 2 EXISTS")
		// BINARY's literal8 (RFC 3516).
		c.ok(fmt.Sprintf("APPEND Drafts ~{%d+}\r\n%s", len(body), body))

		for _, tc := range []struct{ cmd, want string }{
			{"APPEND Nowhere {5+}\r\nhello", "NO [TRYCREATE]"},
			{"APPEND Drafts (\\Bogus) {5+}\r\nhello", "BAD"},
			{"APPEND Drafts {0+}\r\n", "NO"},
			// The library answers a malformed date NO [SERVERBUG].
			{"APPEND Drafts \"not a date\" {5}", "NO"},
			{"APPEND Drafts", "BAD"},
			// Over APPENDLIMIT, refused before the data is sent.
			{"APPEND Drafts {52428801}", "NO [TOOBIG]"},
		} {
			c.expect(tc.cmd, tc.want)
		}
		// ENABLE IMAP4rev2 (RFC 5161, RFC 9051 6.3.1).
		must(t, c.ok("ENABLE IMAP4rev2"), "* ENABLED IMAP4rev2")
		u = c.ok("SELECT Drafts")
		must(t, u, `* LIST (\Drafts) "/" "Drafts"`)
		mustNot(t, u, "RECENT")
		// The quota is the store's to enforce.
		c.ok("LOGOUT")
	})
}

func TestAppendOverQuota(t *testing.T) {
	quota := int64(1000)
	h := start(t, setup{})
	ctx := context.Background()
	h.env.Store.AddDomain(ctx, "example.org")
	if _, err := h.env.Session.CreateUser(ctx, bsessionNewUser("alice@example.org", store.LimitOverrides{QuotaBytes: &quota})); err != nil {
		t.Fatal(err)
	}
	c := h.dial(t)
	c.login("alice@example.org")
	big := strings.Repeat("x", 1200)
	c.expect(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(big), big), "NO [OVERQUOTA]")
	half := "Subject: s\r\n\r\n" + strings.Repeat("y", 600)
	c.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(half), half))
	c.ok("SELECT INBOX")
	c.expect("COPY 1 Archive", "NO [OVERQUOTA]")
	c.ok("MOVE 1 Archive") // a move takes no more room
}
