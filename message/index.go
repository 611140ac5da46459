package message

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a full-text index and a sorted listing take from a parsed message
// (the store's search and sort columns).

// IndexText returns the text a full-text index holds of a message's body:
// every text/plain and text/html part that is message text rather than an
// attachment, decoded (transfer encoding, then charset), HTML reduced to
// its text, parts separated by a newline, at most max octets (cut between
// two characters). Attached messages are not looked into.
func IndexText(raw []byte, body *Part, max int) string {
	var b strings.Builder
	var walk func(p *Part)
	walk = func(p *Part) {
		if b.Len() >= max {
			return
		}
		if p.IsMultipart() {
			for i := range p.Parts {
				walk(&p.Parts[i])
			}
			return
		}
		if p.Type != "text" || (p.Subtype != "plain" && p.Subtype != "html") || isAttachmentLike(p) {
			return
		}
		if p.BodyStart < 0 || p.BodyEnd > int64(len(raw)) || p.BodyStart > p.BodyEnd {
			return
		}
		// HTML is read whole before its markup goes, up to four times
		// the room left (markup is most of a typical HTML part).
		room := max - b.Len()
		limit := room
		if p.Subtype == "html" {
			limit = 4 * room
		}
		text, _ := p.Text(raw, limit)
		if p.Subtype == "html" {
			text = htmlText(text)
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(cut(text, max-b.Len()))
	}
	walk(body)
	return b.String()
}

// cut returns s cut to at most n octets, between two characters.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SortFrom is the sender a list sorted by sender orders a message by: the
// first From address's display name, or its address when it has none,
// lowercased, at most max octets.
func SortFrom(env *Envelope, max int) string {
	for _, a := range env.From {
		if a.IsGroupStart() || a.IsGroupEnd() {
			continue
		}
		s := strings.TrimSpace(a.Name)
		if s == "" {
			s = a.Mailbox
			if a.Host != MissingHost {
				s += "@" + a.Host
			}
		}
		return cut(strings.ToLower(strings.Trim(s, `"' `)), max)
	}
	return ""
}

// SortSubject is the subject a list sorted by subject orders a message by:
// lowercased, with reply and forward prefixes ("Re:", "Fwd:", "Fw:",
// "Re[2]:", and the usual translations "AW:", "WG:", "SV:", "VS:",
// "Antw:", "Doorst:", "Tr:", "Rif:", "Odp:") and mailing list tags ("[list]")
// taken off the front, again and again (RFC 5256 2.1 base subject, roughly),
// at most max octets.
func SortSubject(subject string, max int) string {
	s := strings.ToLower(subject)
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if strings.HasPrefix(s, "[") {
			if i := strings.IndexByte(s, ']'); i > 0 && i < 80 {
				s = s[i+1:]
				continue
			}
		}
		i := strings.IndexByte(s, ':')
		if i <= 0 || i > 12 {
			break
		}
		word := s[:i]
		if j := strings.IndexByte(word, '['); j > 0 && strings.HasSuffix(word, "]") {
			word = word[:j] // "re[2]"
		} else if j := strings.IndexByte(word, '('); j > 0 && strings.HasSuffix(word, ")") {
			word = word[:j]
		}
		switch strings.TrimSpace(word) {
		case "re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw", "doorst", "tr", "rif", "odp", "ynt", "enc", "res":
			s = s[i+1:]
			continue
		}
		break
	}
	return cut(strings.TrimSpace(s), max)
}

// ParentID is the msg-id of the message this one replies to: the first of
// In-Reply-To, else the last of References (RFC 5322 3.6.4), in angle
// brackets; "" when it names none.
func (info *Info) ParentID() string {
	if ids := MsgIDs(info.Envelope.InReplyTo); len(ids) > 0 {
		return ids[0]
	}
	if n := len(info.References); n > 0 {
		return info.References[n-1]
	}
	return ""
}

// Words splits text into the words a full-text index knows (SQLite FTS5's
// unicode61 tokenizer, roughly): runs of letters and digits, lowercased.
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}
