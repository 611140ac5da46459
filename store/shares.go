package store

// Mailbox sharing, as M-Store had it: an owner grants RFC 4314 rights on
// a mailbox to another user, or to every user of the owner's domain, and
// those users reach it through Account.Shared. A shared Account is bound
// to the owner's mail like the owner's own (its queries are scoped to the
// owner), and on top of that every method checks the acting user's rights
// on the mailbox involved (need) before it touches anything; \Seen and
// subscriptions are the acting user's own (seenState, shared_seen,
// shared_subscriptions), never the owner's.
//
// Changes made through a shared Account are the owner's changes: they bump
// the owner's serial and their events carry the owner's user id, so
// whoever watches a shared mailbox listens to its owner's events. Grant
// changes publish an event of kind "acl" on the mailbox.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/store/internal/spine"
)

// ErrForbidden means the acting user lacks the right an operation needs on
// another user's mailbox, or the operation belongs to the owner alone.
var ErrForbidden = errors.New("forbidden")

// Rights is a set of RFC 4314 2.1 access rights.
type Rights uint16

// The rights, in the order of their letters "lrswipkxtea".
const (
	RightLookup         Rights = 1 << iota // l: the mailbox is listed and can be named
	RightRead                              // r: select it, read and search its messages, STATUS
	RightSeen                              // s: keep one's own \Seen state
	RightWrite                             // w: set and clear flags other than \Seen and \Deleted, and keywords
	RightInsert                            // i: append and copy into it
	RightPost                              // p: send mail to it (not enforced: mailboxes have no address)
	RightCreate                            // k: create mailboxes under it; the new parent in a rename
	RightDeleteMailbox                     // x: delete it; the old name in a rename
	RightDeleteMessages                    // t: set and clear \Deleted
	RightExpunge                           // e: expunge
	RightAdmin                             // a: read and change its grants

	// AllRights is what an owner has on its own mailboxes.
	AllRights = RightAdmin<<1 - 1
)

const rightLetters = "lrswipkxtea"

// ParseRights parses RFC 4314 right letters. The obsolete RFC 2086 rights
// are taken as RFC 4314 2.1.1 defines them for servers where "d" controls
// DELETE: "c" is "k", and "d" is "xte". An unknown letter (upper case and
// digits included) is ErrInvalid: RFC 4314 3.1 forbids ignoring it.
func ParseRights(s string) (Rights, error) {
	var r Rights
	for _, c := range s {
		switch c {
		case 'c':
			r |= RightCreate
		case 'd':
			r |= RightDeleteMailbox | RightDeleteMessages | RightExpunge
		default:
			i := strings.IndexRune(rightLetters, c)
			if i < 0 {
				return 0, fmt.Errorf("%w: %q is not an RFC 4314 right", ErrInvalid, c)
			}
			r |= 1 << i
		}
	}
	return r, nil
}

// String returns the rights as letters in "lrswipkxtea" order.
func (r Rights) String() string {
	var b strings.Builder
	for i := range len(rightLetters) {
		if r&(1<<i) != 0 {
			b.WriteByte(rightLetters[i])
		}
	}
	return b.String()
}

// Has reports whether every right in x is in r.
func (r Rights) Has(x Rights) bool { return r&x == x }

// MarshalText writes the rights as letters, for JSON.
func (r Rights) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads rights letters.
func (r *Rights) UnmarshalText(b []byte) error {
	v, err := ParseRights(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// viewer is the user acting on a shared Account.
type viewer struct {
	id  int64
	key *crypt.Identity // the viewer's own key, for the way back (Shared)
}

// Shared returns ownerID's mail as the account's user sees it: every
// method of the returned Account acts on ownerID's mailboxes and checks
// the account's user's rights first (RFC 4314 4). A mailbox the user has
// no "l" right on does not exist for it (ErrNotFound), whatever its id;
// a missing right otherwise is ErrForbidden. Contacts, settings, rules and
// counters are the owner's alone (ErrForbidden). Shared of the user's own
// id returns its own account. It makes no query: rights are read by each
// operation, so a revoked grant stops the next one. Changes made through
// it are announced as the owner's: watch the owner's events (UserID).
func (a *Account) Shared(ownerID int64) (*Account, error) {
	me, key := a.ViewerID(), a.key
	if a.view != nil {
		key = a.view.key
	}
	if ownerID <= 0 {
		return nil, fmt.Errorf("shared account: %w: user id %d", ErrInvalid, ownerID)
	}
	if ownerID == me {
		return a.s.Account(me, key), nil
	}
	return &Account{s: a.s, userID: ownerID, view: &viewer{id: me, key: key}}, nil
}

// ViewerID returns the user the account acts for: its owner, or on a
// shared account the user it was shared with.
func (a *Account) ViewerID() int64 {
	if a.view != nil {
		return a.view.id
	}
	return a.userID
}

// IsShared reports whether the account is another user's mail seen
// through a share.
func (a *Account) IsShared() bool { return a.view != nil }

// ownerOnly refuses what only the owner of the mail may do.
func (a *Account) ownerOnly() error {
	if a.view != nil {
		return fmt.Errorf("%w: only the owner may do this", ErrForbidden)
	}
	return nil
}

// need checks, on a shared account, that the viewer may do what want
// names on the owner's mailbox, and returns the viewer's rights there;
// the owner has them all without a query. Without "l" the mailbox is
// ErrNotFound, so that nothing tells the viewer it exists.
func (a *Account) need(ctx context.Context, mailboxID int64, want Rights) (Rights, error) {
	if a.view == nil {
		return AllRights, nil
	}
	rs, err := a.rights(ctx, a.s.db, mailboxID)
	if err != nil {
		return 0, fmt.Errorf("read rights: %w", err)
	}
	have := rs[mailboxID]
	if !have.Has(RightLookup) {
		return 0, ErrNotFound
	}
	if missing := want &^ have; missing != 0 {
		return have, fmt.Errorf("%w: the %q right is needed (RFC 4314 4)", ErrForbidden, missing.String())
	}
	return have, nil
}

// rights returns the viewer's rights on the owner's mailbox id, or on all
// of them when id is 0: the union of the grants to the viewer and to the
// viewer's domain. A secure owner's grants give nothing: the viewer could
// not read the mail.
func (a *Account) rights(ctx context.Context, q sqlx.QueryerContext, id int64) (map[int64]Rights, error) {
	query := `SELECT g.mailbox_id, g.rights FROM mailbox_grants g JOIN mailboxes m ON m.id = g.mailbox_id
		JOIN users o ON o.id = m.user_id
		WHERE m.user_id = ? AND o.secure = 0
		AND (g.grantee_user_id = ? OR g.grantee_domain_id = (SELECT domain_id FROM users WHERE id = ?))`
	args := []any{a.userID, a.view.id, a.view.id}
	if id != 0 {
		query += " AND g.mailbox_id = ?"
		args = append(args, id)
	}
	var rows []struct {
		MailboxID int64  `db:"mailbox_id"`
		Rights    string `db:"rights"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, a.s.rebind(query), args...); err != nil {
		return nil, err
	}
	out := make(map[int64]Rights, len(rows))
	for _, r := range rows {
		v, err := ParseRights(r.Rights)
		if err != nil {
			return nil, fmt.Errorf("grant on mailbox %d: %w", r.MailboxID, err)
		}
		out[r.MailboxID] |= v
	}
	return out, nil
}

// needCopy checks the rights a copy or move within one owner's mail
// needs: want on the source, "i" on the target (RFC 4314 4).
func (a *Account) needCopy(ctx context.Context, src int64, want Rights, dst int64) error {
	if _, err := a.need(ctx, src, want); err != nil {
		return err
	}
	_, err := a.need(ctx, dst, RightInsert)
	return err
}

// MyRights returns the account's user's rights on a mailbox (RFC 4314
// 3.5): all of them on its own.
func (a *Account) MyRights(ctx context.Context, mailboxID int64) (Rights, error) {
	if a.view == nil {
		if _, err := a.Mailbox(ctx, mailboxID); err != nil {
			return 0, fmt.Errorf("rights on mailbox %d: %w", mailboxID, err)
		}
		return AllRights, nil
	}
	have, err := a.need(ctx, mailboxID, 0)
	if err != nil {
		return 0, fmt.Errorf("rights on mailbox %d: %w", mailboxID, err)
	}
	return have, nil
}

// viewMailboxes turns the owner's mailbox rows into what the viewer sees:
// only those it has "l" on; its own unseen count and subscription; no
// counts without "r" (RFC 4314 4: STATUS needs it). The owner's rows pass
// as they are.
func (a *Account) viewMailboxes(ctx context.Context, ms []Mailbox) ([]Mailbox, error) {
	if a.view == nil || len(ms) == 0 {
		return ms, nil
	}
	var only int64
	if len(ms) == 1 {
		only = ms[0].ID
	}
	rs, err := a.rights(ctx, a.s.db, only)
	if err != nil {
		return nil, fmt.Errorf("read rights: %w", err)
	}
	var (
		out []Mailbox
		ids []any
	)
	for _, m := range ms {
		if rs[m.ID].Has(RightLookup) {
			out = append(out, m)
			ids = append(ids, m.ID)
		}
	}
	seen, subs, err := a.s.viewerState(ctx, a.view.id, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		m := &out[i]
		m.Subscribed = subs[m.ID]
		if !rs[m.ID].Has(RightRead) {
			m.Messages, m.Unseen, m.Size = 0, 0, 0
			continue
		}
		m.Unseen = m.Messages - seen[m.ID]
	}
	return out, nil
}

// viewMailbox is viewMailboxes for one mailbox; one the viewer cannot see
// is ErrNotFound (unwrapped: the caller names the mailbox as it was asked
// for, and nothing more).
func (a *Account) viewMailbox(ctx context.Context, m Mailbox) (Mailbox, error) {
	ms, err := a.viewMailboxes(ctx, []Mailbox{m})
	if err != nil {
		return Mailbox{}, err
	}
	if len(ms) == 0 {
		return Mailbox{}, ErrNotFound
	}
	return ms[0], nil
}

// viewerState returns, for the given mailboxes of other users, how many
// of their messages the viewer has seen and which it subscribed to.
func (s *Store) viewerState(ctx context.Context, viewerID int64, ids []any) (map[int64]int64, map[int64]bool, error) {
	seen, subs := map[int64]int64{}, map[int64]bool{}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		q, args, err := sqlx.In("SELECT mailbox_id, COUNT(*) AS n FROM shared_seen WHERE user_id = ? AND mailbox_id IN (?) GROUP BY mailbox_id", viewerID, chunk)
		if err != nil {
			return nil, nil, err
		}
		var counts []struct {
			MailboxID int64 `db:"mailbox_id"`
			N         int64 `db:"n"`
		}
		if err := s.db.SelectContext(ctx, &counts, s.rebind(q), args...); err != nil {
			return nil, nil, fmt.Errorf("count seen messages: %w", err)
		}
		for _, c := range counts {
			seen[c.MailboxID] = c.N
		}
		q, args, err = sqlx.In("SELECT mailbox_id FROM shared_subscriptions WHERE user_id = ? AND mailbox_id IN (?)", viewerID, chunk)
		if err != nil {
			return nil, nil, err
		}
		var on []int64
		if err := s.db.SelectContext(ctx, &on, s.rebind(q), args...); err != nil {
			return nil, nil, fmt.Errorf("read subscriptions: %w", err)
		}
		for _, id := range on {
			subs[id] = true
		}
	}
	return seen, subs, nil
}

// subscribeShared records the viewer's own subscription to the owner's
// mailbox (RFC 9051 6.3.7), which needs "l"; unsubscribing needs no right
// (RFC 4314 4), so a subscription can be dropped after a grant is revoked.
func (a *Account) subscribeShared(ctx context.Context, id int64, on bool) error {
	if on {
		if _, err := a.need(ctx, id, 0); err != nil {
			return err
		}
	}
	return a.s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, a.s.rebind("DELETE FROM shared_subscriptions WHERE user_id = ? AND mailbox_id = ?"), a.view.id, id); err != nil {
			return err
		}
		if !on {
			return nil
		}
		_, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO shared_subscriptions (user_id, mailbox_id) VALUES (?, ?)"), a.view.id, id)
		return err
	})
}

// needParent checks, on a shared account, the "k" right on the nearest
// existing ancestor of name (RFC 4314 4, CREATE and RENAME). The top of
// the owner's hierarchy is the owner's alone, and an ancestor the viewer
// cannot see refuses the same way, so the answer tells nothing about it.
func (a *Account) needParent(ctx context.Context, name string) error {
	if a.view == nil {
		return nil
	}
	levels := strings.Split(name, Delimiter)
	for i := len(levels) - 1; i > 0; i-- {
		var id int64
		err := notFound(a.s.db.GetContext(ctx, &id, a.s.rebind("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?"), a.userID, strings.Join(levels[:i], Delimiter)))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		_, err = a.need(ctx, id, RightCreate)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		break
	}
	return fmt.Errorf("%w: the \"k\" right on a parent mailbox is needed (RFC 4314 4)", ErrForbidden)
}

// inheritGrants gives a new mailbox its parent's grants: RFC 4314 4 says
// a created mailbox SHOULD inherit the parent's ACL, which also lets the
// viewer who created it see it.
func (s *Store) inheritGrants(ctx context.Context, tx *sqlx.Tx, parentID, id int64) error {
	_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO mailbox_grants (mailbox_id, grantee_user_id, grantee_domain_id, rights, created_at)
		SELECT ?, grantee_user_id, grantee_domain_id, rights, ? FROM mailbox_grants WHERE mailbox_id = ?`), id, s.unix(), parentID)
	return err
}

// settable returns the client flags that rights let a user set or clear,
// and whether they let it change keywords (RFC 4314 4: "s" for \Seen, "t"
// for \Deleted, "w" for the rest).
func settable(have Rights) (Flags, bool) {
	var f Flags
	if have.Has(RightSeen) {
		f |= FlagSeen
	}
	if have.Has(RightDeleteMessages) {
		f |= FlagDeleted
	}
	if have.Has(RightWrite) {
		f |= ClientFlags &^ (FlagSeen | FlagDeleted)
	}
	return f, have.Has(RightWrite)
}

// storeAllowed refuses a flag change none of whose flags the user may
// change; one that names some it may change goes ahead with those (RFC
// 4314 4: a STORE SHOULD NOT fail then), see limitFlags. Replacing the
// flags names them all.
func storeAllowed(have Rights, op FlagOp, f Flags, kws []string) error {
	mask, kw := settable(have)
	f &= ClientFlags
	ok := mask != 0
	if op != FlagReplace {
		ok = f == 0 && len(kws) == 0 || f&mask != 0 || len(kws) > 0 && kw
	}
	if ok {
		return nil
	}
	return fmt.Errorf("%w: no right to change these flags (RFC 4314 4: \"s\" for \\Seen, \"t\" for \\Deleted, \"w\" for the rest)", ErrForbidden)
}

// limitFlags undoes the part of a flag change the user has no right to:
// those flags and keywords stay as they were.
func limitFlags(have Rights, was Flags, wasKW []string, nf Flags, nk []string) (Flags, []string) {
	if have == AllRights {
		return nf, nk
	}
	mask, kw := settable(have)
	nf = nf&mask | was&^mask
	if !kw {
		nk = wasKW
	}
	return nf, nk
}

// appendFlags returns the flags and keywords a message appended by the
// account's user keeps: on a shared mailbox, only those the user has the
// right to set (RFC 4314 4: the others are dropped, not refused), and
// without \Seen, which is the viewer's own (markSeen).
func (a *Account) appendFlags(have Rights, f Flags, kws []string) (Flags, []string) {
	if a.view == nil {
		return f, kws
	}
	mask, kw := settable(have)
	if !kw {
		kws = nil
	}
	return f &^ (ClientFlags &^ mask) &^ FlagSeen, kws
}

// seenState is the viewer's own \Seen on some messages of one of the
// owner's mailboxes, and the changes a write makes to it. It is nil on the
// owner's account, where \Seen is the message's flag.
type seenState struct {
	a        *Account
	mailbox  int64
	seen     map[int64]bool
	add, del []any
}

// seenOf reads the viewer's \Seen of rows, all of mailboxID.
func (a *Account) seenOf(ctx context.Context, q sqlx.QueryerContext, mailboxID int64, rows []messageRow) (*seenState, error) {
	if a.view == nil {
		return nil, nil
	}
	st := &seenState{a: a, mailbox: mailboxID, seen: map[int64]bool{}}
	if len(rows) == 0 {
		return st, nil
	}
	var ids []int64
	if len(rows) > 500 {
		// A long listing reads the mailbox's whole range at once.
		if err := sqlx.SelectContext(ctx, q, &ids, a.s.rebind("SELECT message_id FROM shared_seen WHERE user_id = ? AND mailbox_id = ?"), a.view.id, mailboxID); err != nil {
			return nil, fmt.Errorf("read seen state: %w", err)
		}
	} else {
		want := make([]any, len(rows))
		for i, r := range rows {
			want[i] = r.ID
		}
		query, args, err := sqlx.In("SELECT message_id FROM shared_seen WHERE user_id = ? AND mailbox_id = ? AND message_id IN (?)", a.view.id, mailboxID, want)
		if err != nil {
			return nil, err
		}
		if err := sqlx.SelectContext(ctx, q, &ids, a.s.rebind(query), args...); err != nil {
			return nil, fmt.Errorf("read seen state: %w", err)
		}
	}
	for _, id := range ids {
		st.seen[id] = true
	}
	return st, nil
}

// overlaySeen puts the viewer's own \Seen into rows of mailboxID.
func (a *Account) overlaySeen(ctx context.Context, q sqlx.QueryerContext, mailboxID int64, rows []messageRow) error {
	st, err := a.seenOf(ctx, q, mailboxID, rows)
	if err != nil || st == nil {
		return err
	}
	for i := range rows {
		rows[i].Flags = st.flags(rows[i])
	}
	return nil
}

// flags returns the message's flags as the viewer sees them.
func (v *seenState) flags(r messageRow) Flags {
	if v == nil {
		return r.Flags
	}
	f := r.Flags &^ FlagSeen
	if v.seen[r.ID] {
		f |= FlagSeen
	}
	return f
}

// keep takes the viewer's new flags for a message and returns what its row
// stores: the viewer's \Seen goes to the viewer's state (saved by save),
// the owner's stays. changed reports a change to the viewer's \Seen.
func (v *seenState) keep(r messageRow, nf Flags) (stored Flags, changed bool) {
	if v == nil {
		return nf, false
	}
	if now := nf.Has(FlagSeen); now != v.seen[r.ID] {
		v.seen[r.ID] = now
		if now {
			v.add = append(v.add, r.ID)
		} else {
			v.del = append(v.del, r.ID)
		}
		changed = true
	}
	return nf&^FlagSeen | r.Flags&FlagSeen, changed
}

// save writes the changes keep recorded.
func (v *seenState) save(ctx context.Context, tx *sqlx.Tx) error {
	if v == nil {
		return nil
	}
	s := v.a.s
	for start := 0; start < len(v.del); start += 500 {
		q, args, err := sqlx.In("DELETE FROM shared_seen WHERE user_id = ? AND mailbox_id = ? AND message_id IN (?)", v.a.view.id, v.mailbox, v.del[start:min(start+500, len(v.del))])
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(q), args...); err != nil {
			return fmt.Errorf("clear seen: %w", err)
		}
	}
	for start := 0; start < len(v.add); start += 500 {
		if err := s.insertSeen(ctx, tx, v.a.view.id, v.mailbox, v.add[start:min(start+500, len(v.add))]); err != nil {
			return err
		}
	}
	v.add, v.del = nil, nil
	return nil
}

func (s *Store) insertSeen(ctx context.Context, tx *sqlx.Tx, userID, mailboxID int64, ids []any) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(ids))
	for _, id := range ids {
		args = append(args, userID, mailboxID, id)
	}
	q := "INSERT INTO shared_seen (user_id, mailbox_id, message_id) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(ids)), ", ")
	if _, err := tx.ExecContext(ctx, s.rebind(q), args...); err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	return nil
}

// markSeen records that the viewer has seen a message it just put into a
// shared mailbox with \Seen.
func (a *Account) markSeen(ctx context.Context, tx *sqlx.Tx, mailboxID, messageID int64) error {
	return a.s.insertSeen(ctx, tx, a.view.id, mailboxID, []any{messageID})
}

// copyView says what a copy into mailbox dst keeps of each message: on the
// owner's account everything; on a shared one the flags and keywords the
// viewer may set there (RFC 4314 4), the owner's \Seen as it was, and the
// viewer's own \Seen only with "s".
type copyView struct {
	drop   Flags
	kw     bool
	viewer int64 // 0 on the owner's account
	seen   bool
}

func (a *Account) copyView(ctx context.Context, tx *sqlx.Tx, dst int64) (copyView, error) {
	if a.view == nil {
		return copyView{kw: true, seen: true}, nil
	}
	rs, err := a.rights(ctx, tx, dst)
	if err != nil {
		return copyView{}, err
	}
	mask, kw := settable(rs[dst])
	return copyView{drop: ClientFlags &^ mask &^ FlagSeen, kw: kw, viewer: a.view.id, seen: rs[dst].Has(RightSeen)}, nil
}

func (cv copyView) flags(r messageRow) (Flags, string) {
	if !cv.kw {
		return r.Flags &^ cv.drop, ""
	}
	return r.Flags &^ cv.drop, r.Keywords
}

// copySeen gives copies the seen state their originals had for the users
// the owner's mailboxes are shared with, so that a copy or move, by the
// owner or a viewer, keeps every reader's \Seen. pairs are (original id,
// copy id).
func (a *Account) copySeen(ctx context.Context, tx *sqlx.Tx, cv copyView, dst int64, pairs [][2]int64) error {
	copyOf := make(map[int64]int64, len(pairs))
	ids := make([]any, 0, len(pairs))
	for _, p := range pairs {
		copyOf[p[0]] = p[1]
		ids = append(ids, p[0])
	}
	byUser := map[int64][]any{}
	for start := 0; start < len(ids); start += 500 {
		q, args, err := sqlx.In("SELECT user_id, message_id FROM shared_seen WHERE message_id IN (?)", ids[start:min(start+500, len(ids))])
		if err != nil {
			return err
		}
		var rows []struct {
			UserID    int64 `db:"user_id"`
			MessageID int64 `db:"message_id"`
		}
		if err := tx.SelectContext(ctx, &rows, a.s.rebind(q), args...); err != nil {
			return fmt.Errorf("read seen state: %w", err)
		}
		for _, r := range rows {
			if r.UserID == cv.viewer && !cv.seen {
				continue
			}
			byUser[r.UserID] = append(byUser[r.UserID], copyOf[r.MessageID])
		}
	}
	for user, ids := range byUser {
		for start := 0; start < len(ids); start += 500 {
			if err := a.s.insertSeen(ctx, tx, user, dst, ids[start:min(start+500, len(ids))]); err != nil {
				return err
			}
		}
	}
	return nil
}

// CopyTo copies messages from one of a's mailboxes to mailbox dst of to,
// where a and to act for the same user but may be different users' mail:
// from a mailbox shared with the user into its own, from its own into a
// shared one, or between two shared ones. It needs "r" on the source and
// "i" on the target; each copy keeps the flags the user may set there (RFC
// 4314 4) and is charged to the target's owner. Between two owners each
// message is copied in its own transaction (re-encrypted when the target's
// owner is secure): a failure part-way removes the copies already made
// (RFC 9051 6.4.7), though a crash part-way can leave them.
func (a *Account) CopyTo(ctx context.Context, src int64, uids UIDSet, to *Account, dst int64) (CopyResult, error) {
	return a.transfer(ctx, src, uids, to, dst, false)
}

// MoveTo is CopyTo that then expunges the originals, for which it needs "t"
// and "e" on the source as well (a move is a copy, \Deleted and an
// expunge). Between two owners the originals go only after every copy is
// committed: a crash in between leaves both, never neither.
func (a *Account) MoveTo(ctx context.Context, src int64, uids UIDSet, to *Account, dst int64) (CopyResult, error) {
	return a.transfer(ctx, src, uids, to, dst, true)
}

func (a *Account) transfer(ctx context.Context, src int64, uids UIDSet, to *Account, dst int64, move bool) (CopyResult, error) {
	verb := "copy"
	if move {
		verb = "move"
	}
	if to == nil || to.s != a.s || to.ViewerID() != a.ViewerID() {
		return CopyResult{}, fmt.Errorf("%s from mailbox %d: %w: the accounts act for different users", verb, src, ErrForbidden)
	}
	if to.userID == a.userID {
		if move {
			return a.Move(ctx, src, uids, dst)
		}
		return a.Copy(ctx, src, uids, dst)
	}
	fail := func(err error) (CopyResult, error) {
		return CopyResult{}, fmt.Errorf("%s from mailbox %d to %d of user %d: %w", verb, src, dst, to.userID, err)
	}
	want := RightRead
	if move {
		want |= RightDeleteMessages | RightExpunge
	}
	if _, err := a.need(ctx, src, want); err != nil {
		return fail(err)
	}
	if _, err := to.need(ctx, dst, RightInsert); err != nil {
		return fail(err)
	}
	msgs, err := a.List(ctx, src, ListQuery{UIDs: uids})
	if err != nil {
		return fail(err)
	}
	var (
		res    CopyResult
		copies UIDSet
	)
	undo := func(cause error) (CopyResult, error) {
		if len(copies) > 0 {
			if _, err := to.remove(context.WithoutCancel(ctx), dst, copies, false); err != nil {
				a.s.log.Warn("remove copies after a failed copy", "user", to.userID, "mailbox", dst, "err", err)
			}
		}
		return fail(cause)
	}
	for _, m := range msgs {
		raw, err := a.readRaw(ctx, m.ID)
		if err != nil {
			return undo(err)
		}
		out, err := to.Append(ctx, dst, raw, AppendOptions{Flags: m.Flags & ClientFlags, SystemFlags: m.Flags & verdicts,
			Keywords: m.Keywords, InternalDate: m.InternalDate})
		if err != nil {
			return undo(err)
		}
		res.UIDValidity = out.UIDValidity
		res.Pairs = append(res.Pairs, UIDPair{Src: m.UID, Dst: out.UID})
		copies = append(copies, UIDRange{out.UID, out.UID})
	}
	if res.UIDValidity == 0 {
		mb, err := to.Mailbox(ctx, dst)
		if err != nil {
			return fail(err)
		}
		res.UIDValidity = mb.UIDValidity
	}
	if move && len(res.Pairs) > 0 {
		originals := make(UIDSet, len(res.Pairs))
		for i, p := range res.Pairs {
			originals[i] = UIDRange{p.Src, p.Src}
		}
		if _, err := a.remove(ctx, src, originals, false); err != nil {
			return fail(fmt.Errorf("the copies are made, the originals stay: %w", err))
		}
	}
	return res, nil
}

// verdicts are the server's flags a copy to another user keeps: what the
// filters found. Encryption is the target's business.
const verdicts = FlagInfected | FlagSpoofed | FlagPhishing | FlagBlackholed

// readRaw reads a whole message; Append needs it in memory anyway.
func (a *Account) readRaw(ctx context.Context, id int64) ([]byte, error) {
	rc, err := a.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read message %d: %w", id, err)
	}
	return b, nil
}

// Grant is one entry of a mailbox's access control list.
type Grant struct {
	MailboxID   int64  `db:"mailbox_id" json:"mailboxID"`
	MailboxName string `db:"mailbox_name" json:"mailboxName"`
	OwnerID     int64  `db:"owner_id" json:"ownerID"`
	// Grantee is the user's address, or for a domain-wide share the
	// domain's name.
	Grantee string `db:"grantee" json:"grantee"`
	Domain  bool   `db:"is_domain" json:"domain"`
	Rights  Rights `db:"-" json:"rights"`
	// RightsText is the stored form of Rights.
	RightsText string `db:"rights" json:"-"`
}

// Grant sets the rights of grantee on one of the account's mailboxes;
// empty rights revoke them. grantee is a user (its address or a login
// name; the grant is recorded for the user, under its primary address) or
// the name of the owner's own domain, for every user of it. On a shared
// account it needs "a" (RFC 4314 3.1). A secure owner's mailboxes cannot
// be shared: their messages are encrypted to the owner's key, which no one
// else holds.
func (a *Account) Grant(ctx context.Context, mailboxID int64, grantee string, rights Rights) error {
	if _, err := a.need(ctx, mailboxID, RightAdmin); err != nil {
		return fmt.Errorf("grant on mailbox %d: %w", mailboxID, err)
	}
	if rights&^AllRights != 0 {
		return fmt.Errorf("grant on mailbox %d: %w: unknown rights %#x", mailboxID, ErrInvalid, uint16(rights))
	}
	owner, err := a.s.UserByID(ctx, a.userID)
	if err != nil {
		return fmt.Errorf("grant on mailbox %d: %w", mailboxID, err)
	}
	if owner.Secure {
		return fmt.Errorf("grant on mailbox %d: %w: %s keeps its mail encrypted to its own key, which no other user could open", mailboxID, ErrForbidden, owner.Address)
	}
	userID, domainID, err := a.s.grantee(ctx, owner, grantee)
	if err != nil {
		return fmt.Errorf("grant on mailbox %d: %w", mailboxID, err)
	}
	err = a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		if _, err := a.lockMailbox(ctx, tx, mailboxID); err != nil {
			return err
		}
		col, id := "grantee_user_id", userID
		if domainID != 0 {
			col, id = "grantee_domain_id", domainID
		}
		if _, err := tx.ExecContext(ctx, a.s.rebind("DELETE FROM mailbox_grants WHERE mailbox_id = ? AND "+col+" = ?"), mailboxID, id); err != nil {
			return err
		}
		if rights != 0 {
			if _, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO mailbox_grants (mailbox_id, "+col+", rights, created_at) VALUES (?, ?, ?, ?)"),
				mailboxID, id, rights.String(), a.s.unix()); err != nil {
				return err
			}
		}
		c.Add(mailboxID, "acl", 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("grant on mailbox %d: %w", mailboxID, err)
	}
	a.s.audit(ctx, "", "mailbox.grant", owner.Address+" "+strconv.FormatInt(mailboxID, 10), grantee+" "+rights.String())
	return nil
}

// Grantee says whom a grant by ownerID to name would go to, as Grant
// resolves it: a user, by address, or the owner's domain (domain true,
// address ""). A login name or an address that is another user's login
// name resolves to that user, whose address may be in another domain
// than name says: a caller limited to some domains checks this address.
func (s *Store) Grantee(ctx context.Context, ownerID int64, name string) (address string, domain bool, err error) {
	owner, err := s.UserByID(ctx, ownerID)
	if err != nil {
		return "", false, fmt.Errorf("grantee: %w", err)
	}
	userID, domainID, err := s.grantee(ctx, owner, name)
	if err != nil {
		return "", false, err
	}
	if domainID != 0 {
		return "", true, nil
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return "", false, fmt.Errorf("grantee: %w", err)
	}
	return u.Address, false, nil
}

// grantee finds who a grant names: the owner's domain by its name (or an
// alias of it), or a user by address (in its domain's canonical form) or
// login name. Address aliases are not followed: a pattern or catch-all
// would hand the grant to whoever receives a mistyped address.
func (s *Store) grantee(ctx context.Context, owner User, name string) (userID, domainID int64, err error) {
	n := strings.ToLower(strings.TrimSpace(name))
	var u User
	err = ErrNotFound
	if local, domain, ok := strings.Cut(n, "@"); ok {
		addr, aerr := NormalizeAddress(n)
		if aerr != nil {
			return 0, 0, fmt.Errorf("grantee: %w", aerr)
		}
		if d, derr := s.DomainByName(ctx, domain); derr == nil {
			addr = local + "@" + d.Name
		}
		u, err = s.UserByAddress(ctx, addr)
	} else if d, derr := s.DomainByName(ctx, n); derr == nil {
		if d.ID != owner.DomainID {
			return 0, 0, fmt.Errorf("grantee %q: %w: a mailbox is shared domain-wide only within its owner's domain", name, ErrForbidden)
		}
		return 0, d.ID, nil
	}
	if errors.Is(err, ErrNotFound) {
		var ids []int64
		if err := s.db.SelectContext(ctx, &ids, s.rebind("SELECT user_id FROM identifiers WHERE name = ?"), n); err != nil {
			return 0, 0, fmt.Errorf("grantee %q: %w", name, err)
		}
		if len(ids) == 1 {
			u, err = s.UserByID(ctx, ids[0])
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("grantee %q: %w", name, err)
	}
	if u.ID == owner.ID {
		return 0, 0, fmt.Errorf("grantee %q: %w: the owner has every right on its own mailboxes", name, ErrInvalid)
	}
	return u.ID, 0, nil
}

const grantSelect = `SELECT g.mailbox_id, m.name AS mailbox_name, m.user_id AS owner_id,
	COALESCE(u.address, d.name, '') AS grantee, CASE WHEN g.grantee_domain_id IS NULL THEN 0 ELSE 1 END AS is_domain, g.rights
	FROM mailbox_grants g JOIN mailboxes m ON m.id = g.mailbox_id
	LEFT JOIN users u ON u.id = g.grantee_user_id LEFT JOIN domains d ON d.id = g.grantee_domain_id `

// Grants returns the access control list of one of the account's
// mailboxes (RFC 4314 3.3; the owner's own implicit rights are not in it).
// On a shared account it needs "a".
func (a *Account) Grants(ctx context.Context, mailboxID int64) ([]Grant, error) {
	if _, err := a.need(ctx, mailboxID, RightAdmin); err != nil {
		return nil, fmt.Errorf("grants of mailbox %d: %w", mailboxID, err)
	}
	if _, err := a.Mailbox(ctx, mailboxID); err != nil {
		return nil, fmt.Errorf("grants of mailbox %d: %w", mailboxID, err)
	}
	gs, err := a.s.selectGrants(ctx, "WHERE g.mailbox_id = ? AND m.user_id = ?", mailboxID, a.userID)
	if err != nil {
		return nil, fmt.Errorf("grants of mailbox %d: %w", mailboxID, err)
	}
	return gs, nil
}

// GrantsFor returns every grant on the mailboxes of a user, for the admin
// API.
func (s *Store) GrantsFor(ctx context.Context, ownerID int64) ([]Grant, error) {
	gs, err := s.selectGrants(ctx, "WHERE m.user_id = ?", ownerID)
	if err != nil {
		return nil, fmt.Errorf("grants of user %d: %w", ownerID, err)
	}
	return gs, nil
}

func (s *Store) selectGrants(ctx context.Context, where string, args ...any) ([]Grant, error) {
	var gs []Grant
	if err := s.db.SelectContext(ctx, &gs, s.rebind(grantSelect+where+" ORDER BY m.name, is_domain, grantee"), args...); err != nil {
		return nil, err
	}
	for i := range gs {
		r, err := ParseRights(gs[i].RightsText)
		if err != nil {
			return nil, err
		}
		gs[i].Rights = r
	}
	return gs, nil
}

// SharedMailbox is another user's mailbox shared with the account's user.
// Its counts are the viewer's (Unseen by its own \Seen), and zero without
// the "r" right; Subscribed is the viewer's own subscription.
type SharedMailbox struct {
	Mailbox
	OwnerID      int64  `json:"ownerID"`
	OwnerAddress string `json:"ownerAddress"`
	// Rights are the union of the grants to the user and to its domain.
	Rights Rights `json:"rights"`
	// DomainShare is set when the mailbox reaches the user only through a
	// share with its whole domain; a direct grant puts it under Other Users.
	DomainShare bool `json:"domainShare"`
}

// SharedMailboxes lists the mailboxes other users shared with the
// account's user, directly or with its whole domain, that it may look up
// ("l"): those shared with it directly first, then those shared with its
// domain, each by owner and name. Open one with Shared(OwnerID).
func (a *Account) SharedMailboxes(ctx context.Context) ([]SharedMailbox, error) {
	me := a.ViewerID()
	var grants []struct {
		MailboxID    int64  `db:"mailbox_id"`
		Rights       string `db:"rights"`
		Domain       bool   `db:"is_domain"`
		OwnerID      int64  `db:"owner_id"`
		OwnerAddress string `db:"owner_address"`
	}
	err := a.s.db.SelectContext(ctx, &grants, a.s.rebind(`SELECT g.mailbox_id, g.rights,
		CASE WHEN g.grantee_domain_id IS NULL THEN 0 ELSE 1 END AS is_domain, m.user_id AS owner_id, o.address AS owner_address
		FROM mailbox_grants g JOIN mailboxes m ON m.id = g.mailbox_id JOIN users o ON o.id = m.user_id
		WHERE (g.grantee_user_id = ? OR g.grantee_domain_id = (SELECT domain_id FROM users WHERE id = ?))
		AND m.user_id <> ? AND o.secure = 0`), me, me, me)
	if err != nil {
		return nil, fmt.Errorf("list shared mailboxes: %w", err)
	}
	byID := map[int64]*SharedMailbox{}
	var ids []any
	for _, g := range grants {
		r, err := ParseRights(g.Rights)
		if err != nil {
			return nil, fmt.Errorf("list shared mailboxes: %w", err)
		}
		sm := byID[g.MailboxID]
		if sm == nil {
			sm = &SharedMailbox{OwnerID: g.OwnerID, OwnerAddress: g.OwnerAddress, DomainShare: true}
			byID[g.MailboxID] = sm
			ids = append(ids, g.MailboxID)
		}
		sm.Rights |= r
		sm.DomainShare = sm.DomainShare && g.Domain
	}
	var out []SharedMailbox
	for start := 0; start < len(ids); start += 500 {
		q, args, err := sqlx.In("SELECT "+mailboxColumns+" FROM mailboxes WHERE id IN (?)", ids[start:min(start+500, len(ids))])
		if err != nil {
			return nil, err
		}
		var ms []Mailbox
		if err := a.s.db.SelectContext(ctx, &ms, a.s.rebind(q), args...); err != nil {
			return nil, fmt.Errorf("list shared mailboxes: %w", err)
		}
		for _, m := range ms {
			if sm := byID[m.ID]; sm.Rights.Has(RightLookup) {
				sm.Mailbox = m
				out = append(out, *sm)
			}
		}
	}
	visible := make([]any, len(out))
	for i, m := range out {
		visible[i] = m.ID
	}
	seen, subs, err := a.s.viewerState(ctx, me, visible)
	if err != nil {
		return nil, fmt.Errorf("list shared mailboxes: %w", err)
	}
	for i := range out {
		m := &out[i]
		m.Subscribed = subs[m.ID]
		if !m.Rights.Has(RightRead) {
			m.Messages, m.Unseen, m.Size = 0, 0, 0
			continue
		}
		m.Unseen = m.Messages - seen[m.ID]
	}
	sort.Slice(out, func(i, j int) bool {
		// The order of the names under the IMAP namespaces: "Other
		// Users" before "Shared Folders", then owner and name.
		a, b := out[i], out[j]
		if a.DomainShare != b.DomainShare {
			return b.DomainShare
		}
		return a.OwnerAddress+Delimiter+a.Name < b.OwnerAddress+Delimiter+b.Name
	})
	return out, nil
}
