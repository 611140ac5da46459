package message

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrUnknownEncoding is Decode's answer for a Content-Transfer-Encoding it
// does not know (an x-token such as x-uuencode, or a misspelling): the body
// cannot be decoded. IMAP answers BINARY with NO [UNKNOWN-CTE] (RFC 3516
// 4.3); the webmail and search read the body as it is.
var ErrUnknownEncoding = errors.New("message: unknown content transfer encoding")

// Decode undoes the Content-Transfer-Encoding enc (RFC 2045 6; any case,
// comments and white space around it ignored, "" being 7BIT) of a part's
// body. It is
// the one decoder of the tree: IMAP's BINARY and BINARY.SIZE, IMAP search,
// the webmail's body, download and forwarding, and the parse's snippet and
// attachment sizes all use it, so they agree about every part.
//
// It is as lenient as the mail real clients send needs, and never fails on
// damaged data:
//   - base64 (RFC 2045 6.8): characters outside the alphabet (line breaks,
//     white space, stray garbage) are ignored as the RFC asks; missing
//     padding does not matter. "=" ends a quad: what follows is another
//     run of base64, as when pieces each with its padding were put one
//     after the other ("QQ==\r\nQg==" is "AB", as most mail readers have
//     it), if that run, up to its own "=" or the end, is the alphabet
//     and white space alone; anything else there (a footer a list
//     added: "-- \r\nSent from my phone") ends the data at the "=". A
//     lone sextet at the end of a run, which carries no whole octet, is
//     dropped.
//   - quoted-printable (RFC 2045 6.7): "=XX" is an octet (lower-case hex
//     too); "=" at the end of a line, white space after it allowed, is a
//     soft line break; white space at the end of a line is dropped (rule
//     3); an "=" followed by anything else is kept as written. Line ends
//     stay as they are (CRLF or a bare LF).
//   - 7bit, 8bit and binary are the body as it is.
//
// For any other encoding it returns the body unchanged together with an
// error that wraps ErrUnknownEncoding, so that a caller that may show the
// raw bytes can, and one that must refuse (IMAP BINARY) knows.
func Decode(enc string, body []byte) ([]byte, error) {
	switch normEncoding(enc) {
	case "7BIT", "8BIT", "BINARY":
		return body, nil
	case "BASE64":
		return decodeBase64Body(body), nil
	case "QUOTED-PRINTABLE":
		return decodeQPBody(body), nil
	}
	return body, fmt.Errorf("decode %q: %w", enc, ErrUnknownEncoding)
}

// DecodedSize is len of what Decode returns, counted without decoding:
// it runs for every part at delivery (the attachment sizes) and for
// IMAP's BINARY.SIZE, and allocates nothing.
func DecodedSize(enc string, body []byte) (int64, error) {
	switch normEncoding(enc) {
	case "BASE64":
		return base64Size(body), nil
	case "QUOTED-PRINTABLE":
		_, n := walkQP(body, nil, false)
		return n, nil
	}
	b, err := Decode(enc, body)
	return int64(len(b)), err
}

// Decode returns the part's body, raw being the whole message the part
// was parsed from, with its transfer encoding undone by Decode. The body
// of a multipart is returned as it is: its encoding can only be an
// identity one (RFC 2045 6.4), and one that says otherwise is not what
// the parse split its children by. A message/rfc822 part is decoded like
// any other: RFC 2046 5.2.1 forbids encoding one, but IMAP BINARY and a
// download must still agree when a sender did.
func (p *Part) Decode(raw []byte) ([]byte, error) {
	body := p.RawBody(raw)
	if p.IsMultipart() {
		return body, nil
	}
	return Decode(p.Encoding, body)
}

// DecodedSize is len of what p.Decode returns, counted as DecodedSize
// counts.
func (p *Part) DecodedSize(raw []byte) (int64, error) {
	body := p.RawBody(raw)
	if p.IsMultipart() {
		return int64(len(body)), nil
	}
	return DecodedSize(p.Encoding, body)
}

// RawBody returns the part's body as stored, raw being the whole message
// the part was parsed from: raw[BodyStart:BodyEnd], cut to raw's length
// should the two not match.
func (p *Part) RawBody(raw []byte) []byte {
	n := int64(len(raw))
	a, b := max(0, min(p.BodyStart, n)), max(0, min(p.BodyEnd, n))
	if a > b {
		return nil
	}
	return raw[a:b]
}

// normEncoding is a Content-Transfer-Encoding as compared, as the parse
// keeps it in Part.Encoding: comments removed, upper-case (RFC 2045 6.1:
// the values are case-insensitive), "7BIT" when absent.
func normEncoding(enc string) string {
	return transferEncoding(enc)
}

// decodeBase64Body decodes a base64 body as Decode says.
func decodeBase64Body(b []byte) []byte {
	out, _ := walkBase64(b, make([]byte, 0, len(b)/4*3+3), true)
	return out
}

// base64Size returns the length decodeBase64Body gives, without decoding.
func base64Size(b []byte) int64 {
	_, n := walkBase64(b, nil, false)
	return n
}

// walkBase64 reads a base64 body as Decode says: it appends the octets
// to out when decode is set, and returns how many there are either way,
// so that the size and the decoding can never disagree.
func walkBase64(b, out []byte, decode bool) ([]byte, int64) {
	var (
		quad [4]byte // the sextets of the quad being read
		q    int     // how many it has
		n    int64
	)
	for i, c := range b {
		if v := sextets[c]; v < 64 {
			quad[q] = v
			if q++; q == 4 {
				n += 3
				if decode {
					out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2, quad[2]<<6|quad[3])
				}
				q = 0
			}
			continue
		}
		if c != '=' {
			continue
		}
		out, n = endQuad(quad, q, out, n, decode)
		q = 0
		if !cleanRun(b[i+1:]) {
			return out, n
		}
	}
	return endQuad(quad, q, out, n, decode)
}

// endQuad ends a quad of q sextets cut short by "=" or the end: two make
// one octet, three two, one none.
func endQuad(quad [4]byte, q int, out []byte, n int64, decode bool) ([]byte, int64) {
	if q < 2 {
		return out, n
	}
	if decode {
		out = append(out, quad[0]<<2|quad[1]>>4)
		if q == 3 {
			out = append(out, quad[1]<<4|quad[2]>>2)
		}
	}
	return out, n + int64(q-1)
}

// sextets maps a character of the base64 alphabet to its value, and
// every other octet to 0xff. It is a constant table, never written.
var sextets = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = byte(i)
	}
	return t
}()

// cleanRun reports whether the run of base64 at the start of b, up to
// the next "=" or the end, has nothing but the alphabet and white space:
// after an "=", only such a run is read on. Each run is looked at here
// once, so the whole body is at most twice.
func cleanRun(b []byte) bool {
	for _, c := range b {
		switch {
		case c == '=':
			return true
		case sextets[c] == 0xff && c != ' ' && c != '\t' && c != '\r' && c != '\n':
			return false
		}
	}
	return true
}

// decodeQPBody decodes a quoted-printable body (RFC 2045 6.7): "=XX" is an
// octet, "=" at the end of a line is a soft line break, and white space at
// the end of a line is dropped (rule 3).
func decodeQPBody(b []byte) []byte {
	out, _ := walkQP(b, make([]byte, 0, len(b)), true)
	return out
}

// walkQP reads a quoted-printable body as decodeQPBody says: it appends
// the octets to out when decode is set, and returns how many there are
// either way, so that the size and the decoding can never disagree.
func walkQP(b, out []byte, decode bool) ([]byte, int64) {
	var n int64
	for len(b) > 0 {
		line := b
		eol := ""
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
			eol = "\r\n"
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			} else {
				eol = "\n"
			}
		} else {
			b = nil
		}
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[len(line)-1] == '=' {
			line, eol = line[:len(line)-1], "" // soft line break
		}
		for len(line) > 0 {
			i := bytes.IndexByte(line, '=')
			if i < 0 {
				i = len(line)
			}
			n += int64(i)
			if decode {
				out = append(out, line[:i]...)
			}
			if line = line[i:]; len(line) == 0 {
				break
			}
			// line starts with "=": an octet, or an "=" kept as written.
			n++
			if len(line) >= 3 && isHex(line[1]) && isHex(line[2]) {
				if decode {
					out = append(out, unhex(line[1])<<4|unhex(line[2]))
				}
				line = line[3:]
			} else {
				if decode {
					out = append(out, '=')
				}
				line = line[1:]
			}
		}
		n += int64(len(eol))
		if decode {
			out = append(out, eol...)
		}
	}
	return out, n
}
