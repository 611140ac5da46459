package rpc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// listMail is the mail of TestListSortsFilters and TestSearch.
var listMail = []struct {
	from, subject, body string
	box                 string
	flags               store.Flags
	attach              bool
}{
	{"Bob <bob@x.org>", "Lunch?", "noodle bar at noon", "INBOX", store.FlagSeen | store.FlagFlagged, false},
	{"carol@x.org", "Re: Lunch?", "yes the noodle bar", "INBOX", 0, false},
	{"Alice <al@y.org>", "[team] Budget", "numbers attached", "INBOX", 0, true},
	{"dave@x.org", "Cheap noodle deals", "buy now", "Junk", 0, false},
	{"Bob <bob@x.org>", "Budget review", "see the budget numbers", "Archive", store.FlagSeen, false},
	{"zed@z.org", "old noodle recipe", "boil water", "Trash", store.FlagSeen, false},
	{"Erin <erin@x.org>", "Zebra crossing", "walk", "INBOX", store.FlagSeen, false},
}

func listMailRaw(i int) []byte {
	m := listMail[i]
	h := fmt.Sprintf("From: %s\r\nTo: me@example.org\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n", m.from, m.subject,
		time.Date(2026, 5, 1+i, 9, 0, 0, 0, time.UTC).Format(time.RFC1123Z))
	if !m.attach {
		return []byte(h + "Content-Type: text/plain\r\n\r\n" + m.body + "\r\n")
	}
	return []byte(h + "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n" + m.body +
		"\r\n--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=n.pdf\r\n\r\nPDF\r\n--B--\r\n")
}

// fillListMail stores listMail for a user; it returns the folders by name
// and each message's subject by messageID.
func fillListMail(t *testing.T, a *store.Account) (map[string]int64, map[string]string) {
	t.Helper()
	boxes := map[string]int64{"INBOX": storetest.Inbox(t, a)}
	for _, n := range []string{"Junk", "Archive", "Trash"} {
		boxes[n] = storetest.MailboxID(t, a, n)
	}
	subjects := map[string]string{}
	for i, m := range listMail {
		r := storetest.Append(t, a, boxes[m.box], listMailRaw(i), store.AppendOptions{Flags: m.flags, InternalDate: time.Date(2026, 5, 1+i, 9, 0, 0, 0, time.UTC)})
		subjects[msgRef{r.MailboxID, r.UID}.id()] = m.subject
	}
	return boxes, subjects
}

func subjectsOf(items []messageItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Subject)
	}
	return out
}

// TestListSortsFilters: messages.list's sorts, directions and filters,
// paged by next cursors, which keep working when the message they ended
// on is deleted.
func TestListSortsFilters(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		c, auth := fx.user(t, "me@example.org", false)
		boxes, _ := fillListMail(t, fx.env.Account(auth))
		inbox := boxes["INBOX"]
		list := func(p map[string]any) listResult {
			t.Helper()
			p["folderID"] = inbox
			var r listResult
			c.must("messages.list", p, &r)
			return r
		}
		yes, no := true, false
		for _, tc := range []struct {
			params map[string]any
			want   []string
			total  int64
		}{
			{map[string]any{}, []string{"Zebra crossing", "[team] Budget", "Re: Lunch?", "Lunch?"}, 4},
			{map[string]any{"sort": "arrival", "desc": no}, []string{"Lunch?", "Re: Lunch?", "[team] Budget", "Zebra crossing"}, 4},
			{map[string]any{"sort": "from"}, []string{"[team] Budget", "Lunch?", "Re: Lunch?", "Zebra crossing"}, 4},
			{map[string]any{"sort": "from", "desc": yes}, []string{"Zebra crossing", "Re: Lunch?", "Lunch?", "[team] Budget"}, 4},
			{map[string]any{"sort": "subject"}, []string{"[team] Budget", "Lunch?", "Re: Lunch?", "Zebra crossing"}, 4},
			{map[string]any{"sort": "sent", "desc": no}, []string{"Lunch?", "Re: Lunch?", "[team] Budget", "Zebra crossing"}, 4},
			{map[string]any{"sort": "flagged"}, []string{"Lunch?", "Zebra crossing", "[team] Budget", "Re: Lunch?"}, 4},
			{map[string]any{"sort": "unread"}, []string{"[team] Budget", "Re: Lunch?", "Zebra crossing", "Lunch?"}, 4},
			{map[string]any{"filter": map[string]any{"unread": true}}, []string{"[team] Budget", "Re: Lunch?"}, 2},
			{map[string]any{"filter": map[string]any{"flagged": true}}, []string{"Lunch?"}, 1},
			{map[string]any{"filter": map[string]any{"attachments": true}, "sort": "size"}, []string{"[team] Budget"}, 1},
			// Conversations go with any order and filter (each message
			// here is a thread of its own; store's TestThreads folds).
			{map[string]any{"sort": "from", "threads": true}, []string{"[team] Budget", "Lunch?", "Re: Lunch?", "Zebra crossing"}, 4},
			{map[string]any{"threads": true, "filter": map[string]any{"unread": true}}, []string{"[team] Budget", "Re: Lunch?"}, 2},
		} {
			r := list(tc.params)
			if got := subjectsOf(r.Messages); !slices.Equal(got, tc.want) || r.Total != tc.total {
				t.Errorf("%v: %v (total %d), want %v (%d)", tc.params, got, r.Total, tc.want, tc.total)
			}
			// Page by page through next, two at a time.
			var paged []string
			p := map[string]any{"limit": 2}
			for k, v := range tc.params {
				p[k] = v
			}
			for range 5 {
				r := list(p)
				if len(r.Messages) == 0 {
					break
				}
				paged = append(paged, subjectsOf(r.Messages)...)
				p["after"] = r.Next
			}
			if !slices.Equal(paged, tc.want) {
				t.Errorf("%v by next: %v, want %v", tc.params, paged, tc.want)
			}
		}
		// The message a cursor ended on is deleted: the cursor still places.
		for _, sort := range []string{"date-desc", "from", "subject", "flagged"} {
			first := list(map[string]any{"sort": sort, "limit": 2})
			var rm okResult
			c.must("messages.remove", map[string]any{"messageIDs": []string{first.Messages[1].MessageID}}, &rm)
			rest := list(map[string]any{"sort": sort, "after": first.Next, "limit": 1})
			full := list(map[string]any{"sort": sort})
			i := slices.IndexFunc(full.Messages, func(m messageItem) bool { return m.MessageID == first.Messages[0].MessageID })
			if len(rest.Messages) != 1 || i < 0 || i+1 >= len(full.Messages) || rest.Messages[0].MessageID != full.Messages[i+1].MessageID {
				t.Errorf("%s: after a deleted message: %v", sort, subjectsOf(rest.Messages))
			}
			// The same by messageID is gone with it.
			c.fail("messages.list", map[string]any{"folderID": inbox, "sort": sort, "after": first.Messages[1].MessageID}, CodeNotFound, "notFound")
			fillOne := listMailRaw(0)
			fx.deliver(t, auth, fillOne)
		}
		c.fail("messages.list", map[string]any{"folderID": inbox, "sort": "date-desc", "desc": true}, CodeInvalid, "invalid")
		fromCursor := list(map[string]any{"sort": "from", "limit": 1}).Next
		c.fail("messages.list", map[string]any{"folderID": inbox, "sort": "subject", "after": fromCursor}, CodeInvalid, "invalid")
		c.fail("messages.list", map[string]any{"folderID": inbox, "after": "cnotacursor!"}, CodeInvalidParams, "invalidParams")
	})
}

// TestSearch: messages.search with the query language over the whole
// mailbox, for a user with the index and a secure user with the scan:
// scope, totals, pages by start and by next, a deleted message's cursor,
// and errors naming the term.
func TestSearch(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		for _, secure := range []bool{false, true} {
			t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
				c, auth := fx.user(t, fmt.Sprintf("me%v@example.org", secure), secure)
				boxes, _ := fillListMail(t, fx.env.Account(auth))
				search := func(p map[string]any) searchResult {
					t.Helper()
					var r searchResult
					c.must("messages.search", p, &r)
					return r
				}
				for _, tc := range []struct {
					query string
					want  []string
				}{
					{"noodle", []string{"Re: Lunch?", "Lunch?"}},
					{"noodle in:anywhere", []string{"old noodle recipe", "Cheap noodle deals", "Re: Lunch?", "Lunch?"}},
					{"noodle in:Junk", []string{"Cheap noodle deals"}},
					{"noodle in:anywhere -in:Trash", []string{"Cheap noodle deals", "Re: Lunch?", "Lunch?"}},
					{`"noodle bar" -is:read`, []string{"Re: Lunch?"}},
					{"from:bob", []string{"Budget review", "Lunch?"}},
					{"budget -from:bob", []string{"[team] Budget"}},
					{"subject:budget OR is:flagged", []string{"Budget review", "[team] Budget", "Lunch?"}},
					{"has:attachment", []string{"[team] Budget"}},
					{"is:unread", []string{"[team] Budget", "Re: Lunch?"}},
					{"before:2026-05-02", []string{"Lunch?"}},
					{"after:2026-05-05 in:anywhere", []string{"Zebra crossing", "old noodle recipe", "Budget review"}},
					{"larger:300 smaller:1M", []string{"[team] Budget"}},
					{"nothing-like-this", nil},
				} {
					r := search(map[string]any{"query": tc.query})
					if got := subjectsOf(r.Messages); !slices.Equal(got, tc.want) || r.Total != len(tc.want) || r.State == "" {
						t.Errorf("%q: %v (total %d, state %q), want %v", tc.query, got, r.Total, r.State, tc.want)
					}
				}
				if r := search(map[string]any{"query": "noodle", "folderID": boxes["Trash"]}); r.Total != 1 {
					t.Errorf("in a folder: %+v", r)
				}
				// Pages: by start, by next; the same matches.
				all := search(map[string]any{"query": "in:anywhere"})
				if all.Total != len(listMail) {
					t.Fatalf("everything: %d", all.Total)
				}
				var byStart, byNext []string
				after := ""
				for i := 0; i < all.Total; i += 3 {
					r := search(map[string]any{"query": "in:anywhere", "start": i, "limit": 3})
					byStart = append(byStart, subjectsOf(r.Messages)...)
					p := map[string]any{"query": "in:anywhere", "limit": 3}
					if after != "" {
						p["after"] = after
					}
					n := search(p)
					byNext = append(byNext, subjectsOf(n.Messages)...)
					after = n.Next
					if r.Total != all.Total || n.Total != all.Total {
						t.Errorf("page totals %d, %d, want %d", r.Total, n.Total, all.Total)
					}
				}
				if want := subjectsOf(all.Messages); !slices.Equal(byStart, want) || !slices.Equal(byNext, want) {
					t.Errorf("paged %v / %v, want %v", byStart, byNext, want)
				}
				// after may name a message (the older form).
				if r := search(map[string]any{"query": "in:anywhere", "limit": 1, "after": all.Messages[0].MessageID}); len(r.Messages) != 1 || r.Messages[0].Subject != all.Messages[1].Subject {
					t.Errorf("after a message id: %+v", r)
				}
				// The message a cursor ended on is deleted.
				first := search(map[string]any{"query": "in:anywhere", "limit": 2})
				var rm okResult
				c.must("messages.remove", map[string]any{"messageIDs": []string{first.Messages[1].MessageID}}, &rm)
				rest := search(map[string]any{"query": "in:anywhere", "limit": 1, "after": first.Next})
				if len(rest.Messages) != 1 || rest.Messages[0].Subject != all.Messages[2].Subject || rest.Total != all.Total-1 || rest.State == first.State {
					t.Errorf("after a deleted message: %+v", rest)
				}
				// A word's matches page by the cursor as well (the
				// index's order), the count kept.
				noodles := slices.DeleteFunc([]string{"old noodle recipe", "Cheap noodle deals", "Re: Lunch?", "Lunch?"},
					func(s string) bool { return s == first.Messages[1].Subject })
				var paged []string
				cur := ""
				for range noodles {
					p := map[string]any{"query": "noodle in:anywhere", "limit": 1}
					if cur != "" {
						p["after"] = cur
					}
					r := search(p)
					if r.Total != len(noodles) {
						t.Errorf("noodle page total %d, want %d", r.Total, len(noodles))
					}
					paged = append(paged, subjectsOf(r.Messages)...)
					cur = r.Next
				}
				if !slices.Equal(paged, noodles) {
					t.Errorf("noodle by pages %v, want %v", paged, noodles)
				}
				c.fail("messages.search", map[string]any{"query": "in:anywhere", "after": first.Messages[1].MessageID}, CodeNotFound, "notFound")
				for _, bad := range []struct{ query, term string }{
					{"is:important", "is:important"}, {"before:soon", "before:soon"}, {`"open`, `"open`},
					{"larger:big", "larger:big"}, {"in:Nowhere", "in:Nowhere"}, {"a OR", "OR"},
				} {
					e := c.fail("messages.search", map[string]any{"query": bad.query}, CodeInvalidParams, "invalidParams")
					if e.Data.Field != "query" || !strings.Contains(e.Message, bad.term) {
						t.Errorf("%q: %+v", bad.query, e)
					}
				}
				c.fail("messages.search", map[string]any{"query": "x", "start": 1, "after": first.Next}, CodeInvalid, "invalid")
			})
		}
	})
}

// TestSearchKept: the matches are kept with the state, so that the next
// pages do not search again: a message stored behind the store's back
// (no state change) is not seen until the state changes.
func TestSearchKept(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "me@example.org", false)
	a := fx.env.Account(auth)
	fillListMail(t, a)
	var r searchResult
	c.must("messages.search", map[string]any{"query": "noodle", "limit": 1}, &r)
	if r.Total != 2 {
		t.Fatalf("total %d", r.Total)
	}
	ctx := context.Background()
	// The index row of another noodle message's text, forged: the
	// search is not run again while the state holds.
	if _, err := fx.env.DB.ExecContext(ctx, "UPDATE messages SET text_id = (SELECT MIN(text_id) FROM messages WHERE search_subject = 'lunch?') WHERE search_subject = 'zebra crossing'"); err != nil {
		t.Fatal(err)
	}
	c.must("messages.search", map[string]any{"query": "noodle", "start": 1, "limit": 1}, &r)
	if r.Total != 2 {
		t.Errorf("second page searched again: total %d", r.Total)
	}
	fx.deliver(t, auth, []byte("From: a@x.org\r\nSubject: s\r\n\r\nnothing\r\n"))
	c.must("messages.search", map[string]any{"query": "noodle"}, &r)
	if r.Total != 3 {
		t.Errorf("after a change: total %d, want the forged row found too", r.Total)
	}
}

// TestSearchCountLater: where counting would cost more than the page (the
// store's thresholds set so that a few messages are many), the page comes
// with an estimate, marked, and messages.searchCount counts; the count is
// then kept, and the next pages carry it.
func TestSearchCountLater(t *testing.T) {
	tuned := store.SearchTuning{CountBudget: time.Nanosecond, SmallUser: 1, Selective: 1, CountCost: 1, FewMatches: -1}
	forEachBackend(t, fixtureOptions{search: tuned}, func(t *testing.T, fx *fixture) {
		c, auth := fx.user(t, "me@example.org", false)
		boxes, _ := fillListMail(t, fx.env.Account(auth))
		var r searchResult
		c.must("messages.search", map[string]any{"query": "noodle", "limit": 1}, &r)
		if !r.TotalEstimated || r.Total < 1 || len(r.Messages) != 1 || subjectsOf(r.Messages)[0] != "Re: Lunch?" {
			t.Fatalf("first page: %+v; want Re: Lunch? and an estimate", r)
		}
		var n searchCountResult
		c.must("messages.searchCount", map[string]any{"query": "noodle"}, &n)
		if n.Total != 2 || n.State != r.State {
			t.Errorf("searchCount: %+v; want 2 at state %s", n, r.State)
		}
		r = searchResult{}
		c.must("messages.search", map[string]any{"query": "noodle", "start": 1, "limit": 1}, &r)
		if r.TotalEstimated || r.Total != 2 || subjectsOf(r.Messages)[0] != "Lunch?" {
			t.Errorf("next page: %+v; want Lunch? of 2, counted", r)
		}
		// Another scope is another count.
		c.must("messages.searchCount", map[string]any{"query": "noodle in:anywhere"}, &n)
		if n.Total != 4 {
			t.Errorf("searchCount in:anywhere: %d, want 4", n.Total)
		}
		c.must("messages.searchCount", map[string]any{"query": "noodle", "folderID": boxes["Junk"]}, &n)
		if n.Total != 1 {
			t.Errorf("searchCount in Junk: %d, want 1", n.Total)
		}
		c.fail("messages.searchCount", map[string]any{"query": "in:nowhere"}, CodeInvalidParams, "invalidParams")
	})
}
