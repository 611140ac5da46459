package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/message"
	"basalt/store"
)

// The benchmarks of search, sorts and threads over a folder of 100,000
// messages. The folder is made of rows written in bulk (as
// storetest.Seed does, with what appends add for search and sorts: sort
// keys, thread ids and index rows) from generated mail: 500 senders, a
// vocabulary of 5,000 words drawn with a Zipf law, threads of 1 to 8
// messages. On SQLite the built database is kept under the system's
// temporary directory, so that later runs copy it rather than build it.

const bigFolder = 100_000

// corpus makes the generated mail, the same at every run.
type corpus struct {
	r     *rand.Rand
	zipf  *rand.Zipf
	words []string
}

func newCorpus() *corpus {
	r := rand.New(rand.NewPCG(1, 2))
	c := &corpus{r: r, zipf: rand.NewZipf(r, 1.1, 1, 4999)}
	syl := []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "be", "da", "fo", "gu", "ha", "je", "pe", "zo"}
	for i := range 5000 {
		w := ""
		for n := i; ; n /= len(syl) {
			w += syl[n%len(syl)]
			if n < len(syl) {
				break
			}
		}
		c.words = append(c.words, w+"n")
	}
	return c
}

func (c *corpus) text(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = c.words[c.zipf.Uint64()]
	}
	return strings.Join(ws, " ")
}

func capital(w string) string { return strings.ToUpper(w[:1]) + w[1:] }

// seedBig fills a mailbox of the account's user with bigFolder generated
// messages, rows and index rows in bulk.
func seedBig(tb testing.TB, e *storetest.Env, userID, mailboxID int64) {
	tb.Helper()
	ctx := context.Background()
	c := newCorpus()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var idBase int64
	if err := e.DB.GetContext(ctx, &idBase, "SELECT COALESCE(MAX(id), 0) FROM messages"); err != nil {
		tb.Fatal(err)
	}
	idBase += 1000
	const batch = 250
	thread := int64(0)
	for start := 0; start < bigFolder; start += batch {
		var sb, tx strings.Builder
		var args, targs []any
		sb.WriteString(`INSERT INTO messages (id, user_id, mailbox_id, uid, modseq, flags, keywords, size, internal_date, blob_id, info,
			info_sealed, search_from, search_to, search_subject, msgid_hash, thread_id, has_attachments, created_at, sent_date,
			sort_from, sort_subject, parent_hash, text_id) VALUES `)
		if e.DB.Dialect() == "sqlite" {
			tx.WriteString("INSERT INTO message_text (rowid, subject, sender, recipients, body) VALUES ")
		} else {
			tx.WriteString("INSERT INTO message_text (id, user_id, subject, sender, recipients, body) VALUES ")
		}
		for i := start; i < min(start+batch, bigFolder); i++ {
			id := idBase + int64(i)
			sender := c.r.IntN(500)
			from := fmt.Sprintf("%s %s <%s%d@example.net>", capital(c.words[sender]), capital(c.words[sender+500]), c.words[sender], sender)
			subject := c.text(2 + c.r.IntN(5))
			if c.r.IntN(8) != 0 && i > 0 {
				subject = "Re: " + subject
			} else {
				thread = id
			}
			body := c.text(40 + c.r.IntN(160))
			date := base.Add(time.Duration(i) * 5 * time.Minute)
			raw := []byte("From: " + from + "\r\nTo: Alice <alice@example.org>\r\nSubject: " + subject + "\r\nDate: " +
				date.Format(time.RFC1123Z) + "\r\nMessage-ID: <m" + fmt.Sprint(i) + "@example.net>\r\n\r\n" + body + "\r\n")
			info := message.Parse(raw)
			meta, err := json.Marshal(info)
			if err != nil {
				tb.Fatal(err)
			}
			var flags store.Flags
			if c.r.IntN(10) != 0 || i < bigFolder-2000 && c.r.IntN(3) != 0 {
				flags |= store.FlagSeen
			}
			if c.r.IntN(40) == 0 {
				flags |= store.FlagFlagged
			}
			if i > start {
				sb.WriteString(",")
				tx.WriteString(",")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, 0, ?, ?, ?, '', ?, ?, 0, ?, ?, ?, '', ?)")
			args = append(args, id, userID, mailboxID, i+1, i+1, flags, len(raw), date.Unix(), fmt.Sprintf("big%029x", i), meta,
				info.SearchFrom, info.SearchTo, info.SearchSubject, thread, c.r.IntN(20) == 0, date.Unix(),
				message.SortFrom(&info.Envelope, 100), message.SortSubject(subject, 100), userID<<36|id)
			if e.DB.Dialect() == "sqlite" {
				tx.WriteString("(?, ?, ?, ?, ?)")
				targs = append(targs, userID<<36|id, subject, info.SearchFrom, info.SearchTo, body)
			} else {
				tx.WriteString("(?, ?, ?, ?, ?, ?)")
				targs = append(targs, userID<<36|id, userID, subject, info.SearchFrom, info.SearchTo, body)
			}
		}
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind(sb.String()), args...); err != nil {
			tb.Fatalf("seed: %v", err)
		}
		if _, err := e.DB.ExecContext(ctx, e.DB.Rebind(tx.String()), targs...); err != nil {
			tb.Fatalf("seed text: %v", err)
		}
	}
	if _, err := e.DB.ExecContext(ctx, e.DB.Rebind(`UPDATE mailboxes SET uidnext = ?, highest_modseq = ?, message_count = ? WHERE id = ?`),
		bigFolder+1, bigFolder+1, bigFolder, mailboxID); err != nil {
		tb.Fatal(err)
	}
	if e.DB.Dialect() == "mysql" {
		e.DB.ExecContext(ctx, "ANALYZE TABLE messages")
		e.DB.ExecContext(ctx, "OPTIMIZE TABLE message_text")
	} else {
		e.DB.ExecContext(ctx, "ANALYZE")
		e.DB.ExecContext(ctx, "INSERT INTO message_text(message_text) VALUES ('optimize')")
	}
}

// bigEnv opens a store with a user whose INBOX holds the big folder.
func bigEnv(b *testing.B, db testsupport.Database) (*storetest.Env, *store.Account, int64) {
	b.Helper()
	cache := filepath.Join(os.TempDir(), "basalt-bench", "search100k-0015-v2.db")
	if db.Driver == "sqlite" {
		if src, err := os.Open(cache); err == nil {
			dst, err := os.Create(db.DSN)
			if err == nil {
				_, err = io.Copy(dst, src)
				dst.Close()
			}
			src.Close()
			if err != nil {
				b.Fatal(err)
			}
			e := storetest.Open(b, db, storetest.Options{})
			a := e.Store.Account(1, nil)
			return e, a, storetest.Inbox(b, a)
		}
	}
	e := storetest.Open(b, db, storetest.Options{})
	a := e.Account(e.NewUser(b, "alice@example.org", false))
	inbox := storetest.Inbox(b, a)
	start := time.Now()
	seedBig(b, e, a.UserID(), inbox)
	b.Logf("seeded %d messages in %v", bigFolder, time.Since(start))
	if db.Driver == "sqlite" && a.UserID() == 1 {
		err := os.MkdirAll(filepath.Dir(cache), 0o700)
		if err == nil {
			os.Remove(cache + ".tmp")
			_, err = e.DB.DB.ExecContext(context.Background(), "VACUUM INTO '"+strings.ReplaceAll(cache, "'", "''")+".tmp'")
		}
		if err == nil {
			err = os.Rename(cache+".tmp", cache)
		}
		if err != nil {
			b.Logf("keep the built database: %v", err)
		}
	} else if db.Driver == "sqlite" {
		b.Logf("user %d: the built database is not kept", a.UserID())
	}
	return e, a, inbox
}

// BenchmarkSearch100k over 100,000 messages: FindMessages (every match,
// newest first), and FindPage's first page of 50 with the count and its
// next page (what messages.search does).
func BenchmarkSearch100k(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		_, a, inbox := bigEnv(b, db)
		c := newCorpus()
		w := func(rank int) []string { return []string{c.words[rank]} }
		ctx := context.Background()
		for _, tc := range []struct {
			name   string
			groups [][]store.SearchTerm
		}{
			{"word-common", [][]store.SearchTerm{{{Kind: store.TermText, Words: w(3)}}}},
			{"word-rare", [][]store.SearchTerm{{{Kind: store.TermText, Words: w(2000)}}}},
			{"two-words", [][]store.SearchTerm{{{Kind: store.TermText, Words: w(40)}}, {{Kind: store.TermText, Words: w(90)}}}},
			{"phrase", [][]store.SearchTerm{{{Kind: store.TermText, Words: []string{c.words[1], c.words[2]}}}}},
			{"from", [][]store.SearchTerm{{{Kind: store.TermFrom, Words: w(7)}}}},
			{"combined", [][]store.SearchTerm{{{Kind: store.TermFrom, Words: w(7)}}, {{Kind: store.TermText, Words: w(10)}}, {{Kind: store.TermUnread, Not: true}}}},
			{"unread", [][]store.SearchTerm{{{Kind: store.TermUnread}}}},
		} {
			q := store.MailQuery{Mailboxes: []int64{inbox}, Groups: tc.groups}
			b.Run(tc.name+"/all", func(b *testing.B) {
				var n int
				for b.Loop() {
					hits, err := a.FindMessages(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					n = len(hits)
				}
				b.ReportMetric(float64(n), "matches")
			})
			// What messages.search does for its first page: 50 matches
			// and the count, unless it would cost more than the page
			// (CountLater: then an estimate, and the count is /count);
			// then the next page, the count known.
			var first store.FoundPage
			b.Run(tc.name+"/page", func(b *testing.B) {
				for b.Loop() {
					var err error
					if first, err = a.FindPage(ctx, q, store.FindQuery{Limit: 50, CountLater: true}); err != nil {
						b.Fatal(err)
					}
				}
				if first.Total < 0 {
					b.ReportMetric(float64(first.Estimate), "estimate")
				} else {
					b.ReportMetric(float64(first.Total), "matches")
				}
			})
			if first.Total < 0 {
				b.Run(tc.name+"/count", func(b *testing.B) {
					var n int
					for b.Loop() {
						var err error
						if n, err = a.CountFound(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n), "matches")
					first.Total = n
				})
			}
			if len(first.Hits) < 50 {
				continue
			}
			b.Run(tc.name+"/next", func(b *testing.B) {
				fq := store.FindQuery{After: &first.Hits[49], Limit: 50, Total: first.Total}
				for b.Loop() {
					if _, err := a.FindPage(ctx, q, fq); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// BenchmarkListPage100k: a page of 50 with info in the middle of the big
// folder, for each order and filter and for threads, from the key of the
// message before it (as next does).
func BenchmarkListPage100k(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		_, a, inbox := bigEnv(b, db)
		ctx := context.Background()
		type bq struct {
			name string
			q    store.PageQuery
		}
		var qs []bq
		for _, s := range []struct {
			name string
			sort store.Sort
			desc bool
		}{{"arrival", store.SortDateDesc, true}, {"sent", store.SortSent, true}, {"from", store.SortFrom, false},
			{"subject", store.SortSubject, false}, {"size", store.SortSize, true}, {"flagged", store.SortFlagged, true}, {"unread", store.SortUnread, true}} {
			qs = append(qs, bq{s.name, store.PageQuery{Sort: s.sort, Desc: s.desc}})
		}
		qs = append(qs, bq{"filter-unread", store.PageQuery{Sort: store.SortDateDesc, Filter: store.PageFilter{Unread: true}}},
			bq{"filter-flagged", store.PageQuery{Sort: store.SortDateDesc, Filter: store.PageFilter{Flagged: true}}},
			bq{"threads", store.PageQuery{Sort: store.SortDateDesc, Threads: true}})
		for _, tc := range qs {
			n, err := a.CountPage(ctx, inbox, tc.q)
			if err != nil {
				b.Fatal(err)
			}
			// The key of the entry before the middle, found once.
			mid := tc.q
			mid.Skip, mid.Limit = int(n/2)-1, 1
			before, err := a.ListPage(ctx, inbox, mid)
			if err != nil || len(before) != 1 {
				b.Fatalf("%s: middle: %v", tc.name, err)
			}
			k := store.KeyOf(before[0], tc.q.Sort)
			q := tc.q
			q.After, q.Limit, q.WithInfo = &k, 50, true
			b.Run(tc.name, func(b *testing.B) {
				for b.Loop() {
					page, err := a.ListPage(ctx, inbox, q)
					if err != nil || len(page) != 50 {
						b.Fatalf("%d, %v", len(page), err)
					}
					if q.Threads {
						ids := make([]int64, len(page))
						for i, m := range page {
							ids[i] = m.ThreadID
						}
						if _, err := a.ThreadStats(ctx, inbox, ids); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
		b.Run("count-threads", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.CountPage(ctx, inbox, store.PageQuery{Threads: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkSecureScan1000: a secure user's search, which decrypts: over
// 1,000 messages, a sender (the metadata of each decrypted) and a word
// found in no header (each message's text decrypted too).
func BenchmarkSecureScan1000(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		e := storetest.Open(b, db, storetest.Options{})
		a := e.Account(e.NewUser(b, "sam@example.org", true))
		inbox := storetest.Inbox(b, a)
		c := newCorpus()
		ctx := context.Background()
		var msgs []store.Delivery
		for i := range 1000 {
			raw := []byte(fmt.Sprintf("From: %s <s%d@example.net>\r\nTo: sam@example.org\r\nSubject: %s\r\n\r\n%s\r\n",
				c.words[i%50], i%50, c.text(5), c.text(150)))
			msgs = append(msgs, store.Delivery{UserID: a.UserID(), Raw: raw})
		}
		for _, d := range msgs {
			if _, err := e.Store.Deliver(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			term store.SearchTerm
		}{
			{"from", store.SearchTerm{Kind: store.TermFrom, Words: []string{c.words[7]}}},
			{"body-word", store.SearchTerm{Kind: store.TermText, Words: []string{"nosuchword"}}},
		} {
			b.Run(tc.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := a.FindMessages(ctx, store.MailQuery{Mailboxes: []int64{inbox}, Groups: [][]store.SearchTerm{{tc.term}}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
