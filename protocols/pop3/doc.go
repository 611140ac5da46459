// Package pop3 serves POP3 (RFC 1939) over the store: one user's INBOX as
// a maildrop, with the extensions clients look for: CAPA and its response
// codes (RFC 2449, RFC 3206), STLS (RFC 2595), AUTH with SASL PLAIN, LOGIN
// and, when the session service allows it, CRAM-MD5 (RFC 5034, RFC 2195),
// UIDL, TOP, PIPELINING and LOGIN-DELAY; and TLS from the first byte on
// its own listener (RFC 8314).
//
// The command loop is written here: it is small, and no well-kept Go POP3
// server library exists. A session goes through RFC 1939's three states.
// In AUTHORIZATION the session service checks the password (and throttles
// failures), then the maildrop is locked for this one session across every
// node sharing the database (a lease in SQL, so a cache restart frees
// nothing; a crashed node's lease runs out within 15 s), and its message
// list is fixed. Before a change to the maildrop (RETR's \Seen, QUIT's
// removals) the session confirms in the database that the lock is still
// its own, and QUIT releases it before its +OK. In TRANSACTION
// messages are streamed from the store with their line ends made CRLF and
// dot-stuffed, never held whole in memory; DELE only marks. Only QUIT
// enters UPDATE and removes the marked messages: a connection that drops
// or times out changes nothing but the \Seen flags RETR set.
//
// Every connection is bounded: in number (in all and per client address),
// in line length, in bad commands, and in time (a short timeout before
// login, RFC 1939's ten minutes after, a timeout on every write).
package pop3
