package message

import (
	"testing"
)

// FuzzParse checks that Parse never panics and that its result keeps every
// invariant (see checkInfo) whatever the input, and that Find never panics
// on any path. Its seed corpus, the samples of the other tests, runs as part
// of go test.
func FuzzParse(f *testing.F) {
	seeds := []string{
		simpleText, alternative, mixed, nested, groups, related, digest, rfc3501Example,
		"",
		"\r\n",
		"Subject: x",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b--",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
		"Content-Type: multipart/digest; boundary=\"\"\r\n\r\n--\r\n\r\n",
		"From: a:b:c;;<<>>@@,,\r\nTo: \"unterminated\r\nCc: (unterminated\r\n\r\n",
		"Subject: =?utf-8?q?=?= =?x?b?====?=\r\nDate: Mon, 2 Jan 99999 99:99:99 +9999\r\n\r\n",
		"Content-Type: text/plain; name*0*=utf-8''%; name*1*=%C3\r\nContent-Disposition: ; filename*=''\r\n\r\n",
		" folded first line\r\nSubject: x\r\n\r\n",
		"Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<script>=\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "1")
		f.Add([]byte(crlf(s)), "2.1")
	}
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		info := parse(data) // without Parse's recover, so that panics show
		if err := checkInfo(data, info); err != nil {
			t.Fatalf("invariants: %v", err)
		}
		if p, err := info.Body.Find(path); err == nil {
			if p.HeaderStart < 0 || p.BodyEnd > int64(len(data)) {
				t.Fatalf("Find(%q) gave a part outside the message", path)
			}
		} else if p != nil {
			t.Fatalf("Find(%q) returned a part and an error", path)
		}
	})
}
