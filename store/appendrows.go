package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// newMessage is one message to add to a user's mailbox: its sealed file
// and parse, and once written, where it went or why it was refused.
type newMessage struct {
	mailboxID int64
	p         *parsed
	m         sealed
	flags     Flags
	kws       []string
	opts      AppendOptions

	out Appended
	err error // a refusal: quota, a limit, the mailbox, a changed key
}

// appendMessages writes the rows of messages for one user inside tx, the
// user's row locked, checking each against the limits as they are now. A
// message refused is given its error and writes nothing; the rest go in.
// What can be shared is written once for all of them (the mailbox's
// counters and UIDs, the user's totals, the daily counters, the file
// rows); only the message rows, whose ids are needed, one by one. This is
// what lets a group commit cost little more than one append.
func (s *Store) appendMessages(ctx context.Context, tx *sqlx.Tx, c *spine.Change, userID int64, msgs []*newMessage) error {
	u, lim, err := s.userTx(ctx, tx, userID)
	if err != nil {
		if refusal(err) {
			for _, nm := range msgs {
				nm.err = err
			}
			return nil
		}
		return err
	}
	owned, err := s.ownedMailboxes(ctx, tx, userID, msgs)
	if err != nil {
		return err
	}
	// Every refusal comes before the first write, each message checked
	// with the ones before it in the batch counted.
	used := u.UsedBytes
	counts := map[string]int64{} // daily counters as they will be
	adds := map[string]int64{}   // what this batch adds to them
	var names []string           // the counters added to, in order
	var ok []*newMessage
	for _, nm := range msgs {
		size := nm.p.size
		switch {
		case !owned[nm.mailboxID]:
			nm.err = fmt.Errorf("mailbox %d: %w", nm.mailboxID, ErrNotFound)
		case u.Secure != nm.m.secure || u.PublicKey != nm.m.publicKey:
			nm.err = errStaleKey
		default:
			nm.err = checkAppend(lim, used, size, nm.opts.Inbound)
		}
		if nm.err != nil {
			continue
		}
		ds := receiveCounters(userID, lim, nm.opts)
		for _, d := range ds {
			if _, known := counts[d.Name]; !known {
				v, err := s.sp.DailyValue(ctx, tx, d.Name)
				if err != nil {
					return err
				}
				counts[d.Name] = v
			}
			if d.Limit > 0 && counts[d.Name]+size > d.Limit {
				nm.err = fmt.Errorf("%w: %s would reach %d of %d", ErrDailyLimit, d.Name, counts[d.Name]+size, d.Limit)
				break
			}
		}
		if nm.err != nil {
			continue
		}
		for _, d := range ds {
			if adds[d.Name] == 0 {
				names = append(names, d.Name)
			}
			counts[d.Name] += size
			adds[d.Name] += size
		}
		used += size
		ok = append(ok, nm)
	}
	if len(ok) == 0 {
		return nil
	}

	if err := s.assignUIDs(ctx, tx, userID, ok); err != nil {
		return err
	}
	if err := s.sp.ChargeUser(ctx, tx, userID, used-u.UsedBytes, int64(len(ok))); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := s.db.TxExec(ctx, tx, s.rebind(s.db.AddCounterSQL()), name, s.day(), adds[name]); err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
	}
	if err := s.insertBlobRows(ctx, tx, ok); err != nil {
		return err
	}
	kws := map[int64][]string{}
	for _, nm := range ok {
		kws[nm.mailboxID], _ = mergeKeywords(kws[nm.mailboxID], nm.kws)
	}
	for id, list := range kws {
		if err := s.noteKeywords(ctx, tx, id, list, false); err != nil {
			return err
		}
	}
	for _, nm := range ok {
		if err := s.insertMessageRow(ctx, tx, userID, nm); err != nil {
			return err
		}
		c.Add(nm.mailboxID, "append", nm.out.UID, nm.out.ModSeq)
	}
	return nil
}

// receiveCounters are the daily counters a delivery counts toward: the
// user's received bytes, and those from the sending address.
func receiveCounters(userID int64, lim Limits, opts AppendOptions) []spine.Daily {
	if !opts.Inbound {
		return nil
	}
	ds := []spine.Daily{{Name: spine.RecvCounter(userID), Limit: lim.DailyRecvBytes}}
	if opts.RemoteIP != "" {
		ds = append(ds, spine.Daily{Name: spine.RecvCounter(userID) + ":ip:" + opts.RemoteIP, Limit: lim.DailyRecvPerIP})
	}
	return ds
}

// ownedMailboxes returns which of the messages' mailboxes are the user's.
func (s *Store) ownedMailboxes(ctx context.Context, tx *sqlx.Tx, userID int64, msgs []*newMessage) (map[int64]bool, error) {
	owned := map[int64]bool{}
	for _, nm := range msgs {
		if _, seen := owned[nm.mailboxID]; seen {
			continue
		}
		var n int
		if err := s.db.TxGet(ctx, tx, &n, s.rebind("SELECT COUNT(*) FROM mailboxes WHERE id = ? AND user_id = ?"), nm.mailboxID, userID); err != nil {
			return nil, err
		}
		owned[nm.mailboxID] = n > 0
	}
	return owned, nil
}

// assignUIDs takes the next UIDs and modseqs of each mailbox for its
// messages, in their order, with one update per mailbox that also adjusts
// its counts.
func (s *Store) assignUIDs(ctx context.Context, tx *sqlx.Tx, userID int64, msgs []*newMessage) error {
	var order []int64
	byBox := map[int64][]*newMessage{}
	for _, nm := range msgs {
		if byBox[nm.mailboxID] == nil {
			order = append(order, nm.mailboxID)
		}
		byBox[nm.mailboxID] = append(byBox[nm.mailboxID], nm)
	}
	for _, id := range order {
		ms := byBox[id]
		var unseen, size int64
		for _, nm := range ms {
			if !nm.flags.Has(FlagSeen) {
				unseen++
			}
			size += nm.p.size
		}
		n := int64(len(ms))
		var mb struct {
			UIDNext     uint32 `db:"uidnext"`
			ModSeq      uint64 `db:"highest_modseq"`
			UIDValidity uint32 `db:"uidvalidity"`
		}
		update := `UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + ?,
			message_count = message_count + ?, unseen_count = unseen_count + ?, size_bytes = size_bytes + ?
			WHERE id = ? AND user_id = ?`
		args := []any{n, n, n, unseen, size, id, userID}
		if s.db.Dialect() == sqldb.SQLite {
			// One statement where the dialect has UPDATE ... RETURNING.
			if err := s.db.TxGet(ctx, tx, &mb, update+" RETURNING uidnext, highest_modseq, uidvalidity", args...); err != nil {
				return fmt.Errorf("mailbox %d: %w", id, err)
			}
		} else {
			if _, err := s.db.TxExec(ctx, tx, s.rebind(update), args...); err != nil {
				return fmt.Errorf("mailbox %d: %w", id, err)
			}
			if err := s.db.TxGet(ctx, tx, &mb, s.rebind("SELECT uidnext, highest_modseq, uidvalidity FROM mailboxes WHERE id = ?"), id); err != nil {
				return fmt.Errorf("mailbox %d: %w", id, err)
			}
		}
		for i, nm := range ms {
			back := n - int64(i)
			nm.out = Appended{MailboxID: id, UID: mb.UIDNext - uint32(back), UIDValidity: mb.UIDValidity,
				ModSeq: mb.ModSeq - uint64(back) + 1, Size: nm.p.size}
		}
	}
	return nil
}

// insertBlobRows records the messages' files, or holds the messages
// themselves when they are small (inline).
func (s *Store) insertBlobRows(ctx context.Context, tx *sqlx.Tx, msgs []*newMessage) error {
	rows := make([]spine.BlobRow, len(msgs))
	for i, nm := range msgs {
		rows[i] = spine.BlobRow{ID: nm.m.blobID, Part: nm.m.blob.Partition, Size: nm.m.blob.Size, Stored: nm.m.blob.Stored, Data: nm.m.inline}
	}
	return s.sp.AddBlobRows(ctx, tx, rows...)
}

// insertMessageRow writes one message's row, with its index row for a
// user whose mail is not sealed. A message joins the thread of the
// messages it refers to (References, In-Reply-To) and of those already
// stored that reply to it (a parent delivered after its replies); when
// those are in several threads, they are merged into the oldest. A
// message that joins none starts a thread named by its own id.
func (s *Store) insertMessageRow(ctx context.Context, tx *sqlx.Tx, userID int64, nm *newMessage) error {
	p, m := nm.p, nm.m
	threads, err := s.relatedThreads(ctx, tx, userID, p)
	if err != nil {
		return err
	}
	var thread int64
	if len(threads) > 0 {
		thread = slices.Min(threads)
	}
	flags := nm.flags
	if m.secure {
		flags |= FlagEncrypted
	}
	date := nm.opts.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	sent := m.sent
	if sent == 0 {
		sent = date.Unix()
	}
	res, err := s.db.TxExec(ctx, tx, s.rebind(`INSERT INTO messages (user_id, mailbox_id, uid, modseq, flags, keywords, size,
		internal_date, blob_id, info, info_sealed, search_from, search_to, search_subject, msgid_hash, thread_id,
		has_attachments, created_at, sent_date, sort_from, sort_subject, parent_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		userID, nm.mailboxID, nm.out.UID, nm.out.ModSeq, flags, strings.Join(nm.kws, " "), p.size, date.Unix(), m.blobID,
		m.meta, m.secure, m.search[0], m.search[1], m.search[2], p.msgidHash, thread, p.info.HasAttachments, s.unix(),
		sent, m.sortFrom, m.sortSubject, p.parentHash)
	if err != nil {
		return err
	}
	if nm.out.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	nm.out.fixed = fixedRow{userID: userID, id: nm.out.ID, size: p.size, date: date.Unix(), blobID: m.blobID, attachments: p.info.HasAttachments}
	// The id is known only now: it names the message's index row, and
	// the thread it starts.
	if thread == 0 {
		thread = nm.out.ID
	}
	text := textIDOf(userID, nm.out.ID)
	if _, err := s.db.TxExec(ctx, tx, s.rebind("UPDATE messages SET text_id = ?, thread_id = ? WHERE id = ?"), text, thread, nm.out.ID); err != nil {
		return err
	}
	if len(threads) > 1 {
		q, args, err := sqlx.In("UPDATE messages SET thread_id = ? WHERE user_id = ? AND thread_id IN (?)", thread, userID, threads)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(q), args...); err != nil {
			return fmt.Errorf("merge threads: %w", err)
		}
	}
	switch {
	case !m.text:
	case m.doc == nil:
		// Left for the indexer (deferText).
		if _, err := s.db.TxExec(ctx, tx, "INSERT INTO text_pending (user_id, text_id) VALUES (?, ?)", userID, text); err != nil {
			return fmt.Errorf("note message text: %w", err)
		}
		s.wakeIndexer()
	default:
		return s.insertText(ctx, tx, userID, text, m.doc)
	}
	return nil
}

// relatedThreads returns the threads of the user's messages that p refers
// to, that reply to p, or that reply to a message p refers to, distinct.
func (s *Store) relatedThreads(ctx context.Context, tx *sqlx.Tx, userID int64, p *parsed) ([]int64, error) {
	var parts []string
	var args []any
	if len(p.refHashes) > 0 {
		parts = append(parts, "SELECT thread_id FROM messages WHERE user_id = ? AND msgid_hash IN (?)")
		args = append(args, userID, p.refHashes)
	}
	// Replies to this message, and to any message it refers to: those
	// share an ancestor with it even when the ancestor is not stored (a
	// thread whose first message was deleted, or never received).
	parents := slices.Clone(p.refHashes)
	if p.msgidHash != "" {
		parents = append(parents, p.msgidHash)
	}
	if len(parents) > 0 {
		parts = append(parts, "SELECT thread_id FROM messages WHERE user_id = ? AND parent_hash IN (?)")
		args = append(args, userID, parents)
	}
	if len(parts) == 0 {
		return nil, nil
	}
	q, args, err := sqlx.In(strings.Join(parts, " UNION "), args...)
	if err != nil {
		return nil, err
	}
	var threads []int64
	if len(p.refHashes) <= 1 {
		err = s.db.TxSelect(ctx, tx, &threads, s.rebind(q), args...)
	} else {
		err = tx.SelectContext(ctx, &threads, s.rebind(q), args...)
	}
	if err != nil {
		return nil, fmt.Errorf("find thread: %w", err)
	}
	// Rows from before thread ids were every message's own (0).
	return slices.DeleteFunc(threads, func(t int64) bool { return t == 0 }), nil
}
