package imap

import (
	"context"
	"errors"

	"github.com/emersion/go-imap/v2"

	"basalt/store"
)

func no(code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

func bad(text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: text}
}

var (
	errNoMailbox = no(imap.ResponseCodeNonExistent, "No such mailbox")
	errTryCreate = no(imap.ResponseCodeTryCreate, "No such mailbox")
	// RFC 9051 7.1: READ-ONLY says the mailbox is selected read-only;
	// a change refused for that reason says so with the same code.
	errReadOnly    = no(codeReadOnly, "The mailbox is selected read-only (EXAMINE)")
	errBadSeqSet   = bad("Invalid sequence set: no such message")
	errNoSelection = bad("No mailbox selected")
)

// codeReadOnly is RFC 9051 7.1's READ-ONLY, which the library does not
// name.
const codeReadOnly imap.ResponseCode = "READ-ONLY"

// codeExpungeIssued answers a command that named a message another
// session has expunged (RFC 5530 3).
const codeExpungeIssued imap.ResponseCode = "EXPUNGEISSUED"

// storeErr turns a store error into the IMAP answer for it (RFC 5530
// response codes). Errors the client cannot cause are logged, and the
// client is told no more than that the server failed.
func (s *session) storeErr(what string, err error) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, store.ErrNotFound):
		return errNoMailbox
	case errors.Is(err, store.ErrExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrOverQuota):
		return no(imap.ResponseCodeOverQuota, "Mailbox is over quota")
	case errors.Is(err, store.ErrTooLarge):
		return no(imap.ResponseCodeTooBig, "Message too large")
	case errors.Is(err, store.ErrNotEmpty):
		return no(imap.ResponseCodeHasChildren, "Mailbox has child mailboxes; delete them first")
	case errors.Is(err, store.ErrForbidden):
		return errNoPerm
	case errors.Is(err, store.ErrLocked):
		return no(imap.ResponseCodeUnavailable, "Mail is locked; log in again")
	case errors.Is(err, store.ErrInvalid):
		return no(imap.ResponseCodeCannot, invalidText(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return no(imap.ResponseCodeUnavailable, "Server shutting down")
	case store.IsNoSpace(err):
		// RFC 5530 3 has no code for the server's own disk: OVERQUOTA
		// would tell the user to delete mail of theirs, LIMIT that
		// trying again will not help. UNAVAILABLE says what is true: a
		// subsystem cannot do it now, and the client should retry.
		s.srv.log.Warn(what, "user", s.userID(), "err", err)
		return no(imap.ResponseCodeUnavailable, "Server storage is full; try again later")
	case store.IsUnavailable(err):
		s.srv.log.Warn(what, "user", s.userID(), "err", err)
		return no(imap.ResponseCodeUnavailable, "Storage temporarily unavailable; try again later")
	}
	s.srv.log.Error(what, "user", s.userID(), "err", err)
	return no(imap.ResponseCodeServerBug, "Internal error; the operation failed")
}

// invalidText is what the store said about an invalid argument, without
// the ids and operations wrapped around it.
func invalidText(err error) string {
	msg := err.Error()
	const marker = "invalid argument: "
	for i := len(msg) - len(marker); i >= 0; i-- {
		if msg[i:i+len(marker)] == marker {
			return msg[i+len(marker):]
		}
	}
	return "Invalid argument"
}
