package message

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// Text returns the part's body as UTF-8 text, as every reader of it
// has it (IMAP SEARCH, the webmail's view, the snippet): its transfer
// encoding undone by Decode (an unknown one read as it is), then its
// charset (RFC 2046 4.1.2) converted with any that
// github.com/emersion/go-message/charset knows. An unknown charset, and
// octets that are not UTF-8 where UTF-8 or US-ASCII is said, are read as
// ISO-8859-1 octet by octet, as header text is (validUTF8). With max > 0
// it returns at most max octets, cut between two characters, and whether
// it cut anything; the part's header is not read again (the parse has
// what this needs, and a part's header is bounded by no header limit).
func (p *Part) Text(raw []byte, max int) (string, bool) {
	b, _ := p.Decode(raw)
	return charsetText(p.Params["charset"], b, max)
}

// charsetText is Part.Text for the octets b in the charset cs.
func charsetText(cs string, b []byte, max int) (string, bool) {
	// Up to utf8.UTFMax octets more than max are read, so that a
	// character cut by the limit falls wholly after max, where the
	// text is cut.
	limit := -1
	if max > 0 {
		limit = max + utf8.UTFMax
	}
	out, ok := convert(cs, b, limit)
	if !ok {
		out = b
		if limit >= 0 && len(out) > limit {
			out = out[:limit]
		}
	}
	s := validUTF8(out)
	if max <= 0 || len(s) <= max {
		return s, false
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}

// toUTF8 converts b from the named charset to UTF-8. It reports false when
// the charset is unknown, so that the caller can keep the original text
// (an encoded word in such a charset stays as written).
func toUTF8(cs string, b []byte) (string, bool) {
	out, ok := convert(cs, b, -1)
	if !ok {
		return "", false
	}
	return validUTF8(out), true
}

// convert converts b from the charset cs to UTF-8, at most limit octets
// of it when limit >= 0, and reports false when the charset is unknown to
// github.com/emersion/go-message/charset or its decoder fails. UTF-8 and
// US-ASCII, and their aliases, are b as it is (the caller makes it valid
// UTF-8). An RFC 2231 language suffix ("utf-8*en", RFC 2231 5) is
// ignored.
func convert(cs string, b []byte, limit int) ([]byte, bool) {
	cs = strings.ToLower(strings.TrimSpace(cs))
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i]
	}
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if limit >= 0 && len(b) > limit {
			b = b[:limit]
		}
		return b, true
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	if limit >= 0 {
		r = io.LimitReader(r, int64(limit))
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, false
	}
	return out, true
}

// validUTF8 returns b as a string, reading any bytes that are not valid
// UTF-8 as ISO-8859-1: raw 8-bit header text is most often Latin-1, and the
// result must be valid UTF-8 to survive JSON storage unchanged.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(rune(b[0]))
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// cleanText makes s valid UTF-8 and turns control characters (line breaks
// from a decoded word, NULs) into spaces, for single-line display fields.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = validUTF8([]byte(s))
	}
	if strings.IndexFunc(s, isCtl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isCtl(r) {
			return ' '
		}
		return r
	}, s)
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// HeaderText decodes the RFC 2047 encoded words in a header value and
// returns valid UTF-8 without control characters (a line break, of a
// folded value too, becomes a space). It is the one decoder of header
// text: the ENVELOPE, the addresses' names, IMAP SEARCH and the
// webmail's header list all use it, so they agree about every field.
// It goes word by word: words in a charset that cannot be converted, and
// malformed words, are kept as written, and the others are decoded all
// the same; raw octets that are not UTF-8 are read as ISO-8859-1. White space between adjacent encoded words is dropped (RFC 2047
// 6.2) unless one of them had to be kept as written; adjacent words in the
// same charset are converted together, so that a multi-byte character split
// across two words survives.
func HeaderText(s string) string {
	s = unfold(s)
	if !strings.Contains(s, "=?") {
		return cleanText(s)
	}
	var (
		out strings.Builder
		// The run of adjacent encoded words in one charset not yet written:
		// s[runStart:runEnd] as written, runData decoded, runGap the white
		// space before it when it follows another encoded word.
		runCS            string
		runData          []byte
		runStart, runEnd = -1, -1
		runGap           string
		prevOK           bool // the run written last was converted
	)
	flush := func() {
		if runStart < 0 {
			return
		}
		text, ok := toUTF8(runCS, runData)
		if !ok || !prevOK {
			out.WriteString(runGap)
		}
		if ok {
			out.WriteString(text)
		} else {
			out.WriteString(s[runStart:runEnd])
		}
		prevOK, runStart, runData = ok, -1, runData[:0]
	}
	pos, lastWord := 0, false
	for pos < len(s) {
		i := strings.Index(s[pos:], "=?")
		if i < 0 {
			break
		}
		at := pos + i
		cs, data, n, ok := parseEncodedWord(s[at:])
		if !ok {
			flush()
			out.WriteString(s[pos : at+2])
			pos, lastWord, prevOK = at+2, false, false
			continue
		}
		gap := s[pos:at]
		adjacent := lastWord && strings.Trim(gap, " \t\r\n") == ""
		if adjacent && strings.EqualFold(cs, runCS) && runStart >= 0 {
			runData = append(runData, data...)
			runEnd = at + n
		} else {
			flush()
			if adjacent {
				runGap = gap
			} else {
				out.WriteString(gap)
				runGap, prevOK = "", false
			}
			runCS, runData, runStart, runEnd = cs, append(runData[:0], data...), at, at+n
		}
		pos, lastWord = at+n, true
	}
	flush()
	out.WriteString(s[pos:])
	return cleanText(out.String())
}

// unfold removes the line breaks of a folded header value (RFC 5322
// 2.2.3): a CRLF, or a bare LF, before white space.
func unfold(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' && i+2 < len(s) && s[i+1] == '\n' && (s[i+2] == ' ' || s[i+2] == '\t') {
			i++
			continue
		}
		if s[i] == '\n' && i+1 < len(s) && (s[i+1] == ' ' || s[i+1] == '\t') {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseEncodedWord parses the RFC 2047 encoded word at the start of s
// ("=?charset?B?text?=" or "=?charset?Q?text?=") and returns its charset,
// decoded octets and length in s.
func parseEncodedWord(s string) (cs string, data []byte, n int, ok bool) {
	if !strings.HasPrefix(s, "=?") {
		return "", nil, 0, false
	}
	rest := s[2:]
	q := strings.IndexByte(rest, '?')
	if q <= 0 || q > 75 || strings.ContainsAny(rest[:q], " \t\r\n") {
		return "", nil, 0, false
	}
	cs = rest[:q]
	rest = rest[q+1:]
	if len(rest) < 2 || rest[1] != '?' {
		return "", nil, 0, false
	}
	enc := rest[0]
	rest = rest[2:]
	end := strings.Index(rest, "?=")
	if end < 0 {
		return "", nil, 0, false
	}
	text := rest[:end]
	n = 2 + q + 1 + 2 + end + 2
	switch enc {
	case 'B', 'b':
		data, ok = decodeBase64Word(text)
	case 'Q', 'q':
		data, ok = decodeQWord(text), true
	}
	if !ok {
		return "", nil, 0, false
	}
	return cs, data, n, true
}

// decodeBase64Word decodes the text of a B encoded word (RFC 2047 4.1),
// tolerating missing padding.
func decodeBase64Word(text string) ([]byte, bool) {
	text = strings.TrimRight(text, "=")
	b, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil {
		return nil, false
	}
	return b, true
}

// decodeQWord decodes the text of a Q encoded word (RFC 2047 4.2): "_" is a
// space and "=XX" an octet; anything else, even if it should have been
// encoded, stands for itself.
func decodeQWord(text string) []byte {
	b := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			b = append(b, ' ')
		case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
			b = append(b, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
