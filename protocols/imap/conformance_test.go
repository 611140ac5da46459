package imap

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// ID (RFC 2971), which the library does not dispatch, is answered by the
// guard in every state, in order with the commands around it, including
// when pipelined; bad parameters are BAD.
func TestID(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	const idLine = `* ID ("name" "Basalt")`
	for _, tc := range []struct{ cmd, status string }{
		{"ID NIL", "OK ID completed"},
		{`id ("name" "imaplib" "version" "3.12" "os" NIL)`, "OK ID completed"},
	} {
		u, st := c.do(tc.cmd)
		if st != tc.status || !slices.Equal(u, []string{idLine}) {
			t.Errorf("%s before login: %q %q", tc.cmd, u, st)
		}
	}
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	for _, tc := range []struct{ cmd, status string }{
		{`ID ("name" "x")`, "OK ID completed"},
		{`ID ("name")`, "BAD [CLIENTBUG] Syntax error in ID parameters (RFC 2971)"},
		{`ID (`, "BAD [CLIENTBUG] Syntax error in ID parameters (RFC 2971)"},
		{`ID`, "BAD [CLIENTBUG] Syntax error in ID parameters (RFC 2971)"},
		{`ID ("a-field-name-longer-than-thirty-octets" "x")`, "BAD [CLIENTBUG] Syntax error in ID parameters (RFC 2971)"},
	} {
		u, st := c.do(tc.cmd)
		want := []string{idLine}
		if st[:3] == "BAD" {
			want = nil
		}
		if st != tc.status || !slices.Equal(u, want) {
			t.Errorf("%s: got %q %q, want %q %q", tc.cmd, u, st, want, tc.status)
		}
	}
	// Pipelined with other commands in one write: answered in order.
	c.send("p1 NOOP\r\np2 ID NIL\r\np3 CHECK\r\n")
	var got []string
	for len(got) < 4 {
		got = append(got, c.line())
	}
	if want := []string{"p1 OK NOOP completed", idLine, "p2 OK ID completed", "p3 OK CHECK completed"}; !slices.Equal(got, want) {
		t.Errorf("pipelined: %q, want %q", got, want)
	}
	// An ID line sent a byte at a time is still one command.
	for _, b := range []byte("s1 ID NIL\r\n") {
		c.send(string(b))
	}
	if u, st := c.until("s1"); st != "OK ID completed" || !slices.Equal(u, []string{idLine}) {
		t.Errorf("ID sent bytewise: %q %q", u, st)
	}
	c.ok("NOOP")
}

// LIST and LSUB patterns of any ASTRING-CHARs work, though they are not
// valid modified UTF-7: the "&" means itself.
func TestListPatternChars(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	c.login("alice@example.org")
	const pattern = "!#$&'+,-.0123456789:;<=>?@^_`|}%*"
	for _, cmd := range []string{`LIST "" ` + pattern, `LSUB "" ` + pattern, `LIST "" "` + pattern + `"`, `LIST (SUBSCRIBED) "" (` + pattern + ` INBOX)`} {
		if u, st := c.do(cmd); st != "OK "+cmd[:4]+" completed" || len(u) > 1 {
			t.Errorf("%s: %q %q", cmd, u, st)
		}
	}
	// A mailbox whose name holds those characters ("&" is "&-" in
	// modified UTF-7) is matched by them.
	c.ok(`CREATE "!#$&-'+,-.0123456789:;<=>?@^_` + "`" + `|}"`)
	for _, cmd := range []string{`LIST "" ` + pattern, `LSUB "" ` + pattern, `LIST "" !#$&'+*`} {
		u, st := c.do(cmd)
		want := []string{"* " + cmd[:4] + ` (\HasNoChildren) "/" "!#$&-'+,-.0123456789:;<=>?@^_` + "`" + `|}"`}
		if cmd[:4] == "LSUB" {
			want[0] = `* LSUB (\HasNoChildren \Subscribed) "/" "!#$&-'+,-.0123456789:;<=>?@^_` + "`" + `|}"`
		}
		if st != "OK "+cmd[:4]+" completed" || !slices.Equal(u, want) {
			t.Errorf("%s: got %q %q, want %q", cmd, u, st, want)
		}
	}
	// Valid modified UTF-7 is still decoded.
	c.ok(`CREATE "Caf&AOk-"`)
	if u := c.ok(`LIST "" "Caf&AOk-"`); !slices.Equal(u, []string{`* LIST (\HasNoChildren) "/" "Caf&AOk-"`}) {
		t.Errorf("LIST Caf&AOk- = %q", u)
	}
}

// validMUTF7 takes what the library's decoder takes (RFC 3501 5.1.3).
func TestValidMUTF7(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"INBOX", true}, {"Caf&AOk-", true}, {"&-", true}, {"a&-b&-", true}, {"Café", true},
		{"&Jjo", false}, {"&Jjo-", true}, {"&'+,-", false}, {"&AGEAYg-", false}, // "ab" must not be shifted
		{"&AOk-&AOk-", false}, {"&AOk-x&AOk-", true}, {"&2D3cAA-", true}, {"&2D0-", false},
		{"a\x01b", false}, {"&AOk", false}, {"&A-", false},
	} {
		if got := validMUTF7(tc.s); got != tc.ok {
			t.Errorf("validMUTF7(%q) = %v, want %v", tc.s, got, tc.ok)
		}
	}
}

// Names with LIST's wildcards, or a level "." or "..", are refused by
// CREATE and RENAME with the store's reason (RFC 5530 CANNOT).
func TestMailboxNamesRefused(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("CREATE Box")
	const (
		wild = `NO [CANNOT] mailbox name %q holds a wildcard (* or %%)`
		dots = `NO [CANNOT] mailbox name %q has a level . or ..`
	)
	for _, tc := range []struct{ name, want string }{
		{"*", wild}, {"%", wild}, {"a*", wild}, {"Box/%", wild},
		{".", dots}, {"..", dots}, {"Box/..", dots}, {"./x", dots}, {"a/./b", dots},
	} {
		want := fmt.Sprintf(tc.want, tc.name)
		for _, cmd := range []string{"CREATE %q", "RENAME Box %q"} {
			cmd = fmt.Sprintf(cmd, tc.name)
			if u, st := c.do(cmd); st != want || len(u) != 0 {
				t.Errorf("%s: %q %q, want %q", cmd, u, st, want)
			}
		}
	}
	if u := c.ok(`LIST "" *`); len(u) != 7 {
		t.Errorf("LIST after refused names: %q", u)
	}
	c.ok(`CREATE "..x/.y"`)
}

// COPY and MOVE into the selected mailbox itself make new messages with
// new UIDs (RFC 6851 3.3, RFC 4315 COPYUID); MOVE expunges the originals.
func TestCopyMoveSameMailbox(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		alice := h.user("alice@example.org", false)
		h.deliver(alice, "INBOX", msg("one", "1"), store.AppendOptions{})
		h.deliver(alice, "INBOX", msg("two", "2"), store.AppendOptions{})
		c := h.dial(t)
		c.login("alice@example.org")
		v := strings.TrimSuffix(strings.TrimPrefix(must(t, c.ok("SELECT INBOX"), "UIDVALIDITY"), "* OK [UIDVALIDITY "), "] UIDs valid")
		c.ok(`STORE 1 +FLAGS (\Flagged)`)
		// The copies are recent to the session that made them (RFC 3501
		// 2.3.2), and this IMAP4rev1 session is told so.
		for _, tc := range []struct {
			cmd      string
			untagged []string
			status   string
		}{
			{"COPY 1 INBOX", []string{"* 3 EXISTS", "* 3 RECENT"}, "OK [COPYUID " + v + " 1 3] COPY completed"},
			{"UID MOVE 2 INBOX", []string{"* OK [COPYUID " + v + " 2 4] COPY completed", "* 2 EXPUNGE", "* 3 EXISTS", "* 3 RECENT"}, "OK UID MOVE completed"},
			{"MOVE 1:2 inbox", []string{"* OK [COPYUID " + v + " 1,3 5:6] COPY completed", "* 2 EXPUNGE", "* 1 EXPUNGE", "* 3 EXISTS", "* 3 RECENT"}, "OK MOVE completed"},
			{"UID FETCH 1:* (UID FLAGS)", []string{`* 1 FETCH (UID 4 FLAGS (\Recent))`, `* 2 FETCH (UID 5 FLAGS (\Flagged \Recent))`, `* 3 FETCH (UID 6 FLAGS (\Flagged \Recent))`}, "OK UID FETCH completed"},
		} {
			u, st := c.do(tc.cmd)
			if st != tc.status || !slices.Equal(u, tc.untagged) {
				t.Errorf("%s: got %q %q, want %q %q", tc.cmd, u, st, tc.untagged, tc.status)
			}
		}
		if got := storetest.Messages(t, h.env.Account(alice), "INBOX"); len(got) != 3 {
			t.Errorf("INBOX holds %d messages, want 3", len(got))
		}
		must(t, c.ok("STATUS INBOX (MESSAGES UIDNEXT)"), "(MESSAGES 3 UIDNEXT 7)")
	})
}

// Subscriptions against RFC 5258 section 5's examples (under R/ and S/,
// apart from the user's own mailboxes), LSUB's \Noselect (RFC 3501
// 6.3.9), and subscriptions that outlive their mailboxes (\NonExistent).
func TestListExtendedExamples(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		h.user("alice@example.org", false)
		c := h.dial(t)
		c.login("alice@example.org")
		for _, n := range []string{"R/Fruit/Apple", "R/Fruit/Banana", "R/Fruit/Peach", "R/Tofu", "R/Vegetable/Broccoli", "R/Vegetable/Corn",
			"S/foo2/bar1", "S/foo2/bar2", "S/baz2/bar2", "S/baz2/bar22", "S/baz2/bar222", "S/eps2/mamba", "S/qux2/bar2",
			"T/Xyzzy/Plugh"} {
			c.ok("CREATE " + n)
		}
		// New mailboxes start subscribed: start from none.
		for _, l := range c.ok(`LIST (SUBSCRIBED) "" *`) {
			if name := l[strings.LastIndex(l, `"/" `)+4:]; len(name) > 2 && name[0] == '"' && strings.ContainsRune("RST", rune(name[1])) && strings.ContainsRune(`/"`, rune(name[2])) {
				c.ok("UNSUBSCRIBE " + name)
			}
		}
		for _, n := range []string{"R/Fruit/Banana", "R/Fruit/Peach", "R/Vegetable", "R/Vegetable/Broccoli",
			"S/foo2/bar1", "S/foo2/bar2", "S/baz2/bar2", "S/baz2/bar22", "S/baz2/bar222", "S/eps2", "S/eps2/mamba", "S/qux2/bar2",
			"T/Xyzzy", "T/Xyzzy/Plugh"} {
			c.ok("SUBSCRIBE " + n)
		}
		// Deleting a mailbox keeps its subscription (RFC 3501 6.3.6).
		c.ok("DELETE R/Fruit/Peach")
		c.ok("DELETE T/Xyzzy/Plugh")
		c.ok("DELETE T/Xyzzy")
		c.ok("UNSUBSCRIBE T/Xyzzy") // gone, and still unsubscribed
		c.expect("UNSUBSCRIBE T/Xyzzy", "NO [NONEXISTENT]")

		for _, tc := range []struct {
			cmd  string
			want []string
		}{
			// Example 5.2: subscribed names, one without its mailbox.
			{`LIST (SUBSCRIBED) "" R/*`, []string{
				`* LIST (\HasNoChildren \Subscribed) "/" "R/Fruit/Banana"`,
				`* LIST (\NonExistent \Subscribed) "/" "R/Fruit/Peach"`,
				`* LIST (\HasChildren \Subscribed) "/" "R/Vegetable"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "R/Vegetable/Broccoli"`}},
			// Example 5.3: RETURN (CHILDREN).
			{`LIST () "" R/% RETURN (CHILDREN)`, []string{
				`* LIST (\HasChildren) "/" "R/Fruit"`,
				`* LIST (\HasNoChildren) "/" "R/Tofu"`,
				`* LIST (\HasChildren) "/" "R/Vegetable"`}},
			// Example 5.5: RECURSIVEMATCH with "%".
			{`LIST (SUBSCRIBED RECURSIVEMATCH) "" R/% RETURN (CHILDREN)`, []string{
				`* LIST (\HasChildren) "/" "R/Fruit" (CHILDINFO ("SUBSCRIBED"))`,
				`* LIST (\HasChildren \Subscribed) "/" "R/Vegetable" (CHILDINFO ("SUBSCRIBED"))`}},
			// Example 5.6: RETURN (SUBSCRIBED) lists mailboxes only.
			{`LIST "" R/* RETURN (CHILDREN SUBSCRIBED)`, []string{
				`* LIST (\HasChildren) "/" "R/Fruit"`,
				`* LIST (\HasNoChildren) "/" "R/Fruit/Apple"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "R/Fruit/Banana"`,
				`* LIST (\HasNoChildren) "/" "R/Tofu"`,
				`* LIST (\HasChildren \Subscribed) "/" "R/Vegetable"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "R/Vegetable/Broccoli"`,
				`* LIST (\HasNoChildren) "/" "R/Vegetable/Corn"`}},
			// Example 5.7: several patterns.
			{`LIST "" (INBOX R/Fruit/% R/Vegetable)`, []string{
				`* LIST (\HasNoChildren) "/" INBOX`,
				`* LIST (\HasNoChildren) "/" "R/Fruit/Apple"`,
				`* LIST (\HasNoChildren) "/" "R/Fruit/Banana"`,
				`* LIST (\HasChildren) "/" "R/Vegetable"`}},
			// Example 5.9: CHILDINFO where a subscribed descendant is
			// not matched itself, or under a subscribed name.
			{`LIST (SUBSCRIBED RECURSIVEMATCH) "" S/*2`, []string{
				`* LIST (\HasNoChildren \Subscribed) "/" "S/baz2/bar2"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/baz2/bar22"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/baz2/bar222"`,
				`* LIST (\HasChildren \Subscribed) "/" "S/eps2" (CHILDINFO ("SUBSCRIBED"))`,
				`* LIST (\HasChildren) "/" "S/foo2" (CHILDINFO ("SUBSCRIBED"))`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/foo2/bar2"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/qux2/bar2"`}},
			{`LIST (SUBSCRIBED RECURSIVEMATCH) "" S/*`, []string{
				`* LIST (\HasNoChildren \Subscribed) "/" "S/baz2/bar2"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/baz2/bar22"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/baz2/bar222"`,
				`* LIST (\HasChildren \Subscribed) "/" "S/eps2" (CHILDINFO ("SUBSCRIBED"))`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/eps2/mamba"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/foo2/bar1"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/foo2/bar2"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/qux2/bar2"`}},
			// Example 5.10: several patterns; a descendant one pattern
			// matches is not CHILDINFO of another's match.
			{`LIST (SUBSCRIBED RECURSIVEMATCH) "" (S/% S/foo2/%)`, []string{
				`* LIST (\HasChildren) "/" "S/baz2" (CHILDINFO ("SUBSCRIBED"))`,
				`* LIST (\HasChildren \Subscribed) "/" "S/eps2" (CHILDINFO ("SUBSCRIBED"))`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/foo2/bar1"`,
				`* LIST (\HasNoChildren \Subscribed) "/" "S/foo2/bar2"`,
				`* LIST (\HasChildren) "/" "S/qux2" (CHILDINFO ("SUBSCRIBED"))`}},
			// Example 5.8: a level with no mailbox above a subscribed name.
			{`LIST (SUBSCRIBED RECURSIVEMATCH) "" T/%`, []string{
				`* LIST (\NonExistent) "/" "T/Xyzzy" (CHILDINFO ("SUBSCRIBED"))`}},
			{`LIST (SUBSCRIBED) "" T/*`, []string{
				`* LIST (\NonExistent \Subscribed) "/" "T/Xyzzy/Plugh"`}},
			// LSUB "%": the unsubscribed parent of subscribed children is
			// \Noselect (RFC 3501 6.3.9); "*" lists the children instead.
			{`LSUB "" R/%`, []string{
				`* LSUB (\Noselect) "/" "R/Fruit"`,
				`* LSUB (\HasChildren \Subscribed) "/" "R/Vegetable"`}},
			{`LSUB "" R/Fruit/*`, []string{
				`* LSUB (\HasNoChildren \Subscribed) "/" "R/Fruit/Banana"`,
				`* LSUB (\Noselect \Subscribed) "/" "R/Fruit/Peach"`}},
			{`LSUB "" T/%`, []string{`* LSUB (\Noselect) "/" "T/Xyzzy"`}},
			{`LIST (SUBSCRIBED) "" %`, []string{
				`* LIST (\HasNoChildren \Subscribed \Archive) "/" "Archive"`,
				`* LIST (\HasNoChildren \Subscribed \Drafts) "/" "Drafts"`,
				`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
				`* LIST (\HasNoChildren \Subscribed \Junk) "/" "Junk"`,
				`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`,
				`* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`}},
		} {
			u, st := c.do(tc.cmd)
			if !strings.HasPrefix(st, "OK") || !slices.Equal(u, tc.want) {
				t.Errorf("%s:\n got %q %q\nwant %q", tc.cmd, u, st, tc.want)
			}
		}
		// A mailbox made again under the name takes its subscription.
		c.ok("CREATE R/Fruit/Peach")
		must(t, c.ok(`LIST (SUBSCRIBED) "" R/Fruit/Peach`), `* LIST (\HasNoChildren \Subscribed) "/" "R/Fruit/Peach"`)
		c.ok("UNSUBSCRIBE T/Xyzzy/Plugh")
		if u := c.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" T/*`); len(u) != 0 {
			t.Errorf("after the last unsubscribe under T: %q", u)
		}
	})
}

const binaryMsg = "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: BINARY[-6.1] \"BINARY[-3]\"\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n" +
	"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =3D soft=\r\nbreak\r\n" +
	"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n" +
	"--b--\r\n"

// BINARY[part]<origin.length> (RFC 3516 4.2) answers BINARY[part]<origin>
// with a literal8 of the decoded range, for base64, quoted-printable and
// an empty part.
func TestBinaryPartial(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", []byte(binaryMsg), store.AppendOptions{})
	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	for _, tc := range []struct{ items, want string }{
		{"BINARY.PEEK[1]<2.3>", "* 1 FETCH (BINARY[1]<2> ~{3}\r\n\x02\x03\x04)"},
		{"BINARY.PEEK[1]<8.100>", "* 1 FETCH (BINARY[1]<8> ~{2}\r\n\x08\x09)"},
		{"BINARY.PEEK[1]<100.2>", "* 1 FETCH (BINARY[1]<100> ~{0}\r\n)"},
		{"BINARY.PEEK[2]<0.4>", "* 1 FETCH (BINARY[2]<0> ~{4}\r\ncaf\xc3)"},
		{"BINARY.PEEK[2]<4.9>", "* 1 FETCH (BINARY[2]<4> ~{9}\r\n\xa9 = softb)"},
		{"BINARY.PEEK[3]", "* 1 FETCH (BINARY[3] ~{0}\r\n)"},
		{"BINARY.PEEK[3]<0.10>", "* 1 FETCH (BINARY[3]<0> ~{0}\r\n)"},
		{"BINARY.SIZE[2]", "* 1 FETCH (BINARY.SIZE[2] 17)"},
		{"(BINARY.PEEK[1]<1.1> BINARY.PEEK[2]<1.2> BINARY.PEEK[1])", "* 1 FETCH (BINARY[1]<1> ~{1}\r\n\x01 BINARY[2]<1> ~{2}\r\naf BINARY[1] ~{10}\r\n\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09)"},
		// The marks are the guard's only: a subject that looks like one
		// (quoted) goes out as it is.
		{"(ENVELOPE BINARY.PEEK[1]<3.1>)", `BINARY[-6.1] \"BINARY[-3]\"`},
		{"BINARY.PEEK[1]<3.1>", "* 1 FETCH (BINARY[1]<3> ~{1}\r\n\x03)"},
	} {
		u, st := c.do("FETCH 1 " + tc.items)
		if st != "OK FETCH completed" || len(u) != 1 || !strings.Contains(u[0], tc.want) {
			t.Errorf("FETCH 1 %s: got %q %q, want %q", tc.items, u, st, tc.want)
		}
	}
	// BODY sections keep theirs.
	must(t, c.ok("FETCH 1 BODY.PEEK[1]<0.4>"), "* 1 FETCH (BODY[1]<0> {4}\r\nAAEC)")
}

// An obsolete source route is the address's adl in ENVELOPE (RFC 3501
// 7.4.2), which the library cannot write: the guard swaps it in.
func TestEnvelopeSourceRoute(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", []byte("From: Bob <@route1,@route2:bob@example.org>\r\nTo: <@hop:alice@example.org>, carol@example.org\r\n"+
		"Cc: \"(NIL NIL \\\"x\\\" \\\"y\\\")\" <@r:x@y>\r\nSubject: routes\r\nMessage-ID: <r1@example.org>\r\n\r\nbody\r\n"), store.AppendOptions{})
	h.deliver(alice, "INBOX", []byte("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: none\r\n\r\nbody\r\n"), store.AppendOptions{})
	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	const from = `(("Bob" "@route1,@route2" "bob" "example.org"))`
	want := `* 1 FETCH (UID 1 ENVELOPE (NIL "routes" ` + from + " " + from + " " + from +
		` ((NIL "@hop" "alice" "example.org") (NIL NIL "carol" "example.org")) (("(NIL NIL \"x\" \"y\")" "@r" "x" "y")) NIL NIL "<r1@example.org>") BODY[TEXT] {6}` + "\r\nbody\r\n)"
	for _, cmd := range []string{"FETCH 1 (UID ENVELOPE BODY.PEEK[TEXT])", "FETCH 1:2 (UID ENVELOPE BODY.PEEK[TEXT])"} {
		u := c.ok(cmd)
		if u[0] != want {
			t.Errorf("%s:\n got %q\nwant %q", cmd, u[0], want)
		}
	}
	// The next message's addresses are its own.
	must(t, c.ok("FETCH 2 ENVELOPE"), `((NIL NIL "bob" "example.org"))`)

	// An attached message's envelope in BODYSTRUCTURE, and in BODY too.
	h.deliver(alice, "INBOX", []byte("From: a@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"+
		"From: <@gw:old@example.net>\r\nSubject: inner\r\n\r\ninner\r\n--b--\r\n"), store.AppendOptions{})
	const inner = `((NIL "@gw" "old" "example.net"))`
	c.ok("NOOP")
	for _, items := range []string{"BODYSTRUCTURE", "BODY", "(BODY BODYSTRUCTURE)", "(ENVELOPE BODYSTRUCTURE)"} {
		got := must(t, c.ok("FETCH 3 "+items), "* 3 FETCH")
		// From, and the sender and reply-to taken from it: three each time.
		if n := strings.Count(got, inner); n != 3*strings.Count(items, "BODY") || strings.Contains(got, `(NIL NIL "old"`) {
			t.Errorf("FETCH 3 %s: %d routed inner senders in %q", items, n, got)
		}
	}
}

// The same through Python's imaplib: testdata/imaplib_conformance.py.
func TestInteropImaplibConformance(t *testing.T) {
	python := testsupport.NeedCommand(t, "python3")
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		h.user("alice@example.org", false)
		out := run(t, nil, python, "testdata/imaplib_conformance.py", "127.0.0.1", port(h.addr), "alice@example.org", storetest.Password)
		if !strings.Contains(out, "ALL OK") {
			t.Fatalf("imaplib session:\n%s", out)
		}
	})
}

// A routed address is swapped in where it is, not at an earlier address
// written the same way without the route: a sender could otherwise move
// a route onto another field (here To's onto From).
func TestEnvelopeSourceRouteInPlace(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", []byte("From: bob@example.org\r\nTo: <@evil:bob@example.org>\r\nSubject: s\r\n\r\nbody\r\n"), store.AppendOptions{})
	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	const plain = `((NIL NIL "bob" "example.org"))`
	want := `* 1 FETCH (ENVELOPE (NIL "s" ` + plain + " " + plain + " " + plain + ` ((NIL "@evil" "bob" "example.org")) NIL NIL NIL NIL))`
	if u := c.ok("FETCH 1 ENVELOPE"); u[0] != want {
		t.Errorf("got  %q\nwant %q", u[0], want)
	}
	// Nor does an attached message's route go to the message's own
	// envelope, written first.
	h.deliver(alice, "INBOX", []byte("From: bob@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"+
		"From: <@evil:bob@example.org>\r\nSubject: inner\r\n\r\ninner\r\n"), store.AppendOptions{})
	c.ok("NOOP")
	got := must(t, c.ok("FETCH 2 (ENVELOPE BODYSTRUCTURE)"), "* 2 FETCH")
	env, structure, _ := strings.Cut(got, "BODYSTRUCTURE")
	if strings.Contains(env, "@evil") || strings.Count(structure, `(NIL "@evil" "bob" "example.org")`) != 3 {
		t.Errorf("routes misplaced: %q", got)
	}
}
