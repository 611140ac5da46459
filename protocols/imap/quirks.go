package imap

// Library limits. What follows is what the go-imap v2 release in go.mod
// decides or cannot do, and what this package does about it; file:line
// references are to the library's source at that release. A new release
// is checked against this list (TestMalformedInput, TestLibraryQuirks).
//
// # What the library release (v2.0.0-beta.8) decides
//
// Its parser refuses some bad input with NO [SERVERBUG] "Internal server
// error" where RFC 9051 asks for BAD, before Basalt's code runs, because
// it returns a plain error rather than a syntax error: a 0, a number over
// 2^32-1 or a non-number in a sequence or UID set ("FETCH 0", "1:0",
// "1:x", "UID EXPUNGE 0", "SEARCH 0"); an unknown SEARCH key or a bad date
// in SEARCH or APPEND; a mailbox name that is not valid modified UTF-7
// ("&Jjo") or holds a control character; a malformed SASL initial
// response. TestMalformedInput pins each answer and that nothing changed;
// a release that answers BAD fails it, and this list is to be updated.
//
// Other quirks of the release, pinned by TestLibraryQuirks:
//   - Text after an APPEND's literal ("{5+}\r\nhello junk") gets no tagged
//     answer at all; the message has been stored (imapserver/append.go
//     returns a nil error there).
//   - An empty line, or one starting with a space, ends the connection
//     without a word (it reads the tag as a read error).
//   - A non-synchronizing literal whose command it refuses before reaching
//     the literal would be read as commands; the guard closes the
//     connection instead (TestOrphanedLiteral).
//   - STARTTLS on a TLS connection is answered NO, not BAD (RFC 9051
//     6.2.1): such connections are served by an engine without a TLS
//     configuration, since the library cannot see TLS under the guard.
//   - SELECT's READ-ONLY/READ-WRITE code follows the command's name only,
//     so a shared mailbox the user may not change says READ-WRITE after
//     SELECT (RFC 4314 5.2 asks for READ-ONLY); PERMANENTFLAGS says what
//     may change, and every change is refused NOPERM.
//   - STORE's writer writes only FETCH, and RFC 3501 7.2.6 wants a FLAGS
//     response before the first FETCH that shows a new keyword: a STORE
//     that brings one in leaves its FETCH responses to the poll after the
//     command, which writes FLAGS and then FETCH (with UID) for each
//     message (write.go Store, selected.go refresh).
//
// What the guard does in the library's place, on whole command lines
// (commandline.go) and on responses:
//   - ID (RFC 2971): the release dispatches no ID (imapserver/conn.go:
//     readCommand's switch, 216-291, answers BAD "Unknown command" and,
//     before login, ends the connection), so the guard answers it. It is
//     not advertised: the library writes CAPABILITY only from its own
//     fixed lists (imapserver/capability.go:30-105, addAvailableCaps), and
//     Options.Caps cannot add a name to them. An ID whose parameters come
//     as literals is left to the library (BAD).
//   - A partial BINARY section: the library writes "BINARY[part]" with no
//     "<origin>" (imapserver/fetch.go:434-443, WriteBinarySection ignores
//     the section's Partial), which RFC 3516 4.2 requires. The session
//     marks the section's part with its origin and the guard's scan of the
//     output writes the origin in (binorigin.go).
//   - An address's source route (RFC 3501 7.4.2 adl): imap.Address has no
//     field for it (go-imap v2 fetch.go:99-103) and the library writes
//     NIL there (imapserver/fetch.go:568). The session gives the guard
//     each routed address as the library writes it and as it should be,
//     and the guard swaps them as the response goes out (adl.go). An
//     address with a string that is not printable ASCII keeps NIL.
//   - LIST and LSUB patterns: the library decodes them as modified UTF-7
//     and answers NO [SERVERBUG] to one that is not
//     (imapserver/list.go:209); the guard escapes such a pattern's "&"s
//     so that it means its own characters. A pattern sent as a literal
//     is left as it is.
//
// The release dispatches no command for QUOTA, ACL, SORT, THREAD or
// CONDSTORE/QRESYNC, so none is advertised. The store is ready for a
// release that does: a modseq on every message and the highest per
// mailbox, with expunged UIDs kept by modseq (CONDSTORE, QRESYNC's
// VANISHED), RFC 4314 rights per grant (ACL, MYRIGHTS), and per-user
// quotas (QUOTA's GETQUOTAROOT).
