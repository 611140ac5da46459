package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestFindManyWords: a query of many words (1,000 characters hold some
// 250) is not weighed on a sample, whose cost grows with each word and
// term, but left to the index, as one of a few words is not; either way
// the page is right.
func TestFindManyWords(t *testing.T) {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima")
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		for i, body := range []string{strings.Join(words, " "), "alpha bravo and nothing else", strings.Join(words[:6], " ")} {
			raw := fmt.Sprintf("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: note %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n%s\r\n", i, i, body)
			storetest.Append(t, a, inbox, []byte(raw), store.AppendOptions{InternalDate: time.Date(2026, 3, 1+i, 12, 0, 0, 0, time.UTC)})
		}
		store.SetSearchTuning(e.Store, store.SearchTuning{SmallUser: 1, Selective: 1})
		terms := func(ws ...string) store.MailQuery {
			q := store.MailQuery{Mailboxes: []int64{inbox}}
			for _, w := range ws {
				q.Groups = append(q.Groups, []store.SearchTerm{{Kind: store.TermText, Words: []string{w}}})
			}
			return q
		}
		repeated := make([]string, 12)
		for i := range repeated {
			repeated[i] = "alpha"
		}
		for _, tc := range []struct {
			name  string
			q     store.MailQuery
			weigh bool
			want  int
		}{
			{"two words", terms("alpha", "bravo"), true, 3},
			{"eight words", terms(words[:8]...), true, 1},
			{"twelve words", terms(words...), false, 1},
			{"one word twelve times", terms(repeated...), false, 3},
		} {
			if db.Driver == "mysql" {
				if w, err := store.Weighs(ctx, a, tc.q); err != nil || w != tc.weigh {
					t.Errorf("%s: weighed %v, %v; want %v", tc.name, w, err, tc.weigh)
				}
			}
			p, err := a.FindPage(ctx, tc.q, store.FindQuery{Limit: 10})
			if err != nil || len(p.Hits) != tc.want || p.Total != tc.want {
				t.Errorf("%s: %d found of %d, %v; want %d", tc.name, len(p.Hits), p.Total, err, tc.want)
			}
		}
	})
}
