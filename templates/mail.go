package templates

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"basalt/delivery"
	"basalt/store"
)

// message builds a plain-text message (RFC 5322) with a UTF-8 body in
// quoted-printable (RFC 2045 6.7), so no line of what a visitor typed
// can be too long or end the header. Header texts are encoded words
// (RFC 2047) and cannot carry a line break.
func message(from, fromName, to, replyTo, subject, body, host string, now time.Time) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("From", (&mail.Address{Name: fromName, Address: from}).String())
	hdr("To", (&mail.Address{Address: to}).String())
	if replyTo != "" {
		hdr("Reply-To", (&mail.Address{Address: replyTo}).String())
	}
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	hdr("Message-ID", "<"+randomToken()[:24]+"@"+host+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

// oneLine turns line breaks and other controls into spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// domainOf is the domain of an address.
func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	if d == "" {
		return "localhost"
	}
	return d
}

// welcome delivers the welcome message to a new account. Its failure is
// logged, not shown: the account exists and works without it. An account
// waiting for approval is locked, and the agent refuses mail for a locked
// account at its recipient check; the welcome, Basalt's own message to
// the account it has just made, is then handed to Deliver for that user
// directly, so that it waits in the inbox once the account is approved.
func (s *Site) welcome(r *http.Request, u store.User, pending bool) {
	rc := s.cfg.Register
	text := strings.NewReplacer("{name}", s.cfg.Name, "{address}", u.Address).Replace(rc.Welcome)
	raw := message(s.cfg.From, s.cfg.Name, u.Address, "", "Welcome to "+s.cfg.Name, text, domainOf(s.cfg.From), s.now())
	if s.agent == nil {
		return
	}
	var err error
	if pending {
		env := &delivery.Envelope{Source: delivery.SourceInternal, From: s.cfg.From}
		var results []error
		results, err = s.agent.Deliver(r.Context(), env, []delivery.Recipient{{Address: u.Address, Users: []int64{u.ID}}}, bytes.NewReader(raw))
		if err == nil {
			err = results[0]
		}
	} else {
		err = s.agent.DeliverLocal(r.Context(), s.cfg.From, u.Address, raw)
	}
	if err != nil {
		s.log.Warn("site: deliver welcome message", "address", u.Address, "err", err)
	}
}

// tellAdmins delivers a note from the site to the administrators; a
// failure is logged.
func (s *Site) tellAdmins(r *http.Request, subject, text string) {
	if s.agent == nil {
		return
	}
	for _, admin := range s.cfg.Admins {
		a, err := mail.ParseAddress(admin)
		if err != nil {
			continue
		}
		raw := message(s.cfg.From, s.cfg.Name, a.Address, "", subject, text, domainOf(s.cfg.From), s.now())
		if err := s.agent.DeliverLocal(r.Context(), s.cfg.From, a.Address, raw); err != nil {
			s.log.Warn("site: deliver a note to an administrator", "to", a.Address, "err", err)
		}
	}
}
