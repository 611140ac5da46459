// Package imap is Basalt's IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501)
// front end: it serves a user's mailboxes, and those shared with the
// user, over the store.
//
// The protocol engine and parser are go-imap v2's imapserver; this
// package supplies its Session over the store (store.Account, session.go)
// and the session service (logins, login.go), follows other sessions'
// changes through the store's change bus (store.Watch) for IDLE and
// unilateral updates (selected.go), and hardens each connection:
// timeouts, line and literal limits and a cutoff for clients that keep
// sending bad commands, before and after STARTTLS (guard.go). Accepting,
// the connection limits, each connection's context and the shutdown are
// the listener.Set's (server.go). Mailboxes other users share are reached
// under the "Other Users/" and "Shared Folders/" namespaces (RFC 2342),
// with the RFC 4314 rights the store enforces on every call
// (namespace.go).
//
// The library release has limits of its own, and the guard does some of
// its work in its place: quirks.go lists both, with the tests that pin
// them.
package imap
