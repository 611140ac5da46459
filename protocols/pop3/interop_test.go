package pop3

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
)

// run runs a real client program with a private HOME and returns what it
// printed; it fails the test when the program fails.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	path := testsupport.NeedCommand(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	// Nothing a client writes (fetchmail's UID and lock files, say) may
	// reach the real home directory.
	cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pyPOP is a session of Python's poplib over every command it has, and
// AUTH PLAIN (which poplib sends as a plain command) on the implicit TLS
// port. poplib counts the octets of RETR and TOP answers as unstuffed,
// which must equal LIST's sizes.
const pyPOP = `
import base64, poplib, ssl, sys
host, port, tport, ca, user, pw = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
p = poplib.POP3(host, int(port), timeout=10)
caps = p.capa()
for c in ("STLS", "TOP", "UIDL", "USER", "SASL", "RESP-CODES", "PIPELINING"):
    assert c in caps, (c, caps)
try:
    p.apop(user, pw)
    raise SystemExit("APOP answered +OK")
except poplib.error_proto as e:
    assert "not supported" in str(e), e
p.stls(ctx)
caps = p.capa()
assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"], caps
# AUTH with no mechanism lists them (RFC 1734).
resp, mechs, _ = p._longcmd("AUTH")
assert mechs == [b"PLAIN", b"LOGIN"], mechs
p.user(user)
assert p.pass_(pw).startswith(b"+OK")
# One session per maildrop (RFC 1939 8, RFC 2449 8.1.2).
q = poplib.POP3_SSL(host, int(tport), context=ctx, timeout=10)
q.user(user)
try:
    q.pass_(pw)
    raise SystemExit("a second session took the maildrop")
except poplib.error_proto as e:
    assert "[IN-USE]" in str(e), e
q.quit()
count, size = p.stat()
assert count == 3, count
resp, listing, octets = p.list()
sizes = [int(l.split()[1]) for l in listing]
assert sum(sizes) == size, (sizes, size)
assert p.list(2) == b"+OK 2 %d" % sizes[1]
ids = [l.split()[1] for l in p.uidl()[1]]
assert len(set(ids)) == 3, ids
assert p.uidl(3).split()[2] == ids[2]
for i in range(count):
    resp, lines, got = p.retr(i + 1)
    assert got == sizes[i], (i, got, sizes[i])
    if i == 1:
        assert b".dot" in lines, lines
resp, lines, _ = p.top(2, 1)
assert lines[-1] == b".dot" and lines[-2] == b"", lines
assert p.noop().startswith(b"+OK")
p.dele(1)
assert p.stat()[0] == 2
try:
    p.retr(1)
    raise SystemExit("RETR of a deleted message answered +OK")
except poplib.error_proto as e:
    assert str(e).startswith("b'-ERR"), e
p.rset()
assert p.stat()[0] == 3
p.dele(1)
assert p.quit().startswith(b"+OK")

s = poplib.POP3_SSL(host, int(tport), context=ctx, timeout=10)
assert "STLS" not in s.capa()
resp = s._shortcmd("AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode())
assert resp.startswith(b"+OK"), resp
assert s.stat()[0] == 2
s.quit()

# AUTH LOGIN (RFC 5034 with the LOGIN mechanism): two challenges.
s = poplib.POP3_SSL(host, int(tport), context=ctx, timeout=10)
s._putcmd("AUTH LOGIN")
for answer in (user, pw):
    line, _ = s._getline()
    assert line.startswith(b"+ "), line
    s._putcmd(base64.b64encode(answer.encode()).decode())
resp = s._getresp()
assert resp.startswith(b"+OK"), resp
assert s.stat()[0] == 2
try:
    s._shortcmd("STLS")
    raise SystemExit("STLS twice")
except poplib.error_proto:
    pass
s.quit()
print("OK")
`

func TestPythonPoplib(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, testMessages...)
	dir := t.TempDir()
	out := run(t, dir, "python3", "-c", pyPOP, "127.0.0.1", port(t, h.addr), port(t, h.tlsAddr), h.caFile, "bob@example.org", storetest.Password)
	if !strings.Contains(out, "OK") {
		t.Fatalf("poplib: %s", out)
	}
	if n := len(h.inbox(bob)); n != 2 {
		t.Fatalf("%d messages left after poplib's DELE and QUIT, want 2", n)
	}
}

// TestCurl: curl's pop3:// lists and retrieves (its RETR output is the
// message, unstuffed), over plaintext, STLS and implicit TLS.
func TestCurl(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, testMessages...)
	dir := t.TempDir()
	creds := "bob@example.org:" + storetest.Password
	plain := "pop3://127.0.0.1:" + port(t, h.addr)
	tls := []string{"--ssl-reqd", "--cacert", h.caFile}

	list := run(t, dir, "curl", "-sS", "--max-time", "30", "-u", creds, plain+"/")
	var want strings.Builder
	for i, m := range testMessages {
		fmt.Fprintf(&want, "%d %d\r\n", i+1, len(crlf(m)))
	}
	if list != want.String() {
		t.Fatalf("curl LIST = %q, want %q", list, want.String())
	}
	for i, m := range testMessages {
		got := run(t, dir, "curl", "-sS", "--max-time", "30", "-u", creds, fmt.Sprintf("%s/%d", plain, i+1))
		if got != crlf(m) {
			t.Fatalf("curl RETR %d = %.80q, want %.80q", i+1, got, crlf(m))
		}
	}
	got := run(t, dir, "curl", append(tls, "-sS", "--max-time", "30", "-u", creds, plain+"/2")...)
	if got != crlf(testMessages[1]) {
		t.Fatalf("curl RETR over STLS = %q", got)
	}
	got = run(t, dir, "curl", append(tls, "-sS", "--max-time", "30", "-u", creds, "pop3s://127.0.0.1:"+port(t, h.tlsAddr)+"/")...)
	if got != want.String() {
		t.Fatalf("curl LIST over implicit TLS = %q", got)
	}
	if n := len(h.inbox(bob)); n != 3 {
		t.Fatalf("curl removed messages: %d left", n)
	}
}

// TestFetchmail: fetchmail drains the maildrop into an MDA, over STLS on
// the plaintext port and over implicit TLS, checking the certificate;
// what it fetched is removed, and it is what was delivered.
func TestFetchmail(t *testing.T) {
	for _, tc := range []struct {
		name, options, wantLog string
		addr                   func(h *harness) string
	}{
		{"stls", "sslproto tls1.2+ sslcertck", "upgrade to TLS succeeded", func(h *harness) string { return h.addr }},
		{"implicit tls", "ssl sslcertck", "SSL/TLS: using protocol", func(h *harness) string { return h.tlsAddr }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{})
			bob := h.user("bob@example.org", false)
			h.deliver(bob, testMessages...)
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o700); err != nil {
				t.Fatal(err)
			}
			rc := filepath.Join(dir, "fetchmailrc")
			// The MDA writes each message to a file of its own; $$ is the
			// shell fetchmail runs it in, one per message.
			conf := fmt.Sprintf(`set no syslog
poll 127.0.0.1 with proto POP3 port %s and options no dns uidl
  user "bob@example.org" there with password "%s" is "%s" here
  options fetchall %s sslcertfile "%s" sslcommonname "%s"
  mda "cat > %s/msg.$$"
`, port(t, tc.addr(h)), storetest.Password, "basalt-test", tc.options, h.caFile, testHost, out)
			if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			log := run(t, dir, "fetchmail", "-f", rc, "--nosyslog", "-v", "--pidfile", filepath.Join(dir, "pid"), "--idfile", filepath.Join(dir, "ids"))
			if !strings.Contains(log, "3 messages") || !strings.Contains(log, tc.wantLog) {
				t.Fatalf("fetchmail did not see 3 messages, or not %q:\n%s", tc.wantLog, log)
			}
			files, err := filepath.Glob(filepath.Join(out, "msg.*"))
			if err != nil || len(files) != 3 {
				t.Fatalf("fetchmail delivered %d messages, want 3 (%v)\n%s", len(files), err, log)
			}
			var got []string
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			sort.Slice(got, func(i, j int) bool { return len(got[i]) < len(got[j]) })
			// fetchmail adds a Received header and hands the MDA LF
			// line ends; the rest is the message.
			for i, m := range []string{testMessages[1], testMessages[0], testMessages[2]} {
				body := strings.ReplaceAll(crlf(m), "\r\n", "\n")
				if !strings.HasSuffix(got[i], body) {
					t.Fatalf("message %d as fetched ends %q, want %q", i, tail(got[i], 120), tail(body, 120))
				}
			}
			if n := len(h.inbox(bob)); n != 0 {
				t.Fatalf("%d messages left after fetchmail, want none", n)
			}
		})
	}
}
