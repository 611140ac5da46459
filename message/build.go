package message

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Spec is a message to build (RFC 5322, RFC 2045-2049): its header fields
// and its body. Build writes it; the webmail's sends and drafts, delivery
// status notifications and auto-replies are all made this way.
type Spec struct {
	// Date is the origination date; zero means now.
	Date     time.Time
	From     []*mail.Address
	To, Cc   []*mail.Address
	Bcc      []*mail.Address // written as given: leave it out of the copy that is sent (RFC 5322 3.6.3)
	Subject  string          // RFC 2047-encoded when it is not ASCII
	Hostname string          // the right of a generated Message-ID
	// MessageID is the msg-id without angle brackets; "" generates one on
	// Hostname. Two copies of one message (sent, and kept with its Bcc)
	// share one: see NewMessageID.
	MessageID string
	// InReplyTo and References are msg-ids, with or without their angle
	// brackets (RFC 5322 3.6.4).
	InReplyTo, References []string
	// AutoSubmitted marks a message no person sent (RFC 3834 5):
	// "auto-replied" for an answer or a report on one message,
	// "auto-generated" otherwise; "" leaves the field out.
	AutoSubmitted string
	// Extra fields come after those above, in order (User-Agent,
	// Precedence).
	Extra []Field

	// The body: Text and HTML alone or as alternatives, with Files
	// attached; or, instead of all three, Report.
	Text, HTML string
	Files      []File
	Report     *Report
}

// Field is a header field written as given.
type Field struct{ Key, Value string }

// File is an attachment.
type File struct {
	// Name is the file name (Content-Disposition's filename, RFC 2183),
	// RFC 2231-encoded when it is not ASCII.
	Name string
	// Type is the media type with its parameters; one that does not parse
	// is sent as application/octet-stream.
	Type string
	// Open opens the file's content, once, when the message is written.
	Open func() (io.ReadCloser, error)
}

// Report makes the message a multipart/report (RFC 6522).
type Report struct {
	// Type is the report-type parameter, e.g. "delivery-status" (RFC 3464).
	Type string
	// Parts in order: the one a person reads first (RFC 6522 3).
	Parts []ReportPart
}

// ReportPart is one part of a report. A text part that is not ASCII is
// sent quoted-printable; every other part as it is, which the
// machine-readable parts must be (RFC 3464 2.1, RFC 6533 3, 6).
type ReportPart struct {
	Type        string // media type, e.g. "message/delivery-status"
	Params      map[string]string
	Description string // Content-Description
	Body        []byte
}

// NewMessageID returns a fresh msg-id on host, without angle brackets, in
// go-message's form (RFC 5322 3.6.4).
func NewMessageID(host string) (string, error) {
	var h mail.Header
	if err := h.GenerateMessageIDWithHostname(host); err != nil {
		return "", fmt.Errorf("generate message id: %w", err)
	}
	return h.MessageID()
}

// Build writes the message of s: the text alone when it is all there is;
// text and HTML as multipart/alternative, the richest last (RFC 2046
// 5.1.4); with files, that inside multipart/mixed, the files after it as
// attachments; a report as multipart/report. An empty text beside HTML is
// left out rather than offered as an alternative that shows nothing. Text
// is sent quoted-printable (no line over RFC 5322's 998), files base64
// but for a message/rfc822, which goes as it is (see fileEntity).
func Build(s Spec) ([]byte, error) {
	if s.Report != nil && (s.Text != "" || s.HTML != "" || len(s.Files) > 0) {
		return nil, errors.New("build message: a report has only its own parts")
	}
	if s.Report != nil && len(s.Report.Parts) == 0 {
		return nil, errors.New("build message: a report without parts")
	}
	body, err := s.body()
	if err == nil {
		err = body.prepare()
	}
	if err != nil {
		return nil, fmt.Errorf("build message: %w", err)
	}
	// go-message writes the fields added last first, so they are added
	// from the bottom up: the MIME fields, then the message's.
	h := mail.Header{Header: body.hdr.Copy()}
	h.Set("MIME-Version", "1.0")
	for i := len(s.Extra) - 1; i >= 0; i-- {
		h.Add(s.Extra[i].Key, s.Extra[i].Value)
	}
	if s.AutoSubmitted != "" {
		h.Set("Auto-Submitted", s.AutoSubmitted)
	}
	if len(s.References) > 0 {
		h.SetMsgIDList("References", trimIDs(s.References))
	}
	if len(s.InReplyTo) > 0 {
		h.SetMsgIDList("In-Reply-To", trimIDs(s.InReplyTo))
	}
	if s.MessageID != "" {
		h.SetMessageID(strings.Trim(s.MessageID, "<>"))
	} else if err := h.GenerateMessageIDWithHostname(s.Hostname); err != nil {
		return nil, fmt.Errorf("build message: %w", err)
	}
	h.SetSubject(s.Subject)
	for _, f := range []struct {
		key   string
		addrs []*mail.Address
	}{{"Bcc", s.Bcc}, {"Cc", s.Cc}, {"To", s.To}, {"From", s.From}} {
		if len(f.addrs) > 0 {
			h.SetAddressList(f.key, f.addrs)
		}
	}
	date := s.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	if err := checkHeader(h.Header); err != nil {
		return nil, fmt.Errorf("build message: %w", err)
	}

	var buf bytes.Buffer
	err = textproto.WriteHeader(&buf, h.Header.Header)
	if err == nil {
		err = body.write(&buf)
	}
	if err != nil {
		return nil, fmt.Errorf("build message: %w", err)
	}
	return buf.Bytes(), nil
}

func trimIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.Trim(id, "<> \t")
	}
	return out
}

// entity is a MIME entity to write: a leaf with its content, or a
// multipart with its parts.
type entity struct {
	ctype       string
	params      map[string]string
	disposition string // a Content-Disposition as written, if any
	description string
	encoding    string // Content-Transfer-Encoding, "" for none
	content     func(io.Writer) error
	parts       []entity
	boundary    string           // a multipart's, made by header
	hdr         gomessage.Header // made and checked by prepare
}

// body is the tree of entities s is made of.
func (s *Spec) body() (entity, error) {
	if s.Report != nil {
		e := entity{ctype: "multipart/report", params: map[string]string{"report-type": s.Report.Type}}
		for _, p := range s.Report.Parts {
			enc := ""
			if strings.HasPrefix(p.Type, "text/") && !isASCII(p.Body) {
				enc = "quoted-printable"
			}
			e.parts = append(e.parts, entity{ctype: p.Type, params: p.Params, description: p.Description,
				encoding: enc, content: writeBytes(p.Body)})
		}
		return e, nil
	}
	alts := []entity{textEntity("text/plain", s.Text), textEntity("text/html", s.HTML)}
	switch {
	case s.HTML == "":
		alts = alts[:1]
	case s.Text == "":
		alts = alts[1:]
	}
	var text entity
	if len(alts) == 1 {
		text = alts[0]
	} else {
		for i := range alts {
			alts[i].disposition = "inline"
		}
		text = entity{ctype: "multipart/alternative", parts: alts}
	}
	if len(s.Files) == 0 {
		return text, nil
	}
	if len(alts) == 1 {
		text.disposition = "inline"
	}
	mixed := entity{ctype: "multipart/mixed", parts: []entity{text}}
	for _, f := range s.Files {
		e, err := fileEntity(f)
		if err != nil {
			return entity{}, err
		}
		mixed.parts = append(mixed.parts, e)
	}
	return mixed, nil
}

func textEntity(ctype, text string) entity {
	return entity{ctype: ctype, params: map[string]string{"charset": "utf-8"}, encoding: "quoted-printable",
		content: func(w io.Writer) error { _, err := io.WriteString(w, text); return err }}
}

// fileEntity is an attachment, in the encoding its type allows: base64,
// but for the types RFC 2046 allows no encoding (identityOnly), whose
// content goes as it is when it can. What cannot go so, and a multipart,
// goes as application/octet-stream: a multipart's body is parts between
// boundaries its Content-Type names, and sent as one part it would get a
// new boundary, its content a preamble no reader shows (RFC 2046 5.1.1).
//
// Its parameters are written with mime.FormatMediaType, which encodes a
// name that is not ASCII as RFC 2231 says (filename*=utf-8”...);
// go-message's SetFilename would put an RFC 2047 encoded word inside the
// quoted string, which RFC 2047 5 forbids.
func fileEntity(f File) (entity, error) {
	mt, params, err := mime.ParseMediaType(f.Type)
	if err != nil || strings.HasPrefix(mt, "multipart/") {
		mt, params = "application/octet-stream", nil
	}
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": f.Name})
	if disp == "" {
		disp = "attachment"
	}
	e := entity{disposition: disp, encoding: "base64", content: func(w io.Writer) error {
		rc, err := f.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(w, rc)
		return err
	}}
	if allowed, ok := identityOnly[mt]; ok {
		b, err := readFile(f)
		if err != nil {
			return entity{}, err
		}
		e.content = writeBytes(b)
		canon := canonicalLines(b)
		if enc := identityEncoding(canon); enc != "" && (enc == "7bit" || allowed == "8bit") {
			e.encoding, e.content = enc, writeBytes(canon)
		} else {
			mt, params = "application/octet-stream", nil
		}
	}
	if e.ctype = mime.FormatMediaType(mt, params); e.ctype == "" {
		e.ctype = "application/octet-stream"
	}
	return e, nil
}

// identityOnly are the media types that RFC 2046 allows no encoding but
// an identity one, and the richest each allows: a message/rfc822 7bit,
// 8bit or binary (5.2.1; binary is left out, as SMTP without BINARYMIME
// cannot carry it), message/partial and message/external-body 7bit
// alone (5.2.2, 5.2.3). message/global may be encoded (RFC 6532 3.5).
var identityOnly = map[string]string{
	"message/rfc822":        "8bit",
	"message/partial":       "7bit",
	"message/external-body": "7bit",
}

// readFile reads a file's content whole, for a type whose encoding
// depends on it.
func readFile(f File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// canonicalLines ends every line of b with CRLF where a bare LF ends it,
// as a message's canonical form has them (RFC 2049 4, step 2): an
// upload saved on a system whose lines end in LF is still a message.
func canonicalLines(b []byte) []byte {
	bare := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			bare++
		}
	}
	if bare == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+bare)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// identityEncoding returns the identity encoding b can go in: "7bit" for
// 7bit data, "8bit" for 8bit data (RFC 2045 2.7, 2.8: lines of at most
// 998 octets ended by CRLF, no NUL, CR and LF only as CRLF), and "" for
// anything else, which only base64 or quoted-printable can carry.
func identityEncoding(b []byte) string {
	enc, line := "7bit", 0
	for i, c := range b {
		switch {
		case c == 0:
			return ""
		case c == '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return ""
			}
			continue
		case c == '\n':
			if i == 0 || b[i-1] != '\r' {
				return ""
			}
			line = 0
			continue
		case c >= 0x80:
			enc = "8bit"
		}
		if line++; line > 998 {
			return ""
		}
	}
	return enc
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

// header is the entity's MIME header, added bottom up (see Build). A
// multipart gets its boundary here, which write then uses.
func (e *entity) header() gomessage.Header {
	var h gomessage.Header
	if e.encoding != "" {
		h.Set("Content-Transfer-Encoding", e.encoding)
	}
	if e.description != "" {
		h.Set("Content-Description", e.description)
	}
	if e.disposition != "" {
		h.Set("Content-Disposition", e.disposition)
	}
	params := map[string]string{}
	for k, v := range e.params {
		params[k] = v
	}
	if strings.HasPrefix(e.ctype, "multipart/") {
		e.boundary = newBoundary()
		params["boundary"] = e.boundary
	}
	if strings.Contains(e.ctype, ";") {
		h.Set("Content-Type", e.ctype) // formatted already (a file's)
	} else {
		h.SetContentType(e.ctype, params)
	}
	return h
}

// prepare makes the header of the entity and of every part under it,
// and checks each before anything is written: go-message's
// MultipartWriter.CreatePart drops WriteHeader's error, so a field it
// refuses would end the part's header without its blank line, and what
// follows would be read as header fields.
func (e *entity) prepare() error {
	e.hdr = e.header()
	if err := checkHeader(e.hdr); err != nil {
		return err
	}
	for i := range e.parts {
		if err := e.parts[i].prepare(); err != nil {
			return err
		}
	}
	return nil
}

// checkHeader returns why a field of h cannot be written as one field: a
// name that is not printable ASCII without ":" (RFC 5322 2.2), a value
// with CR, LF or NUL (a line break in a value given as one line would
// start a field of the value's choosing), or a Content-Type that could
// not be formatted (an invalid media type or parameter name).
func checkHeader(h gomessage.Header) error {
	for f := h.Fields(); f.Next(); {
		k, v := f.Key(), f.Value()
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) >= 0 {
			return fmt.Errorf("invalid header field name %q", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("header field %s: a line break or NUL in its value", k)
		}
		if strings.EqualFold(k, "Content-Type") && strings.TrimSpace(v) == "" {
			return errors.New("invalid media type or parameter")
		}
	}
	return nil
}

// write writes the entity's body into w: a leaf's content in its
// transfer encoding, a multipart's parts each with its header. It is
// written here rather than by go-message's Writer, which refuses a
// charset other than utf-8 and us-ascii (it would convert the text):
// an attachment's octets are sent as they are, its Content-Type with
// every parameter as given.
func (e *entity) write(w io.Writer) error {
	if e.parts == nil {
		ew, err := encoder(e.encoding, w)
		if err != nil {
			return err
		}
		if err := e.content(ew); err != nil {
			return err
		}
		return ew.Close()
	}
	mw := textproto.NewMultipartWriter(w)
	if err := mw.SetBoundary(e.boundary); err != nil {
		return err
	}
	for i := range e.parts {
		p := &e.parts[i]
		pw, err := mw.CreatePart(p.hdr.Header)
		if err != nil {
			return err
		}
		if err := p.write(pw); err != nil {
			return err
		}
	}
	return mw.Close()
}

// encoder returns a writer that encodes into w in the transfer encoding
// enc (RFC 2045 6): quoted-printable, base64 in lines of 76 characters
// (RFC 2045 6.8), or the octets as they are ("", 7bit, 8bit).
func encoder(enc string, w io.Writer) (io.WriteCloser, error) {
	switch enc {
	case "quoted-printable":
		return quotedprintable.NewWriter(w), nil
	case "base64":
		return base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: w, max: 76}), nil
	case "", "7bit", "8bit":
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown transfer encoding %q", enc)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// lineWrapper breaks what is written into lines of max octets ended by
// CRLF; what it is given must have no line breaks of its own (base64).
type lineWrapper struct {
	w   io.Writer
	max int
	col int // octets on the current line
}

func (l *lineWrapper) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if l.col == l.max {
			if _, err := io.WriteString(l.w, "\r\n"); err != nil {
				return n, err
			}
			l.col = 0
		}
		k := min(len(b), l.max-l.col)
		m, err := l.w.Write(b[:k])
		n += m
		l.col += m
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// newBoundary returns a fresh multipart boundary (RFC 2046 5.1.1): it
// cannot occur in a quoted-printable or base64 body, and by its
// randomness in no other.
func newBoundary() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return "=_basalt_" + hex.EncodeToString(b[:])
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
