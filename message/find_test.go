package message

import (
	"errors"
	"strings"
	"testing"
)

// rfc3501Example is the message RFC 3501 6.4.5 uses to explain section
// numbers.
const rfc3501Example = `Subject: RFC 3501 6.4.5 example
Content-Type: MULTIPART/MIXED; boundary=b0

--b0
Content-Type: TEXT/PLAIN

part 1
--b0
Content-Type: APPLICATION/OCTET-STREAM

part 2
--b0
Content-Type: MESSAGE/RFC822

Subject: inner 3
Content-Type: MULTIPART/MIXED; boundary=b3

--b3
Content-Type: TEXT/PLAIN

part 3.1
--b3
Content-Type: APPLICATION/OCTET-STREAM

part 3.2
--b3--
--b0
Content-Type: MULTIPART/MIXED; boundary=b4

--b4
Content-Type: IMAGE/GIF

part 4.1
--b4
Content-Type: MESSAGE/RFC822

Subject: inner 4.2
Content-Type: MULTIPART/MIXED; boundary=b42

--b42
Content-Type: TEXT/PLAIN

part 4.2.1
--b42
Content-Type: MULTIPART/ALTERNATIVE; boundary=b422

--b422
Content-Type: TEXT/PLAIN

part 4.2.2.1
--b422
Content-Type: TEXT/RICHTEXT

part 4.2.2.2
--b422--
--b42--
--b4--
--b0--
`

func TestFind(t *testing.T) {
	example := crlf(rfc3501Example)
	single := crlf("Subject: one part\n\nonly body\n")
	wrapped := crlf("Content-Type: message/rfc822\n\nSubject: inside\n\ninner body\n")
	tests := []struct {
		name     string
		raw      string
		path     string
		wantType string // type/subtype of the part found
		wantBody string // its raw body, when checked
		wantErr  error
	}{
		{"example 1", example, "1", "text/plain", "part 1", nil},
		{"example 2", example, "2", "application/octet-stream", "part 2", nil},
		{"example 3", example, "3", "message/rfc822", "", nil},
		{"example 3.1", example, "3.1", "text/plain", "part 3.1", nil},
		{"example 3.2", example, "3.2", "application/octet-stream", "part 3.2", nil},
		{"example 4", example, "4", "multipart/mixed", "", nil},
		{"example 4.1", example, "4.1", "image/gif", "part 4.1", nil},
		{"example 4.2", example, "4.2", "message/rfc822", "", nil},
		{"example 4.2.1", example, "4.2.1", "text/plain", "part 4.2.1", nil},
		{"example 4.2.2", example, "4.2.2", "multipart/alternative", "", nil},
		{"example 4.2.2.1", example, "4.2.2.1", "text/plain", "part 4.2.2.1", nil},
		{"example 4.2.2.2", example, "4.2.2.2", "text/richtext", "part 4.2.2.2", nil},
		{"single part is 1", single, "1", "text/plain", "only body\r\n", nil},
		{"message root 1", wrapped, "1", "message/rfc822", "", nil},
		{"message root 1.1 is the inner body", wrapped, "1.1", "text/plain", "inner body\r\n", nil},

		{"empty path", example, "", "", "", ErrBadPath},
		{"zero", example, "0", "", "", ErrBadPath},
		{"leading zero", example, "01", "", "", ErrBadPath},
		{"trailing dot", example, "1.", "", "", ErrBadPath},
		{"leading dot", example, ".1", "", "", ErrBadPath},
		{"double dot", example, "1..2", "", "", ErrBadPath},
		{"letters", example, "a", "", "", ErrBadPath},
		{"section text", example, "1.TEXT", "", "", ErrBadPath},
		{"negative", example, "-1", "", "", ErrBadPath},
		{"plus sign", example, "+1", "", "", ErrBadPath},
		{"too large", example, "4294967296", "", "", ErrBadPath},
		{"past the last part", example, "5", "", "", ErrNoPart},
		{"huge part number", example, "4294967295", "", "", ErrNoPart},
		{"below a leaf", example, "1.1", "", "", ErrNoPart},
		{"past inner parts", example, "3.3", "", "", ErrNoPart},
		{"past nested parts", example, "4.2.2.3", "", "", ErrNoPart},
		{"below an image", example, "4.1.1", "", "", ErrNoPart},
		{"below an inner leaf", example, "3.1.1", "", "", ErrNoPart},
		{"single part 2", single, "2", "", "", ErrNoPart},
		{"single part 1.1", single, "1.1", "", "", ErrNoPart},
		{"message root 1.2", wrapped, "1.2", "", "", ErrNoPart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := Parse([]byte(tt.raw))
			p, err := info.Body.Find(tt.path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || p != nil {
					t.Fatalf("Find(%q) = %v, %v; want error %v", tt.path, p, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "find part") {
					t.Errorf("error %q does not say what was being done", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find(%q): %v", tt.path, err)
			}
			if got := p.Type + "/" + p.Subtype; got != tt.wantType {
				t.Errorf("Find(%q) is %s, want %s", tt.path, got, tt.wantType)
			}
			if tt.wantBody != "" {
				if got := tt.raw[p.BodyStart:p.BodyEnd]; got != tt.wantBody {
					t.Errorf("BODY[%s] = %q, want %q", tt.path, got, tt.wantBody)
				}
			}
		})
	}
}

func TestFindEncapsulatedHeader(t *testing.T) {
	// BODY[3.HEADER] and BODY[3.TEXT] are served from the Body of part 3.
	raw := crlf(rfc3501Example)
	info := Parse([]byte(raw))
	p, err := info.Body.Find("3")
	if err != nil {
		t.Fatal(err)
	}
	if p.Envelope == nil || p.Envelope.Subject != "inner 3" {
		t.Fatalf("part 3 envelope = %+v", p.Envelope)
	}
	hdr := raw[p.Body.HeaderStart:p.Body.BodyStart]
	if want := crlf("Subject: inner 3\nContent-Type: MULTIPART/MIXED; boundary=b3\n\n"); hdr != want {
		t.Errorf("BODY[3.HEADER] = %q, want %q", hdr, want)
	}
	text := raw[p.Body.BodyStart:p.Body.BodyEnd]
	if !strings.HasPrefix(text, "--b3\r\n") || !strings.HasSuffix(text, "--b3--") {
		t.Errorf("BODY[3.TEXT] = %q", text)
	}
	mime := raw[p.HeaderStart:p.BodyStart]
	if mime != crlf("Content-Type: MESSAGE/RFC822\n\n") {
		t.Errorf("BODY[3.MIME] = %q", mime)
	}
}

func TestFindNil(t *testing.T) {
	var p *Part
	if _, err := p.Find("1"); !errors.Is(err, ErrNoPart) {
		t.Errorf("nil Part Find = %v, want ErrNoPart", err)
	}
}
