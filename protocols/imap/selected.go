package imap

import (
	"errors"
	"slices"

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
	dirty   bool // this session changed the mailbox: sync at the next poll
	deleted bool // the mailbox was deleted by this session
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
		// before that, which the first sync makes up for (dirty below).
		if ownerWatch, err = s.srv.store.Watch(s.srv.base, ref.acct.UserID()); err != nil {
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
	uids, err := ref.acct.UIDs(s.srv.base, ref.mb.ID)
	if err != nil {
		return nil, nil, s.storeErr("select", err)
	}
	sel := &selected{ref: ref, readOnly: readOnly, rights: ref.rights, uids: uids, modseq: ref.mb.HighestModSeq, dirty: ref.shared()}
	data := &imap.SelectData{
		Flags:          mailboxFlags,
		PermanentFlags: permanentFlags(ref.rights),
		NumMessages:    uint32(len(uids)),
		UIDNext:        imap.UID(ref.mb.UIDNext),
		UIDValidity:    ref.mb.UIDValidity,
	}
	if sel.readOnly {
		data.PermanentFlags = []imap.Flag{}
	}
	rev2 := s.conn.EnabledCaps().Has(imap.CapIMAP4rev2)
	if rev2 {
		// RFC 9051 6.3.2: the mailbox's LIST response comes with SELECT.
		data.List = &imap.ListData{Delim: delim, Mailbox: ref.name}
		if ref.mb.SpecialUse != "" {
			data.List.Attrs = []imap.MailboxAttr{imap.MailboxAttr(ref.mb.SpecialUse)}
		}
	} else if ref.mb.Unseen > 0 {
		// IMAP4rev1's UNSEEN response code (RFC 3501 6.3.1).
		first, err := ref.acct.FirstUnseen(s.srv.base, ref.mb.ID)
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
	return s.sync(w, allowExpunge)
}

// Idle is IDLE (RFC 2177, RFC 9051 6.3.13): changes are reported as the
// store's change bus announces them.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if err := s.sync(w, true); err != nil {
		return err
	}
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
		}
		if err := s.sync(w, true); err != nil {
			return err
		}
	}
}

// sync brings the client's view of the selected mailbox up to date with
// the store and writes what changed: EXISTS and FETCH FLAGS, numbered as
// the client still numbers the messages, then EXPUNGE where allowed.
func (s *session) sync(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.watch == nil {
		return nil
	}
	events, resync := s.watch.Take()
	if s.ownerWatch != nil {
		more, again := s.ownerWatch.Take()
		events, resync = append(events, more...), resync || again
	}
	sel := s.sel
	if sel == nil {
		return nil
	}
	changed := resync || sel.dirty
	for _, ev := range events {
		if ev.MailboxID == sel.ref.mb.ID {
			changed = true
		}
	}
	if sel.deleted {
		// This session deleted it: its commands now fail NONEXISTENT,
		// which the client expects; only another session's DELETE
		// (found by refresh) ends the connection.
		return nil
	}
	if changed {
		if err := s.refresh(w); err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == imap.ResponseCodeUnavailable {
				// The library ends the connection when a poll fails,
				// leaving the command (which succeeded) unanswered. A
				// store away for now must not cost the client its
				// session: the next poll reads what changed.
				sel.dirty = true
				return nil
			}
			return err
		}
	}
	if allowExpunge && len(sel.gone) > 0 {
		// Highest first, so that each number is still the one the client
		// has for the message when it reads it.
		for i := len(sel.uids) - 1; i >= 0; i-- {
			if _, ok := sel.gone[sel.uids[i]]; ok {
				if err := w.WriteExpunge(uint32(i + 1)); err != nil {
					return err
				}
				sel.uids = slices.Delete(sel.uids, i, i+1)
			}
		}
		sel.gone = nil
	}
	return nil
}

// refresh reads what changed in the selected mailbox since the last sync
// and writes EXISTS and FETCH FLAGS for it; expunged messages are marked
// gone for sync to announce.
func (s *session) refresh(w *imapserver.UpdateWriter) error {
	sel := s.sel
	acct, id := sel.ref.acct, sel.ref.mb.ID
	mb, err := acct.Mailbox(s.srv.base, id)
	if err == nil && sel.ref.shared() {
		// The owner may have changed the user's rights (an "acl" event).
		sel.rights, err = acct.MyRights(s.srv.base, id)
		if err == nil && !sel.rights.Has(store.RightRead) {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		// Deleted, or no longer shared with the user: the same to it.
		return s.mailboxGone()
	}
	if err != nil {
		return s.storeErr("sync", err)
	}
	sel.dirty = false
	if mb.HighestModSeq <= sel.modseq {
		return nil
	}
	vanished, err := acct.Vanished(s.srv.base, id, sel.modseq)
	if err != nil {
		return s.storeErr("sync", err)
	}
	rows, err := acct.List(s.srv.base, id, store.ListQuery{ChangedSince: sel.modseq})
	if err != nil {
		return s.storeErr("sync", err)
	}
	for _, uid := range vanished {
		if _, ok := slices.BinarySearch(sel.uids, uid); ok {
			if sel.gone == nil {
				sel.gone = map[uint32]struct{}{}
			}
			sel.gone[uid] = struct{}{}
		}
	}
	var flagged []store.Message
	added := false
	for _, m := range rows {
		i, known := slices.BinarySearch(sel.uids, m.UID)
		switch {
		case !known:
			sel.uids = slices.Insert(sel.uids, i, m.UID)
			added = true
		case !slices.Contains(sel.own, m.ModSeq):
			flagged = append(flagged, m)
		}
	}
	if added {
		if err := w.WriteNumMessages(uint32(len(sel.uids))); err != nil {
			return err
		}
	}
	for _, m := range flagged {
		if _, ok := sel.gone[m.UID]; ok {
			continue
		}
		i, _ := slices.BinarySearch(sel.uids, m.UID)
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(m.UID), imapFlags(m.Flags, m.Keywords)); err != nil {
			return err
		}
	}
	sel.modseq = mb.HighestModSeq
	sel.own = slices.DeleteFunc(sel.own, func(ms uint64) bool { return ms <= mb.HighestModSeq })
	return nil
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
