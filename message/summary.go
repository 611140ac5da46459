package message

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on how much of a body is decoded for the snippet. HTML gets more
// because a <head> full of style sheets may come before any text.
const (
	snippetPlainBytes = 16 << 10
	snippetHTMLBytes  = 256 << 10
)

// summarize fills in the webmail and search fields of info from its envelope
// and body structure.
func summarize(info *Info, raw []byte) {
	env := &info.Envelope
	info.SearchSubject = strings.ToLower(env.Subject)
	var b strings.Builder
	formatAddresses(&b, env.From)
	info.SearchFrom = strings.ToLower(b.String())
	b.Reset()
	formatAddresses(&b, env.To)
	info.SearchTo = strings.ToLower(b.String())

	if t := firstText(&info.Body, "plain"); t != nil {
		info.Snippet = snippet(raw, t, snippetPlainBytes, false)
	} else if t := firstText(&info.Body, "html"); t != nil {
		info.Snippet = snippet(raw, t, snippetHTMLBytes, true)
	}

	collectAttachments(info, raw, &info.Body, "", false)
}

// firstText returns the first text/<subtype> part that is message text
// rather than an attachment, looking through multiparts in order but not
// into attached messages.
func firstText(p *Part, subtype string) *Part {
	if p.IsMultipart() {
		for i := range p.Parts {
			if t := firstText(&p.Parts[i], subtype); t != nil {
				return t
			}
		}
		return nil
	}
	if p.Type == "text" && p.Subtype == subtype && !isAttachmentLike(p) {
		return p
	}
	return nil
}

// isAttachmentLike reports whether a part says it is a file: disposition
// attachment, or a file name.
func isAttachmentLike(p *Part) bool {
	return p.Disposition == "attachment" || partName(p) != ""
}

// partName returns the file name of a part: Content-Disposition's filename
// (RFC 2183 2.3), else Content-Type's older name parameter.
func partName(p *Part) string {
	if n := p.DispositionParams["filename"]; n != "" {
		return n
	}
	return p.Params["name"]
}

// snippet decodes the start of a text part and returns up to SnippetLen
// characters of it, with markup removed for HTML and white space collapsed.
func snippet(raw []byte, p *Part, limit int64, isHTML bool) string {
	end := min(p.BodyEnd, p.BodyStart+limit)
	data, _ := Decode(p.Encoding, raw[p.BodyStart:end]) // an unknown encoding reads as it is
	text, _ := charsetText(p.Params["charset"], data, 0)
	if isHTML {
		text = htmlText(text)
	}
	return collapse(text, SnippetLen)
}

// collapse replaces each run of white space, control and invisible
// characters in s with one space, trims it, and cuts it to at most n runes.
func collapse(s string, n int) string {
	var b strings.Builder
	space, count := false, 0
	for _, r := range s {
		if count >= n {
			break
		}
		if isBlank(r) {
			space = count > 0
			continue
		}
		if space {
			if count+1 >= n {
				break
			}
			b.WriteByte(' ')
			count++
			space = false
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}

// isBlank reports whether r shows as nothing or as white space.
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || isCtl(r) || r == utf8.RuneError ||
		r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff' || r == '\u034f' || r == '\u00ad'
}

// htmlText returns the text of an HTML document: tags, comments and the
// content of head, script, style and title elements removed, character
// references decoded. Block-level tags become spaces so that words on
// either side stay apart. It is a display heuristic, not an HTML parser.
func htmlText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "<!--") {
			j := strings.Index(s, "-->")
			if j < 0 {
				break
			}
			s = s[j+3:]
			continue
		}
		if len(s) < 2 || !isTagStart(s[1]) {
			b.WriteByte('<') // a lone "<" in text
			s = s[1:]
			continue
		}
		j := strings.IndexByte(s, '>')
		if j < 0 {
			break
		}
		closing := s[1] == '/'
		name := tagName(strings.TrimPrefix(s[1:j], "/"))
		s = s[j+1:]
		switch name {
		case "head", "script", "style", "title":
			if closing {
				continue
			}
			// Skip the element's content through its end tag.
			k := indexFold(s, "</"+name)
			if k < 0 {
				s = ""
				continue
			}
			s = s[k:]
			if e := strings.IndexByte(s, '>'); e >= 0 {
				s = s[e+1:]
			} else {
				s = ""
			}
		case "br", "p", "div", "tr", "td", "th", "li", "ul", "ol", "table", "blockquote",
			"h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre", "body", "section", "article":
			b.WriteByte(' ')
		}
	}
	return html.UnescapeString(b.String())
}

// isTagStart reports whether c may follow "<" in a tag, comment or
// declaration.
func isTagStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '!' || c == '?'
}

// tagName returns the lower-case element name at the start of a tag's
// inside ("div class=x" -> "div"); comments and declarations give "".
func tagName(s string) string {
	end := 0
	for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z' || s[end] >= '0' && s[end] <= '9') {
		end++
	}
	return strings.ToLower(s[:end])
}

// indexFold is strings.Index ignoring ASCII case, for a lower-case substr.
func indexFold(s, substr string) int {
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return i
		}
	}
	return -1
}

// collectAttachments walks the body structure and records the parts the
// webmail lists as attachments: every leaf that declares itself a file
// (disposition attachment, or a file name) or is not text, and every
// attached message. Text without a file name is message text. The signature
// of a multipart/signed and the control part of a multipart/encrypted
// (RFC 1847) are not attachments. Attached messages are not looked into.
func collectAttachments(info *Info, raw []byte, p *Part, path string, inRelated bool) {
	if p.IsMultipart() {
		for i := range p.Parts {
			c := &p.Parts[i]
			if p.Subtype == "signed" && i == 1 || p.Subtype == "encrypted" && i == 0 {
				continue
			}
			collectAttachments(info, raw, c, sectionPath(path, i+1), p.Subtype == "related")
		}
		return
	}
	if path == "" {
		path = "1" // RFC 3501 6.4.5: a non-multipart message's only part
	}
	if p.Type == "text" && !isAttachmentLike(p) {
		return
	}
	// A resource of an HTML body: part of a multipart/related that the body
	// can name with a cid: URL (RFC 2387, RFC 2392).
	embedded := inRelated && p.ID != "" && p.Disposition != "attachment"
	a := Attachment{
		Path:      path,
		Name:      partName(p),
		Type:      p.Type + "/" + p.Subtype,
		Size:      decodedSize(raw, p),
		ContentID: strings.TrimSuffix(strings.TrimPrefix(p.ID, "<"), ">"),
		Inline:    p.Disposition == "inline" || embedded,
	}
	info.Attachments = append(info.Attachments, a)
	if !embedded {
		info.HasAttachments = true
	}
}

// sectionPath appends part number n to an IMAP section path.
func sectionPath(path string, n int) string {
	if path == "" {
		return strconv.Itoa(n)
	}
	return path + "." + strconv.Itoa(n)
}

// decodedSize returns the size of a part's body once its transfer encoding
// is undone, as Part.Decode undoes it; an unknown encoding's body counts as
// it is, as the download sends it.
func decodedSize(raw []byte, p *Part) int64 {
	if p.IsMultipart() {
		return p.Size
	}
	n, _ := DecodedSize(p.Encoding, p.RawBody(raw))
	return n
}
