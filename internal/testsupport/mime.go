package testsupport

import (
	"fmt"
	"strings"
)

// TransferCase is a part body in a Content-Transfer-Encoding as senders
// really write it, sound or damaged, and what every decoder of Basalt
// (message.Decode, so IMAP BINARY and BINARY.SIZE, search and the
// webmail's download) must make of it.
type TransferCase struct {
	Name string
	// Encoding is the Content-Transfer-Encoding header's value as written;
	// "" leaves the header out.
	Encoding string
	// Body is the encoded body as stored: the line break before the next
	// boundary is the boundary's (RFC 2046 5.1.1), not Body's.
	Body string
	// Decoded is the body with its encoding undone.
	Decoded string
	// Unknown marks an encoding no decoder knows: IMAP BINARY refuses it
	// with UNKNOWN-CTE (RFC 3516 4.3), the rest read Body as it is.
	Unknown bool
}

// TransferCases are the odd parts the decoders are checked on.
func TransferCases() []TransferCase {
	return []TransferCase{
		{Name: "base64", Encoding: "base64", Body: "SGVsbG8sIHdvcmxkIQ==", Decoded: "Hello, world!"},
		{Name: "base64 upper-case name", Encoding: "BASE64", Body: "SGVsbG8=", Decoded: "Hello"},
		{Name: "base64 name with a comment", Encoding: " Base64 (from a phone)", Body: "SGVsbG8=", Decoded: "Hello"},
		{Name: "base64 line breaks inside", Encoding: "base64", Body: "SGVs\r\nbG8s\r\nIHdv\r\ncmxk\r\nIQ==", Decoded: "Hello, world!"},
		{Name: "base64 bare LF and spaces", Encoding: "base64", Body: "SGVs bG8s\nIHdv\tcmxk\nIQ==\n", Decoded: "Hello, world!"},
		{Name: "base64 no padding", Encoding: "base64", Body: "SGVsbG8sIHdvcmxkIQ", Decoded: "Hello, world!"},
		{Name: "base64 garbage after padding", Encoding: "base64", Body: "SGVsbG8=\r\n-- \r\nSent from my phone", Decoded: "Hello"},
		// Pieces each padded on its own, one after the other, as some
		// mailers and gateways join them: decoding goes on after "=".
		{Name: "base64 chunks padded separately", Encoding: "base64", Body: "QQ==\r\nQg==", Decoded: "AB"},
		{Name: "base64 chunks on one line", Encoding: "base64", Body: "SGk=SGk=", Decoded: "HiHi"},
		{Name: "base64 chunk after short padding", Encoding: "base64", Body: "QQ=Qg==\r\nQUJD\r\n", Decoded: "ABABC"},
		{Name: "base64 chunks then a footer", Encoding: "base64", Body: "QQ==\r\nQg==\r\n--\r\nList footer", Decoded: "AB"},
		{Name: "base64 footer after the padding", Encoding: "base64", Body: "QQ==\r\nSent from my * phone", Decoded: "A"},
		{Name: "base64 stray characters", Encoding: "base64", Body: "SGV*sbG8!", Decoded: "Hello"},
		{Name: "base64 lone last sextet", Encoding: "base64", Body: "SGVsbG8hI", Decoded: "Hello!"},
		{Name: "base64 binary octets", Encoding: "base64", Body: "AAECAwQFBgcICf8=", Decoded: "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\xff"},
		{Name: "base64 empty", Encoding: "base64", Body: "", Decoded: ""},
		{Name: "qp soft break", Encoding: "quoted-printable", Body: "caf=\r\n=C3=A9", Decoded: "caf\xc3\xa9"},
		{Name: "qp soft break with trailing space", Encoding: "Quoted-Printable", Body: "soft= \t\r\nbreak", Decoded: "softbreak"},
		{Name: "qp = before non-hex", Encoding: "quoted-printable", Body: "100%=zz and =4 and =A", Decoded: "100%=zz and =4 and =A"},
		{Name: "qp lower-case hex", Encoding: "quoted-printable", Body: "=e9t=E9", Decoded: "\xe9t\xe9"},
		{Name: "qp trailing white space dropped", Encoding: "QUOTED-PRINTABLE", Body: "a  \r\nb\t\r\nc", Decoded: "a\r\nb\r\nc"},
		{Name: "qp bare LF", Encoding: "quoted-printable", Body: "a=3D\nb", Decoded: "a=\nb"},
		{Name: "qp = at the very end", Encoding: "quoted-printable", Body: "end=", Decoded: "end"},
		{Name: "7bit", Encoding: "7bit", Body: "plain =41 text", Decoded: "plain =41 text"},
		{Name: "no encoding header", Encoding: "", Body: "plain =41 text", Decoded: "plain =41 text"},
		{Name: "8bit", Encoding: "8BIT", Body: "caf\xc3\xa9 =41", Decoded: "caf\xc3\xa9 =41"},
		{Name: "binary", Encoding: "Binary", Body: "\x00\x01=41\xff", Decoded: "\x00\x01=41\xff"},
		{Name: "unknown encoding", Encoding: "x-uuencode", Body: "begin 644 a\r\n#86)C\r\nend", Decoded: "begin 644 a\r\n#86)C\r\nend", Unknown: true},
	}
}

// TransferMessage is a multipart/mixed message with one
// application/octet-stream attachment for each case, in order: the case
// cases[i] is part i+1.
func TransferMessage(cases []TransferCase) []byte {
	const boundary = "=_odd_parts"
	var b strings.Builder
	b.WriteString("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: odd parts\r\n" +
		"Message-ID: <odd@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n")
	for i, c := range cases {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/octet-stream\r\n"+
			"Content-Disposition: attachment; filename=\"part%d.bin\"\r\n", boundary, i+1)
		if c.Encoding != "" {
			b.WriteString("Content-Transfer-Encoding: " + c.Encoding + "\r\n")
		}
		b.WriteString("\r\n" + c.Body + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return []byte(b.String())
}
