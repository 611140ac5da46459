package message

import (
	"sort"
	"strconv"
	"strings"
)

// maxParamSection bounds the section numbers of RFC 2231 parameter
// continuations that are honoured.
const maxParamSection = 1000

// parseParamHeader parses a structured header of the form
// "value; name=value; ..." (Content-Type, Content-Disposition; RFC 2045 5.1,
// RFC 2183 2). The leading value is returned with comments removed, trimmed
// and lower-cased. Parameter names are lower-cased; values are unquoted,
// RFC 2231 continuations joined and charsets converted, and RFC 2047 encoded
// words decoded, except for "boundary" which is kept exactly (RFC 2046
// 5.1.1: it is matched octet for octet). The parser never fails: segments it
// cannot read are skipped. The first of two parameters with one name wins;
// an RFC 2231 form wins over a plain one.
func parseParamHeader(s string) (string, map[string]string) {
	segs := splitUnquoted(s, ';')
	value := strings.ToLower(strings.TrimSpace(stripComments(segs[0])))

	type section struct {
		text     string
		extended bool
	}
	type param struct {
		plain    string
		hasPlain bool
		sections map[int]section
	}
	var order []string
	found := map[string]*param{}
	get := func(name string) *param {
		p := found[name]
		if p == nil {
			p = &param{}
			found[name] = p
			order = append(order, name)
		}
		return p
	}

	for _, seg := range segs[1:] {
		eq := strings.IndexByte(seg, '=')
		if eq < 0 {
			continue
		}
		name := strings.ToLower(strings.TrimSpace(stripComments(seg[:eq])))
		if name == "" {
			continue
		}
		val := paramValue(seg[eq+1:])

		// RFC 2231 3 and 4: name*N for continuations, a trailing * for an
		// extended (charset'language'percent-encoded) value.
		extended := strings.HasSuffix(name, "*")
		base := strings.TrimSuffix(name, "*")
		idx := -1
		if star := strings.IndexByte(base, '*'); star >= 0 {
			n, err := strconv.Atoi(base[star+1:])
			if err != nil || n < 0 || n > maxParamSection {
				continue
			}
			base, idx = base[:star], n
		} else if extended {
			idx = 0
		}
		if base == "" {
			continue
		}
		p := get(base)
		if idx < 0 {
			if !p.hasPlain {
				p.plain, p.hasPlain = val, true
			}
			continue
		}
		if p.sections == nil {
			p.sections = map[int]section{}
		}
		if _, dup := p.sections[idx]; !dup {
			p.sections[idx] = section{val, extended}
		}
	}
	if len(order) == 0 {
		return value, nil
	}

	params := make(map[string]string, len(order))
	for _, name := range order {
		p := found[name]
		if len(p.sections) == 0 {
			if name == "boundary" {
				params[name] = p.plain
			} else {
				params[name] = HeaderText(p.plain)
			}
			continue
		}
		idxs := make([]int, 0, len(p.sections))
		for i := range p.sections {
			idxs = append(idxs, i)
		}
		sort.Ints(idxs)
		var (
			cs  string
			buf []byte
		)
		for n, i := range idxs {
			sec := p.sections[i]
			text := sec.text
			if !sec.extended {
				buf = append(buf, text...)
				continue
			}
			if n == 0 {
				// RFC 2231 4: only the first section names the charset and
				// language: charset'language'value.
				if a := strings.IndexByte(text, '\''); a >= 0 {
					if b := strings.IndexByte(text[a+1:], '\''); b >= 0 {
						cs, text = text[:a], text[a+1+b+1:]
					}
				}
			}
			buf = appendPercentDecoded(buf, text)
		}
		v, ok := toUTF8(cs, buf)
		if !ok {
			v = validUTF8(buf) // unknown charset: keep the octets as they are
		}
		if name == "boundary" {
			params[name] = string(buf)
		} else {
			params[name] = cleanText(v)
		}
	}
	return value, params
}

// paramValue returns a parameter value: the content of a quoted-string
// (RFC 2045 5.1, RFC 5322 3.2.4) with its quoted-pairs undone, or a token,
// trimmed and without a trailing comment. Unquoted values holding spaces
// (invalid, but common for file names) are kept whole.
func paramValue(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if strings.HasPrefix(s, "\"") {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s):
				i++
				b.WriteByte(s[i])
			case c == '"':
				return b.String()
			case c == '\r' || c == '\n':
			default:
				b.WriteByte(c)
			}
		}
		return b.String() // unterminated: take what there is
	}
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// splitUnquoted splits s at each sep that is outside quoted strings and
// comments.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	start, quoted, depth := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && (quoted || depth > 0):
			i++
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"' && depth == 0:
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// stripComments removes RFC 5322 3.2.2 comments (which nest) from s, outside
// quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	quoted, depth := false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					b.WriteByte(' ')
				}
			}
			continue
		case quoted && c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			i++
			c = s[i]
		case quoted && c == '"':
			quoted = false
		case !quoted && c == '"':
			quoted = true
		case !quoted && c == '(':
			depth = 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// appendPercentDecoded appends s with RFC 2231 %XX escapes decoded; a "%"
// not followed by two hex digits stands for itself.
func appendPercentDecoded(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}

// parseMediaType parses a Content-Type header (RFC 2045 5.1). ok is false
// when the header is missing or its type/subtype is not two RFC 2045
// tokens, in which case the caller applies the default (RFC 2045 5.2).
func parseMediaType(s string) (typ, sub string, params map[string]string, ok bool) {
	v, params := parseParamHeader(s)
	typ, sub, found := strings.Cut(v, "/")
	typ, sub = strings.TrimSpace(typ), strings.TrimSpace(sub)
	if !found || !isToken(typ) || !isToken(sub) {
		return "", "", nil, false
	}
	return typ, sub, params, true
}

// isToken reports whether s is a non-empty RFC 2045 5.1 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}
