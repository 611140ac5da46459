package pop3

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteMessage(t *testing.T) {
	msg := "Subject: s\r\n.hidden: h\r\n\r\n.one\r\ntwo\r\n..three\r\n.\r\nfive\r\n"
	long := "H: " + strings.Repeat("x", 70000) + "\r\n\r\n." + strings.Repeat("y", 70000) + "\r\nz\r\n"
	for _, tc := range []struct {
		name  string
		in    string
		lines int64
		want  string
		n     int64 // octets of the message copied
	}{
		{"whole", msg, -1, "Subject: s\r\n..hidden: h\r\n\r\n..one\r\ntwo\r\n...three\r\n..\r\nfive\r\n", int64(len(msg))},
		{"top 0", msg, 0, "Subject: s\r\n..hidden: h\r\n\r\n", 26},
		{"top 2", msg, 2, "Subject: s\r\n..hidden: h\r\n\r\n..one\r\ntwo\r\n", 37},
		{"top past the end", msg, 100, "Subject: s\r\n..hidden: h\r\n\r\n..one\r\ntwo\r\n...three\r\n..\r\nfive\r\n", int64(len(msg))},
		{"no body", "A: b\r\nC: d\r\n", 0, "A: b\r\nC: d\r\n", 12},
		{"empty", "", -1, "", 0},
		{"lines across chunks", long, 1, "H: " + strings.Repeat("x", 70000) + "\r\n\r\n.." + strings.Repeat("y", 70000) + "\r\n", int64(len(long)) - 3},
	} {
		for _, read := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"octets", iotest.OneByteReader},
		} {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			n, err := writeMessage(w, read.wrap(strings.NewReader(tc.in)), tc.lines)
			w.Flush()
			if err != nil {
				t.Fatalf("%s (%s): %v", tc.name, read.name, err)
			}
			if out.String() != tc.want || n != tc.n {
				t.Errorf("%s (%s) = %.80q, %d octets; want %.80q, %d", tc.name, read.name, out.String(), n, tc.want, tc.n)
			}
		}
	}
}

// A reader that fails mid-message fails the copy.
func TestWriteMessageReadError(t *testing.T) {
	w := bufio.NewWriter(io.Discard)
	r := io.MultiReader(strings.NewReader("A: b\r\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := writeMessage(w, r, -1); err == nil {
		t.Fatal("no error from a failing reader")
	}
}
