package message

import (
	"bytes"
	"runtime"
	"testing"
	"unicode/utf8"

	"basalt/internal/testsupport"
)

// TestHeaderText: the odd header values (testsupport.HeaderTextCases)
// decoded word by word; as a field of a parsed message, the Subject in
// the ENVELOPE is the same text.
func TestHeaderText(t *testing.T) {
	for _, tc := range testsupport.HeaderTextCases() {
		t.Run(tc.Name, func(t *testing.T) {
			if got := HeaderText(tc.Value); got != tc.Text {
				t.Errorf("HeaderText(%q) = %q, want %q", tc.Value, got, tc.Text)
			}
			raw := "Subject: " + tc.Value + "\r\n\r\nx"
			if got := Parse([]byte(raw)).Envelope.Subject; got != tc.Text {
				t.Errorf("ENVELOPE subject %q, want %q", got, tc.Text)
			}
		})
	}
}

// A text part's header is bounded by no header limit (the store's
// limits see the message's own header): reading the part's text for the
// webmail (messages.load body, search) and IMAP SEARCH must not parse it
// again. A 1 MB part header of short fields (go-message reads up to 1
// MB) cost about 90 MB at each load, and search reads every text part.
func TestPartTextLargePartHeader(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n")
	b.WriteString("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n")
	for b.Len() < 1000<<10 {
		b.WriteString("a:b\r\n")
	}
	b.WriteString("\r\ncaf=E9\r\n--b--\r\n")
	raw := b.Bytes()
	info := Parse(raw)
	if len(info.Body.Parts) != 1 {
		t.Fatalf("structure %s", tree(&info.Body))
	}
	plain := &info.Body.Parts[0]
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	text, _ := plain.Text(raw, 4<<20)
	runtime.ReadMemStats(&m1)
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 16<<20 {
		t.Errorf("decoding a part with a 1 MB header allocated %d MB", alloc>>20)
	}
	if text != "café" {
		t.Errorf("text %q, want %q", text, "café")
	}
}

// TestPartText: the odd text parts (testsupport.PartTextCases) as
// UTF-8 text, whole and cut.
func TestPartText(t *testing.T) {
	for _, tc := range testsupport.PartTextCases() {
		t.Run(tc.Name, func(t *testing.T) {
			raw := testsupport.TextMessage("x", tc.ContentType, tc.Encoding, tc.Body)
			p := &Parse(raw).Body
			if got, cut := p.Text(raw, 0); got != tc.Text || cut {
				t.Errorf("Text = %q, %v; want %q", got, cut, tc.Text)
			}
			// Cut at every length: a prefix of the text, ending between
			// two characters, as long as fits.
			for max := 1; max <= len(tc.Text)+1; max++ {
				got, cut := p.Text(raw, max)
				want := tc.Text
				for len(want) > max {
					_, n := utf8.DecodeLastRuneInString(want)
					want = want[:len(want)-n]
				}
				if got != want || cut != (len(tc.Text) > max) {
					t.Errorf("Text(max %d) = %q, %v; want %q", max, got, cut, want)
				}
			}
		})
	}
}

func TestToUTF8(t *testing.T) {
	tests := []struct {
		cs, in, want string
		ok           bool
	}{
		{"utf-8", "é", "é", true},
		{"", "plain", "plain", true},
		{"US-ASCII", "caf\xe9", "café", true}, // mislabelled Latin-1
		{"iso-8859-1", "\xe9", "é", true},
		{"ISO-8859-15", "\xa4", "€", true},
		{"windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", "Привет", true},
		{"x-no-such-charset", "abc", "", false},
	}
	for _, tt := range tests {
		got, ok := toUTF8(tt.cs, []byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("toUTF8(%q, %q) = %q, %v; want %q, %v", tt.cs, tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHTMLText(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"<p>a</p><p>b</p>", " a  b "},
		{"<b>bo</b>ld", "bold"},
		{"<HEAD><TITLE>t</TITLE></HEAD>x", "x"},
		{"<script>var a = '<p>';</script>y", "y"},
		{"<!-- c -->z", "z"},
		{"a < b &amp; c", "a < b & c"},
		{"x<unterminated", "x"},
		{"<style>never closed", ""},
	}
	for _, tt := range tests {
		if got := htmlText(tt.in); got != tt.want {
			t.Errorf("htmlText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCollapse(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"  a \r\n\t b  ", 10, "a b"},
		{"a\u00a0\u200bb", 10, "a b"},
		{"abcdef", 3, "abc"},
		{"ab cd", 3, "ab"},
		{"ééééé", 2, "éé"},
	}
	for _, tt := range tests {
		if got := collapse(tt.in, tt.n); got != tt.want {
			t.Errorf("collapse(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
