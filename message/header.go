package message

import (
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// readHeader reads the header that starts at raw[start] and may extend to
// raw[end]. It returns the header fields and the offset of the body: just
// past the blank line that ends the header (RFC 5322 2.1), or end when there
// is none.
//
// It is lenient where textproto.ReadHeader stops at the first error: lines
// that are not "name: value" fields are skipped but stay part of the header,
// and a header whose very first line is not a field (a part that starts
// straight with its body, common in broken multiparts) is taken to be empty,
// so the body starts at start. A leading mbox "From " line is skipped.
// CRLF and bare LF both end lines.
//
// budget is how many more fields may be recorded (MaxFields); the fields
// recorded are taken from it, and those past it are passed over.
func readHeader(raw []byte, start, end int, budget *int) (textproto.Header, int) {
	type span struct{ start, end int }
	var (
		fields []span
		pos    = start
		body   = end
		inside bool // the last line started a field that may be continued
	)
	for pos < end {
		next := end
		if i := bytes.IndexByte(raw[pos:end], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := raw[pos:next]
		if isBlankLine(line) {
			body = next
			break
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
			// RFC 5322 2.2.3: a folded continuation of the previous field.
			if inside {
				fields[len(fields)-1].end = next
			} else if pos == start {
				return textproto.Header{}, start
			}
		case isFieldLine(line):
			if *budget <= 0 {
				inside = false // past MaxFields: passed over
				break
			}
			*budget--
			fields = append(fields, span{pos, next})
			inside = true
		case pos == start && !bytes.HasPrefix(line, []byte("From ")):
			return textproto.Header{}, start
		default:
			inside = false
		}
		pos = next
	}

	// textproto.Header.Get returns the field added first of those added
	// last: adding in reverse makes Get return the first occurrence in the
	// message, as ReadHeader does.
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw(raw[fields[i].start:fields[i].end:fields[i].end])
	}
	return h, body
}

// isBlankLine reports whether line (with its line ending) is empty.
func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// isFieldLine reports whether line starts a header field: a non-empty name
// of printable US-ASCII other than ":" (RFC 5322 2.2), optionally followed by
// white space (obsolete syntax, RFC 5322 4.5), then a colon.
func isFieldLine(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}
