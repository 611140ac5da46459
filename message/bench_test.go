package message

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchText returns a plain text message of about size bytes.
func benchText(size int) []byte {
	var b strings.Builder
	b.WriteString(crlf(simpleText[:strings.Index(simpleText, "\n\n")+2]))
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "Line %d of a message body that is long enough to look like real prose.\r\n", i)
	}
	return []byte(b.String())
}

// benchMultipart returns a multipart/mixed message of about size bytes: a
// multipart/alternative text and HTML body and two base64 attachments.
func benchMultipart(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	attachment := func(n int) string {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(data)
		var b strings.Builder
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc)
		return b.String()
	}
	text := strings.Repeat("Some text of the message, quoted-printable =C3=A9 encoded.\r\n", 20)
	html := "<html><body>" + strings.Repeat("<p>Some <b>HTML</b> of the message.</p>\r\n", 40) + "</body></html>"
	each := (size - 6000) * 3 / 4 / 2
	msg := "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: =?UTF-8?Q?Report_caf=C3=A9?=\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 -0700\r\nMessage-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + text +
		"\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--alt--\r\n" +
		"\r\n--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9port.pdf\r\n\r\n" + attachment(each) +
		"\r\n--outer\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"chart.png\"\r\n\r\n" +
		attachment(each) + "\r\n--outer--\r\n"
	return []byte(msg)
}

func BenchmarkParse(b *testing.B) {
	cases := []struct {
		name string
		raw  []byte
	}{
		{"text-4KB", benchText(4 << 10)},
		{"multipart-200KB", benchMultipart(200 << 10)},
	}
	for _, c := range cases {
		if err := checkInfo(c.raw, Parse(c.raw)); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(c.raw)
			}
		})
	}
}
