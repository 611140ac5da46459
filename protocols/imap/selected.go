package imap

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"basalt/store"
)

// selected is the selected mailbox as this client knows it. Message
// sequence numbers are positions in uids, which changes only when the
// client is told (EXISTS, EXPUNGE), never behind its back: a message
// another session expunged stays in uids, marked gone, until an EXPUNGE
// may be sent for it, which is not during FETCH, STORE or SEARCH (RFC
// 9051 7.5.1; the library's UpdateWriter refuses it there too). New
// messages are added only when EXISTS announces them, so a command never
// sees a message the client has not been told about.
//
// What changed is found from the store's modseqs: every change to a
// mailbox raises its highest modseq, changed messages carry theirs, and
// expunged UIDs are kept with the modseq of their removal. So a sync
// asks for what changed after the modseq it last saw, however many
// events it missed.
type selected struct {
	ref      mailboxRef
	readOnly bool // EXAMINE
	// rights are the user's on the mailbox (RFC 4314), re-read at each
	// sync of another user's mailbox, since its owner may change them.
	rights store.Rights
	uids   []uint32            // ascending; seq n is uids[n-1]
	gone   map[uint32]struct{} // expunged elsewhere, EXPUNGE not sent yet
	modseq uint64              // the mailbox's highest modseq last synced
	// own holds the modseqs of this session's flag changes, which it has
	// answered already and must not report again as unilateral FETCHes.
	own     []uint64
	deleted bool // the mailbox was deleted by this session
	// keywords are the keywords the client has been told of in FLAGS
	// (RFC 3501 7.2.6), sorted; a FETCH shows no other.
	keywords []string
	// recent are the UID spans whose messages are recent to this session
	// (RFC 3501 2.3.2): claimed in the store by SELECT and by the polls
	// that find new mail, or under EXAMINE, which claims nothing (6.3.2),
	// those no session had claimed when it found them.
	recent []uidSpan
	// rev1 shows \Recent, which IMAP4rev2 removed (RFC 9051 appendix E).
	rev1 bool
}

// uidSpan is the UIDs from lo up to, not including, hi.
type uidSpan struct{ lo, hi uint32 }

// isRecent reports whether the message with uid is recent to the session.
// The spans are ascending and apart (each claim starts where the store's
// unclaimed UIDs did, above every earlier one), so a search finds it.
func (sel *selected) isRecent(uid uint32) bool {
	i, _ := slices.BinarySearchFunc(sel.recent, uid, func(sp uidSpan, u uint32) int {
		if sp.hi <= u {
			return -1
		}
		return 1
	})
	return i < len(sel.recent) && uid >= sel.recent[i].lo
}

// numRecent counts the messages in the view that are recent to the
// session: the RECENT response (RFC 3501 7.3.2).
func (sel *selected) numRecent() uint32 {
	var n int
	for _, sp := range sel.recent {
		lo, _ := slices.BinarySearch(sel.uids, sp.lo)
		hi, _ := slices.BinarySearch(sel.uids, sp.hi)
		n += hi - lo
	}
	return uint32(n)
}

// flags are a message's flags as this session shows them: with \Recent
// when it is recent to the session, and without keywords the client has
// not been told of yet, which the poll after the command announces in
// FLAGS and then shows in a FETCH of its own (RFC 3501 7.2.6).
func (sel *selected) flags(uid uint32, f store.Flags, keywords []string) []imap.Flag {
	known := keywords
	for i, k := range keywords {
		if !sel.knows(k) {
			known = slices.Clone(keywords[:i])
			for _, k := range keywords[i+1:] {
				if sel.knows(k) {
					known = append(known, k)
				}
			}
			break
		}
	}
	out := imapFlags(f, known)
	if sel.rev1 && sel.isRecent(uid) {
		out = append(out, flagRecent)
	}
	return out
}

// knows reports whether the client has been told of keyword k.
func (sel *selected) knows(k string) bool {
	if _, ok := slices.BinarySearch(sel.keywords, k); ok {
		return true
	}
	return slices.ContainsFunc(sel.keywords, func(l string) bool { return strings.EqualFold(l, k) })
}

// newKeywords reports whether ups carry a keyword the client has not been
// told of.
func (sel *selected) newKeywords(ups []store.FlagUpdate) bool {
	for _, u := range ups {
		for _, k := range u.Keywords {
			if !sel.knows(k) {
				return true
			}
		}
	}
	return false
}

// disown forgets that ups are this session's changes, so that the next
// poll reports them.
func (sel *selected) disown(ups []store.FlagUpdate) {
	sel.own = slices.DeleteFunc(sel.own, func(ms uint64) bool {
		return slices.ContainsFunc(ups, func(u store.FlagUpdate) bool { return u.ModSeq == ms })
	})
}

// mailboxFlagsWith is the FLAGS response: the system flags and keywords.
func mailboxFlagsWith(keywords []string) []imap.Flag {
	out := slices.Clone(mailboxFlags)
	for _, k := range keywords {
		out = append(out, imap.Flag(k))
	}
	return out
}

// recentCount is STATUS RECENT (RFC 3501 6.3.10): the messages no session
// has claimed yet, and those recent to this one when it has the mailbox
// selected.
func (s *session) recentCount(ref mailboxRef) (uint32, error) {
	n, err := ref.acct.RecentCount(s.ctx(), ref.mb.ID)
	if err != nil {
		return 0, s.storeErr("status", err)
	}
	if s.sel != nil && s.sel.ref.sameMailbox(ref) {
		n += s.sel.numRecent()
	}
	return n, nil
}

// claimRecent makes the messages from UID from up to upto recent to the
// session, unless another session has claimed them: in the store, so
// that no two sessions on any node both see a message as recent (RFC
// 3501 2.3.2). EXAMINE claims nothing (RFC 3501 6.3.2: it "MUST NOT cause
// messages to lose the \Recent flag") and sees as recent what no session
// has claimed, unclaimed being the store's recentUID up.
func (s *session) claimRecent(sel *selected, recentUID, upto uint32) error {
	if upto <= recentUID {
		return nil
	}
	from := recentUID
	if !sel.readOnly {
		var err error
		if from, err = sel.ref.acct.ClaimRecent(s.ctx(), sel.ref.mb.ID, upto); err != nil {
			return s.storeErr("claim recent messages", err)
		}
	}
	sel.addRecent(from, upto)
	return nil
}

// addRecent records that the messages from UID from up to upto are recent
// to the session.
func (sel *selected) addRecent(from, upto uint32) {
	switch n := len(sel.recent); {
	case from >= upto:
	case n > 0 && sel.recent[n-1].hi >= from:
		// Claimed on from the last claim: one span.
		sel.recent[n-1].hi = max(sel.recent[n-1].hi, upto)
	default:
		sel.recent = append(sel.recent, uidSpan{from, upto})
	}
}

// pruneRecent forgets the spans none of whose messages is left in the
// view, below one that is. Claims interleaved with other sessions' make a
// span each: without this a long session's spans, and what numRecent
// costs at every poll, would grow with all the mail that ever passed
// through the mailbox. A span above the view is kept: the session's own
// APPEND claims its message before a poll brings it into the view.
func (sel *selected) pruneRecent() {
	sel.recent = slices.DeleteFunc(sel.recent, func(sp uidSpan) bool {
		i, _ := slices.BinarySearch(sel.uids, sp.lo)
		return i < len(sel.uids) && sel.uids[i] >= sp.hi
	})
}

var mailboxFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft, flagJunk}

// permanentFlags are the flags the user may change for good in a mailbox
// it holds rights on (RFC 4314 4: "s" for \Seen, "t" for \Deleted, "w"
// for the rest and for new keywords, \*).
func permanentFlags(r store.Rights) []imap.Flag {
	out := []imap.Flag{}
	if r.Has(store.RightWrite) {
		out = append(out, imap.FlagAnswered, imap.FlagFlagged)
	}
	if r.Has(store.RightDeleteMessages) {
		out = append(out, imap.FlagDeleted)
	}
	if r.Has(store.RightSeen) {
		out = append(out, imap.FlagSeen)
	}
	if r.Has(store.RightWrite) {
		out = append(out, imap.FlagDraft, flagJunk, imap.FlagWildcard)
	}
	return out
}

// Select is SELECT and EXAMINE (RFC 9051 6.3.2, 6.3.3), which need the
// "r" right on another user's mailbox (RFC 4314 4).
//
// RFC 4314 5.2 asks for READ-ONLY in the tagged OK of a SELECT where the
// user may neither insert, expunge nor change a shared flag; the library
// writes that code from the command's name alone (imapserver/select.go),
// so such a SELECT says READ-WRITE, while its PERMANENTFLAGS lists only
// what the user may change and every change is refused NOPERM.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.settle()
	s.deselect()
	ref, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if ref.shared() && !ref.rights.Has(store.RightRead) {
		return nil, errNoPerm
	}
	var ownerWatch *store.Watch
	if ref.shared() {
		// Watched before the UIDs are read; the mailbox row was read
		// before that, which the first poll makes up for: it reads the
		// store whatever the bus said.
		if ownerWatch, err = s.srv.store.Watch(s.ctx(), ref.acct.UserID()); err != nil {
			return nil, s.storeErr("select: watch the owner", err)
		}
	}
	sel, data, err := s.open(ref, options != nil && options.ReadOnly)
	if err != nil {
		if ownerWatch != nil {
			ownerWatch.Close()
		}
		return nil, err
	}
	s.sel, s.ownerWatch = sel, ownerWatch
	return data, nil
}

// open reads what SELECT answers and the view of the mailbox it starts.
func (s *session) open(ref mailboxRef, readOnly bool) (*selected, *imap.SelectData, error) {
	// The mailbox row is read before the UIDs, so a change committed in
	// between is seen again at the first sync rather than missed.
	uids, err := ref.acct.UIDs(s.ctx(), ref.mb.ID)
	if err != nil {
		return nil, nil, s.storeErr("select", err)
	}
	rev2 := s.conn.EnabledCaps().Has(imap.CapIMAP4rev2)
	sel := &selected{ref: ref, readOnly: readOnly, rights: ref.rights, uids: uids, modseq: ref.mb.HighestModSeq, rev1: !rev2}
	// Read after the mailbox row, so that a keyword brought in since is
	// listed at the latest by the first sync's FLAGS.
	if sel.keywords, err = ref.acct.Keywords(s.ctx(), ref.mb.ID); err != nil {
		return nil, nil, s.storeErr("select", err)
	}
	if n := len(uids); n > 0 {
		if err := s.claimRecent(sel, ref.mb.RecentUID, uids[n-1]+1); err != nil {
			return nil, nil, err
		}
	}
	data := &imap.SelectData{
		Flags:          mailboxFlagsWith(sel.keywords),
		PermanentFlags: permanentFlags(ref.rights),
		NumMessages:    uint32(len(uids)),
		NumRecent:      sel.numRecent(),
		UIDNext:        imap.UID(ref.mb.UIDNext),
		UIDValidity:    ref.mb.UIDValidity,
	}
	if sel.readOnly {
		data.PermanentFlags = []imap.Flag{}
	}
	if rev2 {
		// RFC 9051 6.3.2: the mailbox's LIST response comes with SELECT.
		data.List = &imap.ListData{Delim: delim, Mailbox: ref.name}
		if ref.mb.SpecialUse != "" {
			data.List.Attrs = []imap.MailboxAttr{imap.MailboxAttr(ref.mb.SpecialUse)}
		}
	} else if ref.mb.Unseen > 0 {
		// IMAP4rev1's UNSEEN response code (RFC 3501 6.3.1).
		first, err := ref.acct.FirstUnseen(s.ctx(), ref.mb.ID)
		if err != nil {
			return nil, nil, s.storeErr("select", err)
		}
		if i, ok := slices.BinarySearch(uids, first); ok && first != 0 {
			data.FirstUnseenSeqNum = uint32(i + 1)
		}
	}
	s.searchRes = nil // RFC 5182 2.1: $ is empty in a newly selected mailbox
	return sel, data, nil
}

// Unselect is UNSELECT (RFC 3691) and the end of CLOSE.
func (s *session) Unselect() error {
	s.settle()
	s.deselect()
	return nil
}

// Poll reports what other sessions changed, after every command (RFC 9051
// 7: unilateral responses); expunges only where allowExpunge says.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s.settle()
	// A client that sent its next command already hears of changes after
	// that one: the server reports them when it looks (RFC 9051 5.2, 7),
	// and looking once after a pipelined run, not after each command in
	// it, is most of what a busy client's commands cost. A long run is
	// still looked at every maxDeferredPolls commands, and a command that
	// added messages to the selected mailbox at once.
	if !s.pollNow && s.deferredPolls < maxDeferredPolls && s.g.pipelined() {
		s.deferredPolls++
		return nil
	}
	s.deferredPolls, s.pollNow = 0, false
	return s.sync(w, allowExpunge)
}

// maxDeferredPolls bounds the commands of a pipelined run after which
// the store is not looked at for changes.
const maxDeferredPolls = 16

// Idle is IDLE (RFC 2177, RFC 9051 6.3.13): changes are reported as the
// store's change bus announces them, and the store is read again after
// every IdleRecheck of silence, so that a change whose announcement was
// lost is still reported.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if err := s.sync(w, true); err != nil {
		return err
	}
	recheck := time.NewTimer(s.srv.cfg.IdleRecheck)
	defer recheck.Stop()
	for {
		var wake, ownerWake <-chan struct{}
		if s.watch != nil {
			wake = s.watch.C()
		}
		if s.ownerWatch != nil {
			ownerWake = s.ownerWatch.C()
		}
		select {
		case <-stop:
			return nil
		case <-wake:
		case <-ownerWake:
		case <-recheck.C:
		}
		if err := s.sync(w, true); err != nil {
			return err
		}
		recheck.Reset(s.srv.cfg.IdleRecheck)
	}
}

// sync brings the client's view of the selected mailbox up to date with
// the store and writes what changed: FLAGS, EXISTS, RECENT and FETCH
// FLAGS, numbered as the client still numbers the messages, then EXPUNGE
// where allowed. The store is read every time, not only when the change
// bus announced something: an announcement can be lost (a failed
// publish), and what the store says is the truth. When nothing changed
// that is one read of the mailbox's row.
func (s *session) sync(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.watch == nil {
		return nil
	}
	// The events only wake IDLE; what changed is read from the store.
	s.watch.Take()
	if s.ownerWatch != nil {
		s.ownerWatch.Take()
	}
	sel := s.sel
	if sel == nil {
		return nil
	}
	if sel.deleted {
		// This session deleted it: its commands now fail NONEXISTENT,
		// which the client expects; only another session's DELETE
		// (found by refresh) ends the connection.
		return nil
	}
	if err := s.refresh(w); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeUnavailable {
			// The library ends the connection when a poll fails, leaving
			// the command (which succeeded) unanswered. A store away for
			// now must not cost the client its session: the view is not
			// moved on, so the next poll reads what changed.
			return nil
		}
		return err
	}
	if s.sel == nil {
		return nil // gone: refresh said BYE
	}
	if allowExpunge && len(sel.gone) > 0 {
		return sel.announceGone(w.WriteExpunge)
	}
	return nil
}

// announceGone removes the messages other sessions expunged from the view,
// writing EXPUNGE for each, highest first, so that each number is still
// the one the client has for the message when it reads it.
func (sel *selected) announceGone(write func(seq uint32) error) error {
	for i := len(sel.uids) - 1; i >= 0; i-- {
		if _, ok := sel.gone[sel.uids[i]]; ok {
			if err := write(uint32(i + 1)); err != nil {
				return err
			}
			sel.uids = slices.Delete(sel.uids, i, i+1)
		}
	}
	sel.gone = nil
	sel.pruneRecent()
	return nil
}

// refresh reads what changed in the selected mailbox since the last sync
// and writes EXISTS and FETCH FLAGS for it; expunged messages are marked
// gone for sync to announce.
func (s *session) refresh(w *imapserver.UpdateWriter) error {
	sel := s.sel
	ch, err := s.changes()
	if errors.Is(err, store.ErrNotFound) {
		// Deleted, or no longer shared with the user: the same to it.
		return s.mailboxGone()
	}
	if err != nil {
		return s.storeErr("sync", err)
	}
	if ch.HighestModSeq <= sel.modseq {
		return nil
	}
	vanished, kws, rows := ch.Vanished, ch.Keywords, ch.Changed
	for _, uid := range vanished {
		if _, ok := slices.BinarySearch(sel.uids, uid); ok {
			if sel.gone == nil {
				sel.gone = map[uint32]struct{}{}
			}
			sel.gone[uid] = struct{}{}
		}
	}
	if len(kws) != len(sel.keywords) {
		// New keywords are announced before any FETCH shows them (RFC
		// 3501 7.2.6); the list only grows.
		sel.keywords = kws
		if err := w.WriteMailboxFlags(mailboxFlagsWith(kws)); err != nil {
			return err
		}
	}
	var flagged []store.Message
	var top uint32 // the highest UID new to the view
	// Counted before the new messages join the view: this session's own
	// APPEND claimed its message before the poll saw it.
	before := sel.numRecent()
	for _, m := range rows {
		i, known := slices.BinarySearch(sel.uids, m.UID)
		switch {
		case !known:
			sel.uids = slices.Insert(sel.uids, i, m.UID)
			top = max(top, m.UID)
		case !slices.Contains(sel.own, m.ModSeq):
			flagged = append(flagged, m)
		}
	}
	if top > 0 {
		// Mail that arrives while the mailbox is selected is recent to
		// this session, unless another one selected it first.
		if err := s.claimRecent(sel, ch.RecentUID, top+1); err != nil {
			return err
		}
		if err := w.WriteNumMessages(uint32(len(sel.uids))); err != nil {
			return err
		}
		if n := sel.numRecent(); n != before {
			if err := w.WriteNumRecent(n); err != nil {
				return err
			}
		}
	}
	for _, m := range flagged {
		if _, ok := sel.gone[m.UID]; ok {
			continue
		}
		i, _ := slices.BinarySearch(sel.uids, m.UID)
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(m.UID), sel.flags(m.UID, m.Flags, m.Keywords)); err != nil {
			return err
		}
	}
	sel.modseq = ch.HighestModSeq
	sel.own = slices.DeleteFunc(sel.own, func(ms uint64) bool { return ms <= ch.HighestModSeq })
	return nil
}

// changes reads what changed in the selected mailbox since the last sync:
// for the user's own mailbox in one small read when nothing did
// (store.PollChanges); another user's mailbox needs its rights read again
// too, since its owner may have changed them (an "acl" event), and the
// user's own \Seen.
func (s *session) changes() (store.MailboxChanges, error) {
	sel := s.sel
	acct, id := sel.ref.acct, sel.ref.mb.ID
	if !sel.ref.shared() {
		return acct.PollChanges(s.ctx(), id, sel.modseq)
	}
	mb, err := acct.Mailbox(s.ctx(), id)
	if err != nil {
		return store.MailboxChanges{}, err
	}
	if sel.rights, err = acct.MyRights(s.ctx(), id); err != nil {
		return store.MailboxChanges{}, err
	}
	if !sel.rights.Has(store.RightRead) {
		return store.MailboxChanges{}, store.ErrNotFound
	}
	ch := store.MailboxChanges{HighestModSeq: mb.HighestModSeq, RecentUID: mb.RecentUID}
	if mb.HighestModSeq <= sel.modseq {
		return ch, nil
	}
	// Each read costs what changed since sel.modseq: the tombstones and
	// messages are found through their (mailbox, modseq) indexes.
	if ch.Vanished, err = acct.Vanished(s.ctx(), id, sel.modseq); err != nil {
		return store.MailboxChanges{}, err
	}
	if ch.Keywords, err = acct.Keywords(s.ctx(), id); err != nil {
		return store.MailboxChanges{}, err
	}
	ch.Changed, err = acct.List(s.ctx(), id, store.ListQuery{ChangedSince: sel.modseq})
	return ch, err
}

// mailboxGone ends a session whose selected mailbox was deleted: the
// client's message numbers no longer mean anything.
func (s *session) mailboxGone() error {
	s.deselect()
	s.conn.Bye("The selected mailbox was deleted, or is no longer shared with you")
	return nil
}

// selection returns the selected mailbox for a command that works on it.
func (s *session) selection() (*selected, error) {
	switch {
	case s.sel == nil:
		return nil, errNoSelection
	case s.sel.deleted:
		return nil, errNoMailbox
	}
	return s.sel, nil
}

// indexes resolves a sequence set or UID set to positions in the
// selected mailbox's view, ascending and without repeats. A sequence
// number the client cannot know is an error (BAD); UIDs that are not in
// the mailbox are left out, as RFC 9051 6.4.8 asks.
func (s *session) indexes(numSet imap.NumSet) ([]int, error) {
	sel := s.sel
	if sel == nil {
		return nil, errNoSelection
	}
	n := uint32(len(sel.uids))
	var out []int
	if imap.IsSearchRes(numSet) {
		// RFC 5182: $ is the saved result, kept as UIDs.
		for _, uid := range s.searchRes {
			if i, ok := slices.BinarySearch(sel.uids, uid); ok {
				out = append(out, i)
			}
		}
		return out, nil
	}
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			start, stop := r.Start, r.Stop
			if n == 0 && (start == 0 || stop == 0) {
				continue // "*" in an empty mailbox names nothing
			}
			if start == 0 {
				start = n
			}
			if stop == 0 {
				stop = n
			}
			if start > stop {
				start, stop = stop, start
			}
			if start == 0 || stop > n {
				return nil, errBadSeqSet
			}
			for i := start; i <= stop; i++ {
				out = append(out, int(i-1))
			}
		}
	case imap.UIDSet:
		if n == 0 {
			return nil, nil
		}
		top := sel.uids[n-1]
		for _, r := range set {
			start, stop := uint32(r.Start), uint32(r.Stop)
			// "*" is the highest UID in the mailbox, so "n:*" names that
			// message even when n is above it (RFC 9051 6.4.8).
			if start == 0 {
				start = top
			}
			if stop == 0 {
				stop = top
			}
			if start > stop {
				start, stop = stop, start
			}
			lo, _ := slices.BinarySearch(sel.uids, start)
			for i := lo; i < len(sel.uids) && sel.uids[i] <= stop; i++ {
				out = append(out, i)
			}
		}
	}
	// Ranges may overlap or come in any order; pdqsort takes an already
	// sorted list in linear time.
	slices.Sort(out)
	return slices.Compact(out), nil
}

// uidRanges turns ascending UIDs into the store's set, as ranges.
func uidRanges(uids []uint32) store.UIDSet {
	set := store.UIDSet{}
	for _, u := range uids {
		if k := len(set); k > 0 && set[k-1].Stop+1 == u {
			set[k-1].Stop = u
			continue
		}
		set = append(set, store.UIDRange{Start: u, Stop: u})
	}
	return set
}
