// Package imap is Basalt's IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501)
// front end. The protocol engine and parser are go-imap v2's imapserver;
// this package supplies its Session over the store (store.Account) and the
// session service (logins), follows other sessions' changes through the
// store's change bus (store.Watch) for IDLE and unilateral updates, and
// hardens each connection: connection limits, timeouts, line and literal
// limits and a cutoff for clients that keep sending bad commands. Mailboxes
// other users share are reached under the "Other Users/" and "Shared
// Folders/" namespaces (RFC 2342), with the RFC 4314 rights the store
// enforces on every call; see namespace.go.
package imap
