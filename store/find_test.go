package store_test

import (
	"cmp"
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
		{"phrase not across fields", [][]store.SearchTerm{{tm(store.TermText, "4471 billing")}}, false, nil},
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
		{"only negations", [][]store.SearchTerm{{not(tm(store.TermText, "noodle"))}, {not(tm(store.TermFrom, "billing"))}}, false, []string{"html"}},
		{"two negations of one positive", [][]store.SearchTerm{{tm(store.TermTo, "alice")}, {not(tm(store.TermText, "noodle"))}, {not(tm(store.TermText, "sunset"))}}, false, []string{"invoice"}},
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
			checkPagesTuned(t, e, a, q, hits, !secure)
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

// checkPagesTuned runs checkPages with the store's thresholds as they
// are and as they make a few messages take the paths many would: counted
// without a look-up each (SetBroadCount); on MariaDB, the words weighed
// and looked up in the index or walked newest first, the walk giving way
// to the index after one text; the count left for later at once.
func checkPagesTuned(t *testing.T, e *storetest.Env, a *store.Account, q store.MailQuery, want []store.Hit, counted bool) {
	t.Helper()
	checkPages(t, a, q, want, counted)
	store.SetBroadCount(e.Store, 1)
	checkPages(t, a, q, want, counted)
	store.SetBroadCount(e.Store, 0)
	for _, tn := range []store.SearchTuning{
		{SmallUser: 1, Selective: 1},
		{SmallUser: 1, Selective: 2},
		{SmallUser: 1, Selective: 1, Window: 1, MaxWindow: 1},
		{CountBudget: time.Nanosecond, SmallUser: 1, Selective: 1, CountCost: 1, FewMatches: -1},
	} {
		store.SetSearchTuning(e.Store, tn)
		checkPages(t, a, q, want, counted)
		checkCountLater(t, a, q, want)
	}
	store.SetSearchTuning(e.Store, store.SearchTuning{})
}

// checkCountLater: a first page that may leave its count for later has
// the count, or -1 and an estimate of at least the page; CountFound
// counts every match.
func checkCountLater(t *testing.T, a *store.Account, q store.MailQuery, want []store.Hit) {
	t.Helper()
	ctx := context.Background()
	p, err := a.FindPage(ctx, q, store.FindQuery{Limit: 1, CountLater: true})
	if err != nil || !slices.Equal(p.Hits, want[:min(1, len(want))]) {
		t.Fatalf("count later: %v, %v; want %v", p.Hits, err, want[:min(1, len(want))])
	}
	if p.Total != len(want) && (p.Total != -1 || p.Estimate < len(p.Hits)) {
		t.Errorf("count later: total %d, estimate %d; want %d, or -1 and an estimate", p.Total, p.Estimate, len(want))
	}
	if n, err := a.CountFound(ctx, q); err != nil || n != len(want) {
		t.Errorf("CountFound = %d, %v; want %d", n, err, len(want))
	}
}

// checkPages: FindPage, page by page (after the last match, and by
// skipping), finds what FindMessages does, with its total. counted: a
// total given is not counted again.
func checkPages(t *testing.T, a *store.Account, q store.MailQuery, want []store.Hit, counted bool) {
	t.Helper()
	ctx := context.Background()
	for _, limit := range []int{1, 2} {
		var got []store.Hit
		var after *store.Hit
		for range len(want) + 1 {
			p, err := a.FindPage(ctx, q, store.FindQuery{After: after, Limit: limit})
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			if p.Total != len(want) {
				t.Errorf("limit %d: total %d, want %d", limit, p.Total, len(want))
			}
			got = append(got, p.Hits...)
			if len(p.Hits) < limit {
				break
			}
			after = &p.Hits[len(p.Hits)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages %v, want %v", limit, got, want)
		}
	}
	p, err := a.FindPage(ctx, q, store.FindQuery{Skip: 1, Limit: 100})
	if err != nil || !slices.Equal(p.Hits, want[min(1, len(want)):]) {
		t.Errorf("skip 1: %v, %v; want %v", p.Hits, err, want[min(1, len(want)):])
	}
	if p, err := a.FindPage(ctx, q, store.FindQuery{Limit: 1, Total: 99}); counted && len(want) > 0 && (err != nil || p.Total != 99) {
		t.Errorf("a total given was counted again: %d, %v", p.Total, err)
	}
}

// TestFindPageOrder: the matches of words are newest first as their texts
// arrived, whatever date an append gave them, a copy next to its original
// (by folder, then UID); a page continues after a match whose message is
// gone since.
func TestFindPageOrder(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		for _, secure := range []bool{false, true} {
			a := e.Account(e.NewUser(t, fmt.Sprintf("u%v@example.org", secure), secure))
			inbox, archive := storetest.Inbox(t, a), storetest.MailboxID(t, a, "Archive")
			var uids []uint32
			for i := range 3 {
				// Each appended with an older date than the one before.
				r := storetest.Append(t, a, inbox, storetest.Message("bob@x.org", "alice@example.org", fmt.Sprint("walrus ", i), "the walrus speaks"),
					store.AppendOptions{InternalDate: time.Date(2026, 3, 10-i, 12, 0, 0, 0, time.UTC)})
				uids = append(uids, r.UID)
			}
			// The middle one copied to Archive, and within INBOX.
			for _, to := range []int64{archive, inbox} {
				if _, err := a.Copy(ctx, inbox, store.UIDSet{{Start: uids[1], Stop: uids[1]}}, to); err != nil {
					t.Fatal(err)
				}
			}
			q := store.MailQuery{Mailboxes: []int64{inbox, archive}, Groups: [][]store.SearchTerm{{{Kind: store.TermText, Words: []string{"walrus"}}}}}
			hits, err := a.FindMessages(ctx, q)
			type at struct {
				box int64
				uid uint32
			}
			var got []at
			for _, h := range hits {
				got = append(got, at{h.MailboxID, h.UID})
			}
			copies := []at{{inbox, uids[1]}, {inbox, uids[2] + 1}, {archive, 1}}
			slices.SortFunc(copies, func(x, y at) int { return cmp.Or(cmp.Compare(x.box, y.box), cmp.Compare(x.uid, y.uid)) })
			want := append(append([]at{{inbox, uids[2]}}, copies...), at{inbox, uids[0]})
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("secure=%v: %v, %v; want %v", secure, got, err, want)
			}
			checkPagesTuned(t, e, a, q, hits, !secure)
			first, err := a.FindPage(ctx, q, store.FindQuery{Limit: 2})
			if err != nil || len(first.Hits) != 2 || first.Total != 5 {
				t.Fatalf("secure=%v: first page %+v, %v", secure, first, err)
			}
			gone := first.Hits[1]
			if _, err := a.Remove(ctx, gone.MailboxID, store.UIDSet{{Start: gone.UID, Stop: gone.UID}}); err != nil {
				t.Fatal(err)
			}
			next, err := a.FindPage(ctx, q, store.FindQuery{After: &first.Hits[1], Limit: 1})
			if err != nil || len(next.Hits) != 1 || next.Hits[0] != hits[2] || next.Total != 4 {
				t.Errorf("secure=%v: after a removed match %+v, %v; want %v of 4", secure, next, err, hits[2])
			}
			if _, err := a.FindPage(ctx, q, store.FindQuery{}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("secure=%v: no limit: %v", secure, err)
			}
		}
	})
}

// TestTextPending: on SQLite an append leaves its text to the indexer
// (text_pending, in the append's transaction): a search indexes what its
// user has pending first and finds everything; a message gone before its
// turn leaves no index row and no note; a copy keeps the text it shares;
// and the indexer writes what is left soon after it is woken.
func TestTextPending(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	ctx := context.Background()
	a := e.Account(e.NewUser(t, "alice@example.org", false))
	bob := e.Account(e.NewUser(t, "bob@example.org", false))
	inbox, archive := storetest.Inbox(t, a), storetest.MailboxID(t, a, "Archive")
	count := func(q string) int {
		t.Helper()
		var n int
		if err := e.DB.GetContext(ctx, &n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pending := func() int { return count("SELECT COUNT(*) FROM text_pending") }
	indexed := func() int { return count("SELECT COUNT(*) FROM message_text") }
	find := func(acct *store.Account, box int64, word string) int {
		t.Helper()
		hits, err := acct.FindMessages(ctx, store.MailQuery{Mailboxes: []int64{box}, Groups: [][]store.SearchTerm{{{Kind: store.TermText, Words: []string{word}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(hits)
	}
	var uids []uint32
	for i := range 4 {
		r := storetest.Append(t, a, inbox, storetest.Message("carol@x.org", "alice@example.org", fmt.Sprintf("note %d", i), "the okapi grazes"), store.AppendOptions{})
		uids = append(uids, r.UID)
	}
	storetest.Append(t, bob, storetest.Inbox(t, bob), storetest.Message("carol@x.org", "bob@example.org", "hello", "an okapi too"), store.AppendOptions{})
	if p, n := pending(), indexed(); p != 5 || n != 0 {
		t.Fatalf("after 5 appends: %d pending, %d indexed; want 5, 0", p, n)
	}
	// Gone before its turn: no note left, nothing ever indexed.
	if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: uids[0], Stop: uids[0]}}); err != nil {
		t.Fatal(err)
	}
	// Copied, then the original gone: the copy keeps the note.
	if _, err := a.Copy(ctx, inbox, store.UIDSet{{Start: uids[1], Stop: uids[1]}}, archive); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: uids[1], Stop: uids[1]}}); err != nil {
		t.Fatal(err)
	}
	if p := pending(); p != 4 {
		t.Fatalf("%d pending after the removals, want 4", p)
	}
	// A search of Alice's mail indexes hers, and only hers, first.
	if n := find(a, inbox, "okapi"); n != 2 {
		t.Fatalf("found %d in the inbox, want 2", n)
	}
	if n := find(a, archive, "okapi"); n != 1 {
		t.Fatalf("found %d in the archive, want the copy", n)
	}
	if p, n := pending(), indexed(); p != 1 || n != 3 {
		t.Fatalf("after Alice's search: %d pending, %d indexed; want Bob's 1, Alice's 3", p, n)
	}
	// The indexer, woken by an append, writes the rest.
	run, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { e.Store.IndexPending(run); close(done) }()
	storetest.Append(t, a, inbox, storetest.Message("carol@x.org", "alice@example.org", "late", "one more okapi"), store.AppendOptions{})
	for i := 0; pending() > 0; i++ {
		if i == 100 {
			t.Fatalf("%d still pending 10 s after an append", pending())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := indexed(); n != 5 {
		t.Fatalf("%d indexed, want 5", n)
	}
	if n := find(bob, storetest.Inbox(t, bob), "okapi"); n != 1 {
		t.Fatalf("Bob found %d, want 1", n)
	}
	// Expunged once indexed: the index row goes with it.
	if _, err := a.Remove(ctx, inbox, store.UIDSet{{Start: uids[2], Stop: uids[2]}}); err != nil {
		t.Fatal(err)
	}
	if n, f := indexed(), find(a, inbox, "okapi"); n != 4 || f != 2 {
		t.Fatalf("after an indexed message went: %d indexed, %d found; want 4, 2", n, f)
	}
	// A message moved before its turn is indexed as it is now.
	stop()
	<-done
	r := storetest.Append(t, a, inbox, storetest.Message("carol@x.org", "alice@example.org", "moved", "a quagga"), store.AppendOptions{})
	if _, err := a.Move(ctx, inbox, store.UIDSet{{Start: r.UID, Stop: r.UID}}, archive); err != nil {
		t.Fatal(err)
	}
	if n := find(a, archive, "quagga"); n != 1 {
		t.Fatalf("found %d moved, want 1", n)
	}
	// A user deleted with texts pending leaves no note behind.
	storetest.Append(t, bob, storetest.Inbox(t, bob), storetest.Message("carol@x.org", "bob@example.org", "bye", "a last okapi"), store.AppendOptions{})
	if err := e.Store.DeleteUser(ctx, bob.UserID()); err != nil {
		t.Fatal(err)
	}
	if p := pending(); p != 0 {
		t.Fatalf("%d pending after the user went, want 0", p)
	}
	// The index itself is whole: FTS5's own check.
	if _, err := e.DB.ExecContext(ctx, "INSERT INTO message_text (message_text, rank) VALUES ('integrity-check', 0)"); err != nil {
		t.Fatalf("index integrity: %v", err)
	}
}
