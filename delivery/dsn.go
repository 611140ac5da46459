package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"basalt/message"
)

// ErrBounceToNull is BuildDSN's refusal to address a report to the null
// sender: a bounce is never bounced (RFC 5321 4.5.5, RFC 3464 2), which is
// what keeps two servers from bouncing a message between them forever.
var ErrBounceToNull = errors.New("delivery: no DSN is sent to the null sender")

// DSN Actions (RFC 3464 2.3.3) that BuildDSN reports.
const (
	ActionFailed  = "failed"
	ActionDelayed = "delayed"
)

// DSNRecipient is one recipient a delivery status notification reports on:
// its per-recipient fields (RFC 3464 2.3).
type DSNRecipient struct {
	Address string // Final-Recipient
	// OriginalRecipient is the ORCPT the client gave (RFC 3461 4.2), if any.
	OriginalRecipient string
	Action            string // ActionFailed (the default) or ActionDelayed
	// Status is the enhanced status code (RFC 3463), "5.1.1"; empty means
	// 5.0.0 for a failure, 4.0.0 for a delay.
	Status string
	// Diagnostic is what went wrong: the remote server's reply when
	// DiagnosticType is "smtp" (the default), else a description of a
	// failure that had no SMTP reply, with DiagnosticType "X-Basalt".
	Diagnostic     string
	DiagnosticType string
	RemoteMTA      string    // the host whose reply Diagnostic is, if any
	LastAttempt    time.Time // zero leaves out Last-Attempt-Date
}

// DSN is a delivery status notification to build: from the null sender,
// to the original message's envelope sender.
type DSN struct {
	// ReportingMTA is this server's host name (Reporting-MTA, and the
	// domain of the From address and Message-ID).
	ReportingMTA string
	// To is the original message's envelope sender; never "".
	To string
	// EnvelopeID is the client's ENVID (RFC 3461 4.4), if any.
	EnvelopeID string
	// Arrival is when the original message came in; zero leaves out
	// Arrival-Date.
	Arrival    time.Time
	Recipients []DSNRecipient
	// Original is the original message, or just its header: only the
	// header is returned, as text/rfc822-headers (RFC 6522 is silent on
	// how much; headers alone keep a bounce of a large message small and
	// never send a body back to an address that may not have written it).
	Original []byte
	// Date is the report's date; zero means now.
	Date time.Time
}

var dsnStatusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// BuildDSN returns a delivery status notification (RFC 3464) as a whole
// RFC 5322 message: a multipart/report (RFC 6522) with
// report-type=delivery-status holding a human-readable explanation, the
// message/delivery-status fields, and the original header as
// text/rfc822-headers. Addresses or headers that are not ASCII make it the
// internationalised form of RFC 6533 (message/global-delivery-status,
// message/global-headers, "utf-8" address types). It is marked
// Auto-Submitted (RFC 3834 5) so responders do not answer it. The caller
// sends it from the null sender to d.To.
func BuildDSN(d DSN) ([]byte, error) {
	if d.To == "" {
		return nil, ErrBounceToNull
	}
	if d.ReportingMTA == "" || strings.ContainsAny(d.ReportingMTA, " \t\r\n;") {
		return nil, fmt.Errorf("build DSN: bad reporting MTA name %q", d.ReportingMTA)
	}
	if len(d.Recipients) == 0 {
		return nil, errors.New("build DSN: no recipients to report on")
	}
	if d.Date.IsZero() {
		d.Date = time.Now()
	}
	global := !dsnASCII(d.To)
	rcpts := make([]DSNRecipient, len(d.Recipients))
	failed := false
	for i, r := range d.Recipients {
		if r.Address == "" {
			return nil, errors.New("build DSN: a recipient without an address")
		}
		if r.Action == "" {
			r.Action = ActionFailed
		}
		switch r.Action {
		case ActionFailed:
			failed = true
			if r.Status == "" {
				r.Status = "5.0.0"
			}
		case ActionDelayed:
			if r.Status == "" {
				r.Status = "4.0.0"
			}
		default:
			return nil, fmt.Errorf("build DSN: action %q is not one this server reports", r.Action)
		}
		if !dsnStatusRE.MatchString(r.Status) {
			return nil, fmt.Errorf("build DSN: %q is not an enhanced status code", r.Status)
		}
		if r.DiagnosticType == "" {
			r.DiagnosticType = "smtp"
		}
		if !dsnASCII(r.Address) || !dsnASCII(r.OriginalRecipient) {
			global = true
		}
		rcpts[i] = r
	}
	header := dsnOriginalHeader(d.Original)
	globalHeaders := !dsnASCII(string(header))

	subject := "Undelivered Mail Returned to Sender"
	if !failed {
		subject = "Delayed Mail (still being retried)"
	}
	report := &message.Report{Type: "delivery-status"}

	// 1. What a person reads.
	report.Parts = append(report.Parts, message.ReportPart{Type: "text/plain", Params: map[string]string{"charset": "utf-8"},
		Description: "Notification", Body: []byte(dsnHumanReport(d.ReportingMTA, rcpts, failed))})

	// 2. What a program reads (RFC 3464 2.2, 2.3).
	var status bytes.Buffer
	msgFields := []dsnField{{"Reporting-MTA", "dns; " + d.ReportingMTA}}
	if d.EnvelopeID != "" {
		msgFields = append(msgFields, dsnField{"Original-Envelope-Id", d.EnvelopeID})
	}
	if !d.Arrival.IsZero() {
		msgFields = append(msgFields, dsnField{"Arrival-Date", d.Arrival.Format(time.RFC1123Z)})
	}
	if err := writeDSNFields(&status, msgFields); err != nil {
		return nil, fmt.Errorf("build DSN: %w", err)
	}
	for _, r := range rcpts {
		fs := []dsnField{}
		if r.OriginalRecipient != "" {
			fs = append(fs, dsnField{"Original-Recipient", dsnAddrType(r.OriginalRecipient) + "; " + r.OriginalRecipient})
		}
		fs = append(fs,
			dsnField{"Final-Recipient", dsnAddrType(r.Address) + "; " + r.Address},
			dsnField{"Action", r.Action},
			dsnField{"Status", r.Status})
		if r.RemoteMTA != "" {
			fs = append(fs, dsnField{"Remote-MTA", "dns; " + r.RemoteMTA})
		}
		if r.Diagnostic != "" {
			fs = append(fs, dsnField{"Diagnostic-Code", r.DiagnosticType + "; " + r.Diagnostic})
		}
		if !r.LastAttempt.IsZero() {
			fs = append(fs, dsnField{"Last-Attempt-Date", r.LastAttempt.Format(time.RFC1123Z)})
		}
		if err := writeDSNFields(&status, fs); err != nil {
			return nil, fmt.Errorf("build DSN: %w", err)
		}
	}
	statusType := "message/delivery-status"
	if global {
		statusType = "message/global-delivery-status"
	}
	report.Parts = append(report.Parts, message.ReportPart{Type: statusType, Description: "Delivery report", Body: status.Bytes()})

	// 3. The original header, so the sender can tell which message it was.
	if len(header) > 0 {
		headersType := "text/rfc822-headers"
		if globalHeaders {
			headersType = "message/global-headers"
		}
		report.Parts = append(report.Parts, message.ReportPart{Type: headersType, Description: "Undelivered Message Headers", Body: header})
	}
	raw, err := message.Build(message.Spec{
		Date:     d.Date,
		From:     []*mail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + d.ReportingMTA}},
		To:       []*mail.Address{{Address: d.To}},
		Subject:  subject,
		Hostname: d.ReportingMTA,
		// RFC 3834 5.1: a report answers one message, so "auto-replied".
		AutoSubmitted: "auto-replied",
		Report:        report,
	})
	if err != nil {
		return nil, fmt.Errorf("build DSN: %w", err)
	}
	return raw, nil
}

// FailedRecipient describes, for BuildDSN, a recipient that failed with
// err after the message was accepted: what the SMTP front end needs to
// bounce a recipient whose delivery failed after it answered 250. A refusal
// with a reply (*Error) is reported as that reply; anything else as a
// local failure, without its text, which may name internals.
func FailedRecipient(addr string, err error, at time.Time) DSNRecipient {
	r := DSNRecipient{Address: addr, Action: ActionFailed, LastAttempt: at}
	var de *Error
	if errors.As(err, &de) {
		r.Status = fmt.Sprintf("%d.%d.%d", de.Enhanced[0], de.Enhanced[1], de.Enhanced[2])
		if !dsnStatusRE.MatchString(r.Status) {
			r.Status = fmt.Sprintf("%d.0.0", de.Code/100)
		}
		r.Diagnostic = de.Error()
		return r
	}
	r.Status = "5.0.0"
	r.DiagnosticType = "X-Basalt"
	r.Diagnostic = "local delivery failed"
	return r
}

// dsnHumanReport is the first part: what happened, in words.
func dsnHumanReport(host string, rcpts []DSNRecipient, failed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at host %s.\r\n\r\n", host)
	if failed {
		b.WriteString("I'm sorry to have to inform you that your message could not\r\n" +
			"be delivered to one or more recipients. Its header is attached\r\n" +
			"below, so you can tell which message it was.\r\n\r\n")
	} else {
		b.WriteString("Your message could not be delivered yet to one or more\r\n" +
			"recipients. The mail system will go on trying; you need not\r\n" +
			"send it again.\r\n\r\n")
	}
	for _, r := range rcpts {
		diag := r.Diagnostic
		if diag == "" {
			diag = "status " + r.Status
		}
		fmt.Fprintf(&b, "<%s>: %s (%s)\r\n", r.Address, dsnClip(dsnOneLine(diag), 600), r.Action)
	}
	return b.String()
}

// dsnOriginalHeader returns the header block of raw, CRLF-terminated and
// followed by the blank line, as go-message reads it.
func dsnOriginalHeader(raw []byte) []byte {
	if len(raw) == 0 {
		return nil
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil && h.Len() == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, h); err != nil {
		return nil
	}
	return b.Bytes()
}

type dsnField struct{ key, value string }

// writeDSNFields writes one group of delivery-status fields and the blank
// line that ends it. The field names keep RFC 3464's spelling
// (Reporting-MTA), which go-message's Add would canonicalise to
// "Reporting-Mta"; long values are folded at spaces.
func writeDSNFields(b *bytes.Buffer, fs []dsnField) error {
	var h textproto.Header
	for i := len(fs) - 1; i >= 0; i-- { // WriteHeader writes the last added first
		h.AddRaw([]byte(foldDSNField(fs[i].key, dsnOneLine(fs[i].value))))
	}
	return textproto.WriteHeader(b, h)
}

// foldDSNField formats "key: value" with CRLF, folding at spaces so that lines
// stay under 78 characters where the words allow (RFC 5322 2.1.1), and
// cutting values that would pass the hard limit of 998.
func foldDSNField(key, value string) string {
	const soft = 78
	value = dsnClip(value, 900)
	var b strings.Builder
	line := key + ":"
	for _, word := range strings.Fields(value) {
		if len(line)+1+len(word) > soft && strings.TrimSpace(line) != key+":" {
			b.WriteString(line + "\r\n")
			line = "\t" + word
			continue
		}
		line += " " + word
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

// dsnClip cuts s to at most n bytes, on a character boundary, so that
// no line of the report passes the 998 of RFC 5322 2.1.1.
func dsnClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// dsnOneLine makes a multi-line reply (or any text) fit one field.
func dsnOneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' || r == '\t' || r < ' ' }), " ")
}

// dsnAddrType is the address type of RFC 3464 2.3.2: "rfc822", or "utf-8"
// for an internationalised address (RFC 6533 3).
func dsnAddrType(addr string) string {
	if dsnASCII(addr) {
		return "rfc822"
	}
	return "utf-8"
}

func dsnASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
