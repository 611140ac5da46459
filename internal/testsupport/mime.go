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

// HeaderTextCase is a header field's value as senders really write it,
// and the text every reader of Basalt (IMAP SEARCH and ENVELOPE, the
// webmail's header list: message.HeaderText) must make of it.
type HeaderTextCase struct {
	Name  string
	Value string // as written, folded or not
	Text  string // decoded, unfolded, with single spaces
	// Needle is a piece of Text that the value as written does not
	// hold: a search finds it only in the decoded text.
	Needle string
}

// HeaderTextCases are the odd header values the text decoders are
// checked on.
func HeaderTextCases() []HeaderTextCase {
	return []HeaderTextCase{
		{Name: "Q word", Value: "=?utf-8?q?caf=C3=A9?=", Text: "café", Needle: "café"},
		{Name: "B word in Latin-1", Value: "=?ISO-8859-1?B?Y2Fm6Q==?= au lait", Text: "café au lait", Needle: "café au"},
		{Name: "Q word with underscores", Value: "=?UTF-8?Q?cr=C3=A8me_br=C3=BBl=C3=A9e?=", Text: "crème brûlée", Needle: "crème brûlée"},
		{Name: "adjacent words, space between dropped", Value: "=?utf-8?q?caf?= =?utf-8?q?=C3=A9?=", Text: "café", Needle: "café"},
		{Name: "a character split across two words", Value: "=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=", Text: "café", Needle: "café"},
		{Name: "words on folded lines", Value: "=?utf-8?q?tr=C3=A8s?=\r\n =?utf-8?q?_bien?= merci", Text: "très bien merci", Needle: "très bien"},
		// Word by word: one that cannot be decoded stays as written, and
		// does not keep the others from being decoded.
		{Name: "a word in an unknown charset among good ones", Value: "=?utf-8?q?caf=C3=A9?= =?x-unknown?q?abc?= =?utf-8?q?cr=C3=A8me?=",
			Text: "café =?x-unknown?q?abc?= crème", Needle: "crème"},
		{Name: "a malformed word among good ones", Value: "=?utf-8?b?!!!?= and =?utf-8?q?cr=C3=A8me?=", Text: "=?utf-8?b?!!!?= and crème", Needle: "and crème"},
		{Name: "raw Latin-1", Value: "caf\xe9 cr\xe8me", Text: "café crème", Needle: "café crème"},
		{Name: "raw UTF-8", Value: "na\xc3\xafve", Text: "naïve", Needle: "naïve"},
		{Name: "KOI8-R word", Value: "=?koi8-r?b?8NLJ18XU?=", Text: "Привет", Needle: "Привет"},
	}
}

// PartTextCase is a text part as senders really write it, and the text
// every reader of Basalt (IMAP SEARCH, the webmail's view:
// message.Part.Text) must make of it.
type PartTextCase struct {
	Name string
	// ContentType and Encoding are the part's Content-Type and
	// Content-Transfer-Encoding as written; "" leaves one out.
	ContentType, Encoding string
	Body                  string // as stored
	Text                  string // as UTF-8
	// Needle is a piece of Text that Body does not hold.
	Needle string
}

// PartTextCases are the odd text parts the text decoders are checked on.
func PartTextCases() []PartTextCase {
	return []PartTextCase{
		{Name: "Latin-1 quoted-printable", ContentType: "text/plain; charset=iso-8859-1", Encoding: "quoted-printable",
			Body: "caf=E9 cr=E8me", Text: "café crème", Needle: "café crème"},
		{Name: "windows-1252 base64", ContentType: `text/plain; charset="windows-1252"`, Encoding: "base64",
			Body: "gCA1IGNhZuk=", Text: "€ 5 café", Needle: "€ 5 café"},
		{Name: "ISO-2022-JP", ContentType: "text/plain; charset=ISO-2022-JP", Encoding: "7bit",
			Body: "\x1b$B$3$s$K$A$O\x1b(B", Text: "こんにちは", Needle: "こんにちは"},
		{Name: "KOI8-R", ContentType: "text/plain; charset=koi8-r", Encoding: "8bit",
			Body: "\xf0\xd2\xc9\xd7\xc5\xd4", Text: "Привет", Needle: "Привет"},
		{Name: "unknown charset read as Latin-1", ContentType: "text/plain; charset=x-no-such-charset", Encoding: "8bit",
			Body: "caf\xe9", Text: "café", Needle: "café"},
		{Name: "US-ASCII label on Latin-1", ContentType: "text/plain; charset=us-ascii", Encoding: "8bit",
			Body: "cr\xe8me", Text: "crème", Needle: "crème"},
		{Name: "US-ASCII label on UTF-8", ContentType: "text/plain; charset=us-ascii", Encoding: "8bit",
			Body: "cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e", Text: "crème brûlée", Needle: "me brûl"},
		{Name: "no Content-Type, Latin-1", Encoding: "", Body: "na\xefve", Text: "naïve", Needle: "naïve"},
		{Name: "UTF-8 label, alias and language", ContentType: "text/plain; charset*=utf8'en'", Encoding: "quoted-printable",
			Body: "caf=C3=A9", Text: "café", Needle: "café"},
		{Name: "unknown encoding read as it is", ContentType: "text/plain; charset=utf-8", Encoding: "x-uuencode",
			Body: "caf\xc3\xa9 =41", Text: "café =41", Needle: "café =41"},
	}
}

// TextMessage is a message whose X-Odd field has the value given and
// whose one part is a text: a header case with a plain body, or a part
// case with a plain X-Odd.
func TextMessage(xOdd, contentType, encoding, body string) []byte {
	var b strings.Builder
	b.WriteString("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: odd text\r\n" +
		"Message-ID: <" + RandomName("text-") + "@example.org>\r\nX-Odd: " + xOdd + "\r\nMIME-Version: 1.0\r\n")
	if contentType != "" {
		b.WriteString("Content-Type: " + contentType + "\r\n")
	}
	if encoding != "" {
		b.WriteString("Content-Transfer-Encoding: " + encoding + "\r\n")
	}
	b.WriteString("\r\n" + body) // the body is Body exactly
	return []byte(b.String())
}
