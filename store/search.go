package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SearchQuery narrows one mailbox's messages by what their metadata rows
// hold; every condition given must hold. It is what a protocol can ask of
// SQL before it looks at headers and bodies itself (IMAP SEARCH, RFC 9051
// 6.4.4).
type SearchQuery struct {
	UIDs UIDSet // nil: every message
	// FlagsSet must all be set, FlagsClear all clear.
	FlagsSet, FlagsClear Flags
	// Larger and Smaller bound the size: size > Larger, size < Smaller;
	// 0 is no bound.
	Larger, Smaller int64
	// Since and Before bound the internal date: at or after Since, before
	// Before; the zero time is no bound.
	Since, Before time.Time
	// AfterUID and Limit page the result, which is in UID order.
	AfterUID uint32
	Limit    int
}

// where returns the conditions on a messages row and their arguments, and
// whether the flag conditions could be put in SQL: on another user's
// mailbox \Seen is the viewer's own (shared_seen), not the row's, so there
// the caller filters \Seen itself.
func (q SearchQuery) where(shared bool) (string, []any, error) {
	cond, args, err := q.UIDs.sql()
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString(cond)
	set, clear := q.FlagsSet, q.FlagsClear
	if shared {
		set, clear = set&^FlagSeen, clear&^FlagSeen
	}
	if set != 0 {
		fmt.Fprintf(&b, " AND (flags & %d) = %d", set, set)
	}
	if clear != 0 {
		fmt.Fprintf(&b, " AND (flags & %d) = 0", clear)
	}
	if q.Larger > 0 {
		b.WriteString(" AND size > ?")
		args = append(args, q.Larger)
	}
	if q.Smaller > 0 {
		b.WriteString(" AND size < ?")
		args = append(args, q.Smaller)
	}
	if !q.Since.IsZero() {
		b.WriteString(" AND internal_date >= ?")
		args = append(args, q.Since.Unix())
	}
	if !q.Before.IsZero() {
		b.WriteString(" AND internal_date < ?")
		args = append(args, q.Before.Unix())
	}
	if q.AfterUID > 0 {
		b.WriteString(" AND uid > ?")
		args = append(args, q.AfterUID)
	}
	return b.String(), args, nil
}

// Search returns the messages of one of the account's mailboxes that match
// q, in UID order, without their info. On a shared mailbox \Seen is the
// viewer's, and q's \Seen conditions are applied to that.
func (a *Account) Search(ctx context.Context, mailboxID int64, q SearchQuery) ([]Message, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("search mailbox %d: %w", mailboxID, err)
	}
	cond, args, err := q.where(a.view != nil)
	if err != nil {
		return nil, fmt.Errorf("search mailbox %d: %w", mailboxID, err)
	}
	query := "SELECT " + rowColumns + " FROM messages" + a.s.db.UIDIndexHint() + " WHERE mailbox_id = ? AND user_id = ?" + cond + " ORDER BY uid"
	if q.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(q.Limit)
	}
	var rows []messageRow
	if err := a.s.db.SelectContext(ctx, &rows, a.s.rebind(query), append([]any{mailboxID, a.userID}, args...)...); err != nil {
		return nil, fmt.Errorf("search mailbox %d: %w", mailboxID, err)
	}
	if err := a.overlaySeen(ctx, a.s.db, mailboxID, rows); err != nil {
		return nil, fmt.Errorf("search mailbox %d: %w", mailboxID, err)
	}
	out := make([]Message, 0, len(rows))
	for _, r := range rows {
		if a.view != nil && (r.Flags&q.FlagsSet&FlagSeen != q.FlagsSet&FlagSeen || r.Flags&q.FlagsClear&FlagSeen != 0) {
			continue
		}
		m, err := a.message(r)
		if err != nil {
			return nil, fmt.Errorf("search mailbox %d: %w", mailboxID, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// UIDs returns the UIDs of every message in one of the account's
// mailboxes, ascending: what IMAP SELECT needs to number the messages.
// It reads one index and nothing else, so a mailbox of 100,000 messages
// costs a few hundred kilobytes and milliseconds.
func (a *Account) UIDs(ctx context.Context, mailboxID int64) ([]uint32, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("list UIDs of mailbox %d: %w", mailboxID, err)
	}
	// The mailbox is checked to be the account's first, so the scan can
	// name the mailbox alone and stay inside the (mailbox_id, uid) index.
	var count []int64
	if err := a.s.db.SelectContext(ctx, &count, a.s.rebind("SELECT message_count FROM mailboxes WHERE id = ? AND user_id = ?"), mailboxID, a.userID); err != nil {
		return nil, fmt.Errorf("list UIDs of mailbox %d: %w", mailboxID, err)
	}
	if len(count) == 0 {
		return nil, fmt.Errorf("list UIDs of mailbox %d: %w", mailboxID, ErrNotFound)
	}
	// Scanned by hand: reflection per row (sqlx) would cost more than
	// the query itself at this size.
	rows, err := a.s.db.QueryContext(ctx, a.s.rebind("SELECT uid FROM messages"+a.s.db.UIDIndexHint()+" WHERE mailbox_id = ? ORDER BY uid"), mailboxID)
	if err != nil {
		return nil, fmt.Errorf("list UIDs of mailbox %d: %w", mailboxID, err)
	}
	defer rows.Close()
	uids := make([]uint32, 0, max(count[0], 0)+16)
	for rows.Next() {
		var u uint32
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("list UIDs of mailbox %d: %w", mailboxID, err)
		}
		uids = append(uids, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list UIDs of mailbox %d: %w", mailboxID, err)
	}
	return uids, nil
}

// CountMessages returns how many messages of one of the account's
// mailboxes match q's conditions other than paging (IMAP STATUS DELETED,
// RFC 9051 6.3.11). On a shared mailbox \Seen conditions are refused,
// since counting them would need every row.
func (a *Account) CountMessages(ctx context.Context, mailboxID int64, q SearchQuery) (int64, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return 0, fmt.Errorf("count messages of mailbox %d: %w", mailboxID, err)
	}
	if a.view != nil && (q.FlagsSet|q.FlagsClear)&FlagSeen != 0 {
		return 0, fmt.Errorf("count messages of mailbox %d: %w: \\Seen on a shared mailbox", mailboxID, ErrInvalid)
	}
	q.AfterUID, q.Limit = 0, 0
	cond, args, err := q.where(false)
	if err != nil {
		return 0, fmt.Errorf("count messages of mailbox %d: %w", mailboxID, err)
	}
	var n int64
	if err := a.s.db.GetContext(ctx, &n, a.s.rebind("SELECT COUNT(*) FROM messages WHERE mailbox_id = ? AND user_id = ?"+cond),
		append([]any{mailboxID, a.userID}, args...)...); err != nil {
		return 0, fmt.Errorf("count messages of mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}

// FirstUnseen returns the UID of the first message of one of the
// account's mailboxes that the account's user has not seen, or 0 when it
// has seen them all: what IMAP4rev1's SELECT answers as UNSEEN (RFC 3501
// 6.3.1). On a shared mailbox \Seen is the viewer's own, so the query
// looks it up per message in shared_seen, stopping at the first one
// missing there: one walk of the (mailbox_id, uid) index however many
// messages the viewer has read, where Search would read them all (its
// \Seen test on a share comes after the query, past any LIMIT). It needs
// the "r" right.
func (a *Account) FirstUnseen(ctx context.Context, mailboxID int64) (uint32, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return 0, fmt.Errorf("first unseen of mailbox %d: %w", mailboxID, err)
	}
	query := fmt.Sprintf("SELECT uid FROM messages%s WHERE mailbox_id = ? AND user_id = ? AND (flags & %d) = 0 ORDER BY uid LIMIT 1",
		a.s.db.UIDIndexHint(), FlagSeen)
	args := []any{mailboxID, a.userID}
	if a.view != nil {
		query = `SELECT m.uid FROM messages m` + a.s.db.UIDIndexHint() + ` WHERE m.mailbox_id = ? AND m.user_id = ?
			AND NOT EXISTS (SELECT 1 FROM shared_seen s WHERE s.user_id = ? AND s.mailbox_id = ? AND s.message_id = m.id)
			ORDER BY m.uid LIMIT 1`
		args = append(args, a.view.id, mailboxID)
	}
	var uids []uint32
	if err := a.s.db.SelectContext(ctx, &uids, a.s.rebind(query), args...); err != nil {
		return 0, fmt.Errorf("first unseen of mailbox %d: %w", mailboxID, err)
	}
	if len(uids) == 0 {
		return 0, nil
	}
	return uids[0], nil
}
