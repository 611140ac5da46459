package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"basalt/store"
)

// delim is the hierarchy delimiter, the store's (RFC 9051 5.1.1).
const delim = '/'

// Mailbox names reach the store through this file only. There are three
// namespaces (RFC 2342), as M-Store had them:
//
//   - personal, prefix "": the user's own mailboxes, named as the store
//     names them;
//   - other users', "Other Users/<owner address>/<name>": mailboxes other
//     users shared with this user directly;
//   - shared folders, "Shared Folders/<owner address>/<name>": mailboxes
//     shared with the user's whole domain and not with it directly.
//
// A name in the last two is one of store.SharedMailbox's Paths, and maps
// onto the owner's account seen through the share (Account.Shared), which
// checks the user's RFC 4314 rights on every call. Only mailboxes the user
// may look up ("l") are there at all; any other name under those prefixes,
// another user's unshared mailboxes included, does not exist. The prefixes
// are kept out of the personal namespace, so that no personal mailbox
// takes a name a shared one needs.

// mailboxRef is an existing mailbox as a command named it.
type mailboxRef struct {
	acct   *store.Account // whose mailbox, as the user may act on it
	mb     store.Mailbox  // counts, \Seen and subscription as the user sees them
	name   string         // the IMAP name
	rights store.Rights   // the user's rights on it: all of them on its own
}

// shared reports whether the mailbox is another user's.
func (r mailboxRef) shared() bool { return r.acct.IsShared() }

// sameMailbox reports whether two refs name the same mailbox.
func (r mailboxRef) sameMailbox(o mailboxRef) bool {
	return r.mb.ID == o.mb.ID && r.acct.UserID() == o.acct.UserID()
}

var (
	errNoPerm   = no(imap.ResponseCodeNoPerm, "Permission denied")
	errReserved = no(imap.ResponseCodeCannot, "That name is reserved for shared mailboxes")
)

// The namespaces (RFC 2342) under which a user sees other users'
// mailboxes.
const (
	// otherUsersNamespace holds mailboxes shared with the user directly:
	// "Other Users/<owner address>/<mailbox name>".
	otherUsersNamespace = "Other Users"
	// sharedFoldersNamespace holds mailboxes shared with the user's whole
	// domain: "Shared Folders/<owner address>/<mailbox name>".
	sharedFoldersNamespace = "Shared Folders"
)

// reserved reports whether name is under a namespace prefix kept for
// shared mailboxes.
func reserved(name string) bool {
	first, _, _ := strings.Cut(name, string(delim))
	return first == otherUsersNamespace || first == sharedFoldersNamespace
}

// ownerPrefix is what the names of m's owner's mailboxes start with in
// m's namespace: "Other Users/<owner>/" or "Shared Folders/<owner>/". The
// names are matched by these prefixes rather than split at delimiters,
// since an address may hold a "/" itself.
func ownerPrefix(m store.SharedMailbox) string {
	ns := otherUsersNamespace
	if m.DomainShare {
		ns = sharedFoldersNamespace
	}
	return ns + string(delim) + m.OwnerAddress + string(delim)
}

// ownerLevel reports whether name is no more than a namespace prefix and
// an owner: a level of the hierarchy, never a mailbox.
func ownerLevel(name string) bool { return strings.Count(name, string(delim)) < 2 }

// shares lists the mailboxes shared with the user that it may look up.
func (s *session) shares() ([]store.SharedMailbox, error) {
	ms, err := s.acct.SharedMailboxes(s.ctx())
	if err != nil {
		return nil, s.storeErr("list shared mailboxes", err)
	}
	return ms, nil
}

// sharedRef is the ref of a mailbox shared with the user.
func (s *session) sharedRef(m store.SharedMailbox) (mailboxRef, error) {
	acct, err := s.acct.Shared(m.OwnerID)
	if err != nil {
		return mailboxRef{}, s.storeErr("open shared account", err)
	}
	return mailboxRef{acct: acct, mb: m.Mailbox, name: ownerPrefix(m) + m.Name, rights: m.Rights}, nil
}

// resolve maps an IMAP name that need not exist yet (CREATE, the new
// name of RENAME) to the account that would hold it and the store's name
// there. A shared name is the owner's account, provided the owner shares
// something with the user in that namespace; anything else under the
// shared prefixes is refused the same way whether or not its owner
// exists, so that the answer tells nothing about other users.
func (s *session) resolve(name string) (*store.Account, string, error) {
	if !reserved(name) {
		return s.acct, name, nil
	}
	if ownerLevel(name) {
		return nil, "", errReserved
	}
	ms, err := s.shares()
	if err != nil {
		return nil, "", err
	}
	for _, m := range ms {
		if rest, ok := strings.CutPrefix(name, ownerPrefix(m)); ok && rest != "" {
			acct, err := s.acct.Shared(m.OwnerID)
			if err != nil {
				return nil, "", s.storeErr("open shared account", err)
			}
			return acct, rest, nil
		}
	}
	// RFC 4314 4: CREATE needs "k" on the parent, which the user has on
	// none of this owner's mailboxes.
	return nil, "", errNoPerm
}

// lookup returns the mailbox an IMAP name names. Another user's mailboxes
// are there only when shared with the user, and only under their Path.
func (s *session) lookup(name string) (mailboxRef, error) {
	if !reserved(name) {
		mb, err := s.acct.MailboxByName(s.ctx(), name)
		if err != nil {
			return mailboxRef{}, s.storeErr("look up mailbox", err)
		}
		return mailboxRef{acct: s.acct, mb: mb, name: mb.Name, rights: store.AllRights}, nil
	}
	if ownerLevel(name) {
		return mailboxRef{}, errNoMailbox // a level of the hierarchy, no mailbox
	}
	ms, err := s.shares()
	if err != nil {
		return mailboxRef{}, err
	}
	for _, m := range ms {
		rest, ok := strings.CutPrefix(name, ownerPrefix(m))
		if !ok {
			continue
		}
		// INBOX is INBOX in any case here too (RFC 9051 5.1).
		if n, err := store.NormalizeMailboxName(rest); err == nil && n == m.Name {
			return s.sharedRef(m)
		}
	}
	return mailboxRef{}, errNoMailbox
}

// creatable reports whether a missing mailbox could be created by the
// user, for TRYCREATE (RFC 9051 6.3.12: not sent when it certainly
// cannot). In a shared namespace that needs "k" on the nearest ancestor
// the user can see (RFC 4314 4).
func (s *session) creatable(name string) bool {
	if !reserved(name) {
		return true
	}
	ms, err := s.shares()
	if err != nil {
		return false
	}
	best := store.SharedMailbox{}
	for _, m := range ms {
		if strings.HasPrefix(name, ownerPrefix(m)+m.Name+string(delim)) && len(m.Name) > len(best.Name) {
			best = m
		}
	}
	return best.Rights.Has(store.RightCreate)
}

// visible lists every mailbox the user can see, by IMAP name: its own,
// then those shared with it.
func (s *session) visible() ([]mailboxRef, error) {
	ms, err := s.acct.Mailboxes(s.ctx())
	if err != nil {
		return nil, s.storeErr("list mailboxes", err)
	}
	shared, err := s.shares()
	if err != nil {
		return nil, err
	}
	out := make([]mailboxRef, 0, len(ms)+len(shared))
	for _, m := range ms {
		// A personal mailbox made under a reserved prefix elsewhere (the
		// store does not reserve them) cannot be named over IMAP.
		if reserved(m.Name) {
			continue
		}
		out = append(out, mailboxRef{acct: s.acct, mb: m, name: m.Name, rights: store.AllRights})
	}
	for _, m := range shared {
		ref, err := s.sharedRef(m)
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// Namespace is RFC 2342's NAMESPACE: personal, other users' and shared.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{
		Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}},
		Other:    []imap.NamespaceDescriptor{{Prefix: otherUsersNamespace + string(delim), Delim: delim}},
		Shared:   []imap.NamespaceDescriptor{{Prefix: sharedFoldersNamespace + string(delim), Delim: delim}},
	}, nil
}
