package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// How FindPage answers on MariaDB. InnoDB's FULLTEXT search finds every
// match of every word before it returns one row, whatever the LIMIT, and
// costs some 4 to 16 µs a match (a word in most of 100,000 messages: a
// third of a second to a second; a phrase of two such words: two), and a
// running one cannot be stopped early (max_statement_time is looked at
// only once it is done). So the words a search asks are first weighed on
// a sample of the user's newest texts, read with a regular expression
// (some 12 µs a text):
//   - a term whose words are few in the index is looked up there, and the
//     other terms are tested with the same expression on the texts it
//     finds: page and count cost the few;
//   - when every term is common, the page walks the user's texts newest
//     first (the primary key, backwards), tests each, and stops when the
//     page is full, at some tens of texts for a word in most messages; the
//     count, which only the index can give, is left for CountFound when
//     the caller allows it (FindQuery.CountLater), or run.
// A walk that would read too many texts (the words are common, the page's
// matches rare together) gives way to the index. A user with few messages
// is searched through the index alone: there it is always cheap.
//
// The expression matches what the index does for words of ASCII letters
// and digits (whole words, any case); a term with another word is always
// looked up in the index, whose collation folds accents the expression
// would not.

// SearchTuning holds the thresholds of FindPage's plans (the comment at
// the top); a zero field takes its default.
type SearchTuning struct {
	// CountBudget is how long a page and its count may take on SQLite
	// before a count that may wait (CountLater) is left for CountFound.
	CountBudget time.Duration
	// SmallUser: a user with fewer messages is searched through the
	// index alone (MariaDB) and has every count made at once.
	SmallUser int
	// Selective is the estimated number of index entries of a term's
	// words up to which the term is looked up in the index.
	Selective int
	// Sample is how many of the newest texts the words are weighed on.
	Sample int
	// Window and MaxWindow bound the texts a walk reads.
	Window, MaxWindow int
	// FewMatches is the estimated number of matches up to which SQLite
	// counts them whatever the budget (negative: none).
	FewMatches int
	// CountCost is the estimated number of index entries of a walk's
	// words up to which its count is made at once (some 50 ms: two
	// words of 13,000 and 27,000 messages took 50 to 120).
	CountCost int
}

// tuning returns the thresholds, Config.Search's where it sets one.
func (s *Store) tuning() SearchTuning {
	t := SearchTuning{CountBudget: 70 * time.Millisecond, SmallUser: 10000, Selective: 3000, Sample: 500, Window: 1000, MaxWindow: 20000, CountCost: 20000, FewMatches: 5000}
	h := s.search
	if h.CountBudget > 0 {
		t.CountBudget = h.CountBudget
	}
	for _, f := range []struct{ dst, src *int }{{&t.SmallUser, &h.SmallUser}, {&t.Selective, &h.Selective}, {&t.Sample, &h.Sample},
		{&t.Window, &h.Window}, {&t.MaxWindow, &h.MaxWindow}, {&t.CountCost, &h.CountCost}, {&t.FewMatches, &h.FewMatches}} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	return t
}

// maxWeighed is how many words, and how many terms of plain words, a
// plan weighs at most (planMy).
const maxWeighed = 8

// innodbIndexed returns the words of a term the FULLTEXT index holds.
func innodbIndexed(words []string) []string {
	var out []string
	for _, w := range words {
		if utf8.RuneCountInString(w) >= 3 && !innodbStopwords[w] {
			out = append(out, w)
		}
	}
	return out
}

// plainASCII reports whether every word is ASCII letters and digits.
func plainASCII(words []string) bool {
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			if c := w[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

// termRegexp is the expression that finds a term's words one after the
// other as whole words, in any case, within one column (textColumns
// joins them with U+001F, which the expression does not step over, as a
// phrase in FTS5 does not). (*UCP) makes \b and \w Unicode's, as the
// index's word characters are (a word next to an accented letter is part
// of a longer word). The words are letters and digits (message.Words):
// none means anything to the expression.
func termRegexp(words []string) string {
	return `(*UCP)(?i)\b` + strings.Join(words, `[^\w\x{1f}]+`) + `\b`
}

// textColumns is the text of a term's kind on a message_text row t, as
// one value an expression is matched against.
func textColumns(t string, k TermKind) string {
	var cols []string
	for _, c := range strings.Split(innodbCols[k], ", ") {
		cols = append(cols, t+c)
	}
	return "CONCAT_WS(CHAR(31), " + strings.Join(cols, ", ") + ")"
}

// myWhere is the WHERE of q on MariaDB over messages m: the groups in
// byRegexp are tested with their expression on the joined message_text
// row t; the other positive terms with indexed words are looked up in the
// index (innodbWords); the rest are conditions on the row.
func (a *Account) myWhere(q MailQuery, byRegexp map[int]bool) (string, []any) {
	where, args := a.mailboxCond(q)
	var indexed [][]SearchTerm
	for i, g := range q.Groups {
		if byRegexp[i] {
			where += " AND " + textColumns("t.", g[0].Kind) + " REGEXP ?"
			args = append(args, termRegexp(g[0].Words))
			continue
		}
		indexed = append(indexed, g)
	}
	c, cargs, rest := a.innodbWords(indexed)
	where += c
	args = append(args, cargs...)
	c, cargs = a.groupsWhere(rest)
	where += c
	args = append(args, cargs...)
	return where, args
}

// myPlan is how a search runs on MariaDB (the comment at the top).
type myPlan struct {
	st   indexedSQL
	walk bool
	// density is the share of the sample's texts that matched every
	// term (a walk's), and cost the estimated index entries of its
	// words: what counting its matches reads.
	density, cost float64
	// users is how many messages the user has.
	users int
}

// planMy weighs q's terms and returns its plan, or nil for the index
// alone (no term to weigh, or a user with few messages).
func (a *Account) planMy(ctx context.Context, q MailQuery) (*myPlan, error) {
	tn := a.s.tuning()
	type cand struct {
		group int
		t     SearchTerm
		ascii bool
		words []int // indexes into weighed
	}
	type word struct {
		kind TermKind
		w    string
	}
	var cands []cand
	var weighed []word
	for i, g := range q.Groups {
		if len(g) != 1 || !g[0].textual() || g[0].Not {
			continue
		}
		idx := innodbIndexed(g[0].Words)
		if len(idx) == 0 {
			continue
		}
		c := cand{group: i, t: g[0], ascii: plainASCII(g[0].Words)}
		if c.ascii {
			for _, w := range idx {
				k := slices.Index(weighed, word{g[0].Kind, w})
				if k < 0 {
					k = len(weighed)
					weighed = append(weighed, word{g[0].Kind, w})
				}
				c.words = append(c.words, k)
			}
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	plain := 0
	for _, c := range cands {
		if c.ascii {
			plain++
		}
	}
	if len(weighed) > maxWeighed || plain > maxWeighed {
		// The sample's cost grows with the expressions it tests (one a
		// word and one a term, on each of its texts): a query of many
		// words (up to 1,000 characters' worth) would cost seconds
		// before the first row. Such a query is the index's, as before
		// the plans: it costs what its words' matches cost.
		return nil, nil
	}
	users, err := a.userMessages(ctx)
	if err != nil || users < tn.SmallUser {
		return nil, err
	}
	// One pass over the newest texts: how many hold each word, and how
	// many every term whose words are plain.
	lo, hi := textRange(a.userID)
	var sel []string
	var args []any
	var all []string
	for _, c := range cands {
		if c.ascii {
			all = append(all, textColumns("t.", c.t.Kind)+" REGEXP ?")
			args = append(args, termRegexp(c.t.Words))
		}
	}
	if len(all) == 0 {
		all = []string{"0"}
	}
	sel = append(sel, "COALESCE(SUM("+strings.Join(all, " AND ")+"), 0)")
	for _, w := range weighed {
		sel = append(sel, "COALESCE(SUM("+textColumns("t.", w.kind)+" REGEXP ?), 0)")
		args = append(args, termRegexp([]string{w.w}))
	}
	args = append(args, lo, hi)
	vals := make([]int, 1+len(sel))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := a.s.db.DB.QueryRowContext(ctx, "SELECT COUNT(*), "+strings.Join(sel, ", ")+
		" FROM (SELECT subject, sender, recipients, body FROM message_text WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT "+fmt.Sprint(tn.Sample)+") t",
		args...).Scan(ptrs...); err != nil {
		return nil, err
	}
	n := vals[0]
	if n == 0 {
		return nil, nil
	}
	regexp := map[int]bool{}
	selective := false
	p := &myPlan{users: users}
	for _, c := range cands {
		cost := 0.0
		for _, k := range c.words {
			cost += float64(vals[2+k]) / float64(n) * float64(users)
		}
		p.cost += cost
		if !c.ascii || cost <= float64(tn.Selective) {
			selective = true
		} else {
			regexp[c.group] = true
		}
	}
	where, wargs := a.myWhere(q, regexp)
	if selective {
		// The index finds the few; the others are tested on them.
		p.st = indexedSQL{from: " FROM messages m", where: where, args: wargs, order: q.orderBy(), hiArg: -1}
		if len(regexp) > 0 {
			p.st.from = " FROM messages m JOIN message_text t ON t.id = m.text_id"
		}
		return p, nil
	}
	// Every term is common: the walk. STRAIGHT_JOIN keeps the texts the
	// outer loop, read backwards on the primary key, each joined to its
	// messages in an index that holds what is read (messages_text), so
	// that a LIMIT stops it; the copies of one text come in that index's
	// order, folder then UID (q.Compare).
	p.walk, p.density = true, float64(vals[1])/float64(n)
	p.st = indexedSQL{from: " FROM message_text t STRAIGHT_JOIN messages m ON m.text_id = t.id", where: "t.id BETWEEN ? AND ? AND " + where,
		args: append([]any{lo, hi}, wargs...), order: " ORDER BY t.id DESC", hiArg: 1}
	return p, nil
}

// findPageMy is FindPage on MariaDB.
func (a *Account) findPageMy(ctx context.Context, q MailQuery, st indexedSQL, p FindQuery) (FoundPage, error) {
	plan, err := a.planMy(ctx, q)
	if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: plan: %w", err)
	}
	switch {
	case plan == nil:
		return a.findPageIndexed(ctx, q, st, p)
	case !plan.walk:
		return a.findPageIndexed(ctx, q, plan.st, p)
	}
	tn := a.s.tuning()
	need := max(p.Skip, 0) + p.Limit
	if plan.density == 0 {
		// None of the newest texts matched: a walk would read them all.
		return a.findPageIndexed(ctx, q, st, p)
	}
	rows := min(max(int(float64(need)/plan.density*2), tn.Window), tn.MaxWindow)
	lo, hi := textRange(a.userID)
	if p.After != nil {
		hi = min(hi, p.After.TextID)
	}
	// The walk's lower end: the text rows-many below its start, found
	// on the (user_id, id) index without reading a text.
	var bound int64
	err = a.s.db.DB.QueryRowContext(ctx, "SELECT id FROM message_text WHERE user_id = ? AND id BETWEEN ? AND ? ORDER BY id DESC LIMIT 1 OFFSET ?",
		a.userID, lo, hi, rows-1).Scan(&bound)
	complete := errors.Is(err, sql.ErrNoRows)
	if complete {
		bound = lo
	} else if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: %w", err)
	}
	walk := plan.st
	walk.args = slices.Clone(walk.args)
	walk.args[0] = bound
	hits, err := a.pageOf(ctx, q, walk, p)
	if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: %w", err)
	}
	if len(hits) < p.Limit && !complete {
		// Too few in the window: the matches are rare together.
		return a.findPageIndexed(ctx, q, st, p)
	}
	// The copies of one text, ordered as Compare does, whatever order
	// the join gave them in.
	slices.SortStableFunc(hits, q.Compare)
	out := FoundPage{Hits: hits, Total: p.Total}
	switch {
	case out.Total > 0:
	case p.After == nil && p.Skip <= 0 && len(hits) < p.Limit:
		out.Total = len(hits)
	case p.CountLater && plan.cost > float64(tn.CountCost):
		out.Total = -1
		if out.Estimate, err = a.estimate(ctx, q, p, hits); err != nil {
			return FoundPage{}, fmt.Errorf("find messages: estimate: %w", err)
		}
	default:
		if out.Total, err = a.countFound(ctx, q, st); err != nil {
			return FoundPage{}, fmt.Errorf("find messages: count: %w", err)
		}
	}
	return out, nil
}

// findPageIndexed runs a page of st on MariaDB, the index finding the
// matches, with its count. InnoDB's FULLTEXT search finds every match
// whatever the LIMIT: a first page and its count come of one search
// (findPageCounted).
func (a *Account) findPageIndexed(ctx context.Context, q MailQuery, st indexedSQL, p FindQuery) (FoundPage, error) {
	total := p.Total
	if total <= 0 && p.After == nil {
		return a.findPageCounted(ctx, st, p)
	}
	if total <= 0 {
		if err := a.s.db.DB.QueryRowContext(ctx, "SELECT COUNT(*)"+st.from+" WHERE "+st.where, st.args...).Scan(&total); err != nil {
			return FoundPage{}, fmt.Errorf("find messages: count: %w", err)
		}
	}
	if total == 0 {
		return FoundPage{Hits: []Hit{}}, nil
	}
	hits, err := a.pageOf(ctx, q, st, p)
	if err != nil {
		return FoundPage{}, fmt.Errorf("find messages: %w", err)
	}
	return FoundPage{Hits: hits, Total: total}, nil
}

// userMessages is how many messages the account's user has.
func (a *Account) userMessages(ctx context.Context) (int, error) {
	var n int
	err := a.s.db.DB.QueryRowContext(ctx, a.s.rebind("SELECT COALESCE(SUM(message_count), 0) FROM mailboxes WHERE user_id = ?"), a.userID).Scan(&n)
	return n, err
}

// bigUser reports whether the account's user has at least SmallUser
// messages: below, a count is always cheap enough to give at once. An
// error is left to the statements that follow.
func (a *Account) bigUser(ctx context.Context) bool {
	n, err := a.userMessages(ctx)
	return err == nil && n >= a.s.tuning().SmallUser
}
