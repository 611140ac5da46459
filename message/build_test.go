package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

func file(name, ctype, content string) File {
	return File{Name: name, Type: ctype, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(content)), nil
	}}
}

// tree describes a body structure: "type/subtype" for a leaf, with the
// parts in parentheses for a multipart.
func tree(p *Part) string {
	s := p.Type + "/" + p.Subtype
	if !p.IsMultipart() {
		return s
	}
	var kids []string
	for i := range p.Parts {
		kids = append(kids, tree(&p.Parts[i]))
	}
	return s + "(" + strings.Join(kids, ",") + ")"
}

// TestBuildBody: the shape of what Build writes for each kind of body,
// and every part decoding back to what was given.
func TestBuildBody(t *testing.T) {
	long := strings.Repeat("a long line of text ", 100) // 2000 octets, no break
	tests := []struct {
		name string
		spec Spec
		tree string
		// parts maps a section to: its decoded body, its encoding, its
		// Content-Disposition type, its file name.
		parts map[string][4]string
	}{
		{
			name: "text only", spec: Spec{Text: "héllo\r\n" + long},
			tree:  "text/plain",
			parts: map[string][4]string{"1": {"héllo\r\n" + long, "QUOTED-PRINTABLE", "", ""}},
		},
		{
			name: "html only", spec: Spec{HTML: "<p>hi</p>"},
			tree:  "text/html",
			parts: map[string][4]string{"1": {"<p>hi</p>", "QUOTED-PRINTABLE", "", ""}},
		},
		{
			name: "nothing at all", spec: Spec{},
			tree:  "text/plain",
			parts: map[string][4]string{"1": {"", "QUOTED-PRINTABLE", "", ""}},
		},
		{
			name: "text and html", spec: Spec{Text: "hi", HTML: "<b>hi</b>"},
			tree: "multipart/alternative(text/plain,text/html)",
			parts: map[string][4]string{
				"1": {"hi", "QUOTED-PRINTABLE", "inline", ""},
				"2": {"<b>hi</b>", "QUOTED-PRINTABLE", "inline", ""},
			},
		},
		{
			name: "text and files",
			spec: Spec{Text: "see attached", Files: []File{
				file("naïve résumé.pdf", "application/pdf", "%PDF\x00\xff"),
				file("x.bin", "not a type", "\x00\x01"),
			}},
			tree: "multipart/mixed(text/plain,application/pdf,application/octet-stream)",
			parts: map[string][4]string{
				"1": {"see attached", "QUOTED-PRINTABLE", "inline", ""},
				"2": {"%PDF\x00\xff", "BASE64", "attachment", "naïve résumé.pdf"},
				"3": {"\x00\x01", "BASE64", "attachment", "x.bin"},
			},
		},
		{
			name: "text, html and a file",
			spec: Spec{Text: "hi", HTML: "<i>hi</i>", Files: []File{file("a.txt", "text/plain; charset=utf-8", "é")}},
			tree: "multipart/mixed(multipart/alternative(text/plain,text/html),text/plain)",
			parts: map[string][4]string{
				"1.1": {"hi", "QUOTED-PRINTABLE", "inline", ""},
				"1.2": {"<i>hi</i>", "QUOTED-PRINTABLE", "inline", ""},
				"2":   {"é", "BASE64", "attachment", "a.txt"},
			},
		},
		{
			name: "html and a file", spec: Spec{HTML: "<i>hi</i>", Files: []File{file("a", "image/png", "PNG")}},
			tree: "multipart/mixed(text/html,image/png)",
			parts: map[string][4]string{
				"1": {"<i>hi</i>", "QUOTED-PRINTABLE", "inline", ""},
				"2": {"PNG", "BASE64", "attachment", "a"},
			},
		},
		{
			name: "report",
			spec: Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{
				{Type: "text/plain", Params: map[string]string{"charset": "utf-8"}, Description: "Notification", Body: []byte("Grüße\r\n")},
				{Type: "message/global-delivery-status", Description: "Delivery report", Body: []byte("Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: utf-8; ü@x\r\n")},
				{Type: "text/rfc822-headers", Body: []byte("Subject: x\r\n\r\n")},
			}}},
			tree: "multipart/report(text/plain,message/global-delivery-status,text/rfc822-headers)",
			parts: map[string][4]string{
				"1": {"Grüße\r\n", "QUOTED-PRINTABLE", "", ""},
				"2": {"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: utf-8; ü@x\r\n", "7BIT", "", ""},
				"3": {"Subject: x\r\n\r\n", "7BIT", "", ""},
			},
		},
		{
			name:  "report, ASCII text as it is",
			spec:  Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{{Type: "text/plain", Body: []byte("plain\r\n")}}}},
			tree:  "multipart/report(text/plain)",
			parts: map[string][4]string{"1": {"plain\r\n", "7BIT", "", ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.From = []*mail.Address{{Address: "a@example.org"}}
			tt.spec.Hostname = "mx.example.org"
			raw, err := Build(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 998 {
					t.Fatalf("line %d is %d octets long", i, len(line))
				}
			}
			info := Parse(raw)
			if got := tree(&info.Body); got != tt.tree {
				t.Fatalf("structure %s, want %s:\n%s", got, tt.tree, raw)
			}
			if tt.spec.Report != nil && info.Body.Params["report-type"] != tt.spec.Report.Type {
				t.Errorf("report-type %q", info.Body.Params["report-type"])
			}
			for path, want := range tt.parts {
				p := &info.Body
				if info.Body.IsMultipart() {
					if p, err = info.Body.Find(path); err != nil {
						t.Fatal(err)
					}
				}
				body, err := p.Decode(raw)
				if err != nil || string(body) != want[0] {
					t.Errorf("part %s: %q (%v), want %q", path, body, err, want[0])
				}
				if p.Encoding != want[1] || p.Disposition != want[2] || partName(p) != want[3] {
					t.Errorf("part %s: encoding %s, disposition %q, name %q; want %q", path, p.Encoding, p.Disposition, partName(p), want[1:])
				}
			}
		})
	}
}

// TestBuildHeader: the header fields, in RFC 5322 3.6's order, encoded
// where they must be.
func TestBuildHeader(t *testing.T) {
	date := time.Date(2026, 12, 1, 9, 30, 0, 0, time.FixedZone("", 3600))
	tests := []struct {
		name string
		spec Spec
		want []string // the fields, unfolded, in order
	}{
		{
			name: "reply",
			spec: Spec{
				Date: date, From: []*mail.Address{{Name: "Jörg Müller", Address: "joerg@example.org"}},
				To: []*mail.Address{{Address: "a@example.org"}, {Name: "B", Address: "b@example.org"}},
				Cc: []*mail.Address{{Address: "c@example.org"}}, Subject: "Re: Grüße", MessageID: "m2@example.org",
				InReplyTo: []string{"<m1@example.org>"}, References: []string{"<m0@example.org>", "m1@example.org"},
				Extra: []Field{{"User-Agent", "Basalt webmail"}, {"X-Test", "1"}}, Text: "x",
			},
			want: []string{
				"Date: Tue, 01 Dec 2026 09:30:00 +0100",
				"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.org>",
				"To: <a@example.org>, \"B\" <b@example.org>",
				"Cc: <c@example.org>",
				"Subject: =?utf-8?q?Re:_Gr=C3=BC=C3=9Fe?=",
				"Message-Id: <m2@example.org>",
				"In-Reply-To: <m1@example.org>",
				"References: <m0@example.org> <m1@example.org>",
				"User-Agent: Basalt webmail",
				"X-Test: 1",
				"Mime-Version: 1.0",
				"Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: quoted-printable",
			},
		},
		{
			name: "auto-reply with Bcc",
			spec: Spec{
				Date: date, From: []*mail.Address{{Address: "a@example.org"}}, Bcc: []*mail.Address{{Address: "hidden@example.org"}},
				Subject: "Auto: x", MessageID: "<m3@example.org>", AutoSubmitted: "auto-replied",
				Extra: []Field{{"Precedence", "bulk"}}, Text: "away",
			},
			want: []string{
				"Date: Tue, 01 Dec 2026 09:30:00 +0100",
				"From: <a@example.org>",
				"Bcc: <hidden@example.org>",
				"Subject: Auto: x",
				"Message-Id: <m3@example.org>",
				"Auto-Submitted: auto-replied",
				"Precedence: bulk",
				"Mime-Version: 1.0",
				"Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: quoted-printable",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Build(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for f := h.Fields(); f.Next(); {
				got = append(got, f.Key()+": "+f.Value())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("header:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// And as a reader decodes it.
			env := Parse(raw).Envelope
			if env.Subject != tt.spec.Subject || len(env.From) != 1 || env.From[0].Name != tt.spec.From[0].Name {
				t.Errorf("envelope subject %q, from %+v", env.Subject, env.From)
			}
		})
	}
}

// TestBuildGenerated: without them, the Date is now and the Message-ID
// a fresh one on Hostname, the same shape NewMessageID gives.
func TestBuildGenerated(t *testing.T) {
	before := time.Now().Add(-time.Second)
	raw, err := Build(Spec{From: []*mail.Address{{Address: "a@example.org"}}, Hostname: "mx.example.org", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	env := Parse(raw).Envelope
	if env.Date.Before(before.Truncate(time.Second)) || env.Date.After(time.Now()) {
		t.Errorf("Date %v", env.Date)
	}
	if !strings.HasSuffix(env.MessageID, "@mx.example.org>") {
		t.Errorf("Message-ID %q", env.MessageID)
	}
	id, err := NewMessageID("mx.example.org")
	if err != nil || !strings.HasSuffix(id, "@mx.example.org") || strings.ContainsAny(id, "<>") || "<"+id+">" == env.MessageID {
		t.Errorf("NewMessageID = %q, %v", id, err)
	}
}

// TestBuildRefuses: what Build does not write.
func TestBuildRefuses(t *testing.T) {
	fail := errors.New("upload gone")
	report := &Report{Type: "delivery-status", Parts: []ReportPart{{Type: "text/plain", Body: []byte("x")}}}
	tests := []struct {
		name string
		spec Spec
		is   error
	}{
		{"report with text", Spec{Text: "x", Report: report}, nil},
		{"report with a file", Spec{Files: []File{file("a", "text/plain", "x")}, Report: report}, nil},
		{"report without parts", Spec{Report: &Report{Type: "delivery-status"}}, nil},
		{"file that cannot be opened", Spec{Text: "x", Files: []File{{Name: "a", Open: func() (io.ReadCloser, error) { return nil, fail }}}}, fail},
		// A line break in a field would end it and start one of the
		// value's choosing; in a part's header go-message would not even
		// say so (it drops the error and leaves out the blank line).
		{"report part description with CRLF", Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{
			{Type: "text/plain", Description: "d\r\nBcc: y", Body: []byte("x")}}}}, nil},
		{"report part description with a bare LF", Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{
			{Type: "text/plain", Body: []byte("x")}, {Type: "text/plain", Description: "d\nX: y", Body: []byte("x")}}}}, nil},
		{"report part description with NUL", Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{
			{Type: "text/plain", Description: "d\x00", Body: []byte("x")}}}}, nil},
		{"report part type with CRLF", Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{
			{Type: "text/plain\r\nBcc: y", Body: []byte("x")}}}}, nil},
		{"report part parameter name invalid", Spec{Report: &Report{Type: "delivery-status", Parts: []ReportPart{
			{Type: "text/plain", Params: map[string]string{"a b": "c"}, Body: []byte("x")}}}}, nil},
		{"extra field value with CRLF", Spec{Text: "x", Extra: []Field{{"User-Agent", "a\r\nBcc: y"}}}, nil},
		{"extra field value with a bare CR", Spec{Text: "x", Extra: []Field{{"User-Agent", "a\rBcc: y"}}}, nil},
		{"extra field name with a colon", Spec{Text: "x", Extra: []Field{{"Bcc: y\r\nX", "1"}}}, nil},
		{"extra field name with a space", Spec{Text: "x", Extra: []Field{{"X Test", "1"}}}, nil},
		{"extra field name not ASCII", Spec{Text: "x", Extra: []Field{{"X-Tést", "1"}}}, nil},
		{"extra field name empty", Spec{Text: "x", Extra: []Field{{"", "1"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Hostname = "mx.example.org"
			raw, err := Build(tt.spec)
			if err == nil {
				t.Fatalf("built:\n%s", raw)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
		})
	}
}

// TestBuildFiles: an attachment goes with its Content-Type as given,
// every parameter kept (a charset go-message cannot convert too: the
// octets are not text to convert but a file), and its octets base64 in
// lines of at most 76 characters (RFC 2045 6.8); but a message/rfc822 as
// it is (RFC 2046 5.2.1), and what cannot be as it is, and a multipart,
// as application/octet-stream.
func TestBuildFiles(t *testing.T) {
	latin1 := strings.Repeat("caf\xe9 cr\xe8me br\xfbl\xe9e ", 40)
	msg := "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
	octets := "application/octet-stream"
	tests := []struct {
		name, ctype, content string
		// What the part must say and hold; want "" is content.
		wantType   string
		wantParams map[string]string
		wantEnc    string
		want       string
	}{
		{"latin-1 text", "text/plain; charset=iso-8859-1", latin1, "text/plain", map[string]string{"charset": "iso-8859-1"}, "BASE64", ""},
		{"upper-case charset and more parameters", "text/plain; charset=ISO-8859-15; format=flowed", "\xa4", "text/plain",
			map[string]string{"charset": "ISO-8859-15", "format": "flowed"}, "BASE64", ""},
		{"a charset no one knows", "text/csv; charset=x-unknown; header=present", "a;b", "text/csv",
			map[string]string{"charset": "x-unknown", "header": "present"}, "BASE64", ""},
		{"shift_jis html", "text/html; charset=shift_jis", "\x82\xa0", "text/html", map[string]string{"charset": "shift_jis"}, "BASE64", ""},
		{"utf-8 text", "text/plain; charset=utf-8", "é", "text/plain", map[string]string{"charset": "utf-8"}, "BASE64", ""},

		{"message 7bit", "message/rfc822", msg, "message/rfc822", nil, "7BIT", ""},
		{"message 8bit", "message/rfc822", "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n", "message/rfc822", nil, "8BIT", ""},
		{"message with LF line ends", "message/rfc822", "Subject: hi\n\nbody\n", "message/rfc822", nil, "7BIT", "Subject: hi\r\n\r\nbody\r\n"},
		{"message without a last line end", "message/rfc822", "Subject: hi\r\n\r\nbody", "message/rfc822", nil, "7BIT", ""},
		{"message with NUL", "message/rfc822", "Subject: hi\r\n\r\na\x00b\r\n", octets, map[string]string{}, "BASE64", ""},
		{"message with a bare CR", "message/rfc822", "Subject: hi\r\n\r\na\rb\r\n", octets, nil, "BASE64", ""},
		{"message with a line over 998", "message/rfc822", "Subject: hi\r\n\r\n" + strings.Repeat("x", 999) + "\r\n", octets, nil, "BASE64", ""},
		{"message with a line of 998", "message/rfc822", "Subject: hi\r\n\r\n" + strings.Repeat("x", 998) + "\r\n", "message/rfc822", nil, "7BIT", ""},
		{"partial 7bit", "message/partial; id=\"x@y\"; number=1; total=2", msg, "message/partial",
			map[string]string{"id": "x@y", "number": "1", "total": "2"}, "7BIT", ""},
		{"partial 8bit", "message/partial; id=\"x@y\"; number=1", "Subject: \xc3\xa9\r\n\r\n", octets, map[string]string{"id": ""}, "BASE64", ""},
		{"message/global may be encoded", "message/global", "Subject: \xc3\xa9\r\n\r\n", "message/global", nil, "BASE64", ""},
		{"multipart", "multipart/alternative; boundary=x", "--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n", octets,
			map[string]string{"boundary": ""}, "BASE64", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Build(Spec{From: []*mail.Address{{Address: "a@example.org"}}, Hostname: "mx.example.org",
				Text: "see attached", Files: []File{file("f", tt.ctype, tt.content)}})
			if err != nil {
				t.Fatal(err)
			}
			info := Parse(raw)
			if len(info.Body.Parts) != 2 {
				t.Fatalf("structure %s:\n%s", tree(&info.Body), raw)
			}
			p := &info.Body.Parts[1]
			if got := p.Type + "/" + p.Subtype; got != tt.wantType || p.Encoding != tt.wantEnc {
				t.Errorf("type %s, encoding %s; want %s, %s", got, p.Encoding, tt.wantType, tt.wantEnc)
			}
			for k, v := range tt.wantParams {
				if p.Params[k] != v {
					t.Errorf("parameter %s=%q, want %q (all: %v)", k, p.Params[k], v, p.Params)
				}
			}
			if p.DispositionParams["filename"] != "f" {
				t.Errorf("file name %q", p.DispositionParams["filename"])
			}
			want := tt.want
			if want == "" {
				want = tt.content
			}
			if body, err := p.Decode(raw); err != nil || string(body) != want {
				t.Errorf("content %q (%v), want %q", body, err, want)
			}
			if p.Type == "message" && p.Subtype == "rfc822" && (p.Body == nil || p.Envelope == nil || p.Envelope.Subject == "") {
				t.Errorf("the message is not read as one: %+v", p)
			}
			maxLine := 998
			if p.Encoding == "BASE64" {
				maxLine = 76
			}
			for _, line := range strings.Split(string(p.RawBody(raw)), "\r\n") {
				if len(line) > maxLine {
					t.Errorf("a %s line of %d characters", p.Encoding, len(line))
				}
			}
		})
	}
}
