package outbound

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"basalt/store"
	"basalt/store/internal/spine"
)

// What an administrator does to the queue: list it, retry an entry now,
// hold and release it, delete it (Delete).

// QueueState filters a queue listing.
type QueueState string

// The states a queue listing is filtered by.
const (
	StateAny      QueueState = ""
	StateQueued   QueueState = "queued"   // not held, never attempted
	StateDeferred QueueState = "deferred" // not held, attempted and due again
	StateHeld     QueueState = "held"
)

// Filter selects a page of the queue, in id (arrival) order.
type Filter struct {
	State QueueState
	// Domain and Recipient match entries with a recipient in that
	// domain, or with exactly that recipient.
	Domain    string
	Recipient string
	// OlderThan keeps entries queued at least that long ago.
	OlderThan time.Duration
	Cursor    string // Next of the previous page
	Limit     int    // default 100, at most 1000
}

// Page is a page of the queue; Next is "" on the last page.
type Page struct {
	Entries []Entry
	Next    string
}

// List returns a page of queue entries with their recipients.
func (q *Queue) List(ctx context.Context, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > 1000 {
		return Page{}, fmt.Errorf("list queue: %w: limit above 1000", store.ErrInvalid)
	}
	var after int64
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n < 0 {
			return Page{}, fmt.Errorf("list queue: %w: malformed cursor", store.ErrInvalid)
		}
		after = n
	}
	where, args := []string{"q.id > ?"}, []any{after}
	switch f.State {
	case StateAny:
	case StateQueued:
		where = append(where, "q.held = 0 AND q.attempts = 0")
	case StateDeferred:
		where = append(where, "q.held = 0 AND q.attempts > 0")
	case StateHeld:
		where = append(where, "q.held = 1")
	default:
		return Page{}, fmt.Errorf("list queue: %w: state %q", store.ErrInvalid, f.State)
	}
	if f.Recipient != "" {
		r, err := store.NormalizeAddress(f.Recipient)
		if err != nil {
			return Page{}, fmt.Errorf("list queue: %w", err)
		}
		where, args = append(where, "EXISTS (SELECT 1 FROM outbound_rcpts r WHERE r.queue_id = q.id AND r.rcpt = ?)"), append(args, r)
	}
	if f.Domain != "" {
		d, err := store.NormalizeDomain(f.Domain)
		if err != nil {
			return Page{}, fmt.Errorf("list queue: %w", err)
		}
		// Recipients are stored normalised, so the domain is the text
		// after the last @: a suffix match, escaped for LIKE.
		// '!' escapes: a backslash is itself an escape in MySQL's literals.
		esc := strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`).Replace(d)
		where, args = append(where, `EXISTS (SELECT 1 FROM outbound_rcpts r WHERE r.queue_id = q.id AND r.rcpt LIKE ? ESCAPE '!')`), append(args, "%@"+esc)
	}
	if f.OlderThan > 0 {
		where, args = append(where, "q.created_ms <= ?"), append(args, q.nowMS()-f.OlderThan.Milliseconds())
	}
	cols := "q." + strings.ReplaceAll(outboundColumns, ", ", ", q.")
	var rows []outboundRow
	if err := q.sp.DB.SelectContext(ctx, &rows, q.sp.Rebind("SELECT "+cols+" FROM outbound_queue q WHERE "+strings.Join(where, " AND ")+
		" ORDER BY q.id LIMIT "+strconv.Itoa(limit+1)), args...); err != nil {
		return Page{}, fmt.Errorf("list queue: %w", err)
	}
	var page Page
	if len(rows) > limit {
		rows = rows[:limit]
		page.Next = strconv.FormatInt(rows[limit-1].ID, 10)
	}
	page.Entries = make([]Entry, len(rows))
	for i, r := range rows {
		page.Entries[i] = r.outbound()
		page.Entries[i].lease = 0 // a listing claims nothing
	}
	if err := q.loadRcpts(ctx, page.Entries); err != nil {
		return Page{}, fmt.Errorf("list queue: %w", err)
	}
	return page, nil
}

// Get returns one entry with its recipients.
func (q *Queue) Get(ctx context.Context, id int64) (Entry, error) {
	var r outboundRow
	if err := q.sp.DB.GetContext(ctx, &r, q.sp.Rebind("SELECT "+outboundColumns+" FROM outbound_queue WHERE id = ?"), id); err != nil {
		return Entry{}, fmt.Errorf("queue entry %d: %w", id, spine.NotFound(err))
	}
	es := []Entry{r.outbound()}
	es[0].lease = 0
	if err := q.loadRcpts(ctx, es); err != nil {
		return Entry{}, fmt.Errorf("queue entry %d: %w", id, err)
	}
	return es[0], nil
}

// RetryNow makes an entry due now. A held entry stays held (release it).
// An entry being attempted at this moment may be claimed again once its
// attempt reports back; the claim's fencing token keeps the two rounds'
// records apart, as after any lost lease.
func (q *Queue) RetryNow(ctx context.Context, id int64) error {
	return q.set(ctx, id, "retry", "next_attempt_ms = ?", q.nowMS())
}

// Hold keeps an entry from being attempted until Release.
func (q *Queue) Hold(ctx context.Context, id int64) error {
	return q.set(ctx, id, "hold", "held = 1")
}

// Release ends a hold; the entry is due at once.
func (q *Queue) Release(ctx context.Context, id int64) error {
	return q.set(ctx, id, "release", "held = 0, next_attempt_ms = ?", q.nowMS())
}

func (q *Queue) set(ctx context.Context, id int64, what, set string, args ...any) error {
	res, err := q.sp.DB.ExecContext(ctx, q.sp.Rebind("UPDATE outbound_queue SET "+set+" WHERE id = ?"), append(args, id)...)
	if err != nil {
		return fmt.Errorf("%s queue entry %d: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// MySQL counts only changed rows: tell "no such entry" from
		// "already so".
		if _, err := q.Get(ctx, id); err != nil {
			return fmt.Errorf("%s queue entry %d: %w", what, id, err)
		}
	}
	return nil
}
