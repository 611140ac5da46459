package pop3

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/session"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSTLS: STLS upgrades a plaintext connection once (RFC 2595 4); the
// implicit TLS listener never offers it; what a client sent after STLS in
// the clear is not taken.
func TestSTLS(t *testing.T) {
	h := start(t, setup{})
	h.user("bob@example.org", false)

	c := h.dial()
	c.startTLS(h.tls)
	if caps := c.multi("CAPA"); strings.Contains(caps, "STLS") || !strings.Contains(caps, "USER") {
		t.Fatalf("CAPA over TLS:\n%s", caps)
	}
	c.expect("STLS", "-ERR Already using TLS")
	c.login("bob@example.org")
	c.expect("QUIT", "+OK")

	c = h.dialTLS()
	if caps := c.multi("CAPA"); strings.Contains(caps, "STLS") {
		t.Fatalf("CAPA on the implicit TLS listener offers STLS:\n%s", caps)
	}
	c.expect("STLS", "-ERR Already using TLS")
	c.login("bob@example.org")
	c.expect("QUIT", "+OK")

	// Commands pipelined behind STLS in the clear are dropped: the first
	// answer over TLS is to the first command sent over it.
	c = h.dial()
	c.write("STLS\r\nUSER bob@example.org\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("STLS: %q", l)
	}
	c.startTLSConnOnly(h)
	c.expect("PASS "+storetest.Password, "-ERR PASS must follow USER")
	c.expect("QUIT", "+OK")

	// Without a certificate there is no STLS to offer.
	h2 := start(t, setup{noTLS: true})
	c = h2.dial()
	if caps := c.multi("CAPA"); strings.Contains(caps, "STLS") {
		t.Fatalf("CAPA offers STLS without a certificate:\n%s", caps)
	}
	c.expect("STLS", "-ERR STLS is not available")
}

// startTLSConnOnly runs the TLS handshake after an STLS already answered.
func (c *client) startTLSConnOnly(h *harness) {
	c.t.Helper()
	c.nc = tlsClient(c.t, c.nc, h)
	c.r.Reset(c.nc)
}

// TestPlaintextRefused: from a client that is not on loopback, passwords
// are taken only over TLS, unless the configuration allows plaintext;
// CRAM-MD5, which sends none, is offered either way.
func TestPlaintextRefused(t *testing.T) {
	h := start(t, setup{remote: true, cram: true})
	h.user("bob@example.org", false)
	c := h.dial()
	caps := c.multi("CAPA")
	if strings.Contains(caps, "USER") || strings.Contains(caps, "PLAIN") || !strings.Contains(caps, "SASL CRAM-MD5\r\n") || !strings.Contains(caps, "STLS") {
		t.Fatalf("CAPA on a remote plaintext connection:\n%s", caps)
	}
	c.expect("USER bob@example.org", "-ERR [AUTH] Plaintext authentication disallowed")
	c.expect("PASS "+storetest.Password, "-ERR PASS must follow USER")
	c.expect("AUTH PLAIN "+b64("\x00bob@example.org\x00"+storetest.Password), "-ERR [AUTH] Plaintext authentication disallowed")
	c.expect("AUTH LOGIN", "-ERR [AUTH] Plaintext authentication disallowed")
	if got := c.multi("AUTH"); got != "CRAM-MD5\r\n" {
		t.Fatalf("AUTH list = %q", got)
	}
	c.startTLS(h.tls)
	if caps := c.multi("CAPA"); !strings.Contains(caps, "USER") || !strings.Contains(caps, "SASL PLAIN LOGIN CRAM-MD5") {
		t.Fatalf("CAPA over TLS:\n%s", caps)
	}
	c.login("bob@example.org")
	c.expect("QUIT", "+OK")

	h2 := start(t, setup{remote: true, cfg: Config{AllowPlaintextAuth: true}})
	h2.user("bob@example.org", false)
	c = h2.dial()
	c.login("bob@example.org")
	c.expect("QUIT", "+OK")
}

// TestSASL: AUTH PLAIN and LOGIN with and without an initial response,
// CRAM-MD5, cancelling, and the refusals (RFC 5034).
func TestSASL(t *testing.T) {
	h := start(t, setup{cram: true, cfg: Config{MaxBadCommands: 100}})
	h.user("bob@example.org", false)
	pw := storetest.Password

	for _, tc := range []struct {
		name  string
		steps [][2]string // line sent, answer expected
	}{
		{"plain with initial response", [][2]string{{"AUTH PLAIN " + b64("\x00bob@example.org\x00"+pw), "+OK Logged in"}}},
		{"plain with authzid = login", [][2]string{{"AUTH PLAIN " + b64("bob@example.org\x00bob@example.org\x00"+pw), "+OK Logged in"}}},
		{"plain after a challenge", [][2]string{{"auth plain", "+ "}, {b64("\x00bob@example.org\x00" + pw), "+OK Logged in"}}},
		{"login", [][2]string{{"AUTH LOGIN", "+ " + b64("Username:")}, {b64("bob@example.org"), "+ " + b64("Password:")}, {b64(pw), "+OK Logged in"}}},
		{"login with initial response", [][2]string{{"AUTH LOGIN " + b64("bob@example.org"), "+ " + b64("Password:")}, {b64(pw), "+OK Logged in"}}},
		{"plain wrong password", [][2]string{{"AUTH PLAIN " + b64("\x00bob@example.org\x00wrong"), "-ERR [AUTH] Authentication failed"}}},
		{"plain other authzid", [][2]string{{"AUTH PLAIN " + b64("alice@example.org\x00bob@example.org\x00"+pw), "-ERR [AUTH] Authorization identity must be the login"}}},
		{"plain malformed", [][2]string{{"AUTH PLAIN " + b64("no nuls"), "-ERR Malformed authentication exchange"}}},
		{"plain empty initial response", [][2]string{{"AUTH PLAIN =", "-ERR Malformed authentication exchange"}}},
		{"cancelled", [][2]string{{"AUTH PLAIN", "+ "}, {"*", "-ERR Authentication cancelled"}}},
		{"bad base64 response", [][2]string{{"AUTH LOGIN", "+ "}, {"!!", "-ERR Malformed base64"}}},
		{"unknown mechanism", [][2]string{{"AUTH GSSAPI", "-ERR Unsupported authentication mechanism"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			for _, s := range tc.steps {
				c.expect(s[0], s[1])
			}
			if strings.HasPrefix(tc.steps[len(tc.steps)-1][1], "+OK") {
				c.expect("STAT", "+OK 0 0")
			} else {
				c.expect("STAT", "-ERR Not logged in")
			}
			c.expect("QUIT", "+OK")
			h.waitConnections(0) // the maildrop lock is released
		})
	}

	c := h.dial()
	if got := c.multi("AUTH"); got != "PLAIN\r\nLOGIN\r\nCRAM-MD5\r\n" {
		t.Fatalf("AUTH list = %q", got)
	}
	c.expect("QUIT", "+OK")
	h.waitConnections(0)

	// CRAM-MD5 (RFC 2195): the answer is the HMAC-MD5 of the challenge.
	for _, tc := range []struct {
		name, password, want string
	}{
		{"right", pw, "+OK Logged in"},
		{"wrong", "wrong", "-ERR [AUTH] Authentication failed"},
	} {
		t.Run("cram-md5 "+tc.name, func(t *testing.T) {
			c := h.dial()
			l := c.expect("AUTH CRAM-MD5", "+ ")
			challenge, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
			if err != nil || !strings.HasSuffix(string(challenge), "@"+testHost+">") {
				t.Fatalf("challenge %q: %v", challenge, err)
			}
			mac := hmac.New(md5.New, []byte(tc.password))
			mac.Write(challenge)
			c.expect(b64("bob@example.org "+hex.EncodeToString(mac.Sum(nil))), tc.want)
			c.expect("QUIT", "+OK")
			h.waitConnections(0)
		})
	}
}

// TestThrottle: failed logins are refused with [AUTH] and counted by the
// session service; past its limit even the right password is refused, as
// temporary ([SYS/TEMP], RFC 3206).
func TestThrottle(t *testing.T) {
	h := start(t, setup{session: session.Config{FailuresPerIP: 3, FailuresPerAccount: 3}})
	h.user("bob@example.org", false)
	c := h.dial()
	for range 3 {
		c.expect("USER bob@example.org", "+OK")
		c.expect("PASS wrong", "-ERR [AUTH] Authentication failed")
	}
	c.expect("USER bob@example.org", "+OK")
	c.expect("PASS "+storetest.Password, "-ERR [SYS/TEMP] Too many failed logins")
	c2 := h.dial()
	c2.expect("AUTH PLAIN "+b64("\x00bob@example.org\x00"+storetest.Password), "-ERR [SYS/TEMP] Too many failed logins")
	if strings.Contains(h.logs.String(), storetest.Password) || strings.Contains(h.logs.String(), "wrong") {
		t.Fatalf("a password reached the log:\n%s", h.logs.String())
	}
}
