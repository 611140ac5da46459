package message

import (
	"time"
)

// FormatVersion identifies the parser's output format. It is stored in
// Info.Version so that rows written by an older parser can be recognised and
// re-parsed after the rules here change.
const FormatVersion = 1

// Limits on the work done for one message.
const (
	// MaxDepth bounds how deep multipart and message/rfc822 nesting is
	// followed. Deeper entities are recorded as opaque text/plain leaves.
	MaxDepth = 20
	// MaxParts bounds how many body parts are recorded for one message.
	// Parts beyond it are left out, as if they were a multipart epilogue.
	MaxParts = 5000
	// MaxFields bounds how many header fields are recorded for one
	// message, all its parts' headers together. Each costs far more
	// memory than its bytes, and the store's header limits (store
	// HeaderLimits) bound only the message's own header: a part's header
	// of millions of short fields would otherwise cost gigabytes. Fields
	// beyond it are passed over (they stay in their part's header).
	MaxFields = 10000
)

// MissingHost is the host given to an address that has no domain part, so
// that an empty Host keeps meaning a group marker (RFC 3501 7.4.2). It is
// the placeholder c-client uses and can never be a real domain name.
const MissingHost = ".MISSING-HOST-NAME."

// Address is one element of an IMAP ENVELOPE address list (RFC 3501 7.4.2).
//
// Group syntax (RFC 5322 3.4) is kept as RFC 3501 describes it: a group start
// marker has Host "" and Mailbox holding the group name; a group end marker
// has Name, Mailbox and Host all empty. An ordinary address always has a
// non-empty Host (MissingHost when the header gave none).
type Address struct {
	Name    string `json:"n,omitempty"` // display name, RFC 2047-decoded UTF-8
	ADL     string `json:"r,omitempty"` // an obsolete source route ("@a,@b"), RFC 3501's at-domain-list
	Mailbox string `json:"m,omitempty"` // local part, or group name for a group start
	Host    string `json:"h,omitempty"` // domain
}

// IsGroupStart reports whether a marks the start of an RFC 5322 group.
func (a Address) IsGroupStart() bool { return a.Host == "" && a.Mailbox != "" }

// IsGroupEnd reports whether a marks the end of an RFC 5322 group.
func (a Address) IsGroupEnd() bool { return a.Host == "" && a.Mailbox == "" }

// Envelope is the IMAP ENVELOPE of a message (RFC 3501 7.4.2, RFC 9051
// 7.5.2).
type Envelope struct {
	// Date is the parsed Date header, in the header's own zone offset; the
	// zero time when the header is missing or unparseable.
	Date time.Time `json:"d,omitzero"`
	// Subject is the Subject header, RFC 2047-decoded to UTF-8.
	Subject string    `json:"s,omitempty"`
	From    []Address `json:"f,omitempty"`
	// Sender and ReplyTo are set to From when their headers are absent or
	// empty, as RFC 3501 7.4.2 requires of the server.
	Sender  []Address `json:"sn,omitempty"`
	ReplyTo []Address `json:"rt,omitempty"`
	To      []Address `json:"to,omitempty"`
	Cc      []Address `json:"cc,omitempty"`
	Bcc     []Address `json:"bc,omitempty"`
	// InReplyTo holds the In-Reply-To msg-ids in angle brackets, separated
	// by single spaces, or the header's unfolded text when it holds no
	// msg-id.
	InReplyTo string `json:"ir,omitempty"`
	// MessageID is the Message-ID msg-id in angle brackets ("<id@host>"), or
	// the header's unfolded text when it holds no msg-id.
	MessageID string `json:"id,omitempty"`
}

// Part is one body part: the IMAP BODYSTRUCTURE of it (RFC 3501 7.4.2, RFC
// 9051 7.5.2) plus its position in the raw message.
//
// Invariants, for a message raw: 0 <= HeaderStart <= BodyStart <= BodyEnd <=
// len(raw); Size == BodyEnd-BodyStart; the children of a multipart and the
// Body of a message/rfc822 lie within [BodyStart, BodyEnd) of their parent; a
// multipart has at least one child; a message/rfc822 or message/global part
// has a non-nil Envelope and Body.
type Part struct {
	// Type and Subtype are lower-case; text/plain when Content-Type is
	// missing or invalid (RFC 2045 5.2).
	Type    string `json:"t,omitempty"`
	Subtype string `json:"st,omitempty"`
	// Params are the Content-Type parameters: keys lower-case, values with
	// RFC 2231 continuations and charsets decoded (and RFC 2047 encoded
	// words, which some mailers put in names), except "boundary", which is
	// kept exactly as written. A defaulted Content-Type has charset=us-ascii.
	Params map[string]string `json:"p,omitempty"`
	// ID is the Content-ID as written (with its angle brackets).
	ID string `json:"id,omitempty"`
	// Description is the unfolded Content-Description as written (not
	// RFC 2047-decoded: IMAP sends it as the header has it).
	Description string `json:"ds,omitempty"`
	// Encoding is the Content-Transfer-Encoding, upper-case, "7BIT" when
	// absent (RFC 2045 6.1).
	Encoding string `json:"e,omitempty"`
	// Size is the number of octets of the encoded body.
	Size int64 `json:"sz,omitempty"`
	// Lines is the number of text lines of the body, for text/* and
	// message/rfc822 parts (RFC 3501 body-fld-lines). CRLF and bare LF both
	// end a line; a final line without a line ending counts too.
	Lines int64 `json:"l,omitempty"`
	// MD5 is the Content-MD5 header (RFC 1864) as written.
	MD5 string `json:"md5,omitempty"`
	// Disposition is the Content-Disposition type, lower-case (RFC 2183),
	// empty when the header is missing or its type is not a token;
	// DispositionParams are its parameters, decoded like Params, kept even
	// when the type is unusable (IMAP sends a disposition only when
	// Disposition is set).
	Disposition       string            `json:"dp,omitempty"`
	DispositionParams map[string]string `json:"dpp,omitempty"`
	// Language holds the Content-Language tags (RFC 3282).
	Language []string `json:"lg,omitempty"`
	// Location is the Content-Location URI (RFC 2557), whitespace removed.
	Location string `json:"lc,omitempty"`

	// Parts are the children of a multipart, in order.
	Parts []Part `json:"ps,omitempty"`
	// Envelope and Body describe the message encapsulated in a
	// message/rfc822 (or message/global) part. Body.HeaderStart ==
	// BodyStart of this part: Body's header is the encapsulated message's
	// header (BODY[n.HEADER]) and its body is BODY[n.TEXT].
	Envelope *Envelope `json:"en,omitempty"`
	Body     *Part     `json:"b,omitempty"`

	// Offsets into the raw message: raw[HeaderStart:BodyStart] is the
	// part's MIME header including the blank line that ends it
	// (BODY[n.MIME]); raw[BodyStart:BodyEnd] is its encoded body (BODY[n]).
	HeaderStart int64 `json:"hs,omitempty"`
	BodyStart   int64 `json:"bs,omitempty"`
	BodyEnd     int64 `json:"be,omitempty"`
}

// IsMultipart reports whether p is a multipart/* part.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" }

// IsMessage reports whether p encapsulates a message (message/rfc822 or
// message/global) whose structure is in Envelope and Body.
func (p *Part) IsMessage() bool { return p.Body != nil }

// Attachment describes a part the webmail lists as an attachment.
type Attachment struct {
	// Path is the IMAP section number of the part ("2", "1.3").
	Path string `json:"p"`
	// Name is the file name from Content-Disposition's filename or
	// Content-Type's name parameter, decoded; empty when neither is given.
	Name string `json:"n,omitempty"`
	// Type is the lower-case media type, e.g. "application/pdf".
	Type string `json:"t,omitempty"`
	// Size is the decoded size in octets (base64 and quoted-printable
	// undone).
	Size int64 `json:"z,omitempty"`
	// ContentID is the Content-ID without its angle brackets, as a cid: URL
	// names it (RFC 2392).
	ContentID string `json:"c,omitempty"`
	// Inline is set for parts meant to be shown within the message: those
	// with Content-Disposition inline, and resources of a multipart/related
	// that an HTML body refers to by Content-ID.
	Inline bool `json:"i,omitempty"`
}

// Info is everything parsed out of one message.
type Info struct {
	// Version is FormatVersion of the parser that produced this Info.
	Version  int      `json:"v"`
	Envelope Envelope `json:"e"`
	// Body is the structure of the whole message; Body.HeaderStart is 0 and
	// Body.BodyStart == HeaderSize.
	Body Part `json:"b"`
	// HeaderSize is the length of the top-level header including the blank
	// line that ends it.
	HeaderSize int64 `json:"hs,omitempty"`
	// Snippet is the start (at most SnippetLen characters) of the first
	// text/plain part, or of the first text/html part stripped of markup,
	// decoded to UTF-8 with whitespace collapsed.
	Snippet string `json:"sn,omitempty"`
	// HasAttachments is set when some attachment is not merely a resource
	// of the HTML body (see Attachment.Inline).
	HasAttachments bool         `json:"ha,omitempty"`
	Attachments    []Attachment `json:"at,omitempty"`
	// References lists the msg-ids of the References header followed by
	// those of In-Reply-To not already listed, each in angle brackets like
	// Envelope.MessageID, for threading.
	References []string `json:"rf,omitempty"`
	// SearchFrom, SearchTo and SearchSubject are the decoded From, To and
	// Subject, lower-cased, for simple substring search. Addresses are
	// written "name mailbox@host" and separated by ", ".
	SearchFrom    string `json:"sf,omitempty"`
	SearchTo      string `json:"sto,omitempty"`
	SearchSubject string `json:"ss,omitempty"`
}

// SnippetLen is the maximum length of Info.Snippet in characters (runes).
const SnippetLen = 200

// maxReferences bounds Info.References; when a References header is longer,
// its first id (the thread root) and the last ones (the nearest ancestors)
// are kept.
const maxReferences = 100
