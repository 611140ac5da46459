package smtp

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
)

// run runs a real client program and returns what it printed; it fails
// the test when the program fails, unless wantFail.
func run(t *testing.T, wantFail bool, name string, args ...string) string {
	t.Helper()
	path := testsupport.NeedCommand(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if (err != nil) != wantFail {
		t.Fatalf("%s %s: err %v, want failure %v\n%s", name, strings.Join(args, " "), err, wantFail, out)
	}
	return string(out)
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// hasMessage fails unless a user's inbox holds a message containing s.
func (h *harness) hasMessage(addr, s string) string {
	h.t.Helper()
	for _, m := range h.inbox(addr) {
		if strings.Contains(m, s) {
			return m
		}
	}
	h.t.Fatalf("no message with %q for %s", s, addr)
	return ""
}

const pyMX = `
import smtplib, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = smtplib.SMTP(host, port, local_hostname="py.example", timeout=10)
code, _ = s.ehlo()
assert code == 250, code
for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8", "starttls"):
    assert s.has_extn(ext), ext
assert not s.has_extn("auth"), s.esmtp_features
assert int(s.esmtp_features["size"]) == size, s.esmtp_features
msg = "From: py@remote.example\r\nTo: alice@example.org\r\nSubject: from smtplib\r\n\r\nHello from Python.\r\n"
refused = s.sendmail("py@remote.example", ["alice@example.org", "nobody@example.org", "x@elsewhere.example"], msg)
assert refused["nobody@example.org"][0] == 550, refused
assert refused["x@elsewhere.example"][0] == 554, refused
assert len(refused) == 2, refused
try:
    s.sendmail("py@remote.example", ["nobody@example.org"], msg)
    raise SystemExit("every recipient refused, but sendmail did not raise")
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients["nobody@example.org"][0] == 550, e.recipients
try:
    s.sendmail("", ["alice@example.org"], msg)
    raise SystemExit("null sender taken")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 550, e
s.quit()
print("OK")
`

const pySubmission = `
import smtplib, ssl, sys
host, port, ca, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
msg = "From: %s\r\nTo: bob@example.org\r\nSubject: submitted by smtplib\r\n\r\nHi Bob.\r\n" % user
s = smtplib.SMTP(host, port, local_hostname="py.example", timeout=10)
s.ehlo()
assert not s.has_extn("auth"), "AUTH offered without TLS"
try:
    s.sendmail(user, ["bob@example.org"], msg)
    raise SystemExit("mail taken without AUTH")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 530, e
s.starttls(context=ctx)
s.ehlo()
assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"], s.esmtp_features
try:
    s.login(user, "wrong password")
    raise SystemExit("a wrong password was taken")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.login(user, pw)
try:
    s.sendmail("bob@example.org", ["bob@example.org"], msg)
    raise SystemExit("sent as someone else")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 553, e
s.sendmail(user, ["bob@example.org"], msg)
s.quit()
for initial in (False, True):
    s = smtplib.SMTP(host, port, local_hostname="py.example", timeout=10)
    s.starttls(context=ctx)
    s.ehlo()
    s.user, s.password = user, pw
    code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=initial)
    assert code == 235, code
    s.quit()
print("OK")
`

const pyCRAM = `
import smtplib, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = smtplib.SMTP(host, port, local_hostname="py.example", timeout=10)
s.ehlo()
assert "CRAM-MD5" in s.esmtp_features["auth"].split(), s.esmtp_features
s.user, s.password = user, "wrong password"
try:
    s.auth("CRAM-MD5", s.auth_cram_md5)
    raise SystemExit("a wrong CRAM-MD5 answer was taken")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.user, s.password = user, pw
code, _ = s.auth("CRAM-MD5", s.auth_cram_md5)
assert code == 235, code
s.quit()
print("OK")
`

const pyLMTP = `
import smtplib, sys
s = smtplib.LMTP(sys.argv[1])
code, _ = s.ehlo()
assert code == 250, code
msg = "From: py@remote.example\r\nTo: alice@example.org\r\nSubject: over the lmtp socket\r\n\r\nHello.\r\n"
refused = s.sendmail("py@remote.example", ["alice@example.org", "nobody@example.org"], msg)
assert list(refused) == ["nobody@example.org"] and refused["nobody@example.org"][0] == 550, refused
s.quit()
print("OK")
`

// TestPythonSMTPLib drives scripted sessions with Python's smtplib.
func TestPythonSMTPLib(t *testing.T) {
	testsupport.NeedCommand(t, "python3")
	t.Run("mx", func(t *testing.T) {
		h := start(t, setup{agent: delivery.Config{MaxSize: 1 << 20}})
		h.user("alice@example.org", 0)
		host, port := hostPort(t, h.addr[RoleMX])
		run(t, false, "python3", "-c", pyMX, host, port, fmt.Sprint(1<<20))
		h.hasMessage("alice@example.org", "Subject: from smtplib")
	})
	t.Run("submission", func(t *testing.T) {
		h := start(t, setup{remote: true})
		h.user("alice@example.org", 0)
		h.user("bob@example.org", 0)
		host, port := hostPort(t, h.addr[RoleSubmission])
		run(t, false, "python3", "-c", pySubmission, host, port, h.caFile, "alice@example.org", storetest.Password)
		m := h.hasMessage("bob@example.org", "Subject: submitted by smtplib")
		if !strings.Contains(m, "with ESMTPSA id") {
			t.Fatalf("Received does not say ESMTPSA:\n%s", m)
		}
	})
	t.Run("cram-md5", func(t *testing.T) {
		h := start(t, setup{cram: true})
		h.user("alice@example.org", 0)
		host, port := hostPort(t, h.addr[RoleSubmission])
		run(t, false, "python3", "-c", pyCRAM, host, port, "alice@example.org", storetest.Password)
	})
	t.Run("lmtp socket", func(t *testing.T) {
		h := start(t, setup{socket: true})
		h.user("alice@example.org", 0)
		run(t, false, "python3", "-c", pyLMTP, h.socket)
		h.hasMessage("alice@example.org", "Subject: over the lmtp socket")
	})
}

// TestSwaks sends with swaks: plain SMTP to the MX, and submission with
// STARTTLS and with implicit TLS, logging in with PLAIN and LOGIN.
func TestSwaks(t *testing.T) {
	testsupport.NeedCommand(t, "swaks")
	h := start(t, setup{remote: true})
	h.user("alice@example.org", 0)
	h.user("bob@example.org", 0)
	swaks := func(wantFail bool, role Role, subject string, extra ...string) string {
		t.Helper()
		host, port := hostPort(t, h.addr[role])
		args := append([]string{"--server", host, "--port", port, "--helo", "swaks.example", "--timeout", "10",
			"--header", "Subject: " + subject, "--body", "Sent by swaks."}, extra...)
		return run(t, wantFail, "swaks", args...)
	}
	auth := func(mech string) []string {
		return []string{"--auth", mech, "--auth-user", "alice@example.org", "--auth-password", storetest.Password,
			"--from", "alice@example.org", "--to", "bob@example.org"}
	}
	for _, tc := range []struct {
		name     string
		role     Role
		args     []string
		rcpt     string
		wantFail bool
		want     string // in the transcript
	}{
		{"plain", RoleMX, []string{"--from", "sw@remote.example", "--to", "alice@example.org"}, "alice@example.org", false, "250 2.0.0"},
		{"plain unknown recipient", RoleMX, []string{"--from", "sw@remote.example", "--to", "nobody@example.org"}, "", true, "550 5.1.1"},
		{"starttls", RoleMX, []string{"--tls", "--from", "sw@remote.example", "--to", "alice@example.org"}, "alice@example.org", false, "220 2.0.0"},
		{"starttls auth plain", RoleSubmission, append([]string{"--tls"}, auth("PLAIN")...), "bob@example.org", false, "235 2.0.0"},
		{"starttls auth login", RoleSubmission, append([]string{"--tls"}, auth("LOGIN")...), "bob@example.org", false, "235 2.0.0"},
		{"implicit tls auth plain", RoleSubmissions, append([]string{"--tlsc"}, auth("PLAIN")...), "bob@example.org", false, "235 2.0.0"},
		{"auth without tls", RoleSubmission, auth("PLAIN"), "", true, "advertise"},
		{"auth wrong password", RoleSubmission, []string{"--tls", "--auth", "PLAIN", "--auth-user", "alice@example.org",
			"--auth-password", "wrong password", "--from", "alice@example.org", "--to", "bob@example.org"}, "", true, "535 5.7.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subject := "swaks " + tc.name
			out := swaks(tc.wantFail, tc.role, subject, tc.args...)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("transcript lacks %q:\n%s", tc.want, out)
			}
			if tc.rcpt != "" {
				h.hasMessage(tc.rcpt, "Subject: "+subject)
			}
		})
	}
}

// TestSMTPSource drives the MX and the LMTP listener with Postfix's
// smtp-source, several sessions at once, several messages a session: the
// client an MTA in front of Basalt is.
func TestSMTPSource(t *testing.T) {
	source := testsupport.NeedCommand(t, "smtp-source")
	h := start(t, setup{remote: true})
	h.user("alice@example.org", 0)
	for _, tc := range []struct {
		name string
		role Role
		args []string
	}{
		{"smtp", RoleMX, nil},
		{"lmtp", RoleLMTP, []string{"-L"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.inbox("alice@example.org"))
			args := append(tc.args, "-d", "-s", "4", "-m", "40", "-l", "2048", "-f", "src@remote.example",
				"-t", "alice@example.org", h.addr[tc.role])
			run(t, false, source, args...)
			if got := len(h.inbox("alice@example.org")) - before; got != 40 {
				t.Fatalf("%d of 40 messages stored", got)
			}
		})
	}
}
