package message

import (
	"bytes"
	"runtime"
	"testing"
)

// A part's header is not bounded by the store's header limits, which see
// only the message's own header: a message/rfc822 part with a 6 MB header
// of short fields cost about 300 MB to parse (50 bytes per byte of input,
// gigabytes at the size limit). The parse records at most MaxFields
// fields, all headers together.
func TestNestedHeaderFieldBudget(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: outer\r\nContent-Type: message/rfc822\r\n\r\n")
	b.WriteString("Subject: inner\r\n")
	for b.Len() < 6<<20 {
		b.WriteString("a:b\r\n")
	}
	b.WriteString("\r\nbody\r\n")
	raw := b.Bytes()

	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	info := parse(raw)
	runtime.ReadMemStats(&m1)
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 32<<20 {
		t.Errorf("parsing a 6 MB nested header allocated %d MB", alloc>>20)
	}
	if info.Envelope.Subject != "outer" {
		t.Errorf("outer subject %q", info.Envelope.Subject)
	}
	if info.Body.Envelope == nil || info.Body.Envelope.Subject != "inner" {
		t.Errorf("inner envelope %+v", info.Body.Envelope)
	}
	if info.Body.Body == nil || info.Body.Body.BodyStart != int64(len(raw)-len("body\r\n")) {
		t.Errorf("inner body start wrong: %+v", info.Body.Body)
	}
}
