package rpc

import (
	"bytes"
	"runtime"
	"testing"

	"basalt/message"
)

// A text part's header is bounded by no header limit (the store's
// limits see the message's own header): reading the part's text for the
// webmail (messages.load body, search) must not parse it again. A 1 MB
// part header of short fields (go-message reads up to 1 MB) cost about
// 90 MB at each load, and search reads every text part.
func TestDecodePartLargePartHeader(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n")
	b.WriteString("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n")
	for b.Len() < 1000<<10 {
		b.WriteString("a:b\r\n")
	}
	b.WriteString("\r\ncaf=E9\r\n--b--\r\n")
	raw := b.Bytes()
	info := message.Parse(raw)
	plain, _ := textParts(&info.Body)
	if plain == nil {
		t.Fatal("no text part")
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	text, _ := decodePart(raw, plain, maxBodyBytes)
	runtime.ReadMemStats(&m1)
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 16<<20 {
		t.Errorf("decoding a part with a 1 MB header allocated %d MB", alloc>>20)
	}
	if text != "café" {
		t.Errorf("text %q, want %q", text, "café")
	}
}
