package imap

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// What the guard does with a whole command line before the library sees
// it, for two things the library release cannot do (quirks.go):
//
//   - ID (RFC 2971) is not dispatched by the library, which answers BAD
//     "Unknown command" (and before login ends the connection). The guard
//     answers it itself; it does so when the library asks for the next
//     command, that is after every earlier command has been answered, so
//     the answers stay in order.
//   - LIST and LSUB patterns are decoded as modified UTF-7 (RFC 3501
//     5.1.3) and a pattern that is not valid mUTF-7, such as one made of
//     any ASTRING-CHARs ("!#$&'+,-..."), is answered NO [SERVERBUG]
//     (imapserver/list.go:209). Such a pattern can only mean its own
//     characters, so the guard escapes its "&"s ("&-") and the library
//     decodes it back to what the client sent.
//
// Lines with a literal are left to the library as they are.

// lineKind is what a command line at the start of the client's bytes is
// to the guard.
type lineKind uint8

const (
	linePass lineKind = iota // the library's, as it is
	lineMore                 // not enough read yet to tell
	lineID                   // an ID command, the guard's to answer
	lineList                 // a LIST or LSUB command, its patterns to be made readable
)

// classify looks at the command line at the start of b and returns its
// kind and, for lineID and lineList, its length with its line end.
func (g *guard) classify(b []byte) (lineKind, int) {
	g.lsub.Store(false)
	if g.in.afterIdle {
		return linePass, 0
	}
	limit := g.srv.cfg.MaxLineLength
	lf := bytes.IndexByte(b, '\n')
	line := b
	if lf >= 0 {
		line = b[:lf]
	}
	more := lineMore
	if lf >= 0 || len(b) > limit {
		// The whole line is here, or it is too long for the guard to
		// wait for (the scan refuses it).
		more = linePass
	}
	tag, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return more, 0
	}
	end := bytes.IndexAny(rest, " \r")
	if end < 0 && lf < 0 {
		return more, 0
	}
	if end < 0 {
		end = len(rest)
	}
	var kind lineKind
	cmd := string(rest[:end])
	g.lsub.Store(strings.EqualFold(cmd, "LSUB"))
	switch {
	case strings.EqualFold(cmd, "ID"):
		kind = lineID
	case strings.EqualFold(cmd, "LIST"), strings.EqualFold(cmd, "LSUB"):
		kind = lineList
	default:
		return linePass, 0
	}
	if lf < 0 || lf > limit {
		return more, 0
	}
	if !validTag(tag) || announcesLiteral(line) {
		return linePass, 0
	}
	return kind, lf + 1
}

// validTag reports whether a tag is one (RFC 9051 9: tag = 1*<any
// ASTRING-CHAR except "+">).
func validTag(tag []byte) bool {
	if len(tag) == 0 {
		return false
	}
	for _, c := range tag {
		if c == '+' || !isAStringChar(c) {
			return false
		}
	}
	return true
}

// isAStringChar: ATOM-CHAR or "]" (RFC 9051 9).
func isAStringChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\':
		return false
	}
	return true
}

// announcesLiteral reports whether a line (without its LF) ends with a
// literal's announcement.
func announcesLiteral(line []byte) bool {
	var l litScan
	for _, c := range line {
		l.feed(c)
	}
	return l.announced()
}

// readablePatterns returns a LIST or LSUB line with every argument that
// is not valid modified UTF-7 made so, by escaping its "&"s: the library
// decodes it back to the characters the client sent.
func readablePatterns(line []byte) []byte {
	out := make([]byte, 0, len(line)+8)
	// Past the tag and the command name.
	sp := 0
	for n := 0; sp < len(line) && n < 2; sp++ {
		if line[sp] == ' ' {
			n++
		}
	}
	out = append(out, line[:sp]...)
	for i := sp; i < len(line); {
		c := line[i]
		var tok []byte
		switch {
		case c == '"':
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				// An unterminated string: the library's to refuse.
				return append(out, line[i:]...)
			}
			out = append(out, '"')
			tok, i = line[i+1:j], j
		case c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n':
			out = append(out, c)
			i++
			continue
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '(' && line[j] != ')' && line[j] != '\r' && line[j] != '\n' {
				j++
			}
			tok, i = line[i:j], j-1
		}
		if bytes.IndexByte(tok, '&') >= 0 && !validMUTF7(string(tok)) {
			tok = bytes.ReplaceAll(tok, []byte("&"), []byte("&-"))
		}
		out = append(out, tok...)
		if c == '"' {
			out = append(out, '"')
		}
		i++
	}
	return out
}

// mutf7Base64 is modified UTF-7's base64 (RFC 3501 5.1.3): "," for "/",
// no padding.
var mutf7Base64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// validMUTF7 reports whether the library's decoder takes s as modified
// UTF-7 (RFC 3501 5.1.3; UTF-8 passes too): printable ASCII, "&-" for
// "&", and "&...-" for UTF-16 of characters that are not printable ASCII,
// no two such runs in a row.
func validMUTF7(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	shifted := false // the last thing was a base64 run
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e && c < utf8.RuneSelf {
			return false
		}
		if c != '&' {
			shifted = false
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return false
		}
		run := s[i+1 : i+1+j]
		i += j + 1
		if run == "" {
			shifted = false
			continue
		}
		if shifted || !validUTF16Run(run) {
			return false
		}
		shifted = true
	}
	return true
}

// validUTF16Run reports whether a base64 run holds whole UTF-16 of
// characters that could not have been written as ASCII.
func validUTF16Run(run string) bool {
	b, err := mutf7Base64.DecodeString(run)
	if err != nil || len(b)%2 == 1 || len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i += 2 {
		r := rune(b[i])<<8 | rune(b[i+1])
		switch {
		case utf16.IsSurrogate(r):
			i += 2
			if i >= len(b) || utf16.DecodeRune(r, rune(b[i])<<8|rune(b[i+1])) == utf8.RuneError {
				return false
			}
		case r >= 0x20 && r <= 0x7e:
			return false
		}
	}
	return true
}

// maxIDPairs and the field and value lengths are RFC 2971 3.3's limits.
const (
	maxIDPairs    = 30
	maxIDField    = 30
	maxIDValue    = 1024
	idServerReply = `* ID ("name" "Basalt")`
)

// answerID answers an ID command line (RFC 2971 3.1): the server's
// identification, whatever the client's, which is logged at debug level.
// Its answer goes out through Write, so the guard's own count of bad
// commands sees it.
func (g *guard) answerID(line []byte) {
	tag, rest, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	_, args, _ := bytes.Cut(rest, []byte(" "))
	params, ok := parseIDParams(string(args))
	var reply string
	if !ok {
		reply = string(tag) + " BAD [CLIENTBUG] Syntax error in ID parameters (RFC 2971)\r\n"
	} else {
		if len(params) > 0 {
			g.srv.log.Debug("client identified", "remote", g.RemoteAddr().String(), "name", params["name"], "version", params["version"])
		}
		reply = idServerReply + "\r\n" + string(tag) + " OK ID completed\r\n"
	}
	g.Write([]byte(reply))
}

// parseIDParams parses id_params_list (RFC 2971 4): NIL, or a list of
// field and value pairs, strings quoted here (a literal leaves the line
// to the library), values possibly NIL.
func parseIDParams(s string) (map[string]string, bool) {
	if strings.EqualFold(s, "NIL") {
		return nil, true
	}
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, false
	}
	s = s[1 : len(s)-1]
	params := map[string]string{}
	for n := 0; s != ""; n++ {
		if n > 0 {
			if s[0] != ' ' {
				return nil, false
			}
			s = s[1:]
		}
		field, rest, ok := quoted(s)
		if !ok || len(field) > maxIDField || len(rest) == 0 || rest[0] != ' ' || n == maxIDPairs {
			return nil, false
		}
		rest = rest[1:]
		var value string
		if len(rest) >= 3 && strings.EqualFold(rest[:3], "NIL") {
			rest = rest[3:]
		} else if value, rest, ok = quoted(rest); !ok || len(value) > maxIDValue {
			return nil, false
		}
		params[strings.ToLower(field)] = value
		s = rest
	}
	return params, true
}

// quoted reads a quoted string (RFC 9051 9) at the start of s.
func quoted(s string) (value, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 == len(s) || s[i+1] != '"' && s[i+1] != '\\' {
				return "", s, false
			}
			i++
			b.WriteByte(s[i])
		case '\r', '\n':
			return "", s, false
		default:
			b.WriteByte(c)
		}
	}
	return "", s, false
}
