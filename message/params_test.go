package message

import (
	"reflect"
	"testing"
)

func TestParseParamHeader(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantValue  string
		wantParams map[string]string
	}{
		{"plain", "text/plain", "text/plain", nil},
		{"case and space", " Text/HTML ; Charset = UTF-8 ", "text/html", map[string]string{"charset": "UTF-8"}},
		{"quoted", `attachment; filename="a b;c.txt"`, "attachment", map[string]string{"filename": "a b;c.txt"}},
		{"quoted-pair", `x/y; a="q\"uote"`, "x/y", map[string]string{"a": `q"uote`}},
		{"unterminated quote", `x/y; a="open`, "x/y", map[string]string{"a": "open"}},
		{"comments", "text/plain (plain text); charset=us-ascii (ascii)", "text/plain", map[string]string{"charset": "us-ascii"}},
		{"unquoted value with spaces", "attachment; filename=my file.pdf", "attachment", map[string]string{"filename": "my file.pdf"}},
		{"segment without =", "x/y; junk; a=1", "x/y", map[string]string{"a": "1"}},
		{"first duplicate wins", "x/y; a=1; A=2", "x/y", map[string]string{"a": "1"}},
		{"rfc 2231 utf-8", "attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf", "attachment", map[string]string{"filename": "€ rates.pdf"}},
		{"rfc 2231 language", "attachment; filename*=utf-8'en'a%20b", "attachment", map[string]string{"filename": "a b"}},
		{"rfc 2231 continuations", `x/y; name*0="long "; name*1="name"; name*2=".txt"`, "x/y", map[string]string{"name": "long name.txt"}},
		{"rfc 2231 out of order", `x/y; name*1="b"; name*0="a"`, "x/y", map[string]string{"name": "ab"}},
		{"rfc 2231 mixed extended sections", `x/y; name*0*=iso-8859-1''caf%E9; name*1="-menu"; name*2*=%21`, "x/y", map[string]string{"name": "café-menu!"}},
		{"rfc 2231 wins over plain", `x/y; name="plain.txt"; name*=utf-8''ext.txt`, "x/y", map[string]string{"name": "ext.txt"}},
		{"rfc 2231 unknown charset keeps octets", "x/y; name*=x-nope''abc%41", "x/y", map[string]string{"name": "abcA"}},
		{"rfc 2231 bad percent", "x/y; name*=utf-8''100%zz", "x/y", map[string]string{"name": "100%zz"}},
		{"rfc 2231 huge section ignored", "x/y; name*99999999=x; a=1", "x/y", map[string]string{"a": "1"}},
		{"rfc 2047 in a name", `x/y; name="=?utf-8?B?w6k=?=.txt"`, "x/y", map[string]string{"name": "é.txt"}},
		{"boundary kept exactly", `multipart/mixed; boundary="=?x?q?y?= (z)"`, "multipart/mixed", map[string]string{"boundary": "=?x?q?y?= (z)"}},
		{"empty", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, params := parseParamHeader(tt.in)
			if v != tt.wantValue || !reflect.DeepEqual(params, tt.wantParams) {
				t.Errorf("parseParamHeader(%q) = %q, %v; want %q, %v", tt.in, v, params, tt.wantValue, tt.wantParams)
			}
		})
	}
}

func TestParseMediaType(t *testing.T) {
	tests := []struct {
		in      string
		typ     string
		sub     string
		wantOK  bool
		charset string
	}{
		{"text/plain; charset=utf-8", "text", "plain", true, "utf-8"},
		{"TEXT/Plain", "text", "plain", true, ""},
		{"text", "", "", false, ""},
		{"text/", "", "", false, ""},
		{"/plain", "", "", false, ""},
		{"te xt/plain", "", "", false, ""},
		{"text/pl@in", "", "", false, ""},
		{"", "", "", false, ""},
	}
	for _, tt := range tests {
		typ, sub, params, ok := parseMediaType(tt.in)
		if typ != tt.typ || sub != tt.sub || ok != tt.wantOK || params["charset"] != tt.charset {
			t.Errorf("parseMediaType(%q) = %q, %q, %v, %v", tt.in, typ, sub, params, ok)
		}
	}
}
