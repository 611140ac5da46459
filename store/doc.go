// Package store is Basalt's mail model as one Go API used by every front
// end: domains and domain aliases, plans and limits, users and their login
// identifiers and keys, address aliases, null-sender patterns, mailboxes,
// messages and their flags, contacts and settings, quotas and daily
// counters.
//
// Message operations go through an Account, which is bound to one user:
// every query it makes is scoped to that user, so no id a caller passes
// can reach another user's mail. Mailboxes other users share with it
// (RFC 4314 rights, shares.go) are reached through an Account on the
// owner's mail that checks the acting user's rights first. A message is
// written to the blob store (fsynced) before its rows are committed in one
// transaction; only then is the change announced on the cache bus, and
// only then may a protocol acknowledge it. Secure users' messages, and
// the metadata parsed from them, are encrypted to the user's public key
// before anything reaches disk.
package store
