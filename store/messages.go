package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/message"
	"basalt/store/blob"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// Message is a message's metadata row.
type Message struct {
	ID             int64
	MailboxID      int64
	UID            uint32
	ModSeq         uint64
	Flags          Flags
	Keywords       []string
	Size           int64
	InternalDate   time.Time
	ThreadID       int64
	HasAttachments bool
	// sort holds the keys of the listing orders besides arrival, flags,
	// size and UID, when the listing read them (ListPage).
	sort struct {
		sent          int64
		from, subject string
	}
	// blobID names the message's file, for OpenListed.
	blobID string
	// Info is the envelope and body structure parsed at delivery; set only
	// when asked for (ListQuery.WithInfo, Message).
	Info *message.Info
}

type messageRow struct {
	ID             int64  `db:"id"`
	MailboxID      int64  `db:"mailbox_id"`
	UID            uint32 `db:"uid"`
	ModSeq         uint64 `db:"modseq"`
	Flags          Flags  `db:"flags"`
	Keywords       string `db:"keywords"`
	Size           int64  `db:"size"`
	InternalDate   int64  `db:"internal_date"`
	BlobID         string `db:"blob_id"`
	ThreadID       int64  `db:"thread_id"`
	HasAttachments bool   `db:"has_attachments"`
	TextID         int64  `db:"text_id"`
	// The sort keys, read by ListPage only.
	SentDate    int64  `db:"sent_date"`
	SortFrom    string `db:"sort_from"`
	SortSubject string `db:"sort_subject"`
	Info        []byte `db:"info"`
	InfoSealed  bool   `db:"info_sealed"`
	// InfoDeferred marks a listing that left info out, to be read only
	// for the messages whose metadata is not in the cache (loadInfo).
	InfoDeferred bool `db:"info_deferred"`
	// info is the metadata found in the cache by loadInfo.
	info *message.Info
}

const rowColumns = "id, mailbox_id, uid, modseq, flags, keywords, size, internal_date, blob_id, thread_id, has_attachments, text_id"

// writeColumns are what the writes that start from a message's row (flags,
// expunge, copy, move) use of it; the driver hands each column over on its
// own, and SetFlags reads its rows twice, once under the writers' lock.
const writeColumns = "id, uid, modseq, flags, keywords, size, blob_id, text_id"

// message converts a row; info is decoded when the row carries it.
func (a *Account) message(r messageRow) (Message, error) {
	m := Message{
		ID: r.ID, MailboxID: r.MailboxID, UID: r.UID, ModSeq: r.ModSeq, Flags: r.Flags,
		Keywords: splitKeywords(r.Keywords), Size: r.Size, InternalDate: time.Unix(r.InternalDate, 0).UTC(),
		ThreadID: r.ThreadID, HasAttachments: r.HasAttachments, blobID: r.BlobID,
	}
	m.sort.sent, m.sort.from, m.sort.subject = r.SentDate, r.SortFrom, r.SortSubject
	if m.ThreadID == 0 {
		m.ThreadID = m.ID
	}
	if r.info != nil {
		m.Info = r.info
		return m, nil
	}
	if !r.InfoSealed {
		if info, ok := a.s.files.infos.get(r.BlobID); ok {
			m.Info = info
			return m, nil
		}
	}
	if r.Info == nil {
		return m, nil
	}
	raw := r.Info
	if r.InfoSealed {
		if a.key == nil {
			return Message{}, fmt.Errorf("message %d: %w", r.ID, ErrLocked)
		}
		dec, err := crypt.Decrypt(bytes.NewReader(raw), a.key)
		if err != nil {
			return Message{}, fmt.Errorf("message %d: open metadata: %w", r.ID, err)
		}
		if raw, err = io.ReadAll(dec); err != nil {
			return Message{}, fmt.Errorf("message %d: open metadata: %w", r.ID, err)
		}
	}
	m.Info = new(message.Info)
	if err := json.Unmarshal(raw, m.Info); err != nil {
		return Message{}, fmt.Errorf("message %d: decode metadata: %w", r.ID, err)
	}
	if !r.InfoSealed {
		a.s.files.infos.put(r.BlobID, len(raw), m.Info)
	}
	return m, nil
}

// AppendOptions are the optional parts of an append.
type AppendOptions struct {
	// Flags and Keywords are the client's: only ClientFlags are kept.
	Flags    Flags
	Keywords []string
	// SystemFlags are set by the server's own delivery path (a filter's
	// verdict: junk, infected, spoofed, phishing); clients cannot set them.
	SystemFlags  Flags
	InternalDate time.Time // zero means now
	// Inbound marks a delivery from outside the account (SMTP, LMTP): it
	// counts toward, and is checked against, the receive size limit and the
	// daily received bytes, per user and per sending IP.
	Inbound  bool
	RemoteIP string
	// ClaimRecent is set by an IMAP session that has the mailbox selected
	// read-write: the message it appends is recent to it (RFC 3501 2.3.2),
	// and so is any other unclaimed one below it. The claim is made in the
	// append's own transaction, so the session's next poll, and those of
	// the other sessions with the mailbox selected, find nothing to claim
	// and write nothing.
	ClaimRecent bool
}

// Appended says where an appended message went.
type Appended struct {
	ID          int64
	MailboxID   int64
	UID         uint32
	UIDValidity uint32
	ModSeq      uint64
	Size        int64
	// RecentFrom is, with AppendOptions.ClaimRecent, where the claim
	// started: the messages from RecentFrom up to UID are recent to the
	// appending session.
	RecentFrom uint32
	// fixed is what the message will never change, for the cache of
	// them (fixedrows.go), which only a committed append may fill.
	fixed fixedRow
}

// errStaleKey means the user's key changed between sealing a message and
// committing it; the append starts over with the new key.
var errStaleKey = errors.New("the user's key changed during the append")

// parsed is what an append works out from the message once, whatever key
// it is sealed to.
type parsed struct {
	raw []byte
	// size is the message's size: len(raw), or for a message sealed
	// elsewhere (DeliverSealed), whose raw is not here, what it was.
	size      int64
	info      *message.Info
	meta      []byte
	msgidHash string
	refHashes []any
	// parentHash is the hash of the message this one replies to.
	parentHash string
}

func parse(raw []byte) (*parsed, error) {
	p := &parsed{raw: raw, size: int64(len(raw)), info: message.Parse(raw)}
	var err error
	if p.meta, err = json.Marshal(p.info); err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	p.msgidHash = hashMessageID(p.info.Envelope.MessageID)
	p.parentHash = hashMessageID(p.info.ParentID())
	for _, r := range p.info.References {
		if h := hashMessageID(r); h != "" && len(p.refHashes) < 50 {
			p.refHashes = append(p.refHashes, h)
		}
	}
	return p, nil
}

// sealed is a message as stored for one user: its file written, and the
// metadata row contents, encrypted for a secure user.
type sealed struct {
	blobID    string
	blob      blob.Info
	meta      []byte
	secure    bool
	publicKey string
	search    [3]string // from, to, subject; empty for a secure user
	// sortFrom and sortSubject are the sort keys (textindex.go), sent the
	// Date header: empty and 0 for a secure user, whose headers are sealed.
	sortFrom, sortSubject string
	sent                  int64
	// text says the message's text is indexed: not for a secure user,
	// whose mail is never indexed in plaintext. doc is what the index
	// holds of it, when the append writes it (not deferText).
	text bool
	doc  *textDoc
	// inline holds the encoded message when it is kept in its blobs row
	// (blob.Partition is blob.Inline), not in a file.
	inline []byte
}

// seal writes the message file for u (encrypted to u's key when u is
// secure) and prepares its metadata.
func (s *Store) seal(ctx context.Context, u User, p *parsed) (sealed, error) {
	return s.sealWith(ctx, u, p, true)
}

// sealWith is seal, with the file fsynced (sync) or left for a group Sync.
func (s *Store) sealWith(ctx context.Context, u User, p *parsed, sync bool) (sealed, error) {
	out := sealed{blobID: blob.NewID(), meta: p.meta, secure: u.Secure, publicKey: u.PublicKey}
	var transform blob.Transform
	if u.Secure {
		rcpt, err := crypt.ParseRecipient(u.PublicKey)
		if err != nil {
			return sealed{}, fmt.Errorf("user key: %w", err)
		}
		transform = func(w io.Writer) (io.WriteCloser, error) { return crypt.Encrypt(w, rcpt) }
		if out.meta, err = sealBytes(rcpt, p.meta); err != nil {
			return sealed{}, fmt.Errorf("seal metadata: %w", err)
		}
	} else {
		out.search = [3]string{spine.Clip(p.info.SearchFrom), spine.Clip(p.info.SearchTo), spine.Clip(p.info.SearchSubject)}
		out.sortFrom, out.sortSubject, out.sent = sortKeys(p.info)
		out.text = true
		if !s.deferText() {
			out.doc = newTextDoc(p.raw, p.info)
		}
	}
	var err error
	switch {
	case s.inlineMax > 0 && int64(len(p.raw)) <= s.inlineMax:
		out.inline, out.blob, err = s.blobs.Encode(ctx, bytes.NewReader(p.raw), transform)
	case sync:
		// A user moved to a partition (MoveUser) keeps its new mail there.
		out.blob, err = s.blobs.PutTo(ctx, s.partitionOf(u), out.blobID, bytes.NewReader(p.raw), transform)
	default:
		out.blob, err = s.blobs.PutDeferredTo(ctx, s.partitionOf(u), out.blobID, bytes.NewReader(p.raw), transform)
	}
	if err != nil {
		return sealed{}, err
	}
	if s.hooks.afterBlobWrite != nil {
		s.hooks.afterBlobWrite()
	}
	return out, nil
}

// sealBytes encrypts b to rcpt.
func sealBytes(rcpt *crypt.Recipient, b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := crypt.Encrypt(&buf, rcpt)
	if err == nil {
		_, err = w.Write(b)
	}
	if err == nil {
		err = w.Close()
	}
	return buf.Bytes(), err
}

// discard removes the file of an append that did not commit. When the
// commit's outcome is unknown the row may exist, so the file is left for
// SweepOrphans, which removes it only if no row refers to it.
func (s *Store) discard(ctx context.Context, m sealed, cause error) {
	if sqldb.IsCommitUncertain(cause) || m.blob.Partition == blob.Inline {
		return
	}
	if err := s.blobs.Delete(context.WithoutCancel(ctx), m.blob.Partition, m.blobID); err != nil {
		s.log.Warn("remove blob of failed append", "blob", m.blobID, "err", err)
	}
}

// Append stores a message in one of the account's mailboxes. The message
// file is written and fsynced before the rows are committed; when Append
// returns nil the message is durable, and not before.
func (a *Account) Append(ctx context.Context, mailboxID int64, raw []byte, opts AppendOptions) (Appended, error) {
	s := a.s
	have, err := a.need(ctx, mailboxID, RightInsert)
	if err != nil {
		return Appended{}, fmt.Errorf("append to mailbox %d: %w", mailboxID, err)
	}
	viewerSeen := a.view != nil && have.Has(RightSeen) && opts.Flags.Has(FlagSeen)
	opts.Flags, opts.Keywords = a.appendFlags(have, opts.Flags, opts.Keywords)
	kws, err := normalizeKeywords(opts.Keywords)
	if err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	u, err := s.userForWrite(ctx, a.userID)
	if err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	// Early refusals save writing a file that would be thrown away; the
	// exact checks are made again inside the transaction.
	lim, err := s.Limits(ctx, u)
	if err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	if err := checkAppend(lim, u.UsedBytes, int64(len(raw)), opts.Inbound); err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	// Before the parse, whose cost the limits bound (IMAP APPEND, drafts
	// and sent copies come this way; deliveries are checked by the agent).
	if err := s.header.Check(raw); err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	p, err := parse(raw)
	if err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	flags := opts.Flags&ClientFlags | opts.SystemFlags&allFlags&^FlagRecent
	for attempt := 0; ; attempt++ {
		m, err := s.seal(ctx, u, p)
		if err != nil {
			return Appended{}, fmt.Errorf("append: %w", err)
		}
		var out Appended
		err = s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
			var err error
			out, err = a.commitAppend(ctx, tx, c, mailboxID, p, m, flags, kws, opts)
			if err == nil && viewerSeen {
				err = a.markSeen(ctx, tx, mailboxID, out.ID)
			}
			if err == nil && opts.ClaimRecent {
				out.RecentFrom, err = a.claimRecentTx(ctx, tx, mailboxID, out.UID+1)
			}
			return err
		})
		if err == nil {
			if !m.secure {
				s.files.noteAppended(m.blobID, p)
				s.files.rows.put(fixedKey{mailboxID, out.UID}, 1, out.fixed)
			}
			return out, nil
		}
		s.discard(ctx, m, err)
		if !errors.Is(err, errStaleKey) || attempt > 0 {
			return Appended{}, fmt.Errorf("append to mailbox %d: %w", mailboxID, err)
		}
		// The key was replaced under us (a password reset): seal again to
		// the new one, read fresh from the database.
		if u, err = s.loadUser(ctx, "u.id = ?", a.userID); err != nil {
			return Appended{}, fmt.Errorf("append: %w", err)
		}
	}
}

// checkAppend applies the size, quota and (for a delivery) receive size
// limits to a message of size bytes for a user who uses used bytes.
func checkAppend(lim Limits, used, size int64, inbound bool) error {
	if inbound && lim.MaxRecvSize > 0 && size > lim.MaxRecvSize {
		return fmt.Errorf("%w (%d > %d bytes)", ErrTooLarge, size, lim.MaxRecvSize)
	}
	return spine.FitsQuota(lim.QuotaBytes, used, size)
}

// commitAppend writes the rows of one appended message inside a writeUser
// transaction, checking the limits as they are now, with the user's row
// locked.
func (a *Account) commitAppend(ctx context.Context, tx *sqlx.Tx, c *spine.Change, mailboxID int64, p *parsed, m sealed, flags Flags, kws []string, opts AppendOptions) (Appended, error) {
	nm := &newMessage{mailboxID: mailboxID, p: p, m: m, flags: flags, kws: kws, opts: opts}
	if err := a.s.appendMessages(ctx, tx, c, a.userID, []*newMessage{nm}); err != nil {
		return Appended{}, err
	}
	return nm.out, nm.err
}

// hashMessageID keeps threading possible without storing Message-IDs, which
// for a secure user would be readable metadata.
func hashMessageID(id string) string {
	id = strings.Trim(strings.TrimSpace(id), "<>")
	if id == "" {
		return ""
	}
	h := sha256.Sum256([]byte(strings.ToLower(id)))
	return hex.EncodeToString(h[:16])
}

// Sort orders a listing.
type Sort int

// Listing orders.
const (
	SortUID      Sort = iota // ascending UID, the IMAP order
	SortDateDesc             // newest first, the webmail order
	SortDateAsc
	// The webmail's other orders (ListPage only), each ascending on its
	// key unless PageQuery.Desc.
	SortSent    // the Date header
	SortFrom    // the first sender's name or address (message.SortFrom)
	SortSubject // the base subject (message.SortSubject)
	SortSize
	SortFlagged // flagged or not, then arrival
	SortUnread  // unread or not, then arrival
)

// ListQuery selects a page of a mailbox.
type ListQuery struct {
	UIDs         UIDSet // restrict to these; nil means all
	Sort         Sort
	AfterUID     uint32 // with SortUID: start after this UID (keyset paging)
	Offset       int    // skip this many (webmail paging)
	Limit        int    // at most this many; 0 means no limit
	ChangedSince uint64 // only messages with a higher modseq
	WithInfo     bool   // decode the envelope and body structure too
	// Fixed says the caller needs only what a message never changes (its
	// ids, size, arrival, attachments and Info), which then may come from
	// memory (fixedrows.go): Flags, Keywords, ModSeq and ThreadID may be
	// left zero.
	Fixed bool
}

// List returns messages of one of the account's mailboxes. A page costs
// what its rows cost, not what the mailbox holds: every order is served by
// an index that starts at the mailbox.
func (a *Account) List(ctx context.Context, mailboxID int64, q ListQuery) ([]Message, error) {
	if _, err := a.need(ctx, mailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	if q.UIDs.span() <= maxPrecheck || q.Limit > 0 && q.Limit <= maxPrecheck {
		// A listing of a few messages (most FETCHes and pages) is short
		// (sqldb.Short); a long one keeps its cancellation, so that it
		// stops when its client leaves.
		var err error
		if ctx, err = sqldb.Short(ctx); err != nil {
			return nil, err
		}
	}
	var cached []Message
	if q.Fixed && q.Sort == SortUID && q.AfterUID == 0 && q.Limit == 0 && q.Offset == 0 && q.ChangedSince == 0 {
		found, missing, ok := a.fixedList(mailboxID, q)
		if ok && len(missing) == 0 {
			return found, nil
		}
		if ok {
			cached, q.UIDs = found, missing
		}
	}
	// A set of many ranges close together (what a few expunges make of
	// an IMAP sequence range) is read as the one range around it and
	// filtered here: a statement with a term per range is parsed anew
	// each time, which costs more than the few rows in the gaps.
	set, only := q.UIDs, UIDSet(nil)
	if q.Limit == 0 && q.Offset == 0 {
		if lo, hi, ok := set.dense(); ok {
			set, only = UIDSet{{Start: lo, Stop: hi}}, q.UIDs
		}
	}
	cond, args, err := set.sql()
	if err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	cols := rowColumns
	if q.WithInfo {
		// The metadata itself is read afterwards, for the messages whose
		// metadata the cache lacks (loadInfo).
		cols += ", info_sealed, 1 AS info_deferred"
	}
	var b strings.Builder
	b.WriteString("SELECT " + cols + " FROM messages")
	if q.Sort == SortUID && q.ChangedSince == 0 {
		b.WriteString(a.s.db.UIDIndexHint())
	}
	b.WriteString(" WHERE mailbox_id = ? AND user_id = ?")
	args = append([]any{mailboxID, a.userID}, args...)
	b.WriteString(cond)
	if q.ChangedSince > 0 {
		b.WriteString(" AND modseq > ?")
		args = append(args, q.ChangedSince)
	}
	// What changed since a modseq is found through (mailbox_id, modseq)
	// and sorted here: asked to ORDER BY uid, SQLite's planner, knowing the
	// mailbox large, walks the whole (mailbox_id, uid) index instead to
	// spare itself the sort, and a poll after one change cost O(mailbox).
	sortHere := q.ChangedSince > 0 && q.Sort == SortUID && q.Limit == 0
	switch q.Sort {
	case SortUID:
		if q.AfterUID > 0 {
			b.WriteString(" AND uid > ?")
			args = append(args, q.AfterUID)
		}
		if !sortHere {
			b.WriteString(" ORDER BY uid")
		}
	case SortDateDesc:
		b.WriteString(" ORDER BY internal_date DESC, uid DESC")
	case SortDateAsc:
		b.WriteString(" ORDER BY internal_date, uid")
	default:
		return nil, fmt.Errorf("list mailbox %d: %w: unknown sort %d", mailboxID, ErrInvalid, q.Sort)
	}
	if q.Limit > 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(q.Limit))
		if q.Offset > 0 {
			b.WriteString(" OFFSET " + strconv.Itoa(q.Offset))
		}
	} else if q.Offset > 0 {
		return nil, fmt.Errorf("list mailbox %d: %w: an offset needs a limit", mailboxID, ErrInvalid)
	}
	// IMAP's FETCH and poll list by a few UID ranges and nothing else;
	// their statements are few and prepared once (SQLite parses every
	// other one anew, a large share of a FETCH's cost). Pages with a
	// LIMIT, or many ranges, make too many different statements to keep.
	var out []Message
	if q.Limit == 0 && q.Offset == 0 && len(set) <= 2 {
		out, err = a.selectMessagesWith(ctx, mailboxID, a.s.db.Select, b.String(), args)
	} else {
		out, err = a.selectMessages(ctx, mailboxID, b.String(), args)
	}
	if sortHere {
		slices.SortFunc(out, func(x, y Message) int { return cmp.Compare(x.UID, y.UID) })
	}
	if only != nil {
		out = slices.DeleteFunc(out, func(m Message) bool { return !only.has(m.UID) })
	}
	if q.Fixed && err == nil {
		a.noteFixed(out)
		if len(cached) > 0 {
			out = append(out, cached...)
			slices.SortFunc(out, func(x, y Message) int { return cmp.Compare(x.UID, y.UID) })
			out = slices.CompactFunc(out, func(x, y Message) bool { return x.UID == y.UID })
		}
	}
	return out, err
}

// selectMessages runs a query for rows of one mailbox and converts them,
// with the viewer's seen state.
func (a *Account) selectMessages(ctx context.Context, mailboxID int64, query string, args []any) ([]Message, error) {
	return a.selectMessagesWith(ctx, mailboxID, a.s.db.SelectContext, query, args)
}

// selectMessagesWith is selectMessages reading through sel: the pool's
// SelectContext, or the prepared statements' Select.
func (a *Account) selectMessagesWith(ctx context.Context, mailboxID int64, sel func(context.Context, any, string, ...any) error, query string, args []any) ([]Message, error) {
	var rows []messageRow
	if err := sel(ctx, &rows, a.s.rebind(query), args...); err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	if err := a.overlaySeen(ctx, a.s.db, mailboxID, rows); err != nil {
		return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
	}
	if len(rows) > 0 && rows[0].InfoDeferred {
		var err error
		if rows, err = a.loadInfo(ctx, rows); err != nil {
			return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
		}
	}
	out := make([]Message, 0, len(rows))
	for _, r := range rows {
		m, err := a.message(r)
		if err != nil {
			return nil, fmt.Errorf("list mailbox %d: %w", mailboxID, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// loadInfo reads the metadata of the rows whose metadata the cache lacks.
// A row whose message is gone by then (expunged between the two reads) is
// left out, as if the listing had come after.
func (a *Account) loadInfo(ctx context.Context, rows []messageRow) ([]messageRow, error) {
	var want []any
	at := map[int64]int{}
	for i, r := range rows {
		if !r.InfoSealed {
			if info, ok := a.s.files.infos.get(r.BlobID); ok {
				rows[i].info = info
				continue
			}
		}
		want = append(want, r.ID)
		at[r.ID] = i
	}
	if len(want) == 0 {
		return rows, nil
	}
	found := make(map[int64]bool, len(want))
	for start := 0; start < len(want); start += 500 {
		chunk := want[start:min(start+500, len(want))]
		q, args, err := sqlx.In("SELECT id, info FROM messages WHERE user_id = ? AND id IN (?)", a.userID, chunk)
		if err != nil {
			return nil, err
		}
		var infos []struct {
			ID   int64  `db:"id"`
			Info []byte `db:"info"`
		}
		if len(chunk) <= fewArgs {
			err = a.s.db.SelectContext(ctx, &infos, a.s.rebind(q), args...)
		} else {
			err = a.s.db.DB.SelectContext(ctx, &infos, a.s.rebind(q), args...)
		}
		if err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
		for _, in := range infos {
			rows[at[in.ID]].Info = in.Info
			found[in.ID] = true
		}
	}
	if len(found) == len(want) {
		return rows, nil
	}
	return slices.DeleteFunc(rows, func(r messageRow) bool {
		_, asked := at[r.ID]
		return asked && !found[r.ID]
	}), nil
}

// Message returns one of the account's messages by id, with its info.
func (a *Account) Message(ctx context.Context, id int64) (Message, error) {
	var r messageRow
	err := a.s.db.GetContext(ctx, &r, a.s.rebind("SELECT "+rowColumns+", info, info_sealed FROM messages WHERE id = ? AND user_id = ?"), id, a.userID)
	if err != nil {
		return Message{}, fmt.Errorf("message %d: %w", id, notFound(err))
	}
	if a.view != nil {
		rows := []messageRow{r}
		if _, err := a.need(ctx, r.MailboxID, RightRead); err != nil {
			return Message{}, fmt.Errorf("message %d: %w", id, err)
		}
		if err := a.overlaySeen(ctx, a.s.db, r.MailboxID, rows); err != nil {
			return Message{}, fmt.Errorf("message %d: %w", id, err)
		}
		r = rows[0]
	}
	return a.message(r)
}

// Open returns the raw message, decrypted for a secure user.
func (a *Account) Open(ctx context.Context, id int64) (io.ReadCloser, error) {
	// The blob's own bytes (an inline message's, up to 64 KiB) are read
	// only when the body cache lacks them: most FETCHes of a message's
	// body find it there, and copying the row's data out of the database
	// was a large share of such a FETCH.
	var loc struct {
		BlobID    string `db:"blob_id"`
		Part      string `db:"part"`
		MailboxID int64  `db:"mailbox_id"`
		Size      int64  `db:"size"`
	}
	err := a.s.db.Get(ctx, &loc, a.s.rebind(`SELECT m.blob_id, b.part, m.mailbox_id, m.size FROM messages m JOIN blobs b ON b.id = m.blob_id
		WHERE m.id = ? AND m.user_id = ?`), id, a.userID)
	if err != nil {
		return nil, fmt.Errorf("open message %d: %w", id, notFound(err))
	}
	if _, err := a.need(ctx, loc.MailboxID, RightRead); err != nil {
		return nil, fmt.Errorf("open message %d: %w", id, err)
	}
	// A small message of a user whose mail is not sealed is kept
	// decompressed (filecache.go); a secure user's never is.
	cacheable := a.key == nil && loc.Size > 0 && loc.Size <= maxCachedBody
	if cacheable {
		if b, ok := a.s.files.bodies.get(loc.BlobID); ok {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	var unwrap blob.Unwrap
	if a.key != nil {
		key := a.key
		unwrap = func(r io.Reader) (io.Reader, error) { return crypt.Decrypt(r, key) }
	}
	var rc io.ReadCloser
	if loc.Part == blob.Inline {
		// The blob row outlives the message while another copy holds it;
		// gone, the message went with it (expunged since the read above).
		var data []byte
		if err := a.s.db.Get(ctx, &data, a.s.rebind("SELECT data FROM blobs WHERE id = ?"), loc.BlobID); err != nil {
			return nil, fmt.Errorf("open message %d: %w", id, notFound(err))
		}
		rc, err = a.s.blobs.Decode(ctx, data, unwrap)
	} else {
		rc, err = a.s.blobs.Open(ctx, loc.Part, loc.BlobID, unwrap)
	}
	if err != nil {
		if unwrap == nil {
			// An encrypted blob without a key reads as locked, not as corrupt.
			if u, uerr := a.s.UserByID(ctx, a.userID); uerr == nil && u.Secure {
				return nil, fmt.Errorf("open message %d: %w", id, ErrLocked)
			}
		}
		return nil, fmt.Errorf("open message %d: %w", id, err)
	}
	if !cacheable {
		return rc, nil
	}
	defer rc.Close()
	// One octet more than the row records tells a file that is longer;
	// only one of the recorded size is kept.
	b := make([]byte, loc.Size+1)
	n, err := io.ReadFull(rc, b)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		b = b[:n]
		if int64(n) == loc.Size {
			a.s.files.bodies.put(loc.BlobID, n, b)
		}
	case err == nil:
		rest, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("open message %d: %w", id, err)
		}
		b = append(b, rest...)
	default:
		return nil, fmt.Errorf("open message %d: %w", id, err)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// OpenListed is Open for a message the caller has just listed (List,
// ListPage, Message): a small message of a user whose mail is not sealed
// is served from the body cache by the file the listing named, without
// reading the message's row again. An IMAP FETCH of bodies reads every
// message this way; a message expunged since the listing may still be
// served, as a client that has not been told of the expunge expects
// (RFC 3501 5.5 lets a server answer a FETCH of it).
func (a *Account) OpenListed(ctx context.Context, m Message) (io.ReadCloser, error) {
	if a.key == nil && m.blobID != "" && m.Size > 0 && m.Size <= maxCachedBody {
		if _, err := a.need(ctx, m.MailboxID, RightRead); err != nil {
			return nil, fmt.Errorf("open message %d: %w", m.ID, err)
		}
		if b, ok := a.s.files.bodies.get(m.blobID); ok {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	return a.Open(ctx, m.ID)
}

// FlagUpdate is a message's state after SetFlags.
type FlagUpdate struct {
	ID       int64
	UID      uint32
	Flags    Flags
	Keywords []string
	ModSeq   uint64
	// Changed says this SetFlags changed the message: ModSeq is the one
	// it gave the change, and no other session's.
	Changed bool
}

// SetFlags changes the flags and keywords of the messages in uids. Every
// changed message gets one new modseq (RFC 7162 3.1.3 lets one command's
// changes share it). It returns the state of every message in the set.
func (a *Account) SetFlags(ctx context.Context, mailboxID int64, uids UIDSet, op FlagOp, flags Flags, keywords []string) ([]FlagUpdate, error) {
	have, err := a.need(ctx, mailboxID, RightRead)
	if err == nil {
		err = storeAllowed(have, op, flags, keywords)
	}
	if err != nil {
		return nil, fmt.Errorf("set flags in mailbox %d: %w", mailboxID, err)
	}
	kws, err := normalizeKeywords(keywords)
	if err != nil {
		return nil, fmt.Errorf("set flags: %w", err)
	}
	flags &= ClientFlags
	if a.view == nil && uids.span() <= maxPrecheck {
		// Clients often set what is set already (\Seen on a read message,
		// \Deleted twice): a read first finds that, and spares the
		// writers' queue a transaction that would change nothing. Done
		// before a write that is then ordered after it, the read stands
		// for the command. (A shared mailbox keeps \Seen per viewer, which
		// the transaction alone works out; a long set is left to the
		// transaction, rather than read twice.)
		rows, err := a.selectRows(ctx, nil, mailboxID, uids)
		if err == nil {
			// No rows could mean no such mailbox of the user's: the
			// transaction says which.
			if out, groups, _, err := planFlags(have, op, flags, kws, rows, nil); err == nil && len(rows) > 0 && len(groups) == 0 {
				return out, nil
			}
		}
	}
	var out []FlagUpdate
	err = a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		out = nil
		rows, err := a.lockedRows(ctx, tx, mailboxID, uids)
		if err != nil {
			return err
		}
		seen, err := a.seenOf(ctx, tx, mailboxID, rows)
		if err != nil {
			return err
		}
		var (
			groups      map[string]*flagGroup
			unseenDelta int64
		)
		out, groups, unseenDelta, err = planFlags(have, op, flags, kws, rows, seen)
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			return nil
		}
		var added []string
		for _, g := range groups {
			added, _ = mergeKeywords(added, splitKeywords(g.kws))
		}
		if err := a.s.noteKeywords(ctx, tx, mailboxID, added, true); err != nil {
			return err
		}
		modseq, err := a.bumpMailbox(ctx, tx, mailboxID, 0, unseenDelta, 0)
		if err != nil {
			return err
		}
		for _, g := range groups {
			for start := 0; start < len(g.ids); start += 500 {
				chunk := g.ids[start:min(start+500, len(g.ids))]
				q, args, err := sqlx.In("UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id IN (?)", g.flags, g.kws, modseq, chunk)
				if err != nil {
					return err
				}
				if _, err := a.s.txExecFew(ctx, tx, len(chunk), a.s.rebind(q), args...); err != nil {
					return err
				}
			}
		}
		for i := range out {
			if out[i].ModSeq == 0 {
				out[i].ModSeq, out[i].Changed = modseq, true
				c.Add(mailboxID, "flags", out[i].UID, modseq)
			}
		}
		return seen.save(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("set flags in mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}

// flagGroup is the messages a STORE gives the same flags and keywords.
type flagGroup struct {
	flags Flags
	kws   string
	ids   []any
}

// planFlags works out what a STORE does to rows: each message's flags
// after it (ModSeq 0 where they change), the changes grouped by outcome,
// and how the unseen count moves.
func planFlags(have Rights, op FlagOp, flags Flags, kws []string, rows []messageRow, seen *seenState) ([]FlagUpdate, map[string]*flagGroup, int64, error) {
	var out []FlagUpdate
	groups := map[string]*flagGroup{}
	var unseenDelta int64
	for _, r := range rows {
		cur := splitKeywords(r.Keywords)
		view := seen.flags(r) // with the viewer's own \Seen on a shared account
		nf, nk, err := applyFlags(op, view, cur, flags, kws)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("message UID %d: %w", r.UID, err)
		}
		nf, nk = limitFlags(have, view, cur, nf, nk)
		nf |= r.Flags &^ ClientFlags // the server's flags are not the client's to change
		kw := strings.Join(nk, " ")
		u := FlagUpdate{ID: r.ID, UID: r.UID, Flags: nf, Keywords: nk, ModSeq: r.ModSeq}
		stored, seenChanged := seen.keep(r, nf)
		if stored != r.Flags || kw != r.Keywords || seenChanged {
			key := strconv.FormatUint(uint64(stored), 10) + "|" + kw
			g := groups[key]
			if g == nil {
				g = &flagGroup{flags: stored, kws: kw}
				groups[key] = g
			}
			g.ids = append(g.ids, r.ID)
			switch {
			case r.Flags.Has(FlagSeen) && !stored.Has(FlagSeen):
				unseenDelta++
			case !r.Flags.Has(FlagSeen) && stored.Has(FlagSeen):
				unseenDelta--
			}
			u.ModSeq = 0 // filled in when written
		}
		out = append(out, u)
	}
	return out, groups, unseenDelta, nil
}

// lockMailbox checks that the mailbox is the account's and, on MySQL,
// locks its row for the rest of the transaction.
func (a *Account) lockMailbox(ctx context.Context, tx *sqlx.Tx, id int64) (Mailbox, error) {
	var m Mailbox
	err := a.s.db.TxGet(ctx, tx, &m, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE id = ? AND user_id = ?"+a.s.db.ForUpdate()), id, a.userID)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %d: %w", id, notFound(err))
	}
	return m, nil
}

// lockedRows is selectRows in a write transaction, the mailbox checked to
// be the account's. On MySQL the mailbox's row is locked first (writers
// take the user, then the mailbox). SQLite's one writer holds the whole
// database, and selectRows names the user: there the mailbox is read only
// when the set finds nothing, to tell an empty set from a mailbox that is
// not the account's. One statement less in each STORE and EXPUNGE, which
// every write waits for.
func (a *Account) lockedRows(ctx context.Context, tx *sqlx.Tx, mailboxID int64, set rowFilter) ([]messageRow, error) {
	sqlite := a.s.db.Dialect() == sqldb.SQLite
	if !sqlite {
		if _, err := a.lockMailbox(ctx, tx, mailboxID); err != nil {
			return nil, err
		}
	}
	rows, err := a.selectRows(ctx, tx, mailboxID, set)
	if err == nil && sqlite && len(rows) == 0 {
		_, err = a.lockMailbox(ctx, tx, mailboxID)
	}
	return rows, err
}

// bumpMailbox gives a mailbox a new highest modseq, adjusts its counts and
// returns the new modseq.
func (a *Account) bumpMailbox(ctx context.Context, tx *sqlx.Tx, id int64, msgs, unseen, size int64) (uint64, error) {
	update := `UPDATE mailboxes SET highest_modseq = highest_modseq + 1, message_count = message_count + ?,
		unseen_count = unseen_count + ?, size_bytes = size_bytes + ? WHERE id = ? AND user_id = ?`
	var modseq uint64
	if a.s.db.Dialect() == sqldb.SQLite {
		// One statement where the dialect has UPDATE ... RETURNING: this
		// runs in every flag change and expunge, under SQLite's one writer.
		err := a.s.db.TxGet(ctx, tx, &modseq, update+" RETURNING highest_modseq", msgs, unseen, size, id, a.userID)
		return modseq, notFound(err)
	}
	if _, err := a.s.db.TxExec(ctx, tx, a.s.rebind(update), msgs, unseen, size, id, a.userID); err != nil {
		return 0, err
	}
	err := a.s.db.TxGet(ctx, tx, &modseq, a.s.rebind("SELECT highest_modseq FROM mailboxes WHERE id = ?"), id)
	return modseq, err
}

// selectRows reads the rows of the messages in uids (writeColumns), in UID
// order, locking them on MySQL.
func (a *Account) selectRows(ctx context.Context, tx *sqlx.Tx, mailboxID int64, uids rowFilter) ([]messageRow, error) {
	// As in List: a set of many close ranges is read as its span and
	// filtered here, so that the statement is one of a few, prepared
	// once: this runs under the user's write lock, where parsing SQL
	// anew holds up every other writer (SQLite has one).
	var only UIDSet
	switch f := uids.(type) {
	case UIDSet:
		if lo, hi, ok := f.dense(); ok {
			uids, only = UIDSet{{Start: lo, Stop: hi}}, f
		}
	case deletedOnly:
		if lo, hi, ok := f.set.dense(); ok {
			uids, only = deletedOnly{UIDSet{{Start: lo, Stop: hi}}}, f.set
		}
	}
	cond, args, err := uids.sql()
	if err != nil {
		return nil, err
	}
	lock := a.s.db.ForUpdate()
	if tx == nil {
		lock = ""
	}
	query := a.s.rebind("SELECT " + writeColumns + " FROM messages" + a.s.db.UIDIndexHint() + " WHERE mailbox_id = ? AND user_id = ?" + cond + " ORDER BY uid" + lock)
	args = append([]any{mailboxID, a.userID}, args...)
	var rows []messageRow
	switch {
	case tx == nil:
		err = a.s.db.SelectContext(ctx, &rows, query, args...)
	case few(uids):
		err = a.s.db.TxSelect(ctx, tx, &rows, query, args...)
	default:
		err = tx.SelectContext(ctx, &rows, query, args...)
	}
	if only != nil {
		rows = slices.DeleteFunc(rows, func(r messageRow) bool { return !only.has(r.UID) })
	}
	return rows, err
}

// few reports whether f's statement is one of few enough to keep prepared:
// at most two ranges.
func few(f rowFilter) bool {
	switch f := f.(type) {
	case UIDSet:
		return len(f) <= 2
	case deletedOnly:
		return len(f.set) <= 2
	}
	return false
}
