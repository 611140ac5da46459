package imap

import (
	"strings"

	"basalt/store"
)

// delim is the hierarchy delimiter, the store's (RFC 9051 5.1.1).
const delim = '/'

// Mailbox names reach the store through this file only. Today every name
// is in the personal namespace (prefix "", RFC 2342), which is the user's
// own account and names the store's mailboxes as they are. Sharing will
// add namespaces whose names start with store.OtherUsersNamespace or
// store.SharedFoldersNamespace, then an owner's address, and map onto
// that owner's account seen through the share (Account.Shared): resolve
// picks the namespace by prefix and visible lists each namespace's
// mailboxes. Until then those prefixes are reserved, so that no personal
// mailbox takes a name a shared one will need.

// mailboxRef is an existing mailbox as a command named it.
type mailboxRef struct {
	acct *store.Account // whose mailbox, as the user may act on it
	mb   store.Mailbox
	name string // the IMAP name
}

// reserved reports whether name is under a namespace prefix kept for
// shared mailboxes.
func reserved(name string) bool {
	first, _, _ := strings.Cut(name, string(delim))
	return first == store.OtherUsersNamespace || first == store.SharedFoldersNamespace
}

// resolve maps an IMAP name to the account holding it and the store's
// name for it there.
func (s *session) resolve(name string) (*store.Account, string, error) {
	if reserved(name) {
		return nil, "", errNoMailbox
	}
	return s.acct, name, nil
}

// imapName is the IMAP name of one of acct's mailboxes.
func (s *session) imapName(acct *store.Account, storeName string) string {
	return storeName
}

// lookup returns the mailbox an IMAP name names; another user's mailboxes
// are not there at all.
func (s *session) lookup(name string) (mailboxRef, error) {
	acct, sn, err := s.resolve(name)
	if err != nil {
		return mailboxRef{}, err
	}
	mb, err := acct.MailboxByName(s.srv.base, sn)
	if err != nil {
		return mailboxRef{}, s.storeErr("look up mailbox", err)
	}
	return mailboxRef{acct: acct, mb: mb, name: s.imapName(acct, mb.Name)}, nil
}

// visible lists every mailbox the user can see, by IMAP name.
func (s *session) visible() ([]mailboxRef, error) {
	ms, err := s.acct.Mailboxes(s.srv.base)
	if err != nil {
		return nil, s.storeErr("list mailboxes", err)
	}
	out := make([]mailboxRef, 0, len(ms))
	for _, m := range ms {
		out = append(out, mailboxRef{acct: s.acct, mb: m, name: s.imapName(s.acct, m.Name)})
	}
	return out, nil
}
