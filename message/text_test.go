package message

import (
	"testing"
)

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
