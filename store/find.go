package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"basalt/message"
	"basalt/store/sqldb"
)

// The webmail's search over a user's whole mailbox (FindMessages). For a
// user whose mail is not sealed the words are looked up in the full-text
// index (textindex.go) and the rest in the metadata rows, in one
// statement. A secure user's mail has no index that could be read
// without the key: it is scanned, newest first, its metadata and (for
// free text the headers do not settle) its text decrypted with the
// unlocked key, in memory only.

// TermKind is what a search term tests.
type TermKind int

// Search terms.
const (
	TermText       TermKind = iota // Words in the subject, senders, recipients or text
	TermFrom                       // Words in the senders
	TermTo                         // Words in the recipients (To and Cc)
	TermSubject                    // Words in the subject
	TermAttachment                 // has an attachment
	TermUnread
	TermRead
	TermFlagged
	TermBefore  // arrived before Time
	TermAfter   // arrived at or after Time
	TermLarger  // larger than Size octets
	TermSmaller // smaller than Size octets
	TermFlags   // has every one of Flags
)

// SearchTerm is one condition of a search.
type SearchTerm struct {
	Kind TermKind
	Not  bool
	// Words, for the text kinds, must appear one after the other (a
	// phrase; one word is the usual case), as message.Words splits text.
	Words []string
	Time  time.Time
	Size  int64
	Flags Flags
}

func (t SearchTerm) textual() bool { return t.Kind <= TermSubject }

// MailQuery is a search: every group must hold, and a group holds when
// one of its terms does.
type MailQuery struct {
	// Mailboxes are the account's own mailboxes searched.
	Mailboxes []int64
	Groups    [][]SearchTerm
}

// Hit is a message a search found.
type Hit struct {
	ID        int64  `db:"id"`
	TextID    int64  `db:"text_id"`
	MailboxID int64  `db:"mailbox_id"`
	UID       uint32 `db:"uid"`
	Date      int64  `db:"internal_date"`
}

// textOrdered reports whether q's matches are in the order of the text
// index's rows: when a group of words alone must hold, the index's
// matches drive the search, and their rows are in the order their texts
// arrived (text ids, textRange), newest first, so that a page of them is
// found without reading the others. The copies of one text, which share
// its row, follow by folder and UID. Other searches are in arrival date
// order (then folder and UID, descending), as folders are listed.
func (q MailQuery) textOrdered() bool {
	for _, g := range q.Groups {
		if len(g) > 0 && !slices.ContainsFunc(g, func(t SearchTerm) bool { return !t.textual() || t.Not }) {
			return true
		}
	}
	return false
}

// Compare orders two matches of q as its results are: below 0 when x
// comes first.
func (q MailQuery) Compare(x, y Hit) int {
	if q.textOrdered() {
		return cmp.Or(cmp.Compare(y.TextID, x.TextID), cmp.Compare(x.MailboxID, y.MailboxID), cmp.Compare(x.UID, y.UID))
	}
	return cmp.Or(cmp.Compare(y.Date, x.Date), cmp.Compare(y.MailboxID, x.MailboxID), cmp.Compare(y.UID, x.UID))
}

// orderBy is the SQL of q's order (Compare), for a statement over
// messages m.
func (q MailQuery) orderBy() string {
	if q.textOrdered() {
		return " ORDER BY m.text_id DESC, m.mailbox_id, m.uid"
	}
	return " ORDER BY m.internal_date DESC, m.mailbox_id DESC, m.uid DESC"
}

// afterCond is the condition that a message comes after h in q's order.
func (q MailQuery) afterCond(h Hit) (string, []any) {
	if q.textOrdered() {
		return "(m.text_id < ? OR (m.text_id = ? AND (m.mailbox_id > ? OR (m.mailbox_id = ? AND m.uid > ?))))",
			[]any{h.TextID, h.TextID, h.MailboxID, h.MailboxID, h.UID}
	}
	return "(m.internal_date < ? OR (m.internal_date = ? AND (m.mailbox_id < ? OR (m.mailbox_id = ? AND m.uid < ?))))",
		[]any{h.Date, h.Date, h.MailboxID, h.MailboxID, h.UID}
}

// FindMessages returns every message of q.Mailboxes that matches q, in
// the order of q.Compare: newest first. For a secure user it needs the
// account's key.
func (a *Account) FindMessages(ctx context.Context, q MailQuery) ([]Hit, error) {
	secure, err := a.findCheck(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(q.Mailboxes) == 0 {
		return []Hit{}, nil
	}
	var hits []Hit
	if secure {
		hits, err = a.scan(ctx, q)
	} else {
		st := a.indexedSQL(q)
		hits, err = a.selectHits(ctx, "SELECT m.id, m.text_id, m.mailbox_id, m.uid, m.internal_date"+st.from+" WHERE "+st.where+st.order, st.args)
	}
	if err != nil {
		return nil, fmt.Errorf("find messages: %w", err)
	}
	return hits, nil
}

// FindQuery is the page of a search's matches FindPage returns.
type FindQuery struct {
	// After continues after that match (a page's last), by its place in
	// the order (the match's TextID, Date, MailboxID and UID): it holds
	// when that message is gone.
	After *Hit
	// Skip leaves out that many matches first (after After, if set).
	Skip  int
	Limit int
	// Total, when above 0, is the count of matches a former page of the
	// same search found at the same state: it is not counted again.
	Total int
	// CountLater lets FindPage leave out a count that would cost more
	// than the page: one of words found in most of a large mailbox
	// (findplan.go). FoundPage.Total is then -1 and Estimate says about
	// how many match; CountFound counts them.
	CountLater bool
}

// FoundPage is a page of a search's matches.
type FoundPage struct {
	Hits  []Hit
	Total int // every match, not only the page's; -1: left for CountFound
	// Estimate, when Total is -1, is about how many match: the page's
	// share of the newest texts, carried over the rest.
	Estimate int
	// All is every match, when the search had to find them all to
	// answer (a secure user's scan): kept, it answers the next pages
	// without another scan (PageOf).
	All []Hit
}

// FindPage returns a page of what FindMessages would, and the count of
// all. With the index it does not read every match: a page of words
// walks the matches newest first and stops when the page is full, so
// that the first page of a word in every message costs about what a rare
// word's does; the count is a pass over the index's matches (countFound,
// countPlan) unless q.CountLater lets a costly one wait for CountFound.
func (a *Account) FindPage(ctx context.Context, q MailQuery, p FindQuery) (FoundPage, error) {
	start := time.Now()
	if p.Limit <= 0 {
		return FoundPage{}, fmt.Errorf("find messages: %w: limit %d", ErrInvalid, p.Limit)
	}
	secure, err := a.findCheck(ctx, q)
	if err != nil {
		return FoundPage{}, err
	}
	if len(q.Mailboxes) == 0 {
		return FoundPage{Hits: []Hit{}, All: []Hit{}}, nil
	}
	if secure {
		all, err := a.scan(ctx, q)
		if err != nil {
			return FoundPage{}, fmt.Errorf("find messages: %w", err)
		}
		return FoundPage{Hits: q.PageOf(all, p), Total: len(all), All: all}, nil
	}
	st := a.indexedSQL(q)
	if a.s.db.Dialect() == sqldb.MySQL {
		return a.findPageMy(ctx, q, st, p)
	}
	hits, err := a.pageOf(ctx, q, st, p)
	if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: %w", err)
	}
	out := FoundPage{Hits: hits, Total: p.Total}
	switch {
	case out.Total > 0:
	case p.After == nil && p.Skip <= 0 && len(hits) < p.Limit:
		out.Total = len(hits) // the page is every match
	case p.CountLater && q.textOrdered() && a.bigUser(ctx):
		// FTS5 counts a word's matches at some 0.4 µs each, a
		// phrase's (positions compared) at several: in a large mailbox
		// the page and the count get a budget, and a count that would
		// go past it is left for CountFound. SQLite stops a statement
		// whose context ends (sqlite3_interrupt).
		// The page's share of the texts it spans says about how
		// many match, and so whether the count can fit at all: FTS5
		// counts a word's matches at some 0.5 µs each (countFound),
		// anything else at some 3 (a phrase's positions compared).
		est, err := a.estimate(ctx, q, p, hits)
		if err != nil {
			return FoundPage{}, fmt.Errorf("find messages: estimate: %w", err)
		}
		per := 3 * time.Microsecond
		if len(q.Groups) == 1 && len(q.Groups[0]) == 1 && len(q.Groups[0][0].Words) == 1 {
			per = time.Microsecond / 2
		}
		// A few matches are always counted: an estimate of them
		// would look wrong, and the words' index entries they cost
		// are what the page read too.
		tn := a.s.tuning()
		budget := tn.CountBudget - time.Since(start)
		switch {
		case est <= tn.FewMatches:
			budget = time.Hour
		case budget < minCountBudget || time.Duration(est)*per > budget:
			budget = 0
		}
		cctx, cancel := context.WithTimeout(ctx, budget)
		if budget > 0 {
			out.Total, err = a.countFound(cctx, q, st)
		} else {
			err = cctx.Err()
		}
		cancel()
		if err != nil && ctx.Err() == nil && cctx.Err() != nil {
			out.Total, out.Estimate, err = -1, est, nil
		} else if err != nil {
			return FoundPage{}, fmt.Errorf("find messages: count: %w", err)
		}
	default:
		if out.Total, err = a.countFound(ctx, q, st); err != nil {
			return FoundPage{}, fmt.Errorf("find messages: count: %w", err)
		}
	}
	return out, nil
}

// minCountBudget is the least time a count is tried in: less would be
// spent for nothing.
const minCountBudget = 5 * time.Millisecond

// pageOf runs the page p of st.
func (a *Account) pageOf(ctx context.Context, q MailQuery, st indexedSQL, p FindQuery) ([]Hit, error) {
	where, args := st.where, slices.Clone(st.args)
	if p.After != nil {
		if st.hiArg >= 0 {
			// The index's walk starts at the match's own row.
			args[st.hiArg] = min(args[st.hiArg].(int64), p.After.TextID)
		}
		c, cargs := q.afterCond(*p.After)
		where += " AND " + c
		args = append(args, cargs...)
	}
	args = append(args, p.Limit, max(p.Skip, 0))
	return a.selectHits(ctx, "SELECT m.id, m.text_id, m.mailbox_id, m.uid, m.internal_date"+st.from+" WHERE "+where+st.order+" LIMIT ? OFFSET ?", args)
}

// CountFound counts the messages of q.Mailboxes that match q, however
// many: what FindPage left for later (FindQuery.CountLater).
func (a *Account) CountFound(ctx context.Context, q MailQuery) (int, error) {
	secure, err := a.findCheck(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(q.Mailboxes) == 0 {
		return 0, nil
	}
	var n int
	if secure {
		var all []Hit
		all, err = a.scan(ctx, q)
		n = len(all)
	} else {
		st := a.indexedSQL(q)
		if a.s.db.Dialect() == sqldb.MySQL {
			// Words the index holds for more entries than half the
			// user's messages are counted faster by reading every text
			// with their expression (a phrase of two words in most of
			// 100,000 messages: 0.6 to 0.9 s, where the index took 2.2;
			// some 6 µs a text against 4 to 16 an index entry): the
			// plan's walk, to the end. A plan of rare words is the
			// index's anyway.
			var plan *myPlan
			if plan, err = a.planMy(ctx, q); err != nil {
				return 0, fmt.Errorf("count found messages: plan: %w", err)
			}
			if plan != nil && (!plan.walk || plan.cost > float64(plan.users)/2) {
				st = plan.st
			}
		}
		n, err = a.countFound(ctx, q, st)
	}
	if err != nil {
		return 0, fmt.Errorf("count found messages: %w", err)
	}
	return n, nil
}

// estimate is about how many messages match when a page of hits, in the
// order of the text index's rows (textOrdered), is what is known: the
// share of the searched messages the page spans that matched, carried
// over all of them (the folders' counts). The span is one range of an
// index that holds what is read (messages_text).
func (a *Account) estimate(ctx context.Context, q MailQuery, p FindQuery, hits []Hit) (int, error) {
	found := max(p.Skip, 0) + len(hits)
	if len(hits) == 0 {
		return found, nil
	}
	_, hi := textRange(a.userID)
	if p.After != nil {
		hi = min(hi, p.After.TextID)
	}
	in, args := a.mailboxCond(q)
	var spanned int
	if err := a.s.db.DB.QueryRowContext(ctx, a.s.rebind("SELECT COUNT(*) FROM messages m WHERE m.text_id BETWEEN ? AND ? AND "+in),
		append([]any{hits[len(hits)-1].TextID, hi}, args...)...).Scan(&spanned); err != nil {
		return 0, err
	}
	q2, args2, err := sqlx.In("SELECT COALESCE(SUM(message_count), 0) FROM mailboxes WHERE user_id = ? AND id IN (?)", a.userID, q.Mailboxes)
	if err != nil {
		return 0, err
	}
	var all int
	if err := a.s.db.DB.QueryRowContext(ctx, a.s.rebind(q2), args2...).Scan(&all); err != nil {
		return 0, err
	}
	return max(found, int(float64(len(hits))/float64(max(spanned, len(hits)))*float64(all)+0.5)), nil
}

// broadCount is the count of a search's index matches from which they
// are counted without a look-up each (countFound).
const broadCount = 5000

// maxUneven bounds the index rows countFound takes apart.
const maxUneven = 1000

// countFound counts the matches of st. Each index match costs a look-up
// of its messages (some 3 µs on SQLite), which for a word in most of
// 100,000 messages is a third of a second. When the words are the whole
// search, most index rows are one message in the folders searched: the
// count is then the index's own count of its matches (no look-up), plus,
// for the few rows that are not one message there (copies, messages in
// other folders), the difference, found by one pass over the user's
// index entries of the messages (ordered by text id, no look-up either).
// It rests on every index row having a message, which textindex.go
// keeps: a row goes with its last message.
func (a *Account) countFound(ctx context.Context, q MailQuery, st indexedSQL) (int, error) {
	var total int
	if st.plain {
		broad := broadCount
		if a.s.hooks.broadCount > 0 {
			broad = a.s.hooks.broadCount
		}
		lo, hi := textRange(a.userID)
		if err := a.s.db.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM message_text WHERE message_text MATCH ? AND rowid BETWEEN ? AND ?", st.expr, lo, hi).Scan(&total); err != nil {
			return 0, err
		}
		if total < broad {
			total = -1
		} else {
			in, inArgs := a.mailboxCond(q)
			in = strings.TrimPrefix(in, "m.user_id = ? AND ")
			args := append(inArgs[1:], lo, hi, a.userID)
			rows, err := a.s.db.DB.QueryContext(ctx, "SELECT m.text_id, SUM(CASE WHEN "+in+" THEN 1 ELSE 0 END) AS n FROM messages m INDEXED BY messages_text"+
				" WHERE m.text_id BETWEEN ? AND ? AND m.user_id = ? GROUP BY m.text_id HAVING n <> 1 LIMIT "+fmt.Sprint(maxUneven+1), args...)
			if err != nil {
				return 0, err
			}
			uneven := map[int64]int{}
			for rows.Next() {
				var id int64
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					rows.Close()
					return 0, err
				}
				uneven[id] = n
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, err
			}
			if len(uneven) > maxUneven {
				total = -1
			} else if len(uneven) > 0 {
				ids := make([]any, 0, len(uneven))
				for id := range uneven {
					ids = append(ids, id)
				}
				qs, qargs, err := sqlx.In("SELECT rowid FROM message_text WHERE message_text MATCH ? AND rowid IN (?)", st.expr, ids)
				if err != nil {
					return 0, err
				}
				matched, err := a.s.db.DB.QueryContext(ctx, qs, qargs...)
				if err != nil {
					return 0, err
				}
				for matched.Next() {
					var id int64
					if err := matched.Scan(&id); err != nil {
						matched.Close()
						return 0, err
					}
					total += uneven[id] - 1
				}
				matched.Close()
				if err := matched.Err(); err != nil {
					return 0, err
				}
			}
		}
		if total >= 0 {
			return total, nil
		}
	}
	err := a.s.db.DB.QueryRowContext(ctx, a.s.rebind("SELECT COUNT(*)"+st.from+" WHERE "+st.where), st.args...).Scan(&total)
	return total, err
}

// findPageCounted runs a first page of st on MariaDB with its count.
func (a *Account) findPageCounted(ctx context.Context, st indexedSQL, p FindQuery) (FoundPage, error) {
	conn, err := a.s.db.DB.Conn(ctx)
	if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: %w", err)
	}
	defer conn.Close()
	hits, err := selectHitsOn(ctx, conn, a.s.rebind("SELECT SQL_CALC_FOUND_ROWS m.id, m.text_id, m.mailbox_id, m.uid, m.internal_date"+st.from+" WHERE "+st.where+st.order+" LIMIT ? OFFSET ?"),
		append(slices.Clone(st.args), p.Limit, max(p.Skip, 0)))
	if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: %w", err)
	}
	var total int
	if err := conn.QueryRowContext(ctx, "SELECT FOUND_ROWS()").Scan(&total); err != nil {
		return FoundPage{}, fmt.Errorf("find messages: count: %w", err)
	}
	return FoundPage{Hits: hits, Total: total}, nil
}

// PageOf returns the page p of all, every match of q in its order
// (FoundPage.All).
func (q MailQuery) PageOf(all []Hit, p FindQuery) []Hit {
	start := 0
	if p.After != nil {
		start = sort.Search(len(all), func(i int) bool { return q.Compare(all[i], *p.After) > 0 })
	}
	start = min(start+max(p.Skip, 0), len(all))
	return all[start:min(start+max(p.Limit, 0), len(all))]
}

// HitOf returns a message of the account's as a search's match would
// name it: where it is in a search's order.
func (a *Account) HitOf(ctx context.Context, mailboxID int64, uid uint32) (Hit, error) {
	if a.view != nil {
		if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
			return Hit{}, fmt.Errorf("find message %d/%d: %w", mailboxID, uid, err)
		}
	}
	hits, err := a.selectHits(ctx, "SELECT m.id, m.text_id, m.mailbox_id, m.uid, m.internal_date FROM messages m WHERE m.user_id = ? AND m.mailbox_id = ? AND m.uid = ?",
		[]any{a.userID, mailboxID, uid})
	if err != nil {
		return Hit{}, fmt.Errorf("find message %d/%d: %w", mailboxID, uid, err)
	}
	if len(hits) == 0 {
		return Hit{}, fmt.Errorf("find message %d/%d: %w", mailboxID, uid, ErrNotFound)
	}
	return hits[0], nil
}

// findCheck checks a search, has the text index take what the user's
// appends left pending when the search needs it, and returns whether the
// user's mail is sealed (and the key there to scan it).
func (a *Account) findCheck(ctx context.Context, q MailQuery) (bool, error) {
	if a.view != nil {
		// A shared mailbox is searched as the owner's (only a non-secure
		// owner's are shared, rights), with "r" on each (RFC 4314 4).
		// The unread state there is the viewer's own, kept apart from
		// the index's rows: terms on it are refused, not answered with
		// the owner's.
		for _, id := range q.Mailboxes {
			if _, err := a.need(ctx, id, RightRead); err != nil {
				return false, fmt.Errorf("find messages in mailbox %d: %w", id, err)
			}
		}
		for _, g := range q.Groups {
			for _, t := range g {
				if t.Kind == TermUnread || t.Kind == TermRead || (t.Kind == TermFlags && t.Flags.Has(FlagSeen)) {
					return false, fmt.Errorf("find messages: %w: the read state of a shared mailbox is not searched", ErrInvalid)
				}
			}
		}
	}
	if len(q.Mailboxes) == 0 {
		return false, nil
	}
	for _, g := range q.Groups {
		for _, t := range g {
			if t.textual() && len(t.Words) == 0 {
				return false, fmt.Errorf("find messages: %w: a text term without words", ErrInvalid)
			}
		}
	}
	u, err := a.s.UserByID(ctx, a.userID)
	if err != nil {
		return false, fmt.Errorf("find messages: %w", err)
	}
	if u.Secure && a.key == nil {
		return false, fmt.Errorf("find messages: %w", ErrLocked)
	}
	if !u.Secure && q.textual() {
		// What appends left for the indexer is indexed first, so that a
		// search finds all the mail there is (text_pending). When that
		// fails, the search still answers from the index there is.
		if err := a.s.indexPendingOf(ctx, a.userID); err != nil && ctx.Err() == nil {
			a.s.log.Warn("search: pending texts not indexed", "user", a.userID, "err", err)
		}
	}
	return u.Secure, nil
}

// textual says whether q has a term the full-text index answers.
func (q MailQuery) textual() bool {
	for _, g := range q.Groups {
		for _, t := range g {
			if t.textual() {
				return true
			}
		}
	}
	return false
}

// mailboxCond restricts to q's mailboxes, which must be the account's.
func (a *Account) mailboxCond(q MailQuery) (string, []any) {
	marks := make([]string, len(q.Mailboxes))
	args := make([]any, len(q.Mailboxes))
	for i, id := range q.Mailboxes {
		marks[i], args[i] = "?", id
	}
	return "m.user_id = ? AND m.mailbox_id IN (" + strings.Join(marks, ", ") + ")", append([]any{a.userID}, args...)
}

// metaCond is the condition of a term on the metadata row, or "" for a
// textual term.
func metaCond(t SearchTerm) (string, []any) {
	var c string
	var args []any
	switch t.Kind {
	case TermAttachment:
		c = "m.has_attachments = 1"
	case TermUnread:
		c = "m.is_unseen = 1"
	case TermRead:
		c = "m.is_unseen = 0"
	case TermFlagged:
		c = "m.is_flagged = 1"
	case TermBefore:
		c, args = "m.internal_date < ?", []any{t.Time.Unix()}
	case TermAfter:
		c, args = "m.internal_date >= ?", []any{t.Time.Unix()}
	case TermLarger:
		c, args = "m.size > ?", []any{t.Size}
	case TermSmaller:
		c, args = "m.size < ?", []any{t.Size}
	case TermFlags:
		c = fmt.Sprintf("(m.flags & %d) = %d", t.Flags, t.Flags)
	default:
		return "", nil
	}
	if t.Not {
		c = "NOT (" + c + ")"
	}
	return c, args
}

// innodbStopwords is InnoDB's default stopword list
// (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD): words its FULLTEXT
// index leaves out, as it does words shorter than innodb_ft_min_token_size
// (3 by default).
var innodbStopwords = map[string]bool{"a": true, "about": true, "an": true, "are": true, "as": true, "at": true, "be": true,
	"by": true, "com": true, "de": true, "en": true, "for": true, "from": true, "how": true, "i": true, "in": true, "is": true,
	"it": true, "la": true, "of": true, "on": true, "or": true, "that": true, "the": true, "this": true, "to": true, "was": true,
	"what": true, "when": true, "where": true, "who": true, "will": true, "with": true, "und": true, "www": true}

// ftsColumns are the FTS5 columns a textual term looks in.
var ftsColumns = map[TermKind]string{TermText: "{subject sender recipients body}", TermFrom: "sender", TermTo: "recipients", TermSubject: "subject"}

// ftsPhrase is a textual term in FTS5's query syntax. The words are
// letters and digits only (message.Words), so the quoted phrase needs no
// escaping.
func ftsPhrase(t SearchTerm) string {
	return ftsColumns[t.Kind] + " : \"" + strings.Join(t.Words, " ") + "\""
}

// ftsCond is the condition that a message's text matches the FTS5
// expression, among the user's rows (a range of rowids: textRange).
func (a *Account) ftsCond(expr string) (string, []any) {
	lo, hi := textRange(a.userID)
	return "m.text_id IN (SELECT rowid FROM message_text WHERE message_text MATCH ? AND rowid BETWEEN ? AND ?)", []any{expr, lo, hi}
}

// textCond is the condition of a textual term: its words looked up in
// the full-text index.
func (a *Account) textCond(t SearchTerm) (string, []any) {
	var c string
	var args []any
	if a.s.db.Dialect() == sqldb.SQLite {
		c, args = a.ftsCond(ftsPhrase(t))
	} else {
		cols := map[TermKind]string{TermText: "subject, sender, recipients, body", TermFrom: "sender", TermTo: "recipients", TermSubject: "subject"}[t.Kind]
		var words []string
		for _, w := range t.Words {
			if utf8.RuneCountInString(w) >= 3 && !innodbStopwords[w] {
				words = append(words, w)
			}
		}
		if len(words) == 0 {
			// Nothing the index holds: the headers' search columns,
			// by substring, are what can be asked.
			like := "%" + strings.Join(t.Words, " ") + "%"
			switch t.Kind {
			case TermFrom:
				c, args = "m.search_from LIKE ?", []any{like}
			case TermTo:
				c, args = "m.search_to LIKE ?", []any{like}
			case TermSubject:
				c, args = "m.search_subject LIKE ?", []any{like}
			default:
				c, args = "(m.search_subject LIKE ? OR m.search_from LIKE ? OR m.search_to LIKE ?)", []any{like, like, like}
			}
		} else {
			c = "m.text_id IN (SELECT id FROM message_text WHERE user_id = ? AND MATCH (" + cols + ") AGAINST (? IN BOOLEAN MODE))"
			args = []any{a.userID, "+\"" + strings.Join(words, " ") + "\""}
		}
	}
	if t.Not {
		c = "NOT (" + c + ")"
	}
	return c, args
}

// innodbCols are the message_text columns of each FULLTEXT index a
// textual term searches.
var innodbCols = map[TermKind]string{TermText: "subject, sender, recipients, body", TermFrom: "sender", TermTo: "recipients", TermSubject: "subject"}

// innodbWords turns the groups of one positive textual term into one
// MATCH a column list (the words of all of them required, "+w"), and
// returns the conditions and the groups left. A phrase is asked as its
// words and checked with a regular expression on the row's text: InnoDB's
// own phrase search reads the positions of every word's every row, and
// took seconds on 100,000 messages where this takes what the rows with
// all the words take.
func (a *Account) innodbWords(groups [][]SearchTerm) (string, []any, [][]SearchTerm) {
	type match struct {
		words []string
		res   []string
	}
	byCols := map[TermKind]*match{}
	var order []TermKind
	var rest [][]SearchTerm
	for _, g := range groups {
		if len(g) != 1 || !g[0].textual() || g[0].Not {
			rest = append(rest, g)
			continue
		}
		t := g[0]
		words := innodbIndexed(t.Words)
		if len(words) == 0 {
			rest = append(rest, g) // textCond's substring search
			continue
		}
		m := byCols[t.Kind]
		if m == nil {
			m = &match{}
			byCols[t.Kind] = m
			order = append(order, t.Kind)
		}
		for _, w := range words {
			m.words = append(m.words, "+"+w)
		}
		if len(t.Words) > 1 {
			// The words are letters and digits (message.Words): no
			// character of theirs means anything to the expression.
			m.res = append(m.res, termRegexp(t.Words))
		}
	}
	var b strings.Builder
	var args []any
	for _, k := range order {
		m := byCols[k]
		b.WriteString(" AND m.text_id IN (SELECT id FROM message_text WHERE user_id = ? AND MATCH (" + innodbCols[k] + ") AGAINST (? IN BOOLEAN MODE)")
		args = append(args, a.userID, strings.Join(m.words, " "))
		for _, re := range m.res {
			b.WriteString(" AND " + textColumns("", k) + " REGEXP ?")
			args = append(args, re)
		}
		b.WriteString(")")
	}
	return b.String(), args, rest
}

// indexedSQL is a search of a user whose mail is not sealed as one
// statement: its FROM, WHERE and ORDER BY, and the index of the argument
// that bounds the walk over the index's rows from above (-1: none).
type indexedSQL struct {
	from, where, order string
	args               []any
	hiArg              int
	// expr is the FTS5 expression of a search on SQLite whose words
	// drive it, and plain says that the words are the whole search.
	expr  string
	plain bool
}

// indexedSQL builds the statement of q. On SQLite the groups of words
// alone are one FTS5 expression, which intersects the words' postings in
// the index (two common words whose messages are few together cost those
// few, not each word's many); its matches, newest first (rowid order,
// which FTS5 walks backwards by itself), drive a join to the messages
// that share each row; the rest are conditions on the rows.
func (a *Account) indexedSQL(q MailQuery) indexedSQL {
	where, args := a.mailboxCond(q)
	st := indexedSQL{from: " FROM messages m", order: q.orderBy(), hiArg: -1}
	var pos, neg []string
	groups := q.Groups
	if a.s.db.Dialect() == sqldb.SQLite {
		groups = nil
		for _, g := range q.Groups {
			switch {
			case len(g) == 1 && g[0].textual() && g[0].Not:
				neg = append(neg, "("+ftsPhrase(g[0])+")")
			case !slices.ContainsFunc(g, func(t SearchTerm) bool { return !t.textual() || t.Not }):
				var ors []string
				for _, t := range g {
					ors = append(ors, ftsPhrase(t))
				}
				pos = append(pos, "("+strings.Join(ors, " OR ")+")")
			default:
				groups = append(groups, g)
			}
		}
		if len(pos) == 0 {
			// FTS5's NOT needs something to take from: the negations
			// go one by one.
			for _, n := range neg {
				c, cargs := a.ftsCond(n)
				where += " AND NOT (" + c + ")"
				args = append(args, cargs...)
			}
		} else {
			expr := strings.Join(pos, " AND ")
			for _, n := range neg {
				expr = "(" + expr + ") NOT " + n
			}
			// The index's matches are the outer loop (CROSS JOIN keeps
			// them so), each a look-up of the messages that share the
			// row in an index that holds what is read. The order is
			// the outer loop's alone, which FTS5 gives without a sort;
			// the copies of one row come in the inner index's order,
			// folder then UID (q.Compare).
			lo, hi := textRange(a.userID)
			st.from = " FROM message_text CROSS JOIN messages m INDEXED BY messages_text ON m.text_id = message_text.rowid"
			where = "message_text MATCH ? AND message_text.rowid BETWEEN ? AND ? AND " + where
			args = append([]any{expr, lo, hi}, args...)
			st.hiArg = 2
			st.order = " ORDER BY message_text.rowid DESC"
			st.expr, st.plain = expr, len(groups) == 0
		}
	}
	if a.s.db.Dialect() == sqldb.MySQL {
		st.where, st.args = a.myWhere(q, nil)
		return st
	}
	c, cargs := a.groupsWhere(groups)
	where += c
	args = append(args, cargs...)
	st.where, st.args = where, args
	return st
}

// selectHits runs a query for hits. The rows are scanned by hand: a
// search may find a hundred thousand, where reflection per row (sqlx)
// would cost more than the query.
func (a *Account) selectHits(ctx context.Context, query string, args []any) ([]Hit, error) {
	return selectHitsOn(ctx, a.s.db.DB, a.s.rebind(query), args)
}

// selectHitsOn runs a query for hits on a database or one connection.
func selectHitsOn(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args []any) ([]Hit, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	hits := []Hit{}
	for rows.Next() {
		var h Hit
		if err := rows.Scan(&h.ID, &h.TextID, &h.MailboxID, &h.UID, &h.Date); err != nil {
			return nil, err
		}
		hits = append(hits, h)
	}
	return hits, rows.Err()
}

// scanChunk is how many messages a scan decrypts the metadata of at once.
const scanChunk = 256

// scan runs a search of a secure user's mail: the groups of metadata
// terms alone in SQL, then each remaining message's metadata decrypted
// and matched, and its text when a free-text term is not settled by the
// headers.
func (a *Account) scan(ctx context.Context, q MailQuery) ([]Hit, error) {
	where, args := a.mailboxCond(q)
	var rest [][]SearchTerm
	for _, g := range q.Groups {
		if slices.ContainsFunc(g, SearchTerm.textual) {
			rest = append(rest, g)
			continue
		}
		var ors []string
		for _, t := range g {
			c, cargs := metaCond(t)
			ors = append(ors, c)
			args = append(args, cargs...)
		}
		where += " AND (" + strings.Join(ors, " OR ") + ")"
	}
	var cands []struct {
		Hit
		Flags Flags `db:"flags"`
		Size  int64 `db:"size"`
		Att   bool  `db:"has_attachments"`
	}
	if err := a.s.db.DB.SelectContext(ctx, &cands, a.s.rebind("SELECT m.id, m.text_id, m.mailbox_id, m.uid, m.internal_date, m.flags, m.size, m.has_attachments FROM messages m WHERE "+where+
		q.orderBy()), args...); err != nil {
		return nil, err
	}
	hits := []Hit{}
	if len(rest) == 0 {
		for _, c := range cands {
			hits = append(hits, c.Hit)
		}
		return hits, nil
	}
	for start := 0; start < len(cands); start += scanChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := cands[start:min(start+scanChunk, len(cands))]
		ids := make([]any, len(chunk))
		for i, c := range chunk {
			ids[i] = c.ID
		}
		query, qargs, err := sqlx.In("SELECT id, mailbox_id, uid, flags, size, internal_date, blob_id, has_attachments, info, info_sealed FROM messages WHERE user_id = ? AND id IN (?)", a.userID, ids)
		if err != nil {
			return nil, err
		}
		var rows []messageRow
		if err := a.s.db.DB.SelectContext(ctx, &rows, a.s.rebind(query), qargs...); err != nil {
			return nil, err
		}
		byID := make(map[int64]messageRow, len(rows))
		for _, r := range rows {
			byID[r.ID] = r
		}
		// Each message is decrypted on its own (a key agreement per
		// message, RFC 7748 X25519 under age): the work is spread over
		// the processors, the order kept.
		match := make([]bool, len(chunk))
		errs := make([]error, len(chunk))
		var wg sync.WaitGroup
		next := make(chan int)
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					r, ok := byID[chunk[i].ID]
					if !ok {
						continue // gone since
					}
					m, err := a.message(r)
					if err == nil {
						match[i], err = a.matchScanned(ctx, m, rest)
					}
					errs[i] = err
				}
			}()
		}
		for i := range chunk {
			next <- i
		}
		close(next)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for i, c := range chunk {
			if match[i] {
				hits = append(hits, c.Hit)
			}
		}
	}
	return hits, nil
}

// scanned is a message's searchable text, worked out as a scan needs it.
type scanned struct {
	subject, from, to []string
	body              []string
	bodyRead          bool
}

// matchScanned tests a decrypted message against the groups.
func (a *Account) matchScanned(ctx context.Context, m Message, groups [][]SearchTerm) (bool, error) {
	if m.Info == nil {
		return false, nil
	}
	env := &m.Info.Envelope
	var rcpt strings.Builder
	for _, list := range [][]message.Address{env.To, env.Cc} {
		for _, ad := range list {
			rcpt.WriteString(ad.Name + " " + ad.Mailbox + "@" + ad.Host + " ")
		}
	}
	var from strings.Builder
	for _, ad := range env.From {
		from.WriteString(ad.Name + " " + ad.Mailbox + "@" + ad.Host + " ")
	}
	sc := scanned{subject: message.Words(env.Subject), from: message.Words(from.String()), to: message.Words(rcpt.String())}
	for _, g := range groups {
		any := false
		for _, t := range g {
			ok, err := a.termHolds(ctx, m, &sc, t)
			if err != nil {
				return false, err
			}
			if ok {
				any = true
				break
			}
		}
		if !any {
			return false, nil
		}
	}
	return true, nil
}

// termHolds tests one term against a decrypted message.
func (a *Account) termHolds(ctx context.Context, m Message, sc *scanned, t SearchTerm) (bool, error) {
	var ok bool
	switch t.Kind {
	case TermFrom:
		ok = hasPhrase(sc.from, t.Words)
	case TermTo:
		ok = hasPhrase(sc.to, t.Words)
	case TermSubject:
		ok = hasPhrase(sc.subject, t.Words)
	case TermText:
		ok = hasPhrase(sc.subject, t.Words) || hasPhrase(sc.from, t.Words) || hasPhrase(sc.to, t.Words)
		if !ok {
			if !sc.bodyRead {
				sc.bodyRead = true
				raw, err := a.readRaw(ctx, m.ID)
				if err != nil {
					return false, err
				}
				sc.body = message.Words(message.IndexText(raw, &m.Info.Body, maxIndexedText))
			}
			ok = hasPhrase(sc.body, t.Words)
		}
	case TermAttachment:
		ok = m.HasAttachments
	case TermUnread:
		ok = !m.Flags.Has(FlagSeen)
	case TermRead:
		ok = m.Flags.Has(FlagSeen)
	case TermFlagged:
		ok = m.Flags.Has(FlagFlagged)
	case TermBefore:
		ok = m.InternalDate.Before(t.Time)
	case TermAfter:
		ok = !m.InternalDate.Before(t.Time)
	case TermLarger:
		ok = m.Size > t.Size
	case TermSmaller:
		ok = m.Size < t.Size
	case TermFlags:
		ok = m.Flags&t.Flags == t.Flags
	}
	return ok != t.Not, nil
}

// hasPhrase reports whether words appear one after the other in text.
func hasPhrase(text, words []string) bool {
	if len(words) == 0 {
		return false
	}
	for i := 0; i+len(words) <= len(text); i++ {
		if slices.Equal(text[i:i+len(words)], words) {
			return true
		}
	}
	return false
}

// groupsWhere is the condition that every group holds (each an OR of its
// terms), each term by the text index or the message's columns, with its
// arguments; "" for no group.
func (a *Account) groupsWhere(groups [][]SearchTerm) (string, []any) {
	var where string
	var args []any
	for _, g := range groups {
		var ors []string
		for _, t := range g {
			var c string
			var cargs []any
			if t.textual() {
				c, cargs = a.textCond(t)
			} else {
				c, cargs = metaCond(t)
			}
			ors = append(ors, c)
			args = append(args, cargs...)
		}
		where += " AND (" + strings.Join(ors, " OR ") + ")"
	}
	return where, args
}
