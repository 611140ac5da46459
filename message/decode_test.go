package message

import (
	"errors"
	"strconv"
	"testing"

	"basalt/internal/testsupport"
)

// TestDecode: Decode on the odd parts (testsupport.TransferCases) as the
// header names their encoding, and DecodedSize agreeing with it without
// allocating.
func TestDecode(t *testing.T) {
	for _, tc := range testsupport.TransferCases() {
		t.Run(tc.Name, func(t *testing.T) {
			enc := tc.Encoding
			got, err := Decode(enc, []byte(tc.Body))
			if tc.Unknown != errors.Is(err, ErrUnknownEncoding) {
				t.Errorf("Decode(%q) error %v, unknown %v", enc, err, tc.Unknown)
			}
			if string(got) != tc.Decoded {
				t.Errorf("Decode(%q, %q) = %q, want %q", enc, tc.Body, got, tc.Decoded)
			}
			body := []byte(tc.Body)
			n, err := DecodedSize(enc, body)
			if n != int64(len(tc.Decoded)) || tc.Unknown != errors.Is(err, ErrUnknownEncoding) {
				t.Errorf("DecodedSize(%q, %q) = %d, %v; want %d", enc, tc.Body, n, err, len(tc.Decoded))
			}
			// It counts without decoding: it runs for every part at
			// delivery, given the encoding as the parse keeps it.
			stored := transferEncoding(enc)
			if allocs := testing.AllocsPerRun(10, func() { DecodedSize(stored, body) }); allocs != 0 && !tc.Unknown {
				t.Errorf("DecodedSize(%q) allocates %v times", stored, allocs)
			}
		})
	}
}

// TestPartDecode: the same parts in one message, as parsed: Part.Decode
// gives what Decode does, and the attachment sizes the webmail lists are
// the sizes of what it downloads.
func TestPartDecode(t *testing.T) {
	cases := testsupport.TransferCases()
	raw := testsupport.TransferMessage(cases)
	info := Parse(raw)
	if len(info.Body.Parts) != len(cases) {
		t.Fatalf("%d parts, want %d", len(info.Body.Parts), len(cases))
	}
	sizes := map[string]int64{}
	for _, a := range info.Attachments {
		sizes[a.Path] = a.Size
	}
	for i, tc := range cases {
		path := strconv.Itoa(i + 1)
		t.Run(tc.Name, func(t *testing.T) {
			p, err := info.Body.Find(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(p.RawBody(raw)) != tc.Body {
				t.Fatalf("part %s body %q, want %q", path, p.RawBody(raw), tc.Body)
			}
			got, err := p.Decode(raw)
			if string(got) != tc.Decoded || tc.Unknown != errors.Is(err, ErrUnknownEncoding) {
				t.Errorf("part %s: %q, %v; want %q", path, got, err, tc.Decoded)
			}
			if n, _ := p.DecodedSize(raw); n != int64(len(tc.Decoded)) {
				t.Errorf("part %s: DecodedSize %d, want %d", path, n, len(tc.Decoded))
			}
			if sizes[path] != int64(len(tc.Decoded)) {
				t.Errorf("attachment %s size %d, want %d", path, sizes[path], len(tc.Decoded))
			}
		})
	}
}

// TestPartDecodeContainers: a multipart's body is never decoded (RFC 2045
// 6.4 allows it only identity encodings); an encoded message/rfc822,
// which RFC 2046 5.2.1 forbids, is, as any leaf.
func TestPartDecodeContainers(t *testing.T) {
	raw := []byte("Content-Type: multipart/mixed; boundary=o\r\n\r\n" +
		"--o\r\nContent-Type: multipart/alternative; boundary=i\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"--i\r\nContent-Type: text/plain\r\n\r\nx\r\n--i--\r\n" +
		"--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"U3ViamVjdDogaGkNCg0KYm9keQ==\r\n--o--\r\n")
	info := Parse(raw)
	for _, tc := range []struct{ path, want string }{
		{"1", "--i\r\nContent-Type: text/plain\r\n\r\nx\r\n--i--"},
		{"2", "Subject: hi\r\n\r\nbody"},
	} {
		p, err := info.Body.Find(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Decode(raw); string(got) != tc.want || err != nil {
			t.Errorf("part %s: %q, %v; want %q", tc.path, got, err, tc.want)
		}
		if n, err := p.DecodedSize(raw); n != int64(len(tc.want)) || err != nil {
			t.Errorf("part %s: DecodedSize %d, %v; want %d", tc.path, n, err, len(tc.want))
		}
	}
}

// TestRawBodyClamped: offsets past the message (a parse stored for other
// bytes) cut to what there is instead of panicking.
func TestRawBodyClamped(t *testing.T) {
	raw := []byte("abcdef")
	for _, tc := range []struct {
		start, end int64
		want       string
	}{
		{2, 4, "cd"}, {4, 100, "ef"}, {100, 200, ""}, {5, 3, ""}, {-1, 2, "ab"},
	} {
		p := &Part{BodyStart: tc.start, BodyEnd: tc.end}
		if got := string(p.RawBody(raw)); got != tc.want {
			t.Errorf("RawBody [%d:%d] = %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
}
