package message

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// Parse parses a raw RFC 5322 message. It never fails and never panics:
// malformed mail yields a best-effort result, because an IMAP server must
// still answer for it (RFC 3501 7.4.2). raw is not retained.
func Parse(raw []byte) (info *Info) {
	defer func() {
		// A bug here must not cost the message: fall back to describing it
		// as one text/plain part.
		if recover() != nil {
			info = fallbackInfo(raw)
		}
	}()
	return parse(raw)
}

// parse does the work of Parse, without its recover, so that tests see
// panics.
func parse(raw []byte) *Info {
	p := &parser{raw: raw, fields: MaxFields}
	body, h := p.entity(0, len(raw), 0, false)
	info := &Info{
		Version:    FormatVersion,
		Envelope:   envelopeOf(h),
		Body:       body,
		HeaderSize: body.BodyStart,
		References: references(h),
	}
	summarize(info, raw)
	return info
}

// fallbackInfo describes raw as a single text/plain part with no header.
func fallbackInfo(raw []byte) *Info {
	return &Info{
		Version: FormatVersion,
		Body:    opaquePart(raw, 0, len(raw)),
	}
}

// parser holds the state of one Parse call.
type parser struct {
	raw    []byte
	parts  int // parts recorded so far, bounded by MaxParts
	fields int // header fields that may still be recorded (MaxFields)
}

// entity parses the MIME entity (header and body) in raw[start:end]: the
// message itself, a multipart child or an encapsulated message. depth counts
// the enclosing multiparts and messages. inDigest selects the
// multipart/digest default type. It returns the part and its header.
func (p *parser) entity(start, end, depth int, inDigest bool) (Part, textproto.Header) {
	p.parts++
	h, bodyStart := readHeader(p.raw, start, end, &p.fields)
	part := Part{
		HeaderStart: int64(start),
		BodyStart:   int64(bodyStart),
		BodyEnd:     int64(end),
		Size:        int64(end - bodyStart),
		Encoding:    transferEncoding(h.Get("Content-Transfer-Encoding")),
		ID:          cleanText(strings.TrimSpace(h.Get("Content-Id"))),
		Description: cleanText(strings.TrimSpace(h.Get("Content-Description"))),
		MD5:         cleanText(strings.TrimSpace(h.Get("Content-Md5"))),
		Location:    location(h.Get("Content-Location")),
		Language:    languages(h.Get("Content-Language")),
	}

	ct := h.Get("Content-Type")
	typ, sub, params, ok := parseMediaType(ct)
	switch {
	case ok:
		part.Type, part.Subtype, part.Params = typ, sub, params
	case inDigest && !h.Has("Content-Type"):
		// RFC 2046 5.1.5: in a digest the default is message/rfc822.
		part.Type, part.Subtype = "message", "rfc822"
	default:
		// RFC 2045 5.2: no, or an invalid, Content-Type means
		// text/plain; charset=us-ascii.
		part.Type, part.Subtype = "text", "plain"
		part.Params = map[string]string{"charset": "us-ascii"}
	}
	if d := h.Get("Content-Disposition"); d != "" {
		part.Disposition, part.DispositionParams = parseParamHeader(d)
		if !isToken(part.Disposition) {
			part.Disposition = ""
		}
	}

	// The boundary is matched as written, but what is stored must be valid
	// UTF-8 (RFC 2046 5.1.1 allows only US-ASCII in it anyway).
	boundary, hasBoundary := part.Params["boundary"]
	if hasBoundary && !utf8.ValidString(boundary) {
		part.Params["boundary"] = validUTF8([]byte(boundary))
	}

	body := p.raw[bodyStart:end]
	switch {
	case part.Type == "multipart":
		if depth < MaxDepth {
			part.Parts = p.multipart(bodyStart, end, depth+1, boundary, part.Subtype == "digest")
		}
		if len(part.Parts) == 0 {
			// IMAP has no multipart without children (RFC 3501 body-type-mpart):
			// the body becomes one headerless text/plain child.
			part.Parts = []Part{opaquePart(p.raw, bodyStart, end)}
		}
	case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global"):
		// RFC 3501 7.4.2 and RFC 9051 7.5.2: a message part carries the
		// envelope, structure and line count of the message inside it.
		part.Lines = countLines(body)
		if depth < MaxDepth && isIdentityEncoding(part.Encoding) {
			inner, ih := p.entity(bodyStart, end, depth+1, false)
			env := envelopeOf(ih)
			part.Envelope, part.Body = &env, &inner
		} else {
			// Too deep, or encoded (which RFC 2046 5.2.1 forbids) so the
			// raw bytes are not the message: describe it as opaque.
			inner := opaquePart(p.raw, bodyStart, end)
			part.Envelope, part.Body = &Envelope{}, &inner
		}
	case part.Type == "text":
		part.Lines = countLines(body)
	}
	return part, h
}

// multipart splits the body raw[start:end] of a multipart at its boundary
// delimiter lines (RFC 2046 5.1.1) and parses each part. The preamble and
// epilogue are ignored. A multipart without a closing delimiter keeps the
// parts it has, the last one running to end. Parts past MaxParts are
// dropped.
func (p *parser) multipart(start, end, depth int, boundary string, digest bool) []Part {
	if boundary == "" {
		return nil
	}
	var (
		raw       = p.raw
		delim     = []byte("--" + boundary)
		parts     []Part
		partStart = -1 // start of the part being read, -1 before the first delimiter
		pos       = start
	)
	for pos < end {
		i := bytes.Index(raw[pos:end], delim)
		if i < 0 {
			break
		}
		at := pos + i
		pos = at + len(delim)
		if at > start && raw[at-1] != '\n' {
			continue // not at the start of a line
		}
		lineEnd := end
		if j := bytes.IndexByte(raw[pos:end], '\n'); j >= 0 {
			lineEnd = pos + j + 1
		}
		rest := raw[pos:lineEnd]
		closing := bytes.HasPrefix(rest, []byte("--"))
		if closing {
			rest = rest[2:]
		}
		if len(bytes.Trim(rest, " \t\r\n")) != 0 {
			continue // a longer boundary that starts with this one
		}
		if partStart >= 0 {
			// The line break before the delimiter belongs to the delimiter.
			partEnd := at
			if partEnd > partStart && raw[partEnd-1] == '\n' {
				partEnd--
				if partEnd > partStart && raw[partEnd-1] == '\r' {
					partEnd--
				}
			}
			part, _ := p.entity(partStart, partEnd, depth, digest)
			parts = append(parts, part)
		}
		if closing || p.parts >= MaxParts {
			return parts
		}
		partStart, pos = lineEnd, lineEnd
	}
	if partStart >= 0 {
		part, _ := p.entity(partStart, end, depth, digest)
		parts = append(parts, part)
	}
	return parts
}

// opaquePart describes raw[start:end] as a headerless text/plain part: what
// is left when a body cannot be, or may not be, parsed further.
func opaquePart(raw []byte, start, end int) Part {
	return Part{
		Type:        "text",
		Subtype:     "plain",
		Params:      map[string]string{"charset": "us-ascii"},
		Encoding:    "7BIT",
		Size:        int64(end - start),
		Lines:       countLines(raw[start:end]),
		HeaderStart: int64(start),
		BodyStart:   int64(start),
		BodyEnd:     int64(end),
	}
}

// countLines counts the text lines of b: CRLF and bare LF both end a line,
// and a last line without a line ending counts too.
func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// transferEncoding normalizes a Content-Transfer-Encoding value: comments
// removed, upper-case, "7BIT" when absent (RFC 2045 6.1).
func transferEncoding(v string) string {
	v = strings.ToUpper(strings.TrimSpace(stripComments(v)))
	if v == "" {
		return "7BIT"
	}
	return cleanText(v)
}

// isIdentityEncoding reports whether a body in this Content-Transfer-Encoding
// is stored as it reads (RFC 2045 6.2).
func isIdentityEncoding(enc string) bool {
	return enc == "7BIT" || enc == "8BIT" || enc == "BINARY"
}

// languages parses Content-Language (RFC 3282 2): a comma-separated list of
// language tags, with comments allowed.
func languages(v string) []string {
	v = stripComments(v)
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var tags []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, cleanText(t))
		}
	}
	return tags
}

// location normalizes Content-Location (RFC 2557 4.1): the URI with the white
// space of header folding removed.
func location(v string) string {
	if v == "" {
		return ""
	}
	return cleanText(strings.Join(strings.Fields(v), ""))
}
