package smtp

import (
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
)

// TestLMTPPerRecipient: after DATA, LMTP answers each accepted RCPT in
// order (RFC 2033 4.2): one delivered, one over quota; the unknown one was
// refused at RCPT and gets no reply after DATA. Over TCP and a unix socket.
func TestLMTPPerRecipient(t *testing.T) {
	h := start(t, setup{socket: true})
	h.user("alice@example.org", 0)
	h.user("tight@example.org", 1500) // room at RCPT, none for this message
	msg := storetest.SizedMessage(2000)
	for i, tc := range []struct{ network, addr string }{{"tcp", h.addr[RoleLMTP]}, {"unix", h.socket}} {
		t.Run(tc.network, func(t *testing.T) {
			c, g := dialRaw(t, tc.network, tc.addr)
			if !strings.HasPrefix(g.String(), "220 "+testHost+" LMTP") {
				t.Fatalf("greeting %q", g)
			}
			runSteps(t, c, []step{
				{"LHLO mta.example", "250"},
				{"MAIL FROM:<sender@remote.example>", "250"},
				{"RCPT TO:<alice@example.org>", "250"},
				{"RCPT TO:<tight@example.org>", "250"},
				{"RCPT TO:<nobody@example.org>", "550 5.1.1"},
				{"RCPT TO:<someone@elsewhere.example>", "554 5.7.1"},
				{"RCPT TO:<ALICE@example.org>", "250"},
				{"DATA", "354"},
			})
			want := []string{"250 2.0.0 <alice@example.org>", "452 4.2.2 <tight@example.org>", "250 2.0.0 <ALICE@example.org>"}
			for j, w := range want {
				var r resp
				if j == 0 {
					r = c.body(msg)
				} else {
					r = c.read()
				}
				if !strings.HasPrefix(r.String(), w) {
					t.Fatalf("reply %d after DATA: %q, want %q", j+1, r, w)
				}
			}
			c.expect("NOOP", "250") // and nothing more was sent
			if n := len(h.inbox("alice@example.org")); n != i+1 {
				t.Fatalf("alice has %d messages, want %d (one per transaction)", n, i+1)
			}
			if n := len(h.inbox("tight@example.org")); n != 0 {
				t.Fatalf("tight has %d messages", n)
			}
		})
	}
}
