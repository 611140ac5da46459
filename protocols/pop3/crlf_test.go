package pop3

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"basalt/message"
)

func TestCRLFReader(t *testing.T) {
	long := strings.Repeat("x", 70000) // longer than a chunk
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\n", "a\r\n"},
		{"a\r\n", "a\r\n"},
		{"a\r", "a\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb\n", "a\rb\r\n"},
		{"a\r\r\nb", "a\r\r\nb\r\n"},
		{"h: v\nh2: w\r\n\nbody\nlast", "h: v\r\nh2: w\r\n\r\nbody\r\nlast\r\n"},
		{long + "\n" + long, long + "\r\n" + long + "\r\n"},
		{long + "\r\n" + long + "\r", long + "\r\n" + long + "\r\n"},
	} {
		for _, read := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			// One octet per read: a CR and its LF in different chunks.
			{"octets", iotest.OneByteReader},
		} {
			rc := crlfLines(io.NopCloser(read.wrap(strings.NewReader(tc.in))))
			got, err := io.ReadAll(iotest.OneByteReader(rc))
			if err != nil {
				t.Fatalf("%.20q (%s): %v", tc.in, read.name, err)
			}
			if string(got) != tc.want {
				t.Errorf("%.40q (%s) = %.40q, want %.40q", tc.in, read.name, got, tc.want)
			}
			// The maildrop's sizes are counted apart from this reader
			// (message.CRLFSize): they must agree, or LIST would promise
			// another size than RETR sends.
			if n, err := message.CRLFSize(read.wrap(strings.NewReader(tc.in))); err != nil || n != int64(len(tc.want)) {
				t.Errorf("CRLFSize(%.40q) (%s) = %d, %v; want %d", tc.in, read.name, n, err, len(tc.want))
			}
		}
	}
}
