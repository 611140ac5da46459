package store

import (
	"context"
	"fmt"
)

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
