package imap

import (
	"fmt"
	"strings"
	"testing"
)

// TestAppendHeaderLimit: APPEND refuses a message whose header is past
// the store's limits (1,000 fields by default) with NO [TOOBIG], as SMTP
// refuses it at DATA, and stores nothing; the session goes on.
func TestAppendHeaderLimit(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", false)
	c := h.dial(t)
	c.login("alice@example.org")
	var b strings.Builder
	b.WriteString("From: a@example.org\r\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "X-F%d: v\r\n", i)
	}
	b.WriteString("\r\nbody\r\n")
	big := b.String()
	c.expect(fmt.Sprintf("APPEND Drafts {%d+}\r\n%s", len(big), big), "NO [TOOBIG]")
	small := "From: a@example.org\r\nSubject: fine\r\n\r\nbody\r\n"
	c.ok(fmt.Sprintf("APPEND Drafts {%d+}\r\n%s", len(small), small))
	must(t, c.ok("STATUS Drafts (MESSAGES)"), "MESSAGES 1")
}
