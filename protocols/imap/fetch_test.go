package imap

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/message"
	"basalt/store"
)

func TestGreetingAndCapabilities(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	for _, want := range []string{"IMAP4rev2", "IMAP4rev1", "STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR", "LITERAL-"} {
		if !strings.Contains(c.greeting, " "+want) {
			t.Errorf("greeting %q lacks %s", c.greeting, want)
		}
	}
	if strings.Contains(c.greeting, "AUTH=CRAM-MD5") {
		t.Errorf("CRAM-MD5 offered though the session service has it off: %q", c.greeting)
	}
	c.login("alice@example.org")
	caps := must(t, c.ok("CAPABILITY"), "* CAPABILITY")
	for _, want := range []string{"IDLE", "MOVE", "UIDPLUS", "NAMESPACE", "SPECIAL-USE", "CREATE-SPECIAL-USE",
		"LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "CHILDREN", "ENABLE", "LITERAL+", "UNSELECT",
		"UNAUTHENTICATE", "ESEARCH", "SEARCHRES", "BINARY", "APPENDLIMIT=52428800"} {
		if !strings.Contains(caps+" ", " "+want+" ") {
			t.Errorf("capabilities %q lack %s", caps, want)
		}
	}
	// What the library release cannot dispatch is not offered; nor ID,
	// which the guard answers but the library cannot advertise (quirks.go).
	for _, never := range []string{"QUOTA", "ACL", "SORT", "THREAD", "ID", "CONDSTORE", "QRESYNC", "STARTTLS", "AUTH=PLAIN"} {
		if strings.Contains(caps+" ", " "+never+" ") {
			t.Errorf("capabilities %q offer %s", caps, never)
		}
	}
}

func TestLogin(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		h.user("alice@example.org", false)
		sam := h.user("sam@example.org", true)
		h.deliver(sam, "INBOX", msg("Plans", "Meet at the old mill at nine."), store.AppendOptions{})

		c := h.dial(t)
		c.expect(`LOGIN alice@example.org "wrong password"`, "NO [AUTHENTICATIONFAILED]")
		c.expect(`LOGIN nobody@example.org "wrong password"`, "NO [AUTHENTICATIONFAILED]")
		c.expect(`SELECT INBOX`, "BAD")
		c.login("alice@example.org")
		c.expect(`LOGIN alice@example.org x`, "BAD")
		c.ok("LOGOUT")

		// A secure user's mail, stored encrypted, opens with the key
		// unlocked at login.
		c2 := h.dial(t)
		c2.login("sam@example.org")
		c2.ok("SELECT INBOX")
		body := must(t, c2.ok("FETCH 1 BODY[TEXT]"), "* 1 FETCH")
		if !strings.HasSuffix(body, "{31}\r\nMeet at the old mill at nine.\r\n)") {
			t.Errorf("secure user's FETCH BODY[TEXT] = %q", body)
		}
	})
}

func TestSelectAndFetch(t *testing.T) {
	// Subtest names stay unique: a "#01" in a SQLite file path would end
	// the path at the "#".
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			// A secure user's mail, parse included, opens with the key
			// unlocked at login.
			name = "secure"
		}
		t.Run(name, func(t *testing.T) {
			testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
				testSelectAndFetch(t, db, secure)
			})
		})
	}
}

const multipartMsg = "From: Bob <bob@example.org>\r\nTo: alice@example.org, \"Carol C\" <carol@example.org>\r\n" +
	"Subject: =?utf-8?q?caf=C3=A9?= report\r\nDate: Sun, 01 Nov 2026 12:00:00 +0100\r\n" +
	"Message-ID: <m1@example.org>\r\nIn-Reply-To: <m0@example.org>\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Alice,\r\nthe report.\r\n" +
	"--b1\r\nContent-Type: application/octet-stream; name=\"r.bin\"\r\nContent-Transfer-Encoding: base64\r\n" +
	"Content-Disposition: attachment; filename=\"r.bin\"\r\n\r\nAAECAwQ=\r\n" +
	"--b1--\r\n"

func testSelectAndFetch(t *testing.T, db testsupport.Database, secure bool) {
	h := start(t, setup{db: db})
	alice := h.user("alice@example.org", secure)
	date := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	h.deliver(alice, "INBOX", msg("first", "one"), store.AppendOptions{Flags: store.FlagSeen})
	h.deliver(alice, "INBOX", []byte(multipartMsg), store.AppendOptions{InternalDate: date, Keywords: []string{"$Label1"}})

	c := h.dial(t)
	c.login("alice@example.org")
	u := c.ok("SELECT INBOX")
	must(t, u, "* 2 EXISTS")
	must(t, u, "* OK [UIDVALIDITY ")
	must(t, u, "* OK [UIDNEXT 3]")
	must(t, u, "* OK [UNSEEN 2]")
	// $Label1 is in use (RFC 3501 7.2.6: FLAGS lists the keywords), and
	// both messages are recent to this first session to select INBOX.
	must(t, u, "* 2 RECENT")
	must(t, u, `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk $Label1)`)
	must(t, u, `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Junk \*)]`)

	u = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)")
	must(t, u, `* 1 FETCH (UID 1 FLAGS (\Seen \Recent) INTERNALDATE `)
	must(t, u, `* 2 FETCH (UID 2 FLAGS ($Label1 \Recent) INTERNALDATE " 2-Nov-2026 10:30:00 +0000" RFC822.SIZE `+fmt.Sprint(len(multipartMsg))+`)`)

	env := must(t, c.ok("FETCH 2 ENVELOPE"), "* 2 FETCH")
	for _, want := range []string{`"Sun, 01 Nov 2026 12:00:00 +0100"`, `"=?utf-8?q?caf=C3=A9_report?="`,
		`(("Bob" NIL "bob" "example.org"))`, `((NIL NIL "alice" "example.org") ("Carol C" NIL "carol" "example.org"))`,
		`"<m0@example.org>" "<m1@example.org>"`} {
		if !strings.Contains(env, want) {
			t.Errorf("ENVELOPE %q lacks %s", env, want)
		}
	}
	bs := must(t, c.ok("FETCH 2 BODYSTRUCTURE"), "* 2 FETCH")
	for _, want := range []string{`("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 25 2`,
		`("application" "octet-stream" ("name" "r.bin") NIL NIL "base64" 8 NIL ("attachment" ("filename" "r.bin")) NIL NIL) "mixed" ("boundary" "b1")`} {
		if !strings.Contains(bs, want) {
			t.Errorf("BODYSTRUCTURE %q lacks %s", bs, want)
		}
	}
	body := must(t, c.ok("FETCH 2 BODY"), "* 2 FETCH")
	if !strings.Contains(body, `BODY (("text" "plain"`) || strings.Contains(body, "attachment") {
		t.Errorf("BODY (non-extended) = %q", body)
	}

	// Sections, cut by the stored offsets.
	for _, tc := range []struct{ item, want string }{
		// The line break before a boundary is the boundary's (RFC 2046 5.1.1).
		{"BODY.PEEK[1]", "BODY[1] {25}\r\nHello Alice,\r\nthe report.)"},
		{"BODY.PEEK[2]", "BODY[2] {8}\r\nAAECAwQ=)"},
		{"BODY.PEEK[2.MIME]", "BODY[2.MIME] {"},
		{"BODY.PEEK[HEADER.FIELDS (Subject message-id)]", "BODY[HEADER.FIELDS (\"Subject\" \"message-id\")] {71}\r\nSubject: =?utf-8?q?caf=C3=A9?= report\r\nMessage-ID: <m1@example.org>\r\n\r\n"},
		{"BODY.PEEK[TEXT]<0.7>", "BODY[TEXT]<0> {7}\r\n--b1\r\nC"},
		{"BODY.PEEK[]<100000.10>", "BODY[]<100000> {0}\r\n"},
		{"BINARY.PEEK[2]", "BINARY[2] ~{5}\r\n\x00\x01\x02\x03\x04"},
		{"BINARY.SIZE[2]", "BINARY.SIZE[2] 5"},
		{"BODY.PEEK[7]", "BODY[7] {0}\r\n"},
		{"RFC822.HEADER", "RFC822.HEADER {"},
	} {
		got := must(t, c.ok("FETCH 2 "+tc.item), "* 2 FETCH")
		if !strings.Contains(got, tc.want) {
			t.Errorf("FETCH %s = %q, want %q", tc.item, got, tc.want)
		}
	}
	hdr := must(t, c.ok("FETCH 2 BODY.PEEK[HEADER.FIELDS.NOT (Subject To From Date Message-ID In-Reply-To MIME-Version)]"), "* 2 FETCH")
	if !strings.HasSuffix(hdr, "{48}\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n)") {
		t.Errorf("HEADER.FIELDS.NOT = %q", hdr)
	}
	// PEEK left \Seen alone; BODY[] sets it and says so.
	must(t, c.ok("FETCH 2 FLAGS"), `* 2 FETCH (FLAGS ($Label1 \Recent))`)
	full := must(t, c.ok("FETCH 2 BODY[]"), "* 2 FETCH")
	if !strings.Contains(full, `FLAGS (\Seen $Label1 \Recent)`) || !strings.Contains(full, "BODY[] {"+fmt.Sprint(len(multipartMsg))+"}\r\n"+multipartMsg) {
		t.Errorf("FETCH BODY[] = %q", full)
	}
	must(t, c.ok("FETCH 2 FLAGS"), `* 2 FETCH (FLAGS (\Seen $Label1 \Recent))`)
	// No unilateral FETCH for this session's own change.
	mustNot(t, c.ok("NOOP"), "FETCH")

	// UID FETCH names messages by UID and includes the UID.
	u = c.ok("UID FETCH 2:* (FLAGS)")
	must(t, u, `* 2 FETCH (UID 2 FLAGS`)
	if len(u) != 1 {
		t.Errorf("UID FETCH 2:* = %q", u)
	}
	// EXAMINE is read-only: BODY[] does not set \Seen there.
	c.ok("STORE 2 -FLAGS (\\Seen)")
	u = c.ok("EXAMINE INBOX")
	must(t, u, "* OK [PERMANENTFLAGS ()]")
	c.ok("FETCH 2 BODY[1]")
	// The first SELECT claimed both messages as recent: EXAMINE shows
	// them as no longer recent (RFC 3501 2.3.2).
	must(t, c.ok("FETCH 2 FLAGS"), `* 2 FETCH (FLAGS ($Label1))`)
}

func TestFetchBadInput(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	mallory := h.user("mallory@example.org", false)
	for i := 0; i < 3; i++ {
		h.deliver(alice, "INBOX", msg(fmt.Sprint("m", i), "x"), store.AppendOptions{})
	}
	// Mallory's message has a UID alice's INBOX does not.
	for i := 0; i < 5; i++ {
		h.deliver(mallory, "INBOX", msg("secret", "mallory's"), store.AppendOptions{})
	}
	c := h.dial(t)
	c.login("alice@example.org")
	c.expect("FETCH 1 FLAGS", "BAD") // nothing selected
	c.ok("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 4 FLAGS", "BAD"},
		// The library answers a 0 in a set NO [SERVERBUG] rather than BAD.
		{"FETCH 0 FLAGS", "NO"},
		{"FETCH 1:x FLAGS", "NO"},
		{"FETCH 1 (FLAGS", "BAD"},
		{"FETCH 1 NOSUCHITEM", "BAD"},
		{"FETCH 1 BODY[1.2.X]", "BAD"},
		{"FETCH", "BAD"},
	} {
		c.expect(tc.cmd, tc.want)
	}
	// UIDs that are not in the mailbox (mallory's UID 5) are simply not there.
	u := c.ok("UID FETCH 5 (BODY.PEEK[])")
	if len(u) != 0 {
		t.Errorf("UID FETCH of a UID from another mailbox returned %q", u)
	}
	u = c.ok("UID FETCH 3:10 (FLAGS)")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* 3 FETCH (UID 3 ") {
		t.Errorf("UID FETCH 3:10 = %q", u)
	}
	// * in an empty mailbox names nothing.
	c.ok("SELECT Trash")
	if u := c.ok("FETCH 1:* FLAGS"); len(u) != 0 {
		t.Errorf("FETCH 1:* in an empty mailbox = %q", u)
	}
	c.expect("FETCH 1 FLAGS", "BAD")
	// Another user's mailbox does not exist.
	c.expect(`SELECT "Other Users/mallory@example.org/INBOX"`, "NO [NONEXISTENT]")
	c.expect(`SELECT mallory@example.org/INBOX`, "NO [NONEXISTENT]")
}

func TestFilterHeader(t *testing.T) {
	h := "From: a@example.org\r\nX-Long: one\r\n two\r\n\tthree\r\nsubject : hi\r\nno colon here\r\nFrom: b@example.org\nTo: c@example.org\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name       string
		h          string
		keep, drop []string
		want       string
	}{
		{"keep, any case, repeated, continuations", h, []string{"FROM", "x-long"}, nil,
			"From: a@example.org\r\nX-Long: one\r\n two\r\n\tthree\r\nFrom: b@example.org\n\r\n"},
		{"space before the colon", h, []string{"Subject"}, nil, "subject : hi\r\n\r\n"},
		{"drop", h, nil, []string{"from", "X-LONG"}, "subject : hi\r\nTo: c@example.org\r\n\r\n"},
		{"nothing matches", h, []string{"Cc"}, nil, "\r\n"},
		{"empty header", "\r\n", []string{"From"}, nil, "\r\n"},
		{"no blank line at the end", "From: a\r\nTo: b", []string{"To"}, nil, "To: b\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(filterHeader([]byte(tc.h), tc.keep, tc.drop)); got != tc.want {
				t.Errorf("filterHeader = %q, want %q", got, tc.want)
			}
		})
	}
}

// A header of tens of thousands of short fields of one name, as any
// sender can plant, is filtered in one pass: 2 MB of them took a
// field-by-field filter tens of seconds per FETCH (BenchmarkFetchHeaderFields).
func TestFetchHeaderFieldsLargeHeader(t *testing.T) {
	h := start(t, setup{opts: bigHeaders})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", bigHeaderMessage(2<<20), store.AppendOptions{})
	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	began := time.Now()
	got := must(t, c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject To)]"), "* 1 FETCH")
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("FETCH HEADER.FIELDS of a 2 MB header took %v", took)
	}
	if want := "{46}\r\nTo: alice@example.org\r\nSubject: big header\r\n\r\n)"; !strings.HasSuffix(got, want) {
		t.Errorf("FETCH = %q, want the end %q", got, want)
	}
}

// TestBinarySize: BINARY.SIZE agrees with BINARY on every odd part
// (testsupport.TransferCases), the whole message and a multipart too, and
// is counted without decoding (no allocation), as a client asks it of
// every attachment to show its size.
func TestBinarySize(t *testing.T) {
	cases := testsupport.TransferCases()
	raw := testsupport.TransferMessage(cases)
	info := message.Parse(raw)
	sections := [][]int{nil}
	for i := range cases {
		sections = append(sections, []int{i + 1})
	}
	for _, part := range sections {
		bin, berr := binarySection(raw, info, part)
		n, nerr := binarySize(raw, info, part)
		if n != int64(len(bin)) || (berr == nil) != (nerr == nil) {
			t.Errorf("part %v: BINARY.SIZE %d (%v), BINARY %d octets (%v)", part, n, nerr, len(bin), berr)
		}
		if berr != nil {
			continue
		}
		// Nothing beyond finding the part.
		find := testing.AllocsPerRun(10, func() { info.Body.Find(partPath(part)) })
		if allocs := testing.AllocsPerRun(10, func() { binarySize(raw, info, part) }); allocs > find {
			t.Errorf("part %v: BINARY.SIZE allocates %v times, finding the part %v", part, allocs, find)
		}
	}
}
