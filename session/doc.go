// Package session is Basalt's session service: it owns credentials
// (argon2id password hashes, and the key pairs those passwords seal),
// authenticates logins with throttling per account and per network, and
// keeps web sessions (in SQL, so that they outlive a cache restart) whose
// server-side record holds a secure user's unlocked key only sealed under
// a secret that the client's cookie alone carries.
// Protocol front ends (IMAP, POP3, SMTP AUTH) authenticate here and keep
// the returned Auth for the life of their connection, which they register
// (Front.Open) so that a change of the user that no longer allows it, or
// an administrator's revoke, ends it on whichever node it is open
// (conns.go).
package session
