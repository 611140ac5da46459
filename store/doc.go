// Package store is Basalt's mail model as one Go API used by every front
// end and service.
//
// What it owns:
//   - domains and domain aliases (domains.go), plans and the limits they
//     and their users set (limits.go), the bounds of a message's header
//     (header.go);
//   - users, their login identifiers, passwords and keys (users.go), and
//     the web sessions the session service keeps (websessions.go);
//   - address aliases and null-sender patterns, and resolving an address
//     to its users (aliases.go);
//   - mailboxes and their subscriptions (mailboxes.go), sharing them with
//     RFC 4314 rights (shares.go);
//   - messages: append and delivery in group commits (messages.go,
//     group.go, appendrows.go), copy, move and expunge (copy.go), flags
//     and keywords (flags.go), listing, paging and search (page.go,
//     search.go, selected.go), the message files with their decoded
//     metadata (infocache.go), the POP3 maildrop and its lock
//     (maildrop.go), a message sealed for a secure user while it waits in
//     the outbound queue (sealedqueue.go);
//   - delivery rules: vacation and forwarding (rules.go);
//   - quotas and daily counters (counters.go), the change events of each
//     user (watch.go), the audit log of administrative changes (change.go)
//     and the sweeps of unreferenced files (sweep.go).
//
// Message operations go through an Account, which is bound to one user:
// every query it makes is scoped to that user, so no id a caller passes
// can reach another user's mail. Mailboxes other users share with it are
// reached through an Account on the owner's mail that checks the acting
// user's rights first. A message is written to the blob store (fsynced)
// before its rows are committed in one transaction; only then is the
// change announced on the cache bus, and only then may a protocol
// acknowledge it. Secure users' messages, and the metadata parsed from
// them, are encrypted to the user's public key before anything reaches
// disk.
//
// Sub-packages keep what one client alone writes, on the same guarantees:
//   - store/outbound: the outbound queue's rows and files (delivery);
//   - store/webmail: composes and uploads, the webmail's sync states and
//     the changes since one, their pruning (rpc);
//   - store/contacts: contacts, contact folders and settings (rpc);
//   - store/internal/spine: what they and the store write with: the user
//     transaction that bumps the serial and announces the change, daily
//     counters, the removal of message files (lend.go lends it to them;
//     Go's internal rule keeps it from everyone else);
//   - store/sqldb, store/blob, store/cache: the backends (SQL, message
//     files, Redis or in-process cache and change bus).
//
// What one front end alone keeps is not here: the webmail's paging
// places are rpc's, POP3's line ends pop3's, IMAP's namespace names
// imap's.
package store
