package imap

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func TestSearch(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "secure" // header and body search on decrypted mail
		}
		t.Run(name, func(t *testing.T) {
			testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
				testSearch(t, db, secure)
			})
		})
	}
}

func testSearch(t *testing.T, db testsupport.Database, secure bool) {
	h := start(t, setup{db: db})
	alice := h.user("alice@example.org", secure)
	day := func(d int) time.Time { return time.Date(2026, 10, d, 12, 0, 0, 0, time.UTC) }
	qp := "From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nCc: dave@example.com\r\nSubject: =?iso-8859-1?q?r=E9sum=E9?=\r\n" +
		"Date: Tue, 13 Oct 2026 09:00:00 +0000\r\nX-Priority: 1 (Highest)\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me, s'il vous pla=EEt.\r\n"
	// seq/uid: 1 seen+flagged, 2 plain, 3 qp (keyword), 4 big deleted
	h.deliver(alice, "INBOX", storetest.Message("Bob <bob@example.org>", "alice@example.org", "Lunch plans", "Shall we meet at noon?"),
		store.AppendOptions{Flags: store.FlagSeen | store.FlagFlagged, InternalDate: day(1)})
	h.deliver(alice, "INBOX", storetest.Message("Bob <bob@example.org>", "alice@example.org", "Invoice 42", "Amount due: 100 EUR"),
		store.AppendOptions{InternalDate: day(5)})
	h.deliver(alice, "INBOX", []byte(qp), store.AppendOptions{InternalDate: day(10), Keywords: []string{"$Work"}})
	h.deliver(alice, "INBOX", storetest.SizedMessage(20000), store.AppendOptions{Flags: store.FlagDeleted, InternalDate: day(20)})

	c := h.dial(t)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	for _, tc := range []struct{ query, want string }{
		{"ALL", "* SEARCH 1 2 3 4"},
		{"SEEN", "* SEARCH 1"},
		{"UNSEEN", "* SEARCH 2 3 4"},
		{"FLAGGED UNDELETED", "* SEARCH 1"},
		{"DELETED", "* SEARCH 4"},
		{"KEYWORD $Work", "* SEARCH 3"},
		{"UNKEYWORD $work", "* SEARCH 1 2 4"},
		// Recent to this first session to select the mailbox.
		{"NEW", "* SEARCH 2 3 4"},
		{"OLD", "* SEARCH"},
		{"RECENT", "* SEARCH 1 2 3 4"},
		{"LARGER 10000", "* SEARCH 4"},
		{"SMALLER 10000 NOT SEEN", "* SEARCH 2 3"},
		{"SINCE 5-Oct-2026", "* SEARCH 2 3 4"},
		{"BEFORE 5-Oct-2026", "* SEARCH 1"},
		{"ON 10-Oct-2026", "* SEARCH 3"},
		{"SENTON 13-Oct-2026", "* SEARCH 3"},
		{"SENTSINCE 1-Nov-2026", "* SEARCH 1 2 4"},
		{"SENTBEFORE 1-Nov-2026", "* SEARCH 3"},
		{"FROM bob", "* SEARCH 1 2"},
		{"FROM CAROL@EXAMPLE.NET", "* SEARCH 3"},
		{"TO alice", "* SEARCH 1 2 3"},
		{"CC dave", "* SEARCH 3"},
		{"BCC dave", "* SEARCH"},
		{"SUBJECT invoice", "* SEARCH 2"},
		{"SUBJECT résumé", "* SEARCH 3"},
		{`HEADER X-Priority highest`, "* SEARCH 3"},
		{`HEADER X-Priority ""`, "* SEARCH 3"},
		{`HEADER Message-ID ""`, "* SEARCH 1 2 4"},
		{"BODY noon", "* SEARCH 1"},
		{"BODY crème", "* SEARCH 3"},
		{"BODY invoice", "* SEARCH"},
		{"TEXT invoice", "* SEARCH 2"},
		{"TEXT X-Priority", "* SEARCH 3"},
		{"OR SEEN DELETED", "* SEARCH 1 4"},
		{"NOT OR SEEN DELETED", "* SEARCH 2 3"},
		{"(FROM bob SUBJECT lunch)", "* SEARCH 1"},
		{"2:3", "* SEARCH 2 3"},
		{"2:* SEEN", "* SEARCH"},
		{"UID 3:*", "* SEARCH 3 4"},
		{"UID 1,4 NOT UID 4", "* SEARCH 1"},
		{"CHARSET UTF-8 SUBJECT lunch", "* SEARCH 1"},
	} {
		u := c.ok("SEARCH " + tc.query)
		if len(u) != 1 || u[0] != tc.want {
			t.Errorf("SEARCH %s = %q, want %q", tc.query, u, tc.want)
		}
	}
	// UID SEARCH answers UIDs; ESEARCH answers what RETURN asks for.
	must(t, c.ok("UID SEARCH UNSEEN"), "* SEARCH 2 3 4")
	must(t, c.ok("SEARCH RETURN (MIN MAX COUNT) UNSEEN"), `* ESEARCH (TAG "a`)
	u := c.ok("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
	if len(u) != 1 || !hasSuffix(u[0], `MIN 2 MAX 4 COUNT 3`) && !hasSuffix(u[0], `ALL 2:4 MIN 2 MAX 4 COUNT 3`) {
		t.Errorf("ESEARCH = %q", u)
	}
	u = c.ok("UID SEARCH RETURN (ALL) SEEN")
	if len(u) != 1 || !hasSuffix(u[0], " UID ALL 1") {
		t.Errorf("UID ESEARCH = %q", u)
	}
	u = c.ok("SEARCH RETURN (COUNT) KEYWORD nothing")
	if len(u) != 1 || !hasSuffix(u[0], "COUNT 0") {
		t.Errorf("ESEARCH of nothing = %q", u)
	}
	// SEARCHRES (RFC 5182): SAVE, then $ in SEARCH, FETCH and STORE.
	c.ok("SEARCH RETURN (SAVE) FROM bob")
	must(t, c.ok("SEARCH $ SEEN"), "* SEARCH 1")
	u = c.ok("FETCH $ UID")
	if len(u) != 2 {
		t.Errorf("FETCH $ = %q", u)
	}
	// $ is a UID set whatever the command, so the answer names UIDs too.
	must(t, c.ok(`STORE $ +FLAGS (\Answered)`), `* 2 FETCH (UID 2 FLAGS (\Answered \Recent))`)
	must(t, c.ok(`UID SEARCH ANSWERED`), "* SEARCH 1 2")

	for _, bad := range []string{"SEARCH", "SEARCH FOO", "SEARCH SINCE notadate", "SEARCH OR SEEN", "SEARCH (SEEN", "SEARCH RETURN (BOGUS) ALL", "SEARCH CHARSET KOI8-R ALL"} {
		_, st := c.do(bad)
		if st[:2] != "BA" && st[:2] != "NO" {
			t.Errorf("%s = %q, want BAD or NO", bad, st)
		}
	}
	c.expect("SEARCH CHARSET KOI8-R ALL", "NO [BADCHARSET]")
	c.ok("UNSELECT")
	c.expect("SEARCH ALL", "BAD")
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// TestSearchDecodedText: HEADER and BODY find the odd header values and
// text parts (testsupport.HeaderTextCases, PartTextCases) by their
// decoded text, as message.HeaderText and message.Part.Text have it, the
// text the webmail shows (rpc's TestLoadDecodedText): a word that cannot
// be decoded does not keep the others from being searched, and octets in
// an unknown charset read as the webmail reads them.
func TestSearchDecodedText(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		alice := h.user("alice@example.org", false)
		headers, parts := testsupport.HeaderTextCases(), testsupport.PartTextCases()
		for _, tc := range headers {
			h.deliver(alice, "INBOX", testsupport.TextMessage(tc.Value, "text/plain", "", "x"), store.AppendOptions{})
		}
		for _, tc := range parts {
			h.deliver(alice, "INBOX", testsupport.TextMessage("x", tc.ContentType, tc.Encoding, tc.Body), store.AppendOptions{})
		}
		c := h.dial(t)
		c.login("alice@example.org")
		c.ok("SELECT INBOX")
		found := func(query string, seq int) bool {
			u := c.ok("SEARCH CHARSET UTF-8 " + query)
			return len(u) == 1 && slices.Contains(strings.Fields(u[0])[2:], strconv.Itoa(seq))
		}
		for i, tc := range headers {
			if !found(`HEADER X-Odd "`+tc.Needle+`"`, i+1) {
				t.Errorf("%s: HEADER X-Odd %q does not find %q", tc.Name, tc.Needle, tc.Value)
			}
		}
		for i, tc := range parts {
			if !found(`BODY "`+tc.Needle+`"`, len(headers)+i+1) {
				t.Errorf("%s: BODY %q does not find %q", tc.Name, tc.Needle, tc.Body)
			}
		}
	})
}
