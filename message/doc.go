// Package message is Basalt's one home of MIME (RFC 5322, RFC 2045-2049):
// it parses, decodes and builds messages, and imports nothing of Basalt's.
// It sits beside the store's models: the store and everything above it use
// it.
//
//   - Parse: Parse reads a raw message once, at delivery, into everything the
//     front ends need without reading the message again: the IMAP ENVELOPE
//     and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2) including all
//     extension data, byte offsets of every part so that BODY[n],
//     BODY[n.MIME] and BINARY[n] can be served by slicing the stored message,
//     and the fields the webmail and search need (snippet, attachments,
//     threading references, lower-cased search text).
//   - Envelope and body structure: Info.Envelope and Info.Body, and
//     Part.Find for an IMAP section path.
//   - Decode: Decode and Part.Decode undo a part's Content-Transfer-Encoding,
//     with one tolerance for damaged input, for every reader: IMAP BINARY
//     and BINARY.SIZE, IMAP search, the webmail's body, download and
//     forwarding, and the parse's snippet and attachment sizes.
//     DecodedSize counts what Decode would give without decoding.
//   - Text: Part.Text is a part's text as UTF-8 (transfer encoding and
//     charset undone) and HeaderText a header value's (RFC 2047 words
//     decoded one by one), the same for IMAP SEARCH and ENVELOPE, the
//     webmail and the snippet.
//   - Build: Build writes a new message from a Spec on
//     github.com/emersion/go-message: the header fields (RFC 5322 3.6, RFC
//     2047 for what is not ASCII, Auto-Submitted of RFC 3834), text and HTML
//     alternatives, attachments (their Content-Type as given, any charset),
//     or a multipart/report (RFC 6522); a field that would not be one
//     field is refused. The
//     webmail's sends and drafts, delivery status notifications (RFC 3464)
//     and auto-replies (RFC 3834) are all made by it.
//
// Parse's result, Info, is plain data meant to be stored as JSON in the
// message's metadata row; its JSON keys are deliberately short.
//
// Parse never fails and never panics: IMAP must answer for every stored
// message however malformed (RFC 3501 7.4.2), so broken input yields a
// best-effort structure. Decisions made on the way cite the RFC that
// motivates them:
//   - RFC 2045 5.2: a missing or invalid Content-Type is text/plain;
//     charset=us-ascii, and a missing Content-Transfer-Encoding is 7BIT.
//   - RFC 2046 5.1.1: multipart bodies are split on boundary delimiter
//     lines; the line break before a delimiter belongs to the delimiter. A
//     multipart without a closing delimiter keeps the parts it has; one
//     with no parts at all gets a single text/plain child spanning its body,
//     so that every multipart has at least one child as IMAP requires.
//   - RFC 2046 5.1.5: in multipart/digest the default part type is
//     message/rfc822.
//   - RFC 2047 encoded words in subjects and display names are decoded to
//     UTF-8 with any charset github.com/emersion/go-message/charset knows;
//     words in unknown charsets are kept as they were written.
//   - RFC 2231 parameter continuations and charsets are decoded.
//   - RFC 3501 6.4.5: section numbers, see Part.Find.
//
// Nesting (multipart and message/rfc822) is followed to a depth of MaxDepth
// and at most MaxParts parts are recorded, so hostile input cannot make the
// result unbounded.
package message
