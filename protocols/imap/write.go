package imap

import (
	"errors"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"basalt/store"
)

// Store is STORE and UID STORE (RFC 9051 6.4.6).
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	s.settle()
	sel, err := s.selection()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return errReadOnly
	}
	bits, kws, err := storeFlags(flags.Flags)
	if err != nil {
		return err
	}
	idx, err := s.indexes(numSet)
	if err != nil {
		return err
	}
	_, byUID := numSet.(imap.UIDSet)
	// Messages another session expunged are left out, and STORE answers
	// OK for the rest, as RFC 2180 4.2.1 allows and Dovecot does:
	// clients (and imaptest) take a NO as the whole STORE failing.
	uids, _ := sel.live(idx)
	if len(uids) == 0 {
		return nil
	}
	done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	var ups []store.FlagUpdate
	switch flags.Op {
	case imap.StoreFlagsAdd:
		ups, err = s.setFlags(uids, store.FlagAdd, bits, kws)
	case imap.StoreFlagsDel:
		ups, err = s.setFlags(uids, store.FlagRemove, bits, kws)
	default:
		ups, err = s.replaceFlags(uids, bits, kws)
	}
	if err != nil {
		return s.storeErr("store", err)
	}
	if sel.newKeywords(ups) {
		// RFC 3501 7.2.6: the client hears of a new keyword in FLAGS
		// before a FETCH shows it, and this writer can only write
		// FETCH; the poll after the command writes FLAGS, then (unless
		// .SILENT) FETCH FLAGS of these messages as changes it did not
		// answer for.
		if !flags.Silent {
			sel.disown(ups)
		}
		return nil
	}
	if !flags.Silent {
		for _, u := range ups {
			i, ok := slices.BinarySearch(sel.uids, u.UID)
			if !ok {
				continue
			}
			mw := w.CreateMessage(uint32(i + 1))
			if byUID {
				mw.WriteUID(imap.UID(u.UID)) // RFC 9051 6.4.9
			}
			mw.WriteFlags(sel.flags(u.UID, u.Flags, u.Keywords))
			if err := mw.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaceFlags is STORE FLAGS: the flags IMAP shows become exactly bits
// and kws, while the store's other bits (the webmail's marks) stay. The
// store replaces all of a message's client flags at once, so messages
// are grouped by the marks they keep, one replacement per group.
func (s *session) replaceFlags(uids []uint32, bits store.Flags, kws []string) ([]store.FlagUpdate, error) {
	acct, id := s.sel.ref.acct, s.sel.ref.mb.ID
	cur, err := acct.List(s.ctx(), id, store.ListQuery{UIDs: uidRanges(uids)})
	if err != nil {
		return nil, err
	}
	groups := map[store.Flags][]uint32{}
	for _, m := range cur {
		keep := m.Flags & store.ClientFlags &^ visibleFlags
		groups[keep] = append(groups[keep], m.UID)
	}
	var out []store.FlagUpdate
	for keep, us := range groups {
		ups, err := s.setFlags(us, store.FlagReplace, bits|keep, kws)
		if err != nil {
			return nil, err
		}
		out = append(out, ups...)
	}
	slices.SortFunc(out, func(a, b store.FlagUpdate) int { return int(a.UID) - int(b.UID) })
	return out, nil
}

// setFlags changes flags in the selected mailbox and remembers the
// modseq the change got, so that it is not reported back to this client
// as another session's: the command answers for it. Messages the change
// left alone keep their modseqs, which are not its own.
func (s *session) setFlags(uids []uint32, op store.FlagOp, bits store.Flags, kws []string) ([]store.FlagUpdate, error) {
	sel := s.sel
	ups, err := sel.ref.acct.SetFlags(s.ctx(), sel.ref.mb.ID, uidRanges(uids), op, bits, kws)
	if err != nil {
		return nil, err
	}
	for _, u := range ups {
		if u.Changed {
			sel.noteOwn(u.ModSeq)
		}
	}
	return ups, nil
}

// live returns the UIDs at idx that still exist as far as this session
// knows, and whether some did not (expunged by another session).
func (sel *selected) live(idx []int) ([]uint32, bool) {
	uids := make([]uint32, 0, len(idx))
	issued := false
	for _, i := range idx {
		u := sel.uids[i]
		if _, gone := sel.gone[u]; gone {
			issued = true
			continue
		}
		uids = append(uids, u)
	}
	return uids, issued
}

func expungeIssued(issued bool) error {
	if issued {
		return no(codeExpungeIssued, "Some of the messages no longer exist")
	}
	return nil
}

// copyTarget resolves the destination of COPY, MOVE and APPEND; a
// missing mailbox is TRYCREATE when the user could create it (RFC 9051
// 6.4.7, 6.3.12), NONEXISTENT when it certainly could not.
func (s *session) copyTarget(name string) (mailboxRef, error) {
	ref, err := s.lookup(name)
	if err == errNoMailbox && s.creatable(name) {
		return mailboxRef{}, errTryCreate
	}
	return ref, err
}

// Copy is COPY and UID COPY (RFC 9051 6.4.7), with COPYUID (RFC 4315).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	s.settle()
	res, err := s.copyOrMove(numSet, dest, false, nil)
	return res, err
}

// Move is MOVE and UID MOVE (RFC 6851): the copies, then an EXPUNGE for
// each moved message.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	s.settle()
	_, err := s.copyOrMove(numSet, dest, true, w)
	return err
}

func (s *session) copyOrMove(numSet imap.NumSet, dest string, move bool, mw *imapserver.MoveWriter) (*imap.CopyData, error) {
	sel, err := s.selection()
	if err != nil {
		return nil, err
	}
	if move && sel.readOnly {
		return nil, errReadOnly
	}
	idx, err := s.indexes(numSet)
	if err != nil {
		return nil, err
	}
	_, byUID := numSet.(imap.UIDSet)
	dst, err := s.copyTarget(dest)
	if err != nil {
		return nil, err
	}
	uids, issued := sel.live(idx)
	if len(uids) == 0 {
		return nil, expungeIssued(issued && !byUID)
	}
	done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	src := sel.ref.acct
	var res store.CopyResult
	switch {
	case dst.acct.UserID() != src.UserID() && move:
		res, err = src.MoveTo(s.ctx(), sel.ref.mb.ID, uidRanges(uids), dst.acct, dst.mb.ID)
	case dst.acct.UserID() != src.UserID():
		res, err = src.CopyTo(s.ctx(), sel.ref.mb.ID, uidRanges(uids), dst.acct, dst.mb.ID)
	case move:
		res, err = src.Move(s.ctx(), sel.ref.mb.ID, uidRanges(uids), dst.mb.ID)
	default:
		res, err = src.Copy(s.ctx(), sel.ref.mb.ID, uidRanges(uids), dst.mb.ID)
	}
	if err != nil {
		return nil, s.storeErr("copy", err)
	}
	if sel.ref.sameMailbox(dst) {
		s.pollNow = true // the copies' EXISTS at once, as after APPEND
	}
	var data *imap.CopyData
	if len(res.Pairs) > 0 {
		data = &imap.CopyData{UIDValidity: res.UIDValidity}
		for _, p := range res.Pairs {
			data.SourceUIDs.AddNum(imap.UID(p.Src))
			data.DestUIDs.AddNum(imap.UID(p.Dst))
		}
	}
	if move {
		if data != nil {
			if err := mw.WriteCopyData(data); err != nil {
				return nil, err
			}
		}
		moved := make([]uint32, len(res.Pairs))
		for i, p := range res.Pairs {
			moved[i] = p.Src
		}
		if err := s.expunged(moved, mw.WriteExpunge); err != nil {
			return nil, err
		}
	}
	return data, expungeIssued(issued && !byUID)
}

// expunged removes this session's own expunges from the view, writing
// EXPUNGE for each, highest sequence number first so that every number
// written is still valid when the client reads it.
func (s *session) expunged(uids []uint32, write func(seq uint32) error) error {
	sel := s.sel
	slices.Sort(uids)
	for k := len(uids) - 1; k >= 0; k-- {
		i, ok := slices.BinarySearch(sel.uids, uids[k])
		if !ok {
			continue
		}
		if err := write(uint32(i + 1)); err != nil {
			return err
		}
		sel.uids = slices.Delete(sel.uids, i, i+1)
		delete(sel.gone, uids[k])
	}
	sel.pruneRecent()
	return nil
}

// Expunge is EXPUNGE, UID EXPUNGE (RFC 9051 6.4.3, 6.4.9) and the
// silent expunge of CLOSE (6.4.1). In a mailbox opened with EXAMINE,
// EXPUNGE is refused READ-ONLY, and CLOSE expunges nothing, as it must
// there; CLOSE likewise leaves alone another user's mailbox where the
// user lacks the "e" right (RFC 4314 4), while EXPUNGE is refused NOPERM.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	s.settle()
	sel, err := s.selection()
	if err != nil {
		return err
	}
	closing := isClose(w)
	switch {
	case closing && (sel.readOnly || !sel.rights.Has(store.RightExpunge)):
		return nil
	case sel.readOnly:
		return errReadOnly
	}
	var set store.UIDSet // nil: every \Deleted message
	if uids != nil {
		idx, err := s.indexes(*uids)
		if err != nil {
			return err
		}
		live, _ := sel.live(idx)
		if len(live) == 0 {
			return nil
		}
		set = uidRanges(live)
	}
	done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	gone, err := sel.ref.acct.Expunge(s.ctx(), sel.ref.mb.ID, set)
	if err != nil {
		return s.storeErr("expunge", err)
	}
	return s.expunged(gone, w.WriteExpunge)
}

// isClose reports whether an Expunge is CLOSE's: the library passes CLOSE
// a writer that writes nothing, its zero value (imapserver/select.go,
// handleUnselect), and EXPUNGE one bound to the connection. The tests
// (TestExpungeReadOnly) notice if a new release changes that.
func isClose(w *imapserver.ExpungeWriter) bool {
	return w == nil || *w == (imapserver.ExpungeWriter{})
}

// Append is APPEND (RFC 9051 6.3.12) with APPENDUID (RFC 4315). The
// library has refused a literal over AppendLimit before reading it.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	s.settle()
	ref, err := s.copyTarget(mailbox)
	if err != nil {
		return nil, err
	}
	bits, kws, err := storeFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	if r.Size() == 0 {
		return nil, no(imap.ResponseCodeCannot, "Empty message")
	}
	raw := make([]byte, r.Size())
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	// Appending into the mailbox this session has selected, it claims the
	// message as recent at once (RFC 3501 2.3.2).
	sel := s.sel
	claim := sel != nil && !sel.readOnly && sel.ref.sameMailbox(ref)
	res, err := ref.acct.Append(s.ctx(), ref.mb.ID, raw, store.AppendOptions{Flags: bits, Keywords: kws, InternalDate: options.Time, ClaimRecent: claim})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, s.storeErr("append", err)
	}
	if claim {
		sel.addRecent(res.RecentFrom, res.UID+1)
	}
	if sel != nil && sel.ref.sameMailbox(ref) {
		s.pollNow = true // RFC 9051 6.3.12: EXISTS at once
	}
	return &imap.AppendData{UID: imap.UID(res.UID), UIDValidity: res.UIDValidity}, nil
}
