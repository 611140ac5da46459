package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"basalt/store"
)

// codeUseAttr refuses a special use the server does not support (RFC
// 6154 6).
const codeUseAttr imap.ResponseCode = "USEATTR"

var specialUses = map[imap.MailboxAttr]bool{
	imap.MailboxAttrAll: true, imap.MailboxAttrArchive: true, imap.MailboxAttrDrafts: true,
	imap.MailboxAttrFlagged: true, imap.MailboxAttrJunk: true, imap.MailboxAttrSent: true,
	imap.MailboxAttrTrash: true,
}

// Create is CREATE (RFC 9051 6.3.4), with CREATE-SPECIAL-USE (RFC 6154
// 3). Missing parents are created too.
func (s *session) Create(name string, options *imap.CreateOptions) error {
	s.settle()
	// A trailing delimiter says the client means to create children
	// under the name; the name itself is what is created.
	name = strings.TrimSuffix(name, string(delim))
	var use string
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 || !specialUses[options.SpecialUse[0]] {
			return no(codeUseAttr, "One special use of \\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash")
		}
		use = string(options.SpecialUse[0])
	}
	// Under another user's mailbox it needs "k" there (RFC 4314 4),
	// which the store checks; the new mailbox takes its parent's grants.
	acct, sn, err := s.resolve(name)
	if err != nil {
		return err
	}
	done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	_, err = acct.CreateMailbox(s.ctx(), sn, use)
	return s.storeErr("create mailbox", err)
}

// Delete is DELETE (RFC 9051 6.3.5). A mailbox with children is refused
// (HASCHILDREN): the store keeps no \Noselect placeholders. Another
// user's mailbox needs the "x" right (RFC 4314 4), which the store checks.
func (s *session) Delete(name string) error {
	s.settle()
	ref, err := s.lookup(name)
	if err != nil {
		return err
	}
	done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	if err := ref.acct.DeleteMailbox(s.ctx(), ref.mb.ID); err != nil {
		return s.storeErr("delete mailbox", err)
	}
	if s.sel != nil && s.sel.ref.sameMailbox(ref) {
		s.sel.deleted = true
	}
	return nil
}

// Rename is RENAME (RFC 9051 6.3.6). Renaming INBOX moves its messages to
// a new mailbox and leaves INBOX empty, as the RFC says. A mailbox stays
// in its namespace and with its owner; another user's needs the "x" right
// on it and "k" on the new parent (RFC 4314 4), which the store checks.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	s.settle()
	newName = strings.TrimSuffix(newName, string(delim))
	ref, err := s.lookup(oldName)
	if err != nil {
		return err
	}
	if ref.shared() != reserved(newName) || ref.shared() && !strings.HasPrefix(newName, strings.TrimSuffix(ref.name, ref.mb.Name)) {
		return no(imap.ResponseCodeCannot, "Cannot rename into another namespace or to another owner")
	}
	acct, sn, err := s.resolve(newName)
	if err != nil {
		return err
	}
	if acct.UserID() != ref.acct.UserID() {
		return no(imap.ResponseCodeCannot, "Cannot rename into another namespace or to another owner")
	}
	if ref.mb.Name == "INBOX" && !ref.rights.Has(store.RightDeleteMailbox) {
		return errNoPerm
	}
	done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	if ref.mb.Name != "INBOX" {
		return s.storeErr("rename mailbox", acct.RenameMailbox(s.ctx(), ref.mb.ID, sn))
	}
	dst, err := acct.CreateMailbox(s.ctx(), sn, "")
	if err != nil {
		return s.storeErr("rename INBOX", err)
	}
	if _, err := acct.Move(s.ctx(), ref.mb.ID, nil, dst.ID); err != nil {
		return s.storeErr("rename INBOX", err)
	}
	return nil
}

// Subscribe is SUBSCRIBE (RFC 9051 6.3.7); only existing mailboxes can be
// subscribed.
func (s *session) Subscribe(name string) error { return s.subscribe(name, true) }

// Unsubscribe is UNSUBSCRIBE (RFC 9051 6.3.8), also of a name whose
// mailbox is gone.
func (s *session) Unsubscribe(name string) error { return s.subscribe(name, false) }

func (s *session) subscribe(name string, on bool) error {
	s.settle()
	ref, err := s.lookup(name)
	if err == errNoMailbox && !on && !reserved(name) {
		// A subscription that outlived its mailbox (RFC 3501 6.3.6).
		done, err := s.begin()
		if err != nil {
			return err
		}
		defer done()
		return s.storeErr("unsubscribe", s.acct.DropLostSubscription(s.ctx(), name))
	}
	if err != nil {
		return err
	}
	done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	return s.storeErr("subscribe", ref.acct.Subscribe(s.ctx(), ref.mb.ID, on))
}

// List is LIST (RFC 9051 6.3.9) with LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348);
// the library turns LSUB into a LIST of subscribed mailboxes, and the
// guard says which it was (guard.lsub). Mailboxes shared with the user
// are listed under their namespaces; the levels above them that are no
// mailbox of the user's to open (the namespace prefixes, each owner, an
// owner's mailbox that is not shared with the user but has a child that
// is) are listed \Noselect \HasChildren (RFC 9051 6.3.9: a level of
// hierarchy that is not a selectable mailbox).
//
// Subscriptions are by name and outlive their mailboxes (RFC 3501
// 6.3.6): with SUBSCRIBED, a subscribed name whose mailbox is gone is
// listed \NonExistent (RFC 5258 3). With RECURSIVEMATCH, a name is also
// listed with CHILDINFO ("SUBSCRIBED") when it is subscribed and has a
// subscribed descendant, or when it is not and has a subscribed
// descendant that no pattern matches (RFC 5258 3.5 and the examples of
// its section 5). LSUB lists a name that is not subscribed but has such a
// descendant \Noselect (RFC 3501 6.3.9).
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	s.settle()
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and the root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	lsub := s.g.lsub.Load()
	all, err := s.visible()
	if err != nil {
		return err
	}
	var lost []string
	if options.SelectSubscribed {
		names, err := s.acct.LostSubscriptions(s.ctx())
		if err != nil {
			return s.storeErr("list subscriptions", err)
		}
		for _, n := range names {
			// One under a shared prefix could not be named over IMAP
			// (visible says why).
			if !reserved(n) {
				lost = append(lost, n)
			}
		}
	}
	// The names, in the order they are listed: the user's own mailboxes
	// and lost subscriptions by name, then the shared ones.
	type entry struct {
		name string
		ref  *mailboxRef // nil: no mailbox by this name
	}
	exists := make(map[string]bool, len(all))
	subscribed := map[string]bool{}
	entries := make([]entry, 0, len(all)+len(lost))
	for i := range all {
		m := &all[i]
		exists[m.name] = true
		subscribed[m.name] = m.mb.Subscribed
		for len(lost) > 0 && (m.shared() || lost[0] < m.name) {
			entries = append(entries, entry{name: lost[0]})
			subscribed[lost[0]] = true
			lost = lost[1:]
		}
		entries = append(entries, entry{name: m.name, ref: m})
	}
	for _, n := range lost {
		entries = append(entries, entry{name: n})
		subscribed[n] = true
	}
	// Every ancestor of a mailbox has children; every ancestor of a
	// subscribed name has a subscribed descendant.
	hasKids, subscribedBelow := map[string]bool{}, map[string][]string{}
	for _, e := range entries {
		for i := len(e.name) - 1; i > 0; i-- {
			if e.name[i] != delim {
				continue
			}
			if e.ref != nil {
				hasKids[e.name[:i]] = true
			}
			if subscribed[e.name] {
				subscribedBelow[e.name[:i]] = append(subscribedBelow[e.name[:i]], e.name)
			}
		}
	}
	// unmatchedBelow reports whether a subscribed descendant of name is
	// matched by no pattern, so that only name can show it.
	unmatchedBelow := func(name string) bool {
		for _, d := range subscribedBelow[name] {
			if !matchAny(d, ref, patterns) {
				return true
			}
		}
		return false
	}
	listed := map[string]bool{}
	write := func(e entry) error {
		name := e.name
		if listed[name] || !matchAny(name, ref, patterns) {
			return nil
		}
		listed[name] = true
		data := &imap.ListData{Delim: delim, Mailbox: name}
		self := subscribed[name]
		if options.SelectSubscribed {
			switch {
			case self && options.SelectRecursiveMatch && len(subscribedBelow[name]) > 0:
				data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
			case self:
			case options.SelectRecursiveMatch && unmatchedBelow(name):
				data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
			case lsub && unmatchedBelow(name):
				// RFC 3501 6.3.9: \Noselect says "not subscribed" here.
				data.Attrs = []imap.MailboxAttr{imap.MailboxAttrNoSelect}
				return w.WriteList(data)
			default:
				return nil
			}
		}
		m := e.ref
		switch {
		case m == nil && !exists[name] && hasKids[name]:
			// A level of the shared hierarchy.
			if options.SelectSpecialUse {
				return nil
			}
			data.Attrs = []imap.MailboxAttr{imap.MailboxAttrNoSelect, imap.MailboxAttrHasChildren}
		case m == nil:
			// A subscribed name, or one above it, with no mailbox.
			if !options.SelectSubscribed {
				return nil
			}
			data.Attrs = []imap.MailboxAttr{imap.MailboxAttrNonExistent}
			if lsub {
				data.Attrs[0] = imap.MailboxAttrNoSelect // LSUB knows no \NonExistent (RFC 3501 7.2.3)
			}
		default:
			if options.SelectSpecialUse && m.mb.SpecialUse == "" {
				return nil
			}
			if hasKids[name] {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if self && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if m == nil {
			return w.WriteList(data)
		}
		// Special uses are listed whether asked for or not (RFC 6154 2
		// allows it), since clients look for them in a plain LIST.
		if m.mb.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(m.mb.SpecialUse))
		}
		// RFC 5819 4: no STATUS for a mailbox whose status cannot be
		// had, here another user's without the "r" right.
		if options.ReturnStatus != nil && m.rights.Has(store.RightRead) {
			var err error
			if data.Status, err = s.status(*m, options.ReturnStatus); err != nil {
				return err
			}
		}
		return w.WriteList(data)
	}
	for _, e := range entries {
		// The levels above a name come before it.
		for i := 1; i < len(e.name); i++ {
			if e.name[i] == delim && !exists[e.name[:i]] {
				if err := write(entry{name: e.name[:i]}); err != nil {
					return err
				}
			}
		}
		if err := write(e); err != nil {
			return err
		}
	}
	return nil
}

// matchAny reports whether name matches one of the patterns under ref;
// INBOX matches whatever the case of the pattern (RFC 9051 5.1).
func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
		if name == "INBOX" && imapserver.MatchList(name, delim, strings.ToUpper(ref), strings.ToUpper(p)) {
			return true
		}
	}
	return false
}

// Status is STATUS (RFC 9051 6.3.11) with STATUS=SIZE (RFC 8438) and
// APPENDLIMIT (RFC 7889); on another user's mailbox it needs the "r"
// right (RFC 4314 4), and UNSEEN counts by the user's own \Seen.
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	s.settle()
	ref, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if !ref.rights.Has(store.RightRead) {
		return nil, errNoPerm
	}
	return s.status(ref, options)
}

func (s *session) status(ref mailboxRef, o *imap.StatusOptions) (*imap.StatusData, error) {
	if o.DeletedStorage {
		// Part of QUOTA, which is not offered.
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown STATUS data item"}
	}
	mb := ref.mb
	u32 := func(n int64) *uint32 { v := uint32(max(n, 0)); return &v }
	data := &imap.StatusData{
		Mailbox:     ref.name,
		NumMessages: u32(mb.Messages),
		UIDNext:     imap.UID(mb.UIDNext),
		UIDValidity: mb.UIDValidity,
		NumUnseen:   u32(mb.Unseen),
		Size:        &mb.Size,
	}
	if o.NumRecent {
		n, err := s.recentCount(ref)
		if err != nil {
			return nil, err
		}
		data.NumRecent = &n
	}
	if o.NumDeleted {
		n, err := ref.acct.CountMessages(s.ctx(), mb.ID, store.SearchQuery{FlagsSet: store.FlagDeleted})
		if err != nil {
			return nil, s.storeErr("status", err)
		}
		data.NumDeleted = u32(n)
	}
	if o.AppendLimit {
		l := s.AppendLimit()
		data.AppendLimit = &l
	}
	return data, nil
}
