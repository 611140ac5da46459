package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"basalt/store/sqldb"
)

// PageKey is a message's place in the listing orders: its arrival time
// (unix seconds) and UID. The UID settles ties within one second; SortUID
// uses the UID alone.
type PageKey struct {
	Date int64
	UID  uint32
}

// KeyOf returns m's place in the listing orders.
func KeyOf(m Message) PageKey { return PageKey{Date: m.InternalDate.Unix(), UID: m.UID} }

// PageQuery asks ListPage for a page.
type PageQuery struct {
	Sort Sort
	// After, when set, starts the page just past the message at that
	// place (which need not exist any more); nil starts at the first.
	After *PageKey
	// Skip passes over that many messages first. It costs the rows it
	// skips; the rest of the page costs what its rows cost.
	Skip     int
	Limit    int
	WithInfo bool
}

// ListPage returns a page of one of the account's mailboxes in q.Sort
// order: keyset paging, so a page deep in a mailbox of 100,000 costs what
// the first does, where List's Offset costs the rows it skips. The
// (mailbox_id, internal_date, uid) index serves the date orders, the
// (mailbox_id, uid) one SortUID: the first condition bounds the range,
// the second settles ties within one second.
func (a *Account) ListPage(ctx context.Context, mailboxID int64, q PageQuery) ([]Message, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	if q.Limit <= 0 || q.Skip < 0 {
		return nil, fmt.Errorf("list mailbox %d: %w: a page needs a limit", mailboxID, ErrInvalid)
	}
	cols := rowColumns
	if q.WithInfo {
		cols += ", info, info_sealed"
	}
	var b strings.Builder
	args := []any{mailboxID, a.userID}
	b.WriteString("SELECT " + cols + " FROM messages")
	switch q.Sort {
	case SortUID:
		b.WriteString(a.s.db.UIDIndexHint() + " WHERE mailbox_id = ? AND user_id = ?")
		if q.After != nil {
			b.WriteString(" AND uid > ?")
			args = append(args, q.After.UID)
		}
		b.WriteString(" ORDER BY uid")
	case SortDateDesc, SortDateAsc:
		cmp, order := ">", " ORDER BY internal_date, uid"
		if q.Sort == SortDateDesc {
			cmp, order = "<", " ORDER BY internal_date DESC, uid DESC"
		}
		if a.s.db.Dialect() == sqldb.MySQL {
			// MariaDB otherwise walks the UID index and sorts what it finds.
			b.WriteString(" FORCE INDEX (messages_date)")
		}
		b.WriteString(" WHERE mailbox_id = ? AND user_id = ?")
		if q.After != nil {
			b.WriteString(" AND internal_date " + cmp + "= ? AND (internal_date " + cmp + " ? OR uid " + cmp + " ?)")
			args = append(args, q.After.Date, q.After.Date, q.After.UID)
		}
		b.WriteString(order)
	default:
		return nil, fmt.Errorf("list mailbox %d: %w: unknown sort %d", mailboxID, ErrInvalid, q.Sort)
	}
	b.WriteString(" LIMIT " + strconv.Itoa(q.Limit))
	if q.Skip > 0 {
		b.WriteString(" OFFSET " + strconv.Itoa(q.Skip))
	}
	return a.selectMessages(ctx, mailboxID, b.String(), args)
}
