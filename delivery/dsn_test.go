package delivery_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"basalt/delivery"
)

// parsedDSN is a DSN read back with go-message.
type parsedDSN struct {
	header     mail.Header
	reportType string
	parts      []string // media types, in order
	human      string
	perMessage textproto.Header
	perRcpt    []textproto.Header
	statusRaw  string
	original   string
}

// parseDSN reads a DSN the way a mail client would, failing the test on
// anything that is not a well-formed multipart/report.
func parseDSN(t *testing.T, raw []byte) parsedDSN {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read DSN: %v\n%s", err, raw)
	}
	var p parsedDSN
	p.header = mail.Header{Header: e.Header}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" {
		t.Fatalf("DSN content type %q (%v), want multipart/report", mt, err)
	}
	p.reportType = params["report-type"]
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatal("DSN is not multipart")
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		pt, _, _ := part.Header.ContentType()
		p.parts = append(p.parts, pt)
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatalf("DSN part %s: %v", pt, err)
		}
		switch pt {
		case "text/plain":
			p.human = string(body)
		case "message/delivery-status", "message/global-delivery-status":
			p.statusRaw = string(body)
			br := bufio.NewReader(bytes.NewReader(body))
			for first := true; ; first = false {
				if _, err := br.Peek(1); err != nil {
					break
				}
				h, err := textproto.ReadHeader(br)
				if err != nil {
					t.Fatalf("delivery-status group: %v\n%s", err, body)
				}
				if h.Len() == 0 {
					continue
				}
				if first {
					p.perMessage = h
				} else {
					p.perRcpt = append(p.perRcpt, h)
				}
			}
		default:
			p.original = string(body)
		}
	}
	return p
}

func TestBuildDSN(t *testing.T) {
	arrival := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	last := time.Date(2026, 11, 6, 10, 0, 0, 0, time.UTC)
	original := []byte("From: Alice <alice@example.org>\r\nTo: bob@remote.test\r\nSubject: Lunch?\r\nMessage-ID: <lunch@example.org>\r\n\r\nSECRET BODY TEXT\r\n")
	longReply := "550-5.7.1 This message was refused because it looked like spam to the filter here\n550 5.7.1 Please see https://remote.test/policy for the reasons and how to appeal them, in some detail"

	type rcptWant struct {
		final, original, action, status, remote, diag, lastAttempt string
	}
	tests := []struct {
		name        string
		dsn         delivery.DSN
		wantSubject string
		wantStatus  string // media type of the second part
		wantHeaders string // media type of the third part
		wantMessage map[string]string
		wantRcpts   []rcptWant
		wantHuman   []string
	}{
		{
			name: "one failure",
			dsn: delivery.DSN{
				ReportingMTA: "mx.example.org", To: "alice@example.org", Arrival: arrival, Original: original,
				Recipients: []delivery.DSNRecipient{{
					Address: "bob@remote.test", Status: "5.1.1", Diagnostic: "550 5.1.1 No such user",
					RemoteMTA: "smarthost.example.org", LastAttempt: last,
				}},
			},
			wantSubject: "Undelivered Mail Returned to Sender",
			wantStatus:  "message/delivery-status", wantHeaders: "text/rfc822-headers",
			wantMessage: map[string]string{"Reporting-MTA": "dns; mx.example.org", "Arrival-Date": arrival.Format(time.RFC1123Z)},
			wantRcpts: []rcptWant{{final: "rfc822; bob@remote.test", action: "failed", status: "5.1.1",
				remote: "dns; smarthost.example.org", diag: "smtp; 550 5.1.1 No such user", lastAttempt: last.Format(time.RFC1123Z)}},
			wantHuman: []string{"mx.example.org", "<bob@remote.test>: 550 5.1.1 No such user"},
		},
		{
			name: "two recipients, envelope id, defaults",
			dsn: delivery.DSN{
				ReportingMTA: "mx.example.org", To: "alice@example.org", EnvelopeID: "QQ314159", Original: original,
				Recipients: []delivery.DSNRecipient{
					{Address: "carol@remote.test", OriginalRecipient: "Carol@Remote.test", Diagnostic: longReply},
					{Address: "dave@remote.test", Action: delivery.ActionDelayed, Status: "4.4.1", DiagnosticType: "X-Basalt", Diagnostic: "connection refused"},
				},
			},
			wantSubject: "Undelivered Mail Returned to Sender",
			wantStatus:  "message/delivery-status", wantHeaders: "text/rfc822-headers",
			wantMessage: map[string]string{"Reporting-MTA": "dns; mx.example.org", "Original-Envelope-Id": "QQ314159", "Arrival-Date": ""},
			wantRcpts: []rcptWant{
				{final: "rfc822; carol@remote.test", original: "rfc822; Carol@Remote.test", action: "failed", status: "5.0.0",
					diag: "smtp; " + strings.Join(strings.Fields(longReply), " ")},
				{final: "rfc822; dave@remote.test", action: "delayed", status: "4.4.1", diag: "X-Basalt; connection refused"},
			},
			wantHuman: []string{"<carol@remote.test>:", "<dave@remote.test>: connection refused (delayed)"},
		},
		{
			name: "delay only",
			dsn: delivery.DSN{
				ReportingMTA: "mx.example.org", To: "alice@example.org",
				Recipients: []delivery.DSNRecipient{{Address: "dave@remote.test", Action: delivery.ActionDelayed}},
			},
			wantSubject: "Delayed Mail (still being retried)",
			wantStatus:  "message/delivery-status",
			wantMessage: map[string]string{"Reporting-MTA": "dns; mx.example.org"},
			wantRcpts:   []rcptWant{{final: "rfc822; dave@remote.test", action: "delayed", status: "4.0.0"}},
			wantHuman:   []string{"will go on trying"},
		},
		{
			name: "huge diagnostic",
			dsn: delivery.DSN{
				ReportingMTA: "mx.example.org", To: "alice@example.org",
				Recipients: []delivery.DSNRecipient{{Address: "bob@remote.test", Status: "5.7.1", Diagnostic: "550 " + strings.Repeat("x", 3000)}},
			},
			wantSubject: "Undelivered Mail Returned to Sender",
			wantStatus:  "message/delivery-status",
			wantMessage: map[string]string{"Reporting-MTA": "dns; mx.example.org"},
			wantRcpts: []rcptWant{{final: "rfc822; bob@remote.test", action: "failed", status: "5.7.1",
				diag: ("smtp; 550 " + strings.Repeat("x", 3000))[:900]}},
			wantHuman: []string{"<bob@remote.test>: 550 xxxx"},
		},
		{
			name: "internationalised",
			dsn: delivery.DSN{
				ReportingMTA: "mx.example.org", To: "alice@example.org",
				Original:   []byte("Subject: Grüße\r\nFrom: jörg@example.org\r\n\r\nx\r\n"),
				Recipients: []delivery.DSNRecipient{{Address: "müller@remote.test", Status: "5.1.1", Diagnostic: "550 5.1.1 unknown"}},
			},
			wantSubject: "Undelivered Mail Returned to Sender",
			wantStatus:  "message/global-delivery-status", wantHeaders: "message/global-headers",
			wantMessage: map[string]string{"Reporting-MTA": "dns; mx.example.org"},
			wantRcpts:   []rcptWant{{final: "utf-8; müller@remote.test", action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1 unknown"}},
			wantHuman:   []string{"<müller@remote.test>: 550 5.1.1 unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := delivery.BuildDSN(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 998 {
					t.Fatalf("line %d is %d bytes long", i, len(line))
				}
			}
			p := parseDSN(t, raw)
			if p.reportType != "delivery-status" {
				t.Errorf("report-type %q", p.reportType)
			}
			from, err := p.header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Address != "MAILER-DAEMON@mx.example.org" {
				t.Errorf("From %v (%v)", from, err)
			}
			to, err := p.header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != tt.dsn.To {
				t.Errorf("To %v (%v)", to, err)
			}
			if s, _ := p.header.Subject(); s != tt.wantSubject {
				t.Errorf("Subject %q, want %q", s, tt.wantSubject)
			}
			if got := p.header.Get("Auto-Submitted"); got != "auto-replied" {
				t.Errorf("Auto-Submitted %q", got)
			}
			if id, err := p.header.MessageID(); err != nil || !strings.HasSuffix(id, "@mx.example.org") {
				t.Errorf("Message-ID %q (%v)", id, err)
			}
			if _, err := p.header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			wantParts := []string{"text/plain", tt.wantStatus}
			if tt.wantHeaders != "" {
				wantParts = append(wantParts, tt.wantHeaders)
			}
			if strings.Join(p.parts, ",") != strings.Join(wantParts, ",") {
				t.Fatalf("parts %v, want %v", p.parts, wantParts)
			}
			for _, w := range tt.wantHuman {
				if !strings.Contains(p.human, w) {
					t.Errorf("human-readable part lacks %q:\n%s", w, p.human)
				}
			}
			// RFC 3464's spelling of the field names, not a canonicalised one.
			if !strings.HasPrefix(p.statusRaw, "Reporting-MTA: ") {
				t.Errorf("delivery-status starts %q", p.statusRaw[:min(40, len(p.statusRaw))])
			}
			for k, v := range tt.wantMessage {
				if got := p.perMessage.Get(k); got != v {
					t.Errorf("per-message %s = %q, want %q", k, got, v)
				}
			}
			if len(p.perRcpt) != len(tt.wantRcpts) {
				t.Fatalf("%d recipient groups, want %d:\n%s", len(p.perRcpt), len(tt.wantRcpts), p.statusRaw)
			}
			for i, w := range tt.wantRcpts {
				h := p.perRcpt[i]
				for k, v := range map[string]string{
					"Final-Recipient": w.final, "Original-Recipient": w.original, "Action": w.action, "Status": w.status,
					"Remote-MTA": w.remote, "Diagnostic-Code": w.diag, "Last-Attempt-Date": w.lastAttempt,
				} {
					if got := h.Get(k); got != v {
						t.Errorf("recipient %d: %s = %q, want %q", i, k, got, v)
					}
				}
			}
			if tt.dsn.Original != nil {
				oh, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(p.original)))
				if err != nil {
					t.Fatalf("original headers: %v", err)
				}
				want, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(tt.dsn.Original)))
				if oh.Get("Subject") != want.Get("Subject") || oh.Get("From") != want.Get("From") {
					t.Errorf("original headers %q", p.original)
				}
				if strings.Contains(p.original, "SECRET BODY") || bytes.Contains(raw, []byte("SECRET BODY")) {
					t.Error("the original body was returned")
				}
			}
		})
	}
}

func TestBuildDSNRefuses(t *testing.T) {
	ok := delivery.DSN{ReportingMTA: "mx.example.org", To: "alice@example.org", Recipients: []delivery.DSNRecipient{{Address: "bob@remote.test"}}}
	if _, err := delivery.BuildDSN(ok); err != nil {
		t.Fatalf("the control case fails: %v", err)
	}
	tests := []struct {
		name   string
		change func(d *delivery.DSN)
		is     error
	}{
		{"null sender", func(d *delivery.DSN) { d.To = "" }, delivery.ErrBounceToNull},
		{"no reporting MTA", func(d *delivery.DSN) { d.ReportingMTA = "" }, nil},
		{"reporting MTA with a break", func(d *delivery.DSN) { d.ReportingMTA = "mx\r\nBcc: x@y" }, nil},
		{"no recipients", func(d *delivery.DSN) { d.Recipients = nil }, nil},
		{"recipient without address", func(d *delivery.DSN) { d.Recipients = []delivery.DSNRecipient{{}} }, nil},
		{"bad status", func(d *delivery.DSN) { d.Recipients = []delivery.DSNRecipient{{Address: "b@r.test", Status: "550"}} }, nil},
		{"unknown action", func(d *delivery.DSN) {
			d.Recipients = []delivery.DSNRecipient{{Address: "b@r.test", Action: "delivered"}}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			d.Recipients = append([]delivery.DSNRecipient(nil), ok.Recipients...)
			tt.change(&d)
			raw, err := delivery.BuildDSN(d)
			if err == nil {
				t.Fatalf("built a DSN:\n%s", raw)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
		})
	}
}

func TestFailedRecipient(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name                       string
		err                        error
		status, dtype, diag, avoid string
	}{
		{"reply", delivery.ErrUnknownUser, "5.1.1", "", "550 5.1.1 No such user here", ""},
		{"wrapped reply", errors.Join(errors.New("x"), delivery.ErrTooLarge), "5.3.4", "", "552 5.3.4 Message too big", ""},
		{"internal error", errors.New("dial tcp 10.0.0.7:3306: connection refused"), "5.0.0", "X-Basalt", "local delivery failed", "10.0.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := delivery.FailedRecipient("bob@example.org", tt.err, at)
			if r.Address != "bob@example.org" || r.Action != delivery.ActionFailed || !r.LastAttempt.Equal(at) ||
				r.Status != tt.status || r.DiagnosticType != tt.dtype || r.Diagnostic != tt.diag {
				t.Fatalf("got %+v", r)
			}
			raw, err := delivery.BuildDSN(delivery.DSN{ReportingMTA: "mx.example.org", To: "a@example.org", Recipients: []delivery.DSNRecipient{r}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.avoid != "" && bytes.Contains(raw, []byte(tt.avoid)) {
				t.Fatalf("the DSN shows %q", tt.avoid)
			}
		})
	}
}
