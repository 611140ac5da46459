package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// crlf turns the LF line endings of a test sample into CRLF, as messages
// are stored.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// shape renders a body structure compactly: type/subtype, multipart children
// in parentheses, an encapsulated message's body in brackets.
func shape(p *Part) string {
	s := p.Type + "/" + p.Subtype
	if len(p.Parts) > 0 {
		kids := make([]string, len(p.Parts))
		for i := range p.Parts {
			kids[i] = shape(&p.Parts[i])
		}
		s += "(" + strings.Join(kids, ",") + ")"
	}
	if p.Body != nil {
		s += "[" + shape(p.Body) + "]"
	}
	return s
}

// sections calls fn for every section path of the message body p, with the
// part Find must return for it (RFC 3501 6.4.5).
func sections(p *Part, prefix string, fn func(string, *Part)) {
	if !p.IsMultipart() {
		visitSection(p, prefix+"1", fn)
		return
	}
	for i := range p.Parts {
		visitSection(&p.Parts[i], prefix+strconv.Itoa(i+1), fn)
	}
}

func visitSection(p *Part, path string, fn func(string, *Part)) {
	fn(path, p)
	if p.IsMultipart() {
		for i := range p.Parts {
			visitSection(&p.Parts[i], path+"."+strconv.Itoa(i+1), fn)
		}
	}
	if p.Body != nil {
		sections(p.Body, path+".", fn)
	}
}

// checkInfo verifies the invariants every Parse result must hold for raw:
// offsets in bounds and nested, sizes and line counts agreeing with the
// bytes, every section reachable through Find, valid UTF-8 everywhere, and
// a JSON encoding that survives a round trip.
func checkInfo(raw []byte, info *Info) error {
	if info == nil {
		return fmt.Errorf("nil Info")
	}
	if info.Version != FormatVersion {
		return fmt.Errorf("Version = %d", info.Version)
	}
	if info.Body.HeaderStart != 0 || info.Body.BodyEnd != int64(len(raw)) {
		return fmt.Errorf("root spans [%d,%d), want [0,%d)", info.Body.HeaderStart, info.Body.BodyEnd, len(raw))
	}
	if info.HeaderSize != info.Body.BodyStart {
		return fmt.Errorf("HeaderSize %d != Body.BodyStart %d", info.HeaderSize, info.Body.BodyStart)
	}
	if err := checkPart(raw, &info.Body, 0, int64(len(raw)), 0); err != nil {
		return err
	}
	var err error
	sections(&info.Body, "", func(path string, want *Part) {
		got, ferr := info.Body.Find(path)
		if err == nil && (ferr != nil || got != want) {
			err = fmt.Errorf("Find(%q) = %p, %v; want %p", path, got, ferr, want)
		}
	})
	if err != nil {
		return err
	}
	if n := utf8.RuneCountInString(info.Snippet); n > SnippetLen {
		return fmt.Errorf("snippet has %d runes", n)
	}
	for _, a := range info.Attachments {
		p, err := info.Body.Find(a.Path)
		if err != nil {
			return fmt.Errorf("attachment path %q: %v", a.Path, err)
		}
		if a.Type != p.Type+"/"+p.Subtype {
			return fmt.Errorf("attachment %q type %q, part is %s/%s", a.Path, a.Type, p.Type, p.Subtype)
		}
	}

	enc, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("marshal: %v", err)
	}
	var back Info
	if err := json.Unmarshal(enc, &back); err != nil {
		return fmt.Errorf("unmarshal: %v", err)
	}
	enc2, err := json.Marshal(&back)
	if err != nil {
		return fmt.Errorf("re-marshal: %v", err)
	}
	if !bytes.Equal(enc, enc2) {
		return fmt.Errorf("JSON round trip changed the Info:\n%s\n%s", enc, enc2)
	}
	return validStrings(info)
}

// checkPart verifies the invariants of one part lying within [lo, hi).
func checkPart(raw []byte, p *Part, lo, hi int64, depth int) error {
	if depth > 2*MaxDepth+2 {
		return fmt.Errorf("nesting deeper than MaxDepth")
	}
	if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.BodyEnd && p.BodyEnd <= hi) {
		return fmt.Errorf("%s/%s offsets %d,%d,%d outside [%d,%d]", p.Type, p.Subtype, p.HeaderStart, p.BodyStart, p.BodyEnd, lo, hi)
	}
	if p.Size != p.BodyEnd-p.BodyStart {
		return fmt.Errorf("Size %d != %d", p.Size, p.BodyEnd-p.BodyStart)
	}
	if p.Type == "" || p.Subtype == "" || p.Type != strings.ToLower(p.Type) || p.Subtype != strings.ToLower(p.Subtype) {
		return fmt.Errorf("bad type %q/%q", p.Type, p.Subtype)
	}
	if p.Encoding == "" || p.Encoding != strings.ToUpper(p.Encoding) {
		return fmt.Errorf("bad encoding %q", p.Encoding)
	}
	for k := range p.Params {
		if k != strings.ToLower(k) {
			return fmt.Errorf("param key %q not lower-case", k)
		}
	}
	body := raw[p.BodyStart:p.BodyEnd]
	if (p.Type == "text" || p.Body != nil) && p.Lines != countLines(body) {
		return fmt.Errorf("Lines %d, want %d", p.Lines, countLines(body))
	}
	if p.IsMultipart() {
		if len(p.Parts) == 0 {
			return fmt.Errorf("multipart without parts")
		}
		prev := p.BodyStart
		for i := range p.Parts {
			c := &p.Parts[i]
			if err := checkPart(raw, c, prev, p.BodyEnd, depth+1); err != nil {
				return fmt.Errorf("part %d: %w", i+1, err)
			}
			prev = c.BodyEnd
		}
	}
	if p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") {
		if p.Envelope == nil || p.Body == nil {
			return fmt.Errorf("message part without envelope or body")
		}
	}
	if p.Body != nil {
		if p.Body.HeaderStart != p.BodyStart || p.Body.BodyEnd != p.BodyEnd {
			return fmt.Errorf("message body spans [%d,%d), part body [%d,%d)", p.Body.HeaderStart, p.Body.BodyEnd, p.BodyStart, p.BodyEnd)
		}
		if err := checkPart(raw, p.Body, p.BodyStart, p.BodyEnd, depth+1); err != nil {
			return fmt.Errorf("message body: %w", err)
		}
	}
	return nil
}

// validStrings reports the first string in info that is not valid UTF-8.
func validStrings(info *Info) error {
	var bad string
	check := func(s string) {
		if bad == "" && !utf8.ValidString(s) {
			bad = s
		}
	}
	var env func(e *Envelope)
	var part func(p *Part)
	env = func(e *Envelope) {
		check(e.Subject)
		check(e.InReplyTo)
		check(e.MessageID)
		for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
			for _, a := range l {
				check(a.Name)
				check(a.Mailbox)
				check(a.Host)
			}
		}
	}
	part = func(p *Part) {
		for _, s := range []string{p.Type, p.Subtype, p.ID, p.Description, p.Encoding, p.MD5, p.Disposition, p.Location} {
			check(s)
		}
		for _, m := range []map[string]string{p.Params, p.DispositionParams} {
			for k, v := range m {
				check(k)
				check(v)
			}
		}
		for _, l := range p.Language {
			check(l)
		}
		for i := range p.Parts {
			part(&p.Parts[i])
		}
		if p.Envelope != nil {
			env(p.Envelope)
		}
		if p.Body != nil {
			part(p.Body)
		}
	}
	env(&info.Envelope)
	part(&info.Body)
	for _, s := range []string{info.Snippet, info.SearchFrom, info.SearchTo, info.SearchSubject} {
		check(s)
	}
	for _, s := range info.References {
		check(s)
	}
	for _, a := range info.Attachments {
		check(a.Name)
		check(a.ContentID)
	}
	if bad != "" {
		return fmt.Errorf("invalid UTF-8 in %q", bad)
	}
	return nil
}
