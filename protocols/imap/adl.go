package imap

import (
	"bytes"
	"mime"

	"basalt/message"
)

// The library has no room for an address's obsolete source route, RFC
// 3501 7.4.2's adl: imap.Address holds name, mailbox and host only, and
// every address goes out as (name NIL mailbox host) (go-imap v2
// fetch.go:99-103, imapserver/fetch.go:558-574; quirks.go). So before a
// FETCH response with an ENVELOPE whose addresses carry routes, the
// session tells the guard the exact bytes the library will write for each
// such address and what to write instead, the same with the route in
// place of the NIL; the guard's scan of the response (scanOut) swaps them
// as they go out, in order, outside literals, and forgets what it did not
// find when the response ends. Quoted strings cannot hold the bytes looked
// for (their quotes would be escaped), so only the addresses themselves
// match. An address with a string that is not plain ASCII, which the
// library might write as a literal, keeps NIL.

// adlSwap is one address as the library writes it, and as it should be.
type adlSwap struct{ from, to []byte }

// adlSwaps lists the swaps for an envelope's addresses, in the order the
// library writes them (RFC 3501 7.4.2: from, sender, reply-to, to, cc,
// bcc). Every address that can be matched gets one, those without a
// route one that changes nothing: the swaps are matched in order, so an
// earlier address written the same way as a routed one, without the
// route, is passed over in its place instead of taking the route. They
// are wanted only for a response with a route in it (routed).
func adlSwaps(e *message.Envelope) []adlSwap {
	var out []adlSwap
	for _, list := range [][]message.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		for _, a := range list {
			if a.Host == "" {
				continue
			}
			name := mime.QEncoding.Encode("utf-8", a.Name)
			if !plainQuotable(name) || !plainQuotable(a.ADL) || !plainQuotable(a.Mailbox) || !plainQuotable(a.Host) {
				continue
			}
			from, to := []byte{'('}, []byte{'('}
			from = appendNString(from, name)
			to = appendNString(to, name)
			from = append(from, " NIL "...)
			to = appendNString(append(to, ' '), a.ADL)
			to = append(to, ' ')
			for _, s := range []string{a.Mailbox, a.Host} {
				from = appendNString(from, s)
				to = appendNString(to, s)
				from, to = append(from, ' '), append(to, ' ')
			}
			from[len(from)-1], to[len(to)-1] = ')', ')'
			out = append(out, adlSwap{from, to})
		}
	}
	return out
}

// envelopeRouted reports whether an address of e has a source route.
func envelopeRouted(e *message.Envelope) bool {
	for _, list := range [][]message.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		for _, a := range list {
			if a.ADL != "" && a.Host != "" {
				return true
			}
		}
	}
	return false
}

// structureRouted reports whether an envelope in p's structure has one.
func structureRouted(p *message.Part) bool {
	if p.IsMessage() {
		return p.Envelope != nil && envelopeRouted(p.Envelope) || p.Body != nil && structureRouted(p.Body)
	}
	for i := range p.Parts {
		if structureRouted(&p.Parts[i]) {
			return true
		}
	}
	return false
}

// structureSwaps lists the swaps for the envelopes of the message/rfc822
// parts within p, in the order the library writes BODYSTRUCTURE.
func structureSwaps(p *message.Part) []adlSwap {
	var out []adlSwap
	if p.IsMessage() {
		if p.Envelope != nil {
			out = append(out, adlSwaps(p.Envelope)...)
		}
		return append(out, structureSwaps(p.Body)...)
	}
	for i := range p.Parts {
		out = append(out, structureSwaps(&p.Parts[i])...)
	}
	return out
}

// plainQuotable reports whether the library writes s as a quoted string
// whatever the connection enabled: printable ASCII, not too long.
func plainQuotable(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// appendNString appends s as the library writes an nstring of plain
// ASCII: NIL, or a quoted string.
func appendNString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// expectADL has the guard swap these addresses in the next response.
func (g *guard) expectADL(swaps []adlSwap) {
	g.mu.Lock()
	g.out.adl = append(g.out.adl[:0], swaps...)
	g.out.adlAt = 0
	g.mu.Unlock()
}

// adlByte follows one byte of the rest of a response line while swaps are
// expected. It returns the bytes to pass on for it, in order: none while
// it holds the byte back as part of an address looked for, the address
// as it should be once all of it is seen, and what it held, as it came,
// when the bytes turn out to be something else.
func (out *outScan) adlByte(b byte) []byte {
	want := out.adl[0].from
	if b == want[out.adlAt] {
		out.adlAt++
		if out.adlAt < len(want) {
			return nil
		}
		to := out.adl[0].to
		out.adl, out.adlAt = out.adl[1:], 0
		return to
	}
	release := bytes.Clone(want[:out.adlAt])
	out.adlAt = 0
	if b == want[0] {
		// It may start the address itself.
		out.adlAt = 1
		return release
	}
	return append(release, b)
}
