package smtp

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
)

// TestLimits: every limit answers with its reply code, and those that
// drop the connection do drop it.
func TestLimits(t *testing.T) {
	ehlo := step{"EHLO client.example", "250"}
	for _, tc := range []struct {
		name string
		cfg  Config
		run  func(t *testing.T, h *harness)
	}{
		{"connections per IP", Config{MaxConnectionsPerIP: 2}, func(t *testing.T, h *harness) {
			a, b := h.dial(RoleMX), h.dial(RoleSubmission) // the count spans listeners
			_, g := dialRaw(t, "tcp", h.addr[RoleMX])
			if !strings.HasPrefix(g.String(), "421 4.7.0 "+testHost+" ") {
				t.Fatalf("third connection: %q, want 421 4.7.0", g)
			}
			a.expect("QUIT", "221")
			h.waitConnections(1)
			h.dial(RoleMX).expect("EHLO client.example", "250")
			b.expect("NOOP", "250")
		}},
		{"connections in total", Config{MaxConnections: 2, MaxConnectionsPerIP: 10}, func(t *testing.T, h *harness) {
			h.dial(RoleMX)
			h.dial(RoleLMTP)
			_, g := dialRaw(t, "tcp", h.addr[RoleMX])
			if !strings.HasPrefix(g.String(), "421 4.4.5 ") {
				t.Fatalf("third connection: %q, want 421 4.4.5", g)
			}
		}},
		{"connections per IP, implicit TLS", Config{MaxConnectionsPerIP: 1}, func(t *testing.T, h *harness) {
			h.dial(RoleMX)
			c := h.dialTLSRaw()
			if g := c.read(); !strings.HasPrefix(g.String(), "421 4.7.0") {
				t.Fatalf("refusal over TLS: %q", g)
			}
		}},
		{"messages per connection", Config{MaxMessagesPerConn: 2}, func(t *testing.T, h *harness) {
			c := h.dial(RoleMX)
			c.expect("EHLO client.example", "250")
			for range 2 {
				runSteps(t, c, []step{{"MAIL FROM:<a@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}, {"<message>", "250"}})
			}
			c.expect("MAIL FROM:<a@remote.example>", "421 4.7.0")
			c.expectClosed()
			if n := len(h.inbox("alice@example.org")); n != 2 {
				t.Fatalf("%d messages stored", n)
			}
		}},
		{"error cutoff", Config{MaxErrors: 3}, func(t *testing.T, h *harness) {
			c := h.dial(RoleMX)
			runSteps(t, c, []step{ehlo, {"MAIL FROM:<a@remote.example>", "250"},
				{"RCPT TO:<nobody1@example.org>", "550 5.1.1"},
				{"RCPT TO:<alice@example.org>", "250"}, // successes do not reset the count
				{"RCPT TO:<nobody2@example.org>", "550 5.1.1"},
				{"RSET", "250"},
				{"MAIL FROM:<>", "421 4.7.0"}, // refused senders count too
			})
			c.expectClosed()
		}},
		{"go-smtp's own refusals count", Config{MaxErrors: 4}, func(t *testing.T, h *harness) {
			goSMTPErrors := []step{
				{"MAIL FROM:<a@remote.example>", "502 5.5.1"}, // before EHLO
				ehlo,
				{"RCPT TO:<alice@example.org>", "502 5.5.1"},            // before MAIL
				{"MAIL FROM:<a@remote.example> SIZE=many", "501 5.5.4"}, // bad parameter
			}
			// The fourth is Basalt's own refusal: answered 421 instead.
			c := h.dial(RoleMX)
			runSteps(t, c, append(goSMTPErrors, step{"MAIL FROM:<a@remote.example>", "250"}, step{"RCPT TO:<nobody@example.org>", "421 4.7.0"}))
			c.expectClosed()
			// The fourth is go-smtp's: its reply, then 421.
			c = h.dial(RoleMX)
			runSteps(t, c, append(goSMTPErrors, step{"DATA", "502 5.5.1"}))
			if r := c.read(); !strings.HasPrefix(r.String(), "421 4.7.0") {
				t.Fatalf("after the fourth error: %q", r)
			}
			c.expectClosed()
		}},
		{"temporary refusals do not count", Config{MaxErrors: 2}, func(t *testing.T, h *harness) {
			h.user("full@example.org", 1000)
			a := h.account("full@example.org")
			storetest.Append(t, a, storetest.Inbox(t, a), storetest.SizedMessage(1000), storeOpts)
			c := h.dial(RoleMX)
			runSteps(t, c, []step{ehlo, {"MAIL FROM:<a@remote.example>", "250"},
				{"RCPT TO:<full@example.org>", "452 4.2.2"}, {"RCPT TO:<full@example.org>", "452 4.2.2"},
				{"RCPT TO:<full@example.org>", "452 4.2.2"}, {"RCPT TO:<nobody@example.org>", "550 5.1.1"},
				{"RCPT TO:<nobody@example.org>", "421 4.7.0"}})
		}},
		{"unknown commands (go-smtp's own cutoff)", Config{}, func(t *testing.T, h *harness) {
			// go-smtp drops a connection after its fourth unknown or
			// mangled command, a count this package does not see.
			c := h.dial(RoleMX)
			runSteps(t, c, []step{ehlo, {"XYZW", "500 5.5.2"}, {"XYZW", "500 5.5.2"}, {"XYZW", "500 5.5.2"}, {"XYZW", "500 5.5.2"}})
			if r := c.read(); !strings.HasPrefix(r.String(), "500 5.5.1") {
				t.Fatalf("after four unknown commands: %q", r)
			}
			c.expectClosed()
		}},
		{"idle timeout", Config{ReadTimeout: 300 * time.Millisecond}, func(t *testing.T, h *harness) {
			c := h.dial(RoleMX)
			c.expect("EHLO client.example", "250")
			start := time.Now()
			if r := c.read(); !strings.HasPrefix(r.String(), "421 4.4.2") {
				t.Fatalf("idle: %q", r)
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Fatalf("timed out after %v", d)
			}
			c.expectClosed()
		}},
		{"timeout inside DATA", Config{ReadTimeout: 300 * time.Millisecond}, func(t *testing.T, h *harness) {
			c := h.dial(RoleMX)
			transaction := []step{{"MAIL FROM:<a@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}}
			runSteps(t, c, append([]step{ehlo}, transaction...))
			// Each read has its own deadline: a slow sender is fine as
			// long as it keeps sending, longer than the timeout in all.
			io.WriteString(c.nc, "Subject: slow\r\n\r\n")
			for range 5 {
				time.Sleep(150 * time.Millisecond)
				io.WriteString(c.nc, "a slow line\r\n")
			}
			if r := c.body(nil); !strings.HasPrefix(r.String(), "250 2.0.0") {
				t.Fatalf("slow DATA: %q", r)
			}
			runSteps(t, c, transaction)
			io.WriteString(c.nc, "Subject: stalled\r\n\r\n")
			if r := c.read(); !strings.HasPrefix(r.String(), "421 4.4.2") {
				t.Fatalf("stalled DATA: %q", r)
			}
			c.expectClosed()
			if m := h.inbox("alice@example.org"); len(m) != 1 || !strings.Contains(m[0], "Subject: slow") {
				t.Fatalf("inbox after a slow and a stalled DATA: %q", m)
			}
		}},
		{"line length", Config{MaxLineLength: 1000}, func(t *testing.T, h *harness) {
			c := h.dial(RoleMX)
			c.expect("EHLO client.example", "250")
			c.expect("NOOP "+strings.Repeat("x", 1200), "500 5.4.0")
			c.expectClosed()
			d := h.dial(RoleMX)
			runSteps(t, d, []step{ehlo, {"MAIL FROM:<a@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}})
			if r := d.body([]byte("Subject: long\r\n\r\n" + strings.Repeat("y", 1200) + "\r\n")); !strings.HasPrefix(r.String(), "500 5.5.2") {
				t.Fatalf("long line in DATA: %q", r)
			}
			d.expectClosed()
			if n := len(h.inbox("alice@example.org")); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		}},
		{"write timeout", Config{WriteTimeout: 200 * time.Millisecond}, func(t *testing.T, h *harness) {
			// A client that sends and never reads: once the socket
			// buffers are full, the server's write times out and it
			// closes the connection. EHLO's reply is ten times the
			// command, so the server's side fills first.
			nc, err := net.Dial("tcp", h.addr[RoleMX])
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			h.waitConnections(1)
			ehlos := []byte(strings.Repeat("EHLO client.example\r\n", 5000))
			nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			for i := 0; i < 40 && h.connections() > 0; i++ {
				if _, err := nc.Write(ehlos); err != nil {
					break // reset by the server's close
				}
			}
			h.waitConnections(0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{cfg: tc.cfg})
			h.user("alice@example.org", 0)
			tc.run(t, h)
		})
	}
}

// dialTLSRaw connects to the implicit TLS listener without reading the
// greeting.
func (h *harness) dialTLSRaw() *client {
	h.t.Helper()
	nc, err := net.DialTimeout("tcp", h.addr[RoleSubmissions], 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: h.t, nc: nc}
	c.startTLSConn(h.tls)
	return c
}
