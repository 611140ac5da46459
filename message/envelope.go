package message

import (
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// envelopeOf builds the IMAP ENVELOPE of a message from its header (RFC 3501
// 7.4.2, RFC 9051 7.5.2). Each field comes from the first header of its
// name.
func envelopeOf(h textproto.Header) Envelope {
	env := Envelope{
		Date:      parseDate(h),
		Subject:   HeaderText(h.Get("Subject")),
		From:      parseAddressList(h.Get("From")),
		Sender:    parseAddressList(h.Get("Sender")),
		ReplyTo:   parseAddressList(h.Get("Reply-To")),
		To:        parseAddressList(h.Get("To")),
		Cc:        parseAddressList(h.Get("Cc")),
		Bcc:       parseAddressList(h.Get("Bcc")),
		InReplyTo: msgIDField(h.Get("In-Reply-To")),
		MessageID: msgIDField(h.Get("Message-Id")),
	}
	// RFC 3501 7.4.2: "If the Sender or Reply-To lines are absent in the
	// [RFC-2822] header, or are present but empty, the server sets the
	// corresponding member of the envelope to be the same value as the from
	// member."
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}

// dateLayouts are tried, in order, on a Date header that net/mail cannot
// read. They cover forms seen from broken mailers.
var dateLayouts = [...]string{
	time.RFC3339,
	time.ANSIC,
	time.UnixDate,
	"Mon, 2 Jan 2006 15:04:05 -0700 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon, 2 January 2006 15:04:05 -0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
}

// parseDate parses the Date header (RFC 5322 3.3) with net/mail, through
// go-message, falling back to dateLayouts. The result keeps the header's
// zone offset. It is the zero time when the header is missing or unreadable,
// or when the date could not be stored (a year outside 1..9999 or an
// offset of a day or more, which encoding/json rejects).
func parseDate(h textproto.Header) time.Time {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	t, err := mh.Date()
	if err != nil {
		v := strings.Join(strings.Fields(stripComments(h.Get("Date"))), " ")
		for _, layout := range dateLayouts {
			if t, err = time.Parse(layout, v); err == nil {
				break
			}
		}
	}
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return time.Time{}
	}
	return t
}

// MsgIDs returns the msg-ids (RFC 5322 3.6.4) in a header value, each in
// angle brackets with white space and comments removed. Text outside the
// brackets (phrases, which obsolete In-Reply-To syntax allows) is ignored.
func MsgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		v = v[i+1:]
		j := strings.IndexByte(v, '>')
		if j < 0 {
			return ids
		}
		id := strings.Join(strings.Fields(stripComments(v[:j])), "")
		v = v[j+1:]
		if id != "" {
			ids = append(ids, "<"+cleanText(id)+">")
		}
	}
}

// msgIDField renders a Message-ID or In-Reply-To header for the ENVELOPE:
// its msg-ids separated by spaces, or the unfolded header text when it holds
// none, so that nothing the sender wrote is lost.
func msgIDField(v string) string {
	if ids := MsgIDs(v); len(ids) > 0 {
		return strings.Join(ids, " ")
	}
	return cleanText(strings.TrimSpace(v))
}

// references returns the msg-ids of References followed by those of
// In-Reply-To that References does not list (RFC 5322 3.6.4), without
// duplicates and bounded by maxReferences.
func references(h textproto.Header) []string {
	all := append(MsgIDs(h.Get("References")), MsgIDs(h.Get("In-Reply-To"))...)
	if len(all) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(all))
	out := make([]string, 0, len(all))
	for _, id := range all {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > maxReferences {
		// Keep the thread root and the nearest ancestors.
		out = append(out[:1], out[len(out)-maxReferences+1:]...)
	}
	return out
}
