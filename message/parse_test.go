package message

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"
)

const simpleText = `Return-Path: <alice@example.com>
Received: from mx.example.com by mail.example.org;
	Mon, 2 Jan 2006 15:04:06 -0700
From: Alice Example <alice@example.com>
To: Bob <bob@example.org>, carol@example.net
Cc: "Doe, John" <john@example.net>
Subject: Lunch tomorrow?
Date: Mon, 02 Jan 2006 15:04:05 -0700
Message-ID: <m1.abc@example.com>
In-Reply-To: <m0@example.org>
References: <r0@example.org>
 <m0@example.org>
MIME-Version: 1.0

Hi Bob,

  lunch at   noon?
-- 
Alice
`

const alternative = `From: news@example.com
To: reader@example.org
Subject: =?UTF-8?B?8J+OiSBOZXdz?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-1"

This is a multi-part message in MIME format.
--alt-1
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Caf=E9 ouvert =
aujourd'hui.
--alt-1
Content-Type: text/html; charset=utf-8

<html><head><style>p{color:red}</style></head><body><p>Caf&eacute; ouvert</p></body></html>
--alt-1--
epilogue
`

const pdfBase64 = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3Ro\nIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+CnN0cmVhbQo="

const mixed = `From: "Sender" <s@example.com>
To: r@example.org
Subject: Rates
MIME-Version: 1.0
Content-Type: multipart/mixed;
 boundary="----=_Part_0_1"

------=_Part_0_1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

See attached. Grüße
------=_Part_0_1
Content-Type: application/pdf
Content-Disposition: attachment;
 filename*=UTF-8''%E2%82%AC%20rates.pdf
Content-Transfer-Encoding: base64
Content-Description: Rates sheet
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Language: en, de (German)
Content-Location: http://example.com/
 rates.pdf

` + pdfBase64 + `
------=_Part_0_1
Content-Type: image/jpeg; name="photo.jpg"
Content-Transfer-Encoding: base64
Content-ID: <photo1@example.com>

/9j/4AAQSkZJRgABAQEASABIAAD/
------=_Part_0_1
Content-Type: text/plain; name*0*=iso-8859-1''caf%E9; name*1="-menu.txt"
Content-Disposition: inline

menu
------=_Part_0_1--
`

const nested = `From: a@example.com
To: b@example.com
Subject: Fwd: Original
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain

See below.
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="orig.eml"

From: Carol <carol@example.net>
To: Dave <dave@example.net>
Subject: Original
Date: Tue, 3 Jan 2006 10:00:00 +0100
Message-ID: <orig@example.net>
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

Inner text
--inner
Content-Type: text/html

<p>Inner</p>
--inner--
--outer
Content-Type: message/rfc822

Subject: plain inner

Just text.
--outer--
`

const groups = `From: Boss <boss@example.com>
Sender: Secretary <sec@example.com>
Reply-To: replies@example.com
To: undisclosed-recipients:;
Cc: Friends: alice@example.com, "Bob B." <bob@example.com>;, carol@example.com
Bcc: =?UTF-8?Q?Gr=C3=BCppe?=: dave@example.com;
Subject: groups

body
`

const related = `From: a@example.com
Subject: newsletter
Content-Type: multipart/related; boundary=rel

--rel
Content-Type: text/html; charset=us-ascii

<html><body><script>alert(1)</script><img src="cid:logo@x">Hello&nbsp;&amp; welcome</body></html>
--rel
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--
`

const digest = `From: list@example.com
Subject: digest
Content-Type: multipart/digest; boundary=dg

--dg

Subject: first

one
--dg
Content-Type: text/plain

not a message
--dg--
`

func TestParse(t *testing.T) {
	mst := time.FixedZone("", -7*3600)
	tests := []struct {
		name   string
		raw    string
		shape  string
		bodies map[string]string // section path -> raw[BodyStart:BodyEnd]
		mimes  map[string]string // section path -> raw[HeaderStart:BodyStart]
		check  func(t *testing.T, info *Info, raw string)
	}{
		{
			name:  "simple text",
			raw:   crlf(simpleText),
			shape: "text/plain",
			bodies: map[string]string{
				"1": crlf("Hi Bob,\n\n  lunch at   noon?\n-- \nAlice\n"),
			},
			check: func(t *testing.T, info *Info, raw string) {
				e := info.Envelope
				if !e.Date.Equal(time.Date(2006, 1, 2, 15, 4, 5, 0, mst)) {
					t.Errorf("Date = %v", e.Date)
				}
				if _, off := e.Date.Zone(); off != -7*3600 {
					t.Errorf("Date zone offset = %d, want the header's -0700", off)
				}
				if e.Subject != "Lunch tomorrow?" {
					t.Errorf("Subject = %q", e.Subject)
				}
				from := []Address{{Name: "Alice Example", Mailbox: "alice", Host: "example.com"}}
				if !reflect.DeepEqual(e.From, from) || !reflect.DeepEqual(e.Sender, from) || !reflect.DeepEqual(e.ReplyTo, from) {
					t.Errorf("From/Sender/ReplyTo = %v / %v / %v, want all %v", e.From, e.Sender, e.ReplyTo, from)
				}
				to := []Address{{Name: "Bob", Mailbox: "bob", Host: "example.org"}, {Mailbox: "carol", Host: "example.net"}}
				if !reflect.DeepEqual(e.To, to) {
					t.Errorf("To = %v", e.To)
				}
				if cc := []Address{{Name: "Doe, John", Mailbox: "john", Host: "example.net"}}; !reflect.DeepEqual(e.Cc, cc) {
					t.Errorf("Cc = %v", e.Cc)
				}
				if e.Bcc != nil {
					t.Errorf("Bcc = %v", e.Bcc)
				}
				if e.MessageID != "<m1.abc@example.com>" || e.InReplyTo != "<m0@example.org>" {
					t.Errorf("MessageID, InReplyTo = %q, %q", e.MessageID, e.InReplyTo)
				}
				if want := []string{"<r0@example.org>", "<m0@example.org>"}; !reflect.DeepEqual(info.References, want) {
					t.Errorf("References = %q", info.References)
				}
				b := info.Body
				if b.Params["charset"] != "us-ascii" || b.Encoding != "7BIT" || b.Lines != 5 {
					t.Errorf("body params %v, encoding %q, lines %d", b.Params, b.Encoding, b.Lines)
				}
				if want := int64(strings.Index(raw, "\r\n\r\n") + 4); info.HeaderSize != want {
					t.Errorf("HeaderSize = %d, want %d", info.HeaderSize, want)
				}
				if info.Snippet != "Hi Bob, lunch at noon? -- Alice" {
					t.Errorf("Snippet = %q", info.Snippet)
				}
				if info.SearchFrom != "alice example alice@example.com" ||
					info.SearchTo != "bob bob@example.org, carol@example.net" ||
					info.SearchSubject != "lunch tomorrow?" {
					t.Errorf("search fields %q / %q / %q", info.SearchFrom, info.SearchTo, info.SearchSubject)
				}
				if info.HasAttachments || info.Attachments != nil {
					t.Errorf("attachments %v", info.Attachments)
				}
			},
		},
		{
			name:  "bare LF line endings",
			raw:   simpleText,
			shape: "text/plain",
			bodies: map[string]string{
				"1": "Hi Bob,\n\n  lunch at   noon?\n-- \nAlice\n",
			},
			check: func(t *testing.T, info *Info, raw string) {
				if info.Body.Lines != 5 {
					t.Errorf("Lines = %d, want 5", info.Body.Lines)
				}
				if info.Envelope.Subject != "Lunch tomorrow?" || len(info.References) != 2 {
					t.Errorf("Subject %q, References %q", info.Envelope.Subject, info.References)
				}
			},
		},
		{
			name:  "multipart/alternative",
			raw:   crlf(alternative),
			shape: "multipart/alternative(text/plain,text/html)",
			bodies: map[string]string{
				"1": crlf("Caf=E9 ouvert =\naujourd'hui."),
				"2": "<html><head><style>p{color:red}</style></head><body><p>Caf&eacute; ouvert</p></body></html>",
			},
			mimes: map[string]string{
				"1": crlf("Content-Type: text/plain; charset=\"iso-8859-1\"\nContent-Transfer-Encoding: quoted-printable\n\n"),
				"2": crlf("Content-Type: text/html; charset=utf-8\n\n"),
			},
			check: func(t *testing.T, info *Info, raw string) {
				if info.Envelope.Subject != "🎉 News" {
					t.Errorf("Subject = %q", info.Envelope.Subject)
				}
				if info.Body.Params["boundary"] != "alt-1" {
					t.Errorf("multipart params %v", info.Body.Params)
				}
				p1, p2 := info.Body.Parts[0], info.Body.Parts[1]
				if p1.Encoding != "QUOTED-PRINTABLE" || p1.Params["charset"] != "iso-8859-1" || p1.Lines != 2 {
					t.Errorf("part 1: %q %v lines %d", p1.Encoding, p1.Params, p1.Lines)
				}
				if p2.Encoding != "7BIT" || p2.Lines != 1 {
					t.Errorf("part 2: %q lines %d", p2.Encoding, p2.Lines)
				}
				if info.Snippet != "Café ouvert aujourd'hui." {
					t.Errorf("Snippet = %q", info.Snippet)
				}
				if info.HasAttachments || len(info.Attachments) != 0 {
					t.Errorf("attachments %v", info.Attachments)
				}
			},
		},
		{
			name:  "multipart/mixed with attachments",
			raw:   crlf(mixed),
			shape: "multipart/mixed(text/plain,application/pdf,image/jpeg,text/plain)",
			bodies: map[string]string{
				"1": "See attached. Grüße",
				"2": crlf(pdfBase64),
				"3": "/9j/4AAQSkZJRgABAQEASABIAAD/",
				"4": "menu",
			},
			check: func(t *testing.T, info *Info, raw string) {
				if got := info.Body.Params["boundary"]; got != "----=_Part_0_1" {
					t.Errorf("boundary = %q", got)
				}
				pdf := info.Body.Parts[1]
				if pdf.Disposition != "attachment" || pdf.DispositionParams["filename"] != "€ rates.pdf" {
					t.Errorf("pdf disposition %q %v", pdf.Disposition, pdf.DispositionParams)
				}
				if pdf.Description != "Rates sheet" || pdf.MD5 != "Q2hlY2sgSW50ZWdyaXR5IQ==" ||
					!reflect.DeepEqual(pdf.Language, []string{"en", "de"}) || pdf.Location != "http://example.com/rates.pdf" {
					t.Errorf("pdf extension data: %q %q %q %q", pdf.Description, pdf.MD5, pdf.Language, pdf.Location)
				}
				if pdf.Encoding != "BASE64" || pdf.Lines != 0 {
					t.Errorf("pdf encoding %q lines %d", pdf.Encoding, pdf.Lines)
				}
				pdfBytes, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(pdfBase64, "\n", ""))
				jpg, _ := base64.StdEncoding.DecodeString("/9j/4AAQSkZJRgABAQEASABIAAD/")
				want := []Attachment{
					{Path: "2", Name: "€ rates.pdf", Type: "application/pdf", Size: int64(len(pdfBytes))},
					{Path: "3", Name: "photo.jpg", Type: "image/jpeg", Size: int64(len(jpg)), ContentID: "photo1@example.com"},
					{Path: "4", Name: "café-menu.txt", Type: "text/plain", Size: 4, Inline: true},
				}
				if !reflect.DeepEqual(info.Attachments, want) {
					t.Errorf("Attachments =\n%+v\nwant\n%+v", info.Attachments, want)
				}
				if !info.HasAttachments {
					t.Error("HasAttachments = false")
				}
				if info.Snippet != "See attached. Grüße" {
					t.Errorf("Snippet = %q", info.Snippet)
				}
			},
		},
		{
			name:  "nested message/rfc822",
			raw:   crlf(nested),
			shape: "multipart/mixed(text/plain,message/rfc822[multipart/alternative(text/plain,text/html)],message/rfc822[text/plain])",
			bodies: map[string]string{
				"1":   "See below.",
				"2.1": "Inner text",
				"2.2": "<p>Inner</p>",
				"3.1": "Just text.",
			},
			mimes: map[string]string{
				"2":   crlf("Content-Type: message/rfc822\nContent-Disposition: attachment; filename=\"orig.eml\"\n\n"),
				"2.1": crlf("Content-Type: text/plain\n\n"),
			},
			check: func(t *testing.T, info *Info, raw string) {
				m := &info.Body.Parts[1]
				if m.Envelope.Subject != "Original" || m.Envelope.MessageID != "<orig@example.net>" ||
					!reflect.DeepEqual(m.Envelope.From, []Address{{Name: "Carol", Mailbox: "carol", Host: "example.net"}}) {
					t.Errorf("inner envelope %+v", m.Envelope)
				}
				if m.Envelope.Date.IsZero() {
					t.Error("inner Date not parsed")
				}
				inner := raw[m.BodyStart:m.BodyEnd]
				if !strings.HasPrefix(inner, "From: Carol") || !strings.HasSuffix(inner, "--inner--") {
					t.Errorf("message part body = %q", inner)
				}
				if m.Lines != countLines([]byte(inner)) || m.Lines != 16 {
					t.Errorf("message part Lines = %d", m.Lines)
				}
				// BODY[2.HEADER] and BODY[2.TEXT] are those of m.Body.
				hdr := raw[m.Body.HeaderStart:m.Body.BodyStart]
				if !strings.HasPrefix(hdr, "From: Carol") || !strings.HasSuffix(hdr, "boundary=inner\r\n\r\n") {
					t.Errorf("inner header = %q", hdr)
				}
				if info.Snippet != "See below." {
					t.Errorf("Snippet = %q", info.Snippet)
				}
				want := []Attachment{
					{Path: "2", Name: "orig.eml", Type: "message/rfc822", Size: m.Size},
					{Path: "3", Type: "message/rfc822", Size: info.Body.Parts[2].Size},
				}
				if !reflect.DeepEqual(info.Attachments, want) || !info.HasAttachments {
					t.Errorf("Attachments = %+v", info.Attachments)
				}
			},
		},
		{
			name:  "group addresses",
			raw:   crlf(groups),
			shape: "text/plain",
			check: func(t *testing.T, info *Info, raw string) {
				e := info.Envelope
				if want := []Address{{Mailbox: "undisclosed-recipients"}, {}}; !reflect.DeepEqual(e.To, want) {
					t.Errorf("To = %+v", e.To)
				}
				wantCc := []Address{
					{Mailbox: "Friends"},
					{Mailbox: "alice", Host: "example.com"},
					{Name: "Bob B.", Mailbox: "bob", Host: "example.com"},
					{},
					{Mailbox: "carol", Host: "example.com"},
				}
				if !reflect.DeepEqual(e.Cc, wantCc) {
					t.Errorf("Cc = %+v", e.Cc)
				}
				if want := []Address{{Mailbox: "Grüppe"}, {Mailbox: "dave", Host: "example.com"}, {}}; !reflect.DeepEqual(e.Bcc, want) {
					t.Errorf("Bcc = %+v", e.Bcc)
				}
				if !e.To[0].IsGroupStart() || !e.To[1].IsGroupEnd() || e.Cc[1].IsGroupStart() || e.Cc[1].IsGroupEnd() {
					t.Error("group marker predicates wrong")
				}
				if want := []Address{{Name: "Secretary", Mailbox: "sec", Host: "example.com"}}; !reflect.DeepEqual(e.Sender, want) {
					t.Errorf("Sender = %+v (a present Sender must not default to From)", e.Sender)
				}
				if want := []Address{{Mailbox: "replies", Host: "example.com"}}; !reflect.DeepEqual(e.ReplyTo, want) {
					t.Errorf("ReplyTo = %+v", e.ReplyTo)
				}
				if info.SearchTo != "undisclosed-recipients" {
					t.Errorf("SearchTo = %q", info.SearchTo)
				}
			},
		},
		{
			name:  "multipart/related html with embedded image",
			raw:   crlf(related),
			shape: "multipart/related(text/html,image/png)",
			bodies: map[string]string{
				"2": "iVBORw0KGgo=",
			},
			check: func(t *testing.T, info *Info, raw string) {
				if info.Snippet != "Hello & welcome" {
					t.Errorf("Snippet = %q", info.Snippet)
				}
				want := []Attachment{{Path: "2", Type: "image/png", Size: 8, ContentID: "logo@x", Inline: true}}
				if !reflect.DeepEqual(info.Attachments, want) {
					t.Errorf("Attachments = %+v", info.Attachments)
				}
				if info.HasAttachments {
					t.Error("an embedded image of the HTML body made HasAttachments true")
				}
			},
		},
		{
			name:  "multipart/digest defaults to message/rfc822",
			raw:   crlf(digest),
			shape: "multipart/digest(message/rfc822[text/plain],text/plain)",
			bodies: map[string]string{
				"1.1": "one",
				"2":   "not a message",
			},
			check: func(t *testing.T, info *Info, raw string) {
				if s := info.Body.Parts[0].Envelope.Subject; s != "first" {
					t.Errorf("digest part subject = %q", s)
				}
			},
		},
		{
			name:  "single-part attachment message",
			raw:   crlf("Subject: scan\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=scan.pdf\n\n" + pdfBase64 + "\n"),
			shape: "application/pdf",
			check: func(t *testing.T, info *Info, raw string) {
				if len(info.Attachments) != 1 || info.Attachments[0].Path != "1" || info.Attachments[0].Name != "scan.pdf" {
					t.Errorf("Attachments = %+v", info.Attachments)
				}
				if info.Snippet != "" {
					t.Errorf("Snippet = %q", info.Snippet)
				}
			},
		},
		{
			name:  "quoted-printable html only",
			raw:   crlf("Content-Type: text/html; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\n<title>T</title><div>Price: =80 5</div><div>a &lt; b</div>\n"),
			shape: "text/html",
			check: func(t *testing.T, info *Info, raw string) {
				if info.Snippet != "Price: € 5 a < b" {
					t.Errorf("Snippet = %q", info.Snippet)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			info := Parse(raw)
			if err := checkInfo(raw, info); err != nil {
				t.Fatalf("invariants: %v", err)
			}
			if got := shape(&info.Body); got != tt.shape {
				t.Errorf("shape = %s\nwant    %s", got, tt.shape)
			}
			for path, want := range tt.bodies {
				p, err := info.Body.Find(path)
				if err != nil {
					t.Errorf("Find(%q): %v", path, err)
					continue
				}
				if got := tt.raw[p.BodyStart:p.BodyEnd]; got != want {
					t.Errorf("BODY[%s] = %q, want %q", path, got, want)
				}
			}
			for path, want := range tt.mimes {
				p, err := info.Body.Find(path)
				if err != nil {
					t.Errorf("Find(%q): %v", path, err)
					continue
				}
				if got := tt.raw[p.HeaderStart:p.BodyStart]; got != want {
					t.Errorf("BODY[%s.MIME] = %q, want %q", path, got, want)
				}
			}
			if tt.check != nil {
				tt.check(t, info, tt.raw)
			}
		})
	}
}

func TestParseSubjects(t *testing.T) {
	tests := []struct {
		name, subject, want string
	}{
		{"utf-8 base64", "=?UTF-8?B?w5xiZXJzZXR6dW5n?=", "Übersetzung"},
		{"iso-8859-1 q", "=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"},
		{"unknown charset kept raw", "Re: =?x-unknown-charset?Q?abc?= ok", "Re: =?x-unknown-charset?Q?abc?= ok"},
		{"adjacent words lose the space between", "Re: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_ol=C3=A9?= end", "Re: café olé end"},
		{"character split across words", "=?UTF-8?Q?=C3?=\r\n =?UTF-8?Q?=A9?=", "é"},
		{"windows-1252", "=?windows-1252?Q?=80_5?=", "€ 5"},
		{"koi8-r", "=?KOI8-R?B?8NLJ18XU?=", "Привет"},
		{"iso-2022-jp", "=?ISO-2022-JP?B?GyRCJEgkJhsoQg==?=", "とう"},
		{"rfc 2231 language suffix", "=?utf-8*en?Q?hi?=", "hi"},
		{"unknown charset run keeps its spaces", "=?x-nope?Q?a?= =?x-nope?Q?b?=", "=?x-nope?Q?a?= =?x-nope?Q?b?="},
		{"space kept next to an unknown word", "=?utf-8?Q?a?= =?x-nope?Q?b?= =?utf-8?Q?c?=", "a =?x-nope?Q?b?= c"},
		{"bad encoding letter kept", "=?utf-8?X?abc?=", "=?utf-8?X?abc?="},
		{"bad base64 kept", "=?utf-8?B?!!!?=", "=?utf-8?B?!!!?="},
		{"raw latin-1 octets", "caf\xe9", "café"},
		{"raw utf-8", "Grüße", "Grüße"},
		{"folded plain", "a long\r\n subject", "a long subject"},
		{"encoded line break becomes space", "=?utf-8?Q?a=0D=0Ab?=", "a  b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := crlf("From: a@example.com\nSubject: ") + tt.subject + "\r\n\r\nbody\r\n"
			info := Parse([]byte(raw))
			if err := checkInfo([]byte(raw), info); err != nil {
				t.Fatalf("invariants: %v", err)
			}
			if info.Envelope.Subject != tt.want {
				t.Errorf("Subject = %q, want %q", info.Envelope.Subject, tt.want)
			}
			if info.SearchSubject != strings.ToLower(tt.want) {
				t.Errorf("SearchSubject = %q", info.SearchSubject)
			}
		})
	}
}

func TestParseMissingHeaders(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		headerSize int
		shape      string
		check      func(t *testing.T, info *Info)
	}{
		{
			name:  "empty message",
			raw:   "",
			shape: "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Body.Params["charset"] != "us-ascii" || info.Body.Size != 0 || info.Body.Lines != 0 {
					t.Errorf("body %+v", info.Body)
				}
				if !reflect.DeepEqual(info.Envelope, Envelope{}) {
					t.Errorf("Envelope = %+v", info.Envelope)
				}
			},
		},
		{
			name:       "empty header",
			raw:        "\r\nJust a body\r\n",
			headerSize: 2,
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Snippet != "Just a body" || info.Body.Lines != 1 {
					t.Errorf("Snippet %q Lines %d", info.Snippet, info.Body.Lines)
				}
			},
		},
		{
			name:       "header without body",
			raw:        "Subject: only header\r\nFrom: x@y\r\n",
			headerSize: len("Subject: only header\r\nFrom: x@y\r\n"),
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Envelope.Subject != "only header" || info.Body.Size != 0 {
					t.Errorf("Subject %q Size %d", info.Envelope.Subject, info.Body.Size)
				}
			},
		},
		{
			name:  "no header at all",
			raw:   "Hello there\nsecond line",
			shape: "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Snippet != "Hello there second line" || info.Body.Lines != 2 {
					t.Errorf("Snippet %q Lines %d", info.Snippet, info.Body.Lines)
				}
			},
		},
		{
			name:       "mbox From line is skipped",
			raw:        "From alice@example.com Mon Jan  2 15:04:05 2006\nSubject: hi\n\nx\n",
			headerSize: len("From alice@example.com Mon Jan  2 15:04:05 2006\nSubject: hi\n\n"),
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Envelope.Subject != "hi" {
					t.Errorf("Subject = %q", info.Envelope.Subject)
				}
			},
		},
		{
			name:       "invalid header lines are skipped",
			raw:        "Subject: hi\r\nthis is junk\r\nFrom: a@b\r\n\r\nx",
			headerSize: len("Subject: hi\r\nthis is junk\r\nFrom: a@b\r\n\r\n"),
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Envelope.Subject != "hi" || len(info.Envelope.From) != 1 {
					t.Errorf("Subject %q From %v", info.Envelope.Subject, info.Envelope.From)
				}
			},
		},
		{
			name:       "first of repeated headers wins",
			raw:        "Subject: first\r\nSubject: second\r\n\r\n",
			headerSize: len("Subject: first\r\nSubject: second\r\n\r\n"),
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Envelope.Subject != "first" {
					t.Errorf("Subject = %q", info.Envelope.Subject)
				}
			},
		},
		{
			name:       "invalid Content-Type defaults to text/plain",
			raw:        "Content-Type: text\r\n\r\nx",
			headerSize: len("Content-Type: text\r\n\r\n"),
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				if info.Body.Params["charset"] != "us-ascii" {
					t.Errorf("Params = %v", info.Body.Params)
				}
			},
		},
		{
			name:       "type is lower-cased, encoding upper-cased",
			raw:        "Content-Type: Image/PNG; NAME=\"a.png\"\r\nContent-Transfer-Encoding: Base64 (comment)\r\n\r\nAAAA",
			headerSize: len("Content-Type: Image/PNG; NAME=\"a.png\"\r\nContent-Transfer-Encoding: Base64 (comment)\r\n\r\n"),
			shape:      "image/png",
			check: func(t *testing.T, info *Info) {
				if info.Body.Encoding != "BASE64" || info.Body.Params["name"] != "a.png" || info.Body.Lines != 0 {
					t.Errorf("Encoding %q Params %v Lines %d", info.Body.Encoding, info.Body.Params, info.Body.Lines)
				}
			},
		},
		{
			name:       "unparseable date and odd addresses",
			raw:        "Date: yesterday\r\nFrom: John Doe\r\nTo: <>, Name <>\r\nMessage-ID: not-an-id\r\n\r\n",
			headerSize: len("Date: yesterday\r\nFrom: John Doe\r\nTo: <>, Name <>\r\nMessage-ID: not-an-id\r\n\r\n"),
			shape:      "text/plain",
			check: func(t *testing.T, info *Info) {
				e := info.Envelope
				if !e.Date.IsZero() {
					t.Errorf("Date = %v", e.Date)
				}
				if want := []Address{{Mailbox: "John Doe", Host: MissingHost}}; !reflect.DeepEqual(e.From, want) {
					t.Errorf("From = %+v", e.From)
				}
				if want := []Address{{Name: "Name", Host: MissingHost}}; !reflect.DeepEqual(e.To, want) {
					t.Errorf("To = %+v", e.To)
				}
				if e.MessageID != "not-an-id" {
					t.Errorf("MessageID = %q", e.MessageID)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			info := Parse(raw)
			if err := checkInfo(raw, info); err != nil {
				t.Fatalf("invariants: %v", err)
			}
			if info.HeaderSize != int64(tt.headerSize) {
				t.Errorf("HeaderSize = %d, want %d", info.HeaderSize, tt.headerSize)
			}
			if got := shape(&info.Body); got != tt.shape {
				t.Errorf("shape = %s, want %s", got, tt.shape)
			}
			if tt.check != nil {
				tt.check(t, info)
			}
		})
	}
}

func TestParseMalformedMultipart(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		shape  string
		bodies map[string]string
	}{
		{
			name:   "unterminated: last part runs to the end",
			raw:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\nContent-Type: text/html\n\ntwo\nstill two\n"),
			shape:  "multipart/mixed(text/plain,text/html)",
			bodies: map[string]string{"1": "one", "2": crlf("two\nstill two\n")},
		},
		{
			name:   "no boundary parameter",
			raw:    crlf("Content-Type: multipart/mixed\n\n--b\n\none\n--b--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": crlf("--b\n\none\n--b--\n")},
		},
		{
			name:   "boundary never appears",
			raw:    crlf("Content-Type: multipart/mixed; boundary=zzz\n\njust text\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": crlf("just text\n")},
		},
		{
			name:   "only a closing delimiter",
			raw:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": crlf("--b--\n")},
		},
		{
			name:   "longer boundary with the same prefix does not split",
			raw:    crlf("Content-Type: multipart/mixed; boundary=abc\n\n--abc\n\nx\n--abcdef\ny\n--abc--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": crlf("x\n--abcdef\ny")},
		},
		{
			name:   "delimiter not at line start does not split",
			raw:    crlf("Content-Type: multipart/mixed; boundary=abc\n\n--abc\n\nx --abc\n--abc--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": "x --abc"},
		},
		{
			name:   "part without header starts with its body",
			raw:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nHello without header\n--b--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": "Hello without header"},
		},
		{
			name:   "empty parts and delimiter padding",
			raw:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b \t\n\nx\n--b--  \nepilogue"),
			shape:  "multipart/mixed(text/plain,text/plain)",
			bodies: map[string]string{"1": "", "2": "x"},
		},
		{
			name: "inner multipart left open, outer closes",
			raw: crlf("Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n" +
				"--inner\n\na\n--inner\n\nb\n--outer\n\nc\n--outer--\n"),
			shape:  "multipart/mixed(multipart/alternative(text/plain,text/plain),text/plain)",
			bodies: map[string]string{"1.1": "a", "1.2": "b", "2": "c"},
		},
		{
			name:   "base64 message/rfc822 is opaque",
			raw:    crlf("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5\n"),
			shape:  "message/rfc822[text/plain]",
			bodies: map[string]string{"1.1": crlf("U3ViamVjdDogeA0KDQp5\n")},
		},
		{
			name:   "bare LF multipart",
			raw:    "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n--b--\n",
			shape:  "multipart/mixed(text/plain,text/plain)",
			bodies: map[string]string{"1": "one", "2": "two"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			info := Parse(raw)
			if err := checkInfo(raw, info); err != nil {
				t.Fatalf("invariants: %v", err)
			}
			if got := shape(&info.Body); got != tt.shape {
				t.Errorf("shape = %s\nwant    %s", got, tt.shape)
			}
			for path, want := range tt.bodies {
				p, err := info.Body.Find(path)
				if err != nil {
					t.Errorf("Find(%q): %v", path, err)
					continue
				}
				if got := tt.raw[p.BodyStart:p.BodyEnd]; got != want {
					t.Errorf("BODY[%s] = %q, want %q", path, got, want)
				}
			}
		})
	}
}

// TestParseLimits checks that hostile nesting and part counts are bounded
// and still give a valid structure.
func TestParseLimits(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		maxDepth  int
		maxParts  int
		wantParts int // -1: don't check
	}{
		{
			name:      "deeply nested messages",
			raw:       strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 200) + "Subject: bottom\r\n\r\nx",
			maxDepth:  MaxDepth + 1,
			wantParts: -1,
		},
		{
			name:      "deeply nested multiparts",
			raw:       "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", 200),
			maxDepth:  MaxDepth + 1,
			wantParts: -1,
		},
		{
			name:      "many parts",
			raw:       "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", MaxParts+500) + "--b--\r\n",
			maxDepth:  2,
			wantParts: MaxParts - 1, // the root counts as one
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			info := parse(raw)
			if err := checkInfo(raw, info); err != nil {
				t.Fatalf("invariants: %v", err)
			}
			depth := 0
			for p := &info.Body; p != nil; depth++ {
				switch {
				case p.Body != nil:
					p = p.Body
				case len(p.Parts) > 0:
					p = &p.Parts[len(p.Parts)-1]
				default:
					p = nil
				}
			}
			if depth > tt.maxDepth+1 {
				t.Errorf("structure depth %d exceeds %d", depth, tt.maxDepth+1)
			}
			if tt.wantParts >= 0 && len(info.Body.Parts) != tt.wantParts {
				t.Errorf("%d parts, want %d", len(info.Body.Parts), tt.wantParts)
			}
		})
	}
}

func TestParseNeverPanics(t *testing.T) {
	// Parse's recover turns an internal panic into a one-part description;
	// check the fallback itself is valid.
	raw := []byte("Subject: x\r\n\r\nbody")
	info := fallbackInfo(raw)
	if err := checkInfo(raw, info); err != nil {
		t.Fatalf("fallback invariants: %v", err)
	}
	if info.Body.BodyStart != 0 || info.Body.Size != int64(len(raw)) {
		t.Errorf("fallback body %+v", info.Body)
	}
}
