package message

import (
	"strings"
)

// The address parser below reads RFC 5322 3.4 address lists, including group
// syntax, which RFC 3501 7.4.2 requires in the ENVELOPE and net/mail (and so
// go-message's mail.Header.AddressList) flattens away. It never fails: what
// it cannot make sense of is skipped, and obsolete forms (RFC 5322 4.4:
// routes, missing brackets, "addr (Name)" comments as display names) are
// read as real clients write them.

type tokKind uint8

const (
	tokAtom    tokKind = iota // atom or dot-atom, raw
	tokQuoted                 // quoted-string, unquoted
	tokLiteral                // domain literal, with its brackets
	tokComment                // comment, without its parentheses
	tokSpecial                // one of < > , : ; @
)

type token struct {
	kind tokKind
	text string
}

func (t token) is(c byte) bool { return t.kind == tokSpecial && t.text[0] == c }

// tokenizeAddresses splits an unfolded address header into tokens.
func tokenizeAddresses(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '"':
			var b strings.Builder
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] != '\r' && s[i] != '\n' {
					b.WriteByte(s[i])
				}
				i++
			}
			i++ // closing quote, if any
			toks = append(toks, token{tokQuoted, b.String()})
		case c == '(':
			var b strings.Builder
			depth := 1
			for i++; i < len(s) && depth > 0; i++ {
				switch s[i] {
				case '\\':
					if i+1 < len(s) {
						i++
						b.WriteByte(s[i])
					}
					continue
				case '(':
					depth++
				case ')':
					depth--
					if depth == 0 {
						continue
					}
				}
				b.WriteByte(s[i])
			}
			toks = append(toks, token{tokComment, b.String()})
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, token{tokLiteral, s[i : i+j+1]})
			i += j + 1
		case strings.IndexByte("<>,:;@", c) >= 0:
			toks = append(toks, token{tokSpecial, s[i : i+1]})
			i++
		default:
			// An atom; a stray ")" or "]" is taken as part of one.
			j := i + 1
			for j < len(s) && strings.IndexByte(" \t\r\n\"([<>,:;@", s[j]) < 0 {
				j++
			}
			toks = append(toks, token{tokAtom, s[i:j]})
			i = j
		}
	}
	return toks
}

// maxAddressHeader bounds the length of an address header that is parsed;
// the rest of a longer one is ignored. Thousands of recipients fit in it.
const maxAddressHeader = 256 << 10

type addrParser struct {
	toks []token
	i    int
	out  []Address
}

func (p *addrParser) eof() bool   { return p.i >= len(p.toks) }
func (p *addrParser) peek() token { return p.toks[p.i] }

// parseAddressList parses an unfolded address-list header value into ENVELOPE
// addresses, with group markers as RFC 3501 7.4.2 describes them.
func parseAddressList(s string) []Address {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	if len(s) > maxAddressHeader {
		s = s[:maxAddressHeader]
	}
	p := &addrParser{toks: tokenizeAddresses(s)}
	for !p.eof() {
		if t := p.peek(); t.is(',') || t.is(';') || t.is('>') || t.is(':') {
			p.i++ // stray separator
			continue
		}
		p.item(false)
	}
	return p.out
}

// item parses one mailbox, or (outside a group) one group, and appends it.
// It stops before the separator that ends the item.
func (p *addrParser) item(inGroup bool) {
	var (
		words   []token
		comment string
	)
	for !p.eof() {
		t := p.peek()
		switch {
		case t.kind == tokComment:
			comment = t.text
			p.i++
		case t.kind == tokAtom || t.kind == tokQuoted || t.kind == tokLiteral:
			words = append(words, t)
			p.i++
		case t.is(':') && !inGroup:
			p.i++
			p.group(phrase(words))
			return
		case t.is(':'):
			p.i++ // no nested groups (RFC 5322 3.4): ignore
		case t.is('<'):
			p.i++
			adl, mailbox, host := p.angleAddr()
			name := phrase(words)
			if c := p.trailingComment(); name == "" {
				name = c
			}
			p.add(name, mailbox, host)
			if adl != "" && len(p.out) > 0 {
				p.out[len(p.out)-1].ADL = adl
			}
			return
		case t.is('@'):
			p.i++
			// addr-spec without angle brackets; its last word is the local
			// part, earlier words (invalid there) are taken as a name.
			var local string
			if n := len(words); n > 0 {
				local = words[n-1].text
				words = words[:n-1]
			}
			host := p.domain()
			name := phrase(words)
			if c := p.trailingComment(); name == "" {
				name = c
			}
			if name == "" {
				name = comment
			}
			p.add(name, local, host)
			return
		default: // , ; > end the item
			p.bare(words)
			return
		}
	}
	p.bare(words)
}

// bare appends a phrase that has no address at all ("To: John Doe"): it is
// taken as a mailbox without a domain.
func (p *addrParser) bare(words []token) {
	if len(words) > 0 {
		p.add("", phrase(words), "")
	}
}

// group parses the members of a group up to and including its ";" (RFC 5322
// 3.4) and appends them between the RFC 3501 start and end markers.
func (p *addrParser) group(name string) {
	name = HeaderText(strings.TrimSpace(name))
	if name != "" {
		p.out = append(p.out, Address{Mailbox: name})
	}
	for !p.eof() {
		t := p.peek()
		if t.is(';') {
			p.i++
			break
		}
		if t.is(',') || t.is('>') {
			p.i++
			continue
		}
		p.item(true)
	}
	if name != "" {
		p.out = append(p.out, Address{})
	}
}

// angleAddr parses the inside of an angle-addr after its "<", through its
// ">" if present. An obsolete route ("@a,@b:", RFC 5322 4.4) is returned as
// adl, without its ":", as RFC 3501 7.4.2's at-domain-list.
func (p *addrParser) angleAddr() (adl, mailbox, host string) {
	if !p.eof() && p.peek().is('@') {
		var route strings.Builder
		for !p.eof() && !p.peek().is(':') && !p.peek().is('>') {
			if t := p.peek(); t.kind != tokComment {
				route.WriteString(t.text)
			}
			p.i++
		}
		if !p.eof() && p.peek().is(':') {
			p.i++
			adl = cleanText(route.String())
		}
	}
	var (
		local, domain []token
		at            bool
	)
	for !p.eof() {
		t := p.peek()
		if t.is('>') {
			p.i++
			break
		}
		if t.is(',') || t.is(';') || t.is('<') {
			break // unterminated angle-addr
		}
		p.i++
		switch {
		case t.is('@'):
			if at { // a second "@": the first one was part of the local part
				local = append(local, token{tokAtom, "@"})
				local = append(local, domain...)
				domain = nil
			}
			at = true
		case t.kind == tokComment || t.kind == tokSpecial:
		case at:
			domain = append(domain, t)
		default:
			local = append(local, t)
		}
	}
	return adl, concat(local), concat(domain)
}

// domain parses the domain of a bare addr-spec, up to the next separator.
func (p *addrParser) domain() string {
	var d []token
	for !p.eof() {
		t := p.peek()
		if t.kind == tokSpecial || t.kind == tokComment || t.kind == tokQuoted {
			break
		}
		d = append(d, t)
		p.i++
	}
	return concat(d)
}

// trailingComment skips what follows an address up to the separator that
// ends it and returns the last comment found there, which obsolete syntax
// uses as the display name ("user@host (Real Name)").
func (p *addrParser) trailingComment() string {
	var c string
	for !p.eof() {
		t := p.peek()
		if t.is(',') || t.is(';') || t.is(':') || t.is('<') {
			break
		}
		if t.kind == tokComment {
			c = t.text
		}
		p.i++
	}
	return c
}

// add appends an address, decoding its display name. An address with
// neither mailbox nor name is dropped; one without a host gets MissingHost
// so that it cannot be mistaken for a group marker.
func (p *addrParser) add(name, mailbox, host string) {
	name = HeaderText(strings.TrimSpace(name))
	mailbox, host = cleanText(mailbox), cleanText(host)
	if name == "" && mailbox == "" {
		return
	}
	if host == "" {
		host = MissingHost
	}
	p.out = append(p.out, Address{Name: name, Mailbox: mailbox, Host: host})
}

// phrase joins display-name words with single spaces; HeaderText then
// removes the spaces between adjacent encoded words.
func phrase(words []token) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0].text
	}
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = w.text
	}
	return strings.Join(parts, " ")
}

// concat joins the words of a local part or domain without separators.
func concat(words []token) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0].text
	}
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w.text)
	}
	return b.String()
}

// formatAddresses writes addresses as "name mailbox@host" separated by ", "
// for the search fields; group names are included, group end markers
// skipped.
func formatAddresses(b *strings.Builder, list []Address) {
	for _, a := range list {
		var s string
		switch {
		case a.IsGroupEnd():
			continue
		case a.IsGroupStart():
			s = a.Mailbox
		default:
			s = a.Mailbox
			if a.Host != MissingHost {
				s += "@" + a.Host
			}
			if a.Name != "" {
				s = a.Name + " " + s
			}
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
}
