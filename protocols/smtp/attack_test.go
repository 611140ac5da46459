package smtp

import (
	"fmt"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// headerOf builds a message whose header has n fields of the given
// value length besides From/To/Subject (3 fields), and a short body.
func headerOf(from string, n, valueLen int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: alice@example.org\r\nSubject: big header\r\n", from)
	for i := range n {
		fmt.Fprintf(&b, "X-F%d: %s\r\n", i, strings.Repeat("v", valueLen))
	}
	b.WriteString("\r\nbody\r\n")
	return []byte(b.String())
}

// TestHeaderLimits: a header past the field count or the byte limit is
// refused at DATA and BDAT with 552 5.3.4 on every role, nothing is
// stored, and the connection goes on to take the next message. One at the
// limits is taken.
func TestHeaderLimits(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	const from = "alice@example.org"
	fields := store.DefaultMaxHeaderFields
	atLimit := headerOf(from, fields-3, 8)                               // 1000 fields, ~17 KB
	tooMany := headerOf(from, fields-2, 8)                               // 1001 fields
	tooBig := headerOf(from, 110, 990)                                   // ~110 KB in 113 fields
	justUnder := headerOf(from, 100, store.DefaultMaxHeaderBytes/100-20) // under 102,400 bytes
	for _, m := range [][]byte{atLimit, justUnder} {
		if err := (store.HeaderLimits{}).WithDefaults().Check(m); err != nil {
			t.Fatalf("test message should be within the limits: %v", err)
		}
	}
	stored := 0
	for _, tc := range []struct {
		role  Role
		hello string
		login bool
	}{{RoleMX, "EHLO", false}, {RoleSubmission, "EHLO", true}, {RoleLMTP, "LHLO", false}} {
		t.Run(tc.role.String(), func(t *testing.T) {
			c := h.dial(tc.role)
			c.expect(tc.hello+" client.example", "250")
			if tc.login {
				c.expect("AUTH PLAIN "+plainAuth(from, storetest.Password), "235")
			}
			begin := func() {
				t.Helper()
				runSteps(t, c, []step{{"MAIL FROM:<" + from + ">", "250"}, {"RCPT TO:<alice@example.org>", "250"}})
			}
			for _, m := range []struct {
				name string
				msg  []byte
				want string
			}{
				{"too many fields", tooMany, "552 5.3.4"},
				{"too many bytes", tooBig, "552 5.3.4"},
				{"at the field limit", atLimit, "250 2.0.0"},
				{"just under the byte limit", justUnder, "250 2.0.0"},
			} {
				begin()
				if r := c.data(m.msg); !strings.HasPrefix(r.String(), m.want) {
					t.Fatalf("%s: %q, want %q", m.name, r, m.want)
				}
				if strings.HasPrefix(m.want, "250") {
					stored++
				}
				c.expect("NOOP", "250") // the connection is still in step
			}
			// BDAT: the same limit on a chunked message.
			begin()
			half := len(tooMany) / 2
			fmt.Fprintf(c.nc, "BDAT %d\r\n%s", half, tooMany[:half])
			if r := c.read(); !strings.HasPrefix(r.String(), "250") {
				t.Fatalf("first chunk: %q", r)
			}
			fmt.Fprintf(c.nc, "BDAT %d LAST\r\n%s", len(tooMany)-half, tooMany[half:])
			if r := c.read(); !strings.HasPrefix(r.String(), "552 5.3.4") {
				t.Fatalf("BDAT with too many fields: %q", r)
			}
			c.expect("NOOP", "250")
			if n := len(h.inbox("alice@example.org")); n != stored {
				t.Fatalf("alice has %d messages, want %d: a refused one was stored", n, stored)
			}
		})
	}
}

const pyHeaderLimit = `
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
s = smtplib.SMTP(host, port, local_hostname="py.example", timeout=30)
hdr = "".join("X-F%d: short\r\n" % i for i in range(200000))
msg = "From: py@remote.example\r\nTo: alice@example.org\r\n" + hdr + "\r\nbody\r\n"
try:
    s.sendmail("py@remote.example", ["alice@example.org"], msg)
    raise SystemExit("a 3 MB header was taken")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 552 and e.smtp_error.startswith(b"5.3.4"), e
s.sendmail("py@remote.example", ["alice@example.org"], "From: py@remote.example\r\nSubject: after\r\n\r\nok\r\n")
s.quit()
print("OK")
`

// TestHeaderLimitSMTPLib: the attack's shape (a header of hundreds of
// thousands of short fields) from Python's smtplib is refused, and the
// same session then sends a message.
func TestHeaderLimitSMTPLib(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	host, port := hostPort(t, h.addr[RoleMX])
	if out := run(t, false, "python3", "-c", pyHeaderLimit, host, port); !strings.Contains(out, "OK") {
		t.Fatalf("python: %s", out)
	}
	if msgs := h.inbox("alice@example.org"); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: after") {
		t.Fatalf("inbox: %d messages", len(msgs))
	}
}

// TestBareNewline: a bare LF or CR in a message (the carrier of SMTP
// smuggling, "<LF>.<CR><LF>" and "<CR>.<CR><LF>") is refused with 550
// 5.5.2 and the connection closed; nothing of the message or of what was
// smuggled after it is stored.
func TestBareNewline(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	h.user("bob@example.org", 0)
	smuggled := "MAIL FROM:<ceo@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nFrom: ceo@example.org\r\n\r\nsmuggled\r\n"
	for _, tc := range []struct {
		name, msg string
		bdat      bool
	}{
		{"LF dot CRLF", "From: a@remote.example\r\n\r\nhello\n.\r\n" + smuggled, false},
		{"CR dot CRLF", "From: a@remote.example\r\n\r\nhello\r.\r\n" + smuggled, false},
		{"LF in the header", "From: a@remote.example\nSubject: x\r\n\r\nhello\r\n", false},
		{"CR in the body", "From: a@remote.example\r\n\r\nhel\rlo\r\n", false},
		{"LF in BDAT", "From: a@remote.example\r\n\r\nhello\nthere\r\n", true},
		{"CR at the end of BDAT", "From: a@remote.example\r\n\r\nhello\r", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(RoleMX)
			runSteps(t, c, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<a@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}})
			if tc.bdat {
				fmt.Fprintf(c.nc, "BDAT %d LAST\r\n%s", len(tc.msg), tc.msg)
			} else {
				c.expect("DATA", "354")
				fmt.Fprintf(c.nc, "%s.\r\n", tc.msg)
			}
			if r := c.read(); !strings.HasPrefix(r.String(), "550 5.5.2") {
				t.Fatalf("reply %q, want 550 5.5.2", r)
			}
			c.expectClosed()
		})
	}
	if n := len(h.inbox("alice@example.org")) + len(h.inbox("bob@example.org")); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	// CRLF throughout is taken.
	c := h.dial(RoleMX)
	runSteps(t, c, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<a@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}})
	fmt.Fprintf(c.nc, "From: a@remote.example\r\n\r\nhello\r\n.\r\n")
	if r := c.read(); !strings.HasPrefix(r.String(), "250 2.0.0") {
		t.Fatalf("a clean message: %q", r)
	}
}

// TestSubmissionOriginator: submission holds every originator field to
// the rule From is held to (the user's own addresses), and takes exactly
// one From (RFC 5322 3.6).
func TestSubmissionOriginator(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	h.user("bob@example.org", 0)
	c := h.dial(RoleSubmission)
	c.expect("EHLO client.example", "250")
	c.expect("AUTH PLAIN "+plainAuth("alice@example.org", storetest.Password), "235")
	delivered := 0
	for _, tc := range []struct {
		name, header, want string
	}{
		{"two From", "From: alice@example.org\r\nFrom: bob@example.org\r\n", "550 5.7.1"},
		{"two From, both hers", "From: alice@example.org\r\nFrom: alice@example.org\r\n", "550 5.7.1"},
		{"no From", "Sender: alice@example.org\r\n", "550 5.7.1"},
		{"Sender someone else", "From: alice@example.org\r\nSender: bob@example.org\r\n", "550 5.7.1"},
		{"two Senders", "From: alice@example.org\r\nSender: alice@example.org\r\nSender: alice@example.org\r\n", "550 5.7.1"},
		{"Resent-From someone else", "From: alice@example.org\r\nResent-From: bob@example.org\r\n", "550 5.7.1"},
		{"second Resent-From someone else", "From: alice@example.org\r\nResent-From: alice@example.org\r\nResent-From: bob@example.org\r\n", "550 5.7.1"},
		{"Resent-Sender someone else", "From: alice@example.org\r\nResent-Sender: Bob <bob@example.org>\r\n", "550 5.7.1"},
		{"Sender hers", "From: alice@example.org\r\nSender: Alice <alice@example.org>\r\n", "250 2.0.0"},
		{"Resent fields hers", "From: alice@example.org\r\nResent-From: alice@example.org\r\nResent-Sender: alice@example.org\r\n", "250 2.0.0"},
	} {
		runSteps(t, c, []step{{"MAIL FROM:<alice@example.org>", "250"}, {"RCPT TO:<bob@example.org>", "250"}})
		msg := tc.header + "To: bob@example.org\r\nSubject: " + tc.name + "\r\n\r\nhi\r\n"
		if r := c.data([]byte(msg)); !strings.HasPrefix(r.String(), tc.want) {
			t.Fatalf("%s: %q, want %q", tc.name, r, tc.want)
		}
		if strings.HasPrefix(tc.want, "250") {
			delivered++
		}
	}
	if n := len(h.inbox("bob@example.org")); n != delivered {
		t.Fatalf("bob has %d messages, want %d", n, delivered)
	}
}
