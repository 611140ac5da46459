package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"basalt/store/sqldb"
)

// PageKey is a message's place in a listing order: the values of the
// order's key columns and the UID that settles ties. Which fields an
// order uses: Date (arrival, unix seconds) for the date orders and, after
// the flag in N, for SortFlagged and SortUnread; N for SortSent (the Date
// header), SortSize, and the flag (1 or 0) of SortFlagged and SortUnread;
// S for SortFrom and SortSubject. SortUID uses the UID alone.
type PageKey struct {
	Date int64  `json:"d,omitempty"`
	UID  uint32 `json:"u"`
	N    int64  `json:"n,omitempty"`
	S    string `json:"s,omitempty"`
}

// KeyOf returns m's place in the order s. m must come from ListPage for
// the orders by sender, subject and Date header, whose keys other
// listings do not read.
func KeyOf(m Message, s Sort) PageKey {
	k := PageKey{UID: m.UID}
	switch s {
	case SortDateDesc, SortDateAsc:
		k.Date = m.InternalDate.Unix()
	case SortSent:
		k.N = m.sort.sent
	case SortFrom:
		k.S = m.sort.from
	case SortSubject:
		k.S = m.sort.subject
	case SortSize:
		k.N = m.Size
	case SortFlagged:
		k.N, k.Date = b2i(m.Flags.Has(FlagFlagged)), m.InternalDate.Unix()
	case SortUnread:
		k.N, k.Date = b2i(!m.Flags.Has(FlagSeen)), m.InternalDate.Unix()
	}
	return k
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Compare orders two keys of the order s with its direction desc (the
// date orders have theirs): negative when x comes first. It is the order
// ListPage returns, for callers that place messages among remembered keys.
func Compare(s Sort, desc bool, x, y PageKey) int {
	spec, ok := sortSpecs[s]
	if !ok {
		return 0
	}
	desc = spec.direction(s, desc)
	c := 0
	for _, col := range spec.cols {
		if c = col.cmp(x, y); c != 0 {
			break
		}
	}
	if c == 0 {
		c = cmpInt(int64(x.UID), int64(y.UID))
	}
	if desc {
		return -c
	}
	return c
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// PageFilter narrows a listing to some messages (the webmail's quick
// filters); each field set must hold.
type PageFilter struct {
	Unread, Flagged, Attachments bool
}

// conditions are the filter's SQL conditions on the messages' columns,
// each named with prefix (a table's alias and a dot, or nothing).
func (f PageFilter) conditions(prefix string) []string {
	var c []string
	if f.Unread {
		c = append(c, prefix+"is_unseen = 1")
	}
	if f.Flagged {
		c = append(c, prefix+"is_flagged = 1")
	}
	if f.Attachments {
		c = append(c, prefix+"has_attachments = 1")
	}
	return c
}

// PageQuery asks ListPage for a page.
type PageQuery struct {
	Sort Sort
	// Desc reverses the orders other than the date ones and UID, which
	// say their direction themselves: descending on the order's key.
	Desc   bool
	Filter PageFilter
	// Threads lists each thread once, by its newest message in the
	// mailbox that passes the filter, in any order.
	Threads bool
	// After, when set, starts the page just past that place (which need
	// not hold a message any more); nil starts at the first.
	After *PageKey
	// Skip passes over that many messages first. It costs the rows it
	// skips; the rest of the page costs what its rows cost.
	Skip     int
	Limit    int
	WithInfo bool
}

// keyCol is one column of an order's key.
type keyCol struct {
	name string
	// fewTies marks a column whose values rarely repeat (times, sizes):
	// the last one before the UID is read as one range with it.
	fewTies bool
	val     func(PageKey) any
	cmp     func(x, y PageKey) int
}

var (
	colDate = keyCol{"internal_date", true, func(k PageKey) any { return k.Date }, func(x, y PageKey) int { return cmpInt(x.Date, y.Date) }}
	colN    = func(name string, few bool) keyCol {
		return keyCol{name, few, func(k PageKey) any { return k.N }, func(x, y PageKey) int { return cmpInt(x.N, y.N) }}
	}
	colS = func(name string) keyCol {
		return keyCol{name, false, func(k PageKey) any { return k.S }, func(x, y PageKey) int { return strings.Compare(x.S, y.S) }}
	}
)

// sortSpec is an order: its key columns before the UID, and the index
// that holds them after mailbox_id.
type sortSpec struct {
	cols  []keyCol
	index string
}

// direction is whether the order s runs descending.
func (sortSpec) direction(s Sort, desc bool) bool {
	switch s {
	case SortUID, SortDateAsc:
		return false
	case SortDateDesc:
		return true
	}
	return desc
}

var sortSpecs = map[Sort]sortSpec{
	SortUID:      {nil, "messages_mailbox_uid"},
	SortDateDesc: {[]keyCol{colDate}, "messages_date"},
	SortDateAsc:  {[]keyCol{colDate}, "messages_date"},
	SortSent:     {[]keyCol{colN("sent_date", true)}, "messages_sent"},
	SortFrom:     {[]keyCol{colS("sort_from")}, "messages_from"},
	SortSubject:  {[]keyCol{colS("sort_subject")}, "messages_subject"},
	SortSize:     {[]keyCol{colN("size", true)}, "messages_size"},
	SortFlagged:  {[]keyCol{colN("is_flagged", false), colDate}, "messages_flagged"},
	SortUnread:   {[]keyCol{colN("is_unseen", false), colDate}, "messages_unseen"},
}

// ListPage returns a page of one of the account's mailboxes in q.Sort
// order: keyset paging, so a page deep in a mailbox of 100,000 costs what
// the first does, where List's Offset costs the rows it skips. Every
// order is served by an index that starts at the mailbox and holds the
// order's key and the UID (migration 0015); a filter uses its own index
// with the date orders, and is checked row by row along the others'.
//
// A page after a key is read as the few ranges of the index that follow
// it, most specific first: for the order by sender, the rest of the
// key's sender (sort_from = S AND uid > U), then the senders after it
// (sort_from > S). One range with an OR would cost, under an order whose
// first column repeats (a sender, a flag), every row of the key's value
// before the place.
func (a *Account) ListPage(ctx context.Context, mailboxID int64, q PageQuery) ([]Message, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	if q.Limit <= 0 || q.Skip < 0 {
		return nil, fmt.Errorf("list mailbox %d: %w: a page needs a limit", mailboxID, ErrInvalid)
	}
	spec, ok := sortSpecs[q.Sort]
	if !ok {
		return nil, fmt.Errorf("list mailbox %d: %w: unknown sort %d", mailboxID, ErrInvalid, q.Sort)
	}
	if a.view != nil && (q.Filter.Unread || q.Sort == SortUnread) {
		// \Seen on another user's mailbox is the viewer's own
		// (shared_seen), which no index of the rows holds.
		return nil, fmt.Errorf("list mailbox %d: %w: the unread order and filter are for one's own mailboxes", mailboxID, ErrInvalid)
	}
	desc := spec.direction(q.Sort, q.Desc)
	cols := spec.cols
	index := spec.index
	var fixed []string // conditions every range shares
	fixed = append(fixed, q.Filter.conditions("")...)
	if q.Sort == SortDateDesc || q.Sort == SortDateAsc {
		switch {
		case q.Filter.Unread:
			index = "messages_unseen"
		case q.Filter.Flagged:
			index = "messages_flagged"
		case q.Filter.Attachments:
			index = "messages_attach"
		}
	}
	if q.Threads {
		// The thread's newest message in the mailbox that the filter
		// shows stands for it, in any order: no later one of the thread
		// passes the filter (the (mailbox_id, thread_id, internal_date,
		// uid) index finds the later ones, a thread's few rows are read
		// for the filter). So "unread" folds the threads that have an
		// unread message, each shown by its newest unread one.
		newer := `SELECT 1 FROM messages t WHERE t.mailbox_id = m.mailbox_id AND t.thread_id = m.thread_id
			AND (t.internal_date > m.internal_date OR (t.internal_date = m.internal_date AND t.uid > m.uid))`
		for _, c := range q.Filter.conditions("t.") {
			newer += " AND " + c
		}
		fixed = append(fixed, "NOT EXISTS ("+newer+")")
	}
	sel := "SELECT " + rowColumns + ", sent_date, sort_from, sort_subject"
	if q.WithInfo {
		sel += ", info, info_sealed"
	}
	// The order's index is named to both planners: MariaDB otherwise
	// walks the UID index and sorts what it finds, and SQLite, told the
	// filter's column holds few values, may walk the date index and test
	// each row.
	from := " FROM messages m"
	switch {
	case q.Sort == SortUID:
		from += a.s.db.UIDIndexHint()
	case a.s.db.Dialect() == sqldb.MySQL:
		from += " FORCE INDEX (" + index + ")"
	default:
		from += " INDEXED BY " + index
	}
	dir := ""
	if desc {
		dir = " DESC"
	}
	var order []string
	for _, c := range cols {
		order = append(order, c.name+dir)
	}
	order = append(order, "uid"+dir)
	orderBy := " ORDER BY " + strings.Join(order, ", ")

	// ranges are the parts of the index after q.After, in order, each as
	// conditions and their arguments.
	type span struct {
		cond string
		args []any
	}
	var spans []span
	if q.After == nil {
		spans = []span{{}}
	} else {
		cmp := ">"
		if desc {
			cmp = "<"
		}
		k := *q.After
		eq := func(n int) (string, []any) {
			var b strings.Builder
			var args []any
			for _, c := range cols[:n] {
				b.WriteString(" AND " + c.name + " = ?")
				args = append(args, c.val(k))
			}
			return b.String(), args
		}
		i := len(cols) // the UID's level
		if i > 0 && cols[i-1].fewTies {
			c := cols[i-1]
			cond, args := eq(i - 1)
			cond += " AND " + c.name + " " + cmp + "= ? AND (" + c.name + " " + cmp + " ? OR uid " + cmp + " ?)"
			spans = append(spans, span{cond, append(args, c.val(k), c.val(k), k.UID)})
			i -= 2
		} else {
			cond, args := eq(i)
			spans = append(spans, span{cond + " AND uid " + cmp + " ?", append(args, k.UID)})
			i--
		}
		for ; i >= 0; i-- {
			cond, args := eq(i)
			spans = append(spans, span{cond + " AND " + cols[i].name + " " + cmp + " ?", append(args, cols[i].val(k))})
		}
	}
	base := " WHERE mailbox_id = ? AND user_id = ?"
	for _, f := range fixed {
		base += " AND " + f
	}
	var out []Message
	skip := q.Skip
	for _, sp := range spans {
		need := q.Limit - len(out)
		if need <= 0 {
			break
		}
		args := append([]any{mailboxID, a.userID}, sp.args...)
		if skip > 0 && len(spans) > 1 {
			// Whether the skip ends in this range: counted through the
			// index, up to the skip.
			var n int
			if err := a.s.db.GetContext(ctx, &n, a.s.rebind("SELECT COUNT(*) FROM (SELECT 1"+from+base+sp.cond+" LIMIT "+strconv.Itoa(skip)+") c"), args...); err != nil {
				return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
			}
			if n < skip {
				skip -= n
				continue
			}
		}
		query := sel + from + base + sp.cond + orderBy + " LIMIT " + strconv.Itoa(need)
		if skip > 0 {
			query += " OFFSET " + strconv.Itoa(skip)
			skip = 0
		}
		got, err := a.selectMessages(ctx, mailboxID, query, args)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// CountPage returns how many messages a listing with q's sort, filter and
// threads holds: the mailbox's count without them (the caller has it), the
// filtered messages through the filter's index, the threads through the
// thread index.
func (a *Account) CountPage(ctx context.Context, mailboxID int64, q PageQuery) (int64, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return 0, fmt.Errorf("count mailbox %d: %w", mailboxID, err)
	}
	if a.view != nil && q.Filter.Unread {
		return 0, fmt.Errorf("count mailbox %d: %w: the unread filter is for one's own mailboxes", mailboxID, ErrInvalid)
	}
	// The mailbox is the account's (need): the rows are named by it
	// alone, so that the count reads an index and nothing else (the
	// (mailbox_id, thread_id, ...) index for threads, which MariaDB reads
	// a thread at a time).
	query := "SELECT COUNT(*) FROM messages WHERE mailbox_id = ?"
	if q.Threads {
		query = "SELECT COUNT(DISTINCT thread_id) FROM messages WHERE mailbox_id = ?"
	}
	for _, c := range q.Filter.conditions("") {
		query += " AND " + c
	}
	var n int64
	if err := a.s.db.GetContext(ctx, &n, a.s.rebind(query), mailboxID); err != nil {
		return 0, fmt.Errorf("count mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}

// ThreadStat is what a threaded listing shows of a thread in a mailbox.
type ThreadStat struct {
	Messages, Unread int
}

// ThreadStats returns, for each of threads, how many of its messages one
// of the account's mailboxes holds and how many of those are unread: one
// statement through the thread index, what the threads' messages cost.
func (a *Account) ThreadStats(ctx context.Context, mailboxID int64, threads []int64) (map[int64]ThreadStat, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("thread counts in mailbox %d: %w", mailboxID, err)
	}
	out := map[int64]ThreadStat{}
	if len(threads) == 0 {
		return out, nil
	}
	args := []any{mailboxID, a.userID}
	marks := make([]string, len(threads))
	for i, t := range threads {
		marks[i] = "?"
		args = append(args, t)
	}
	var rows []struct {
		Thread int64 `db:"thread_id"`
		N      int   `db:"n"`
		Unread int   `db:"unread"`
	}
	if err := a.s.db.SelectContext(ctx, &rows, a.s.rebind("SELECT thread_id, COUNT(*) AS n, COALESCE(SUM(is_unseen), 0) AS unread FROM messages WHERE mailbox_id = ? AND user_id = ? AND thread_id IN ("+
		strings.Join(marks, ", ")+") GROUP BY thread_id"), args...); err != nil {
		return nil, fmt.Errorf("thread counts in mailbox %d: %w", mailboxID, err)
	}
	for _, r := range rows {
		out[r.Thread] = ThreadStat{Messages: r.N, Unread: r.Unread}
	}
	return out, nil
}

// Thread returns the messages of one of the account's threads, oldest
// first, with their info: those in mailboxID, or with 0, in every one of
// the account's own mailboxes.
func (a *Account) Thread(ctx context.Context, threadID, mailboxID int64) ([]Message, error) {
	query := "SELECT " + rowColumns + ", info, info_sealed FROM messages WHERE user_id = ? AND thread_id = ?"
	args := []any{a.userID, threadID}
	if mailboxID != 0 {
		if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
			return nil, fmt.Errorf("thread %d: %w", threadID, err)
		}
		query += " AND mailbox_id = ?"
		args = append(args, mailboxID)
	} else if a.view != nil {
		return nil, fmt.Errorf("thread %d: %w: a shared account's threads are read a mailbox at a time", threadID, ErrInvalid)
	}
	query += " ORDER BY internal_date, mailbox_id, uid"
	if mailboxID != 0 {
		// With the viewer's own \Seen on a shared mailbox.
		out, err := a.selectMessages(ctx, mailboxID, query, args)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", threadID, err)
		}
		return out, nil
	}
	var rows []messageRow
	if err := a.s.db.SelectContext(ctx, &rows, a.s.rebind(query), args...); err != nil {
		return nil, fmt.Errorf("thread %d: %w", threadID, err)
	}
	out := make([]Message, 0, len(rows))
	for _, r := range rows {
		m, err := a.message(r)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", threadID, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Arrivals returns the messages of one of the account's mailboxes from
// UID from on, at most limit, in UID order, with the keys KeyOf needs: what
// arrived since a listing's places were learnt, read through the
// (mailbox_id, uid) index.
func (a *Account) Arrivals(ctx context.Context, mailboxID int64, from uint32, limit int) ([]Message, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("arrivals in mailbox %d: %w", mailboxID, err)
	}
	return a.selectMessages(ctx, mailboxID, "SELECT "+rowColumns+", sent_date, sort_from, sort_subject FROM messages"+a.s.db.UIDIndexHint()+
		" WHERE mailbox_id = ? AND user_id = ? AND uid >= ? ORDER BY uid LIMIT "+strconv.Itoa(limit), []any{mailboxID, a.userID, from})
}
