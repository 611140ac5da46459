package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/message"
	"basalt/store"
)

// findCorpus is the mail TestFindMessages searches: name → message.
var findCorpus = []struct {
	name, from, to, subject, body string
	seen, flagged                 bool
	box                           string
}{
	{"invoice", "Billing <billing@shop.example>", "alice@example.org", "Your invoice 4471", "Please find the amount due: 42 euros.\nKind regards", false, false, "INBOX"},
	{"lunch", "Bob Smith <bob@x.org>", "alice@example.org", "Lunch tomorrow?", "Shall we meet at the noodle bar?", true, true, "INBOX"},
	{"html", "carol@x.org", "alice@example.org, dave@x.org", "Photos", "", true, false, "INBOX"},
	{"spam", "bob@x.org", "alice@example.org", "Cheap noodle deals", "buy now", false, false, "Junk"},
	{"archived", "Bob Smith <bob@x.org>", "alice@example.org", "Re: Lunch tomorrow?", "Yes, noodle bar at noon.", true, false, "Archive"},
}

func findRaw(i int) []byte {
	c := findCorpus[i]
	date := time.Date(2026, 3, 1+i, 12, 0, 0, 0, time.UTC).Format(time.RFC1123Z)
	head := "From: " + c.from + "\r\nTo: " + c.to + "\r\nSubject: " + c.subject + "\r\nDate: " + date + "\r\nMIME-Version: 1.0\r\n"
	if c.name == "html" {
		// Quoted-printable HTML: the index holds its decoded text.
		return []byte(head + "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"<html><body><p>The <b>sunset</b> over the caf=C3=A9 terrace</p></body></html>\r\n")
	}
	return []byte(head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(c.body, "\n", "\r\n") + "\r\n")
}

// TestFindMessages runs the same searches over the index (a user whose
// mail is not sealed) and over the scan (a secure user's), which must
// agree with what is expected.
func TestFindMessages(t *testing.T) {
	words := message.Words
	tm := func(k store.TermKind, text string) store.SearchTerm {
		return store.SearchTerm{Kind: k, Words: words(text)}
	}
	not := func(t store.SearchTerm) store.SearchTerm { t.Not = true; return t }
	cases := []findCase{
		{"word in body", [][]store.SearchTerm{{tm(store.TermText, "noodle")}}, false, []string{"archived", "lunch"}},
		{"word everywhere", [][]store.SearchTerm{{tm(store.TermText, "noodle")}}, true, []string{"archived", "spam", "lunch"}},
		{"decoded html", [][]store.SearchTerm{{tm(store.TermText, "sunset")}}, false, []string{"html"}},
		{"phrase", [][]store.SearchTerm{{tm(store.TermText, "noodle bar")}}, false, []string{"archived", "lunch"}},
		{"phrase in order only", [][]store.SearchTerm{{tm(store.TermText, "bar noodle")}}, false, nil},
		{"from", [][]store.SearchTerm{{tm(store.TermFrom, "bob")}}, false, []string{"archived", "lunch"}},
		{"from address", [][]store.SearchTerm{{tm(store.TermFrom, "billing@shop.example")}}, false, []string{"invoice"}},
		{"to cc", [][]store.SearchTerm{{tm(store.TermTo, "dave")}}, false, []string{"html"}},
		{"subject", [][]store.SearchTerm{{tm(store.TermSubject, "lunch")}}, false, []string{"archived", "lunch"}},
		{"subject not body", [][]store.SearchTerm{{tm(store.TermSubject, "noodle")}}, false, nil},
		{"and", [][]store.SearchTerm{{tm(store.TermText, "noodle")}, {tm(store.TermText, "noon")}}, false, []string{"archived"}},
		{"or", [][]store.SearchTerm{{tm(store.TermText, "sunset"), tm(store.TermText, "invoice")}}, false, []string{"html", "invoice"}},
		{"negated", [][]store.SearchTerm{{tm(store.TermFrom, "bob")}, {not(tm(store.TermSubject, "re"))}}, false, []string{"lunch"}},
		{"unread", [][]store.SearchTerm{{{Kind: store.TermUnread}}}, false, []string{"invoice"}},
		{"read and word", [][]store.SearchTerm{{{Kind: store.TermRead}}, {tm(store.TermText, "bar")}}, false, []string{"archived", "lunch"}},
		{"flagged", [][]store.SearchTerm{{{Kind: store.TermFlagged}}}, false, []string{"lunch"}},
		{"before", [][]store.SearchTerm{{{Kind: store.TermBefore, Time: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}}}, false, []string{"invoice"}},
		{"after", [][]store.SearchTerm{{{Kind: store.TermAfter, Time: time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)}}}, false, []string{"archived", "html"}},
		{"larger", [][]store.SearchTerm{{{Kind: store.TermLarger, Size: int64(len(findRaw(0)))}}}, false, []string{"html"}},
		{"smaller", [][]store.SearchTerm{{{Kind: store.TermSmaller, Size: int64(len(findRaw(0)))}}}, false, []string{"archived", "lunch"}},
		{"not text or flag", [][]store.SearchTerm{{not(tm(store.TermText, "noodle")), {Kind: store.TermFlagged}}}, false, []string{"html", "lunch", "invoice"}},
		{"words of an address", [][]store.SearchTerm{{tm(store.TermText, "shop.example")}}, false, []string{"invoice"}},
	}
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) { findIn(t, secure, cases) })
	}
}

// findCase is a search of TestFindMessages and the corpus messages it
// finds, newest first.
type findCase struct {
	name   string
	groups [][]store.SearchTerm
	junk   bool // search Junk too
	want   []string
}

func findIn(t *testing.T, secure bool, cases []findCase) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", secure))
		boxes := map[string]int64{"INBOX": storetest.Inbox(t, a)}
		for _, n := range []string{"Junk", "Archive"} {
			boxes[n] = storetest.MailboxID(t, a, n)
		}
		names := map[string]string{}
		for i, c := range findCorpus {
			var f store.Flags
			if c.seen {
				f |= store.FlagSeen
			}
			if c.flagged {
				f |= store.FlagFlagged
			}
			r := storetest.Append(t, a, boxes[c.box], findRaw(i), store.AppendOptions{Flags: f, InternalDate: time.Date(2026, 3, 1+i, 12, 0, 0, 0, time.UTC)})
			names[fmt.Sprint(r.MailboxID, "-", r.UID)] = c.name
		}
		for _, tc := range cases {
			q := store.MailQuery{Mailboxes: []int64{boxes["INBOX"], boxes["Archive"]}, Groups: tc.groups}
			if tc.junk {
				q.Mailboxes = append(q.Mailboxes, boxes["Junk"])
			}
			hits, err := a.FindMessages(ctx, q)
			if err != nil {
				t.Fatalf("secure=%v %s: %v", secure, tc.name, err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, names[fmt.Sprint(h.MailboxID, "-", h.UID)])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("secure=%v %s: %v, want %v", secure, tc.name, got, tc.want)
			}
		}
		if secure {
			if _, err := e.Store.Account(a.UserID(), nil).FindMessages(ctx, store.MailQuery{Mailboxes: []int64{boxes["INBOX"]}}); !errors.Is(err, store.ErrLocked) {
				t.Errorf("secure search without the key: %v", err)
			}
			// Nothing readable went into an index.
			if got := e.FindPlaintext(t, []byte("sunset")); len(got) > 0 {
				t.Errorf("a secure user's text is readable in %v", got)
			}
		}
	})
}

// TestTextIndexFollowsMessages: a copy is found as its original is, a
// move keeps the message findable, and the index row goes with the last
// message that shares it.
func TestTextIndexFollowsMessages(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox, archive := storetest.Inbox(t, a), storetest.MailboxID(t, a, "Archive")
		r := storetest.Append(t, a, inbox, storetest.Message("bob@x.org", "alice@example.org", "hi", "the zeppelin lands"), store.AppendOptions{})
		find := func() []store.Hit {
			t.Helper()
			hits, err := a.FindMessages(ctx, store.MailQuery{Mailboxes: []int64{inbox, archive},
				Groups: [][]store.SearchTerm{{{Kind: store.TermText, Words: []string{"zeppelin"}}}}})
			if err != nil {
				t.Fatal(err)
			}
			return hits
		}
		rows := func() int {
			t.Helper()
			var n int
			if err := e.DB.GetContext(ctx, &n, "SELECT COUNT(*) FROM message_text"); err != nil {
				t.Fatal(err)
			}
			return n
		}
		one := store.UIDSet{{Start: r.UID, Stop: r.UID}}
		cp, err := a.Copy(ctx, inbox, one, archive)
		if err != nil {
			t.Fatal(err)
		}
		if h := find(); len(h) != 2 || rows() != 1 {
			t.Fatalf("after copy: %v hits, %d index rows", h, rows())
		}
		if _, err := a.Remove(ctx, inbox, one); err != nil {
			t.Fatal(err)
		}
		if h := find(); len(h) != 1 || h[0].MailboxID != archive || rows() != 1 {
			t.Fatalf("after removing the original: %v, %d index rows", h, rows())
		}
		if _, err := a.Move(ctx, archive, store.UIDSet{{Start: cp.Pairs[0].Dst, Stop: cp.Pairs[0].Dst}}, inbox); err != nil {
			t.Fatal(err)
		}
		if h := find(); len(h) != 1 || h[0].MailboxID != inbox || rows() != 1 {
			t.Fatalf("after move: %v, %d index rows", h, rows())
		}
		if err := a.DeleteMailbox(ctx, archive); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: 1, Stop: 1 << 30}}); err != nil {
			t.Fatal(err)
		}
		if h := find(); len(h) != 0 || rows() != 0 {
			t.Fatalf("after removing the last copy: %v, %d index rows", h, rows())
		}
	})
}

// TestIndexBacklog: mail stored before the index existed (rows as the
// migration leaves them) is indexed by the background indexer, a batch at
// a time from where it stopped; a secure user's gets its text id and no
// index row.
func TestIndexBacklog(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		sec := e.Account(e.NewUser(t, "sam@example.org", true))
		inbox := storetest.Inbox(t, a)
		for i := range 4 {
			storetest.Append(t, a, inbox, storetest.Message("Bob <bob@x.org>", "alice@example.org", fmt.Sprintf("Re: part %d", i), fmt.Sprintf("the walrus%d speaks", i)), store.AppendOptions{})
		}
		storetest.Append(t, sec, storetest.Inbox(t, sec), storetest.Message("bob@x.org", "sam@example.org", "secret", "walrus0"), store.AppendOptions{})
		// What the migration leaves: no text ids, sort keys, or index rows.
		for _, q := range []string{"UPDATE messages SET text_id = 0, sort_from = '', sort_subject = '', parent_hash = '', sent_date = internal_date", "DELETE FROM message_text"} {
			if _, err := e.DB.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		find := func(word string) int {
			t.Helper()
			hits, err := a.FindMessages(ctx, store.MailQuery{Mailboxes: []int64{inbox}, Groups: [][]store.SearchTerm{{{Kind: store.TermText, Words: []string{word}}}}})
			if err != nil {
				t.Fatal(err)
			}
			return len(hits)
		}
		if find("walrus0") != 0 {
			t.Fatal("found before indexing")
		}
		for i, want := range []struct {
			n    int
			more bool
		}{{2, true}, {2, true}, {1, false}, {0, false}} {
			n, more, err := store.IndexBatch(e.Store, ctx, 2)
			if err != nil || n != want.n || more != want.more {
				t.Fatalf("batch %d: %d, %v, %v; want %d, %v", i, n, more, err, want.n, want.more)
			}
			if i == 0 && (find("walrus0") != 1 || find("walrus1") != 1 || find("walrus2") != 0) {
				t.Fatal("the first batch did not index the first two messages alone")
			}
		}
		if find("walrus3") != 1 {
			t.Error("the last message not indexed")
		}
		var rows int
		if err := e.DB.GetContext(ctx, &rows, "SELECT COUNT(*) FROM message_text"); err != nil || rows != 4 {
			t.Errorf("%d index rows, %v; want 4 (none for the secure user)", rows, err)
		}
		page, err := a.ListPage(ctx, inbox, store.PageQuery{Sort: store.SortSubject, Limit: 1})
		if err != nil || len(page) != 1 || store.KeyOf(page[0], store.SortSubject).S != "part 0" {
			t.Errorf("sort keys not filled: %v, %v", page, err)
		}
		// Started over, it has nothing left to do.
		if n, err := e.Store.IndexBacklog(ctx, 0); err != nil || n != 0 {
			t.Errorf("second run indexed %d, %v", n, err)
		}
	})
}
