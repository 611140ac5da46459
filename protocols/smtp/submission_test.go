package smtp

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
	"basalt/store/outbound"
)

// TestSubmission walks a client through submission as a remote client
// sees it: nothing before TLS and AUTH, then only its own addresses.
func TestSubmission(t *testing.T) {
	h := start(t, setup{remote: true})
	h.user("alice@example.org", 0)
	h.user("bob@example.org", 0)
	pw := storetest.Password
	c := h.dial(RoleSubmission)
	runSteps(t, c, []step{
		{"EHLO client.example", "250"},
		{"MAIL FROM:<alice@example.org>", "530 5.7.0"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", pw), "538 5.7.11"},
	})
	c.startTLS(h.tls)
	runSteps(t, c, []step{
		{"EHLO client.example", "250"},
		{"MAIL FROM:<alice@example.org>", "530 5.7.0"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", "wrong password"), "535 5.7.8"},
		{"AUTH PLAIN " + b64("bob@example.org\x00alice@example.org\x00"+pw), "535 5.7.8"}, // no proxy authorization
		{"AUTH CRAM-MD5", "504 5.7.4"},                                                    // not offered without a verifier
		{"AUTH LOGIN", "334 " + b64("Username:")},
		{b64("alice@example.org"), "334 " + b64("Password:")},
		{b64(pw), "235 2.0.0"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", pw), "503 5.5.1"},
		{"MAIL FROM:<bob@example.org>", "553 5.7.1"},
		{"MAIL FROM:<alice@example.org>", "250"},
		{"RCPT TO:<bob@example.org>", "250"},
		{"RCPT TO:<nobody@example.org>", "550 5.1.1"},
	})
	if r := c.data(storetest.Message("bob@example.org", "bob@example.org", "forged", "x")); !strings.HasPrefix(r.String(), "550 5.7.1") {
		t.Fatalf("From header not the user's: %q, want 550 5.7.1", r)
	}
	runSteps(t, c, []step{{"MAIL FROM:<alice@example.org>", "250"}, {"RCPT TO:<bob@example.org>", "250"}})
	if r := c.data(storetest.Message("alice@example.org", "bob@example.org", "hello bob", "hi")); !strings.HasPrefix(r.String(), "250 2.0.0") {
		t.Fatalf("submission: %q", r)
	}
	// Mail for elsewhere goes to the outbound queue; with none that
	// relays, it is refused at RCPT.
	runSteps(t, c, []step{{"MAIL FROM:<alice@example.org>", "250"}, {"RCPT TO:<carol@elsewhere.example>", "554 5.7.1"}, {"RSET", "250"}})
	msgs := h.inbox("bob@example.org")
	if len(msgs) != 1 || !strings.Contains(msgs[0], " with ESMTPSA id ") || !strings.HasPrefix(msgs[0], "Return-Path: <alice@example.org>\r\n") {
		t.Fatalf("bob's inbox: %q", msgs)
	}
}

// TestDailySendLimit: what a user sends elsewhere is charged to the daily
// send limit (each recipient's copy) when it is queued; past the limit the
// message is refused with a temporary error and neither queued nor counted.
func TestDailySendLimit(t *testing.T) {
	h := start(t, setup{queue: true})
	h.user("alice@example.org", 0)
	ctx := context.Background()
	a := h.account("alice@example.org")
	limit := int64(6000)
	if err := h.env.Store.SetLimits(ctx, a.UserID(), "", store.LimitOverrides{DailySendBytes: &limit}); err != nil {
		t.Fatal(err)
	}
	c := h.dial(RoleSubmission)
	runSteps(t, c, []step{{"EHLO client.example", "250"}, {"AUTH PLAIN " + plainAuth("alice@example.org", storetest.Password), "235"}})
	send := func(want string) {
		t.Helper()
		runSteps(t, c, []step{{"MAIL FROM:<alice@example.org>", "250"}, {"RCPT TO:<carol@elsewhere.example>", "250"}, {"RCPT TO:<dave@elsewhere.example>", "250"}})
		if r := c.data(storetest.Message("alice@example.org", "carol@elsewhere.example", "out", strings.Repeat("xxxxxxxxx\n", 200))); !strings.HasPrefix(r.String(), want) {
			t.Fatalf("send: %q, want %s", r, want)
		}
	}
	send("250 2.0.0")
	sent, err := a.SentToday(ctx)
	if err != nil || sent < 4000 || sent > 6000 {
		t.Fatalf("sent today %d (%v), want two copies of about 2 KB", sent, err)
	}
	send("451 4.7.1")
	if again, _ := a.SentToday(ctx); again != sent {
		t.Fatalf("refused message counted: %d, was %d", again, sent)
	}
	if q, err := outbound.New(h.env.Store).Entries(ctx, 10); err != nil || len(q) != 1 {
		t.Fatalf("queue holds %d entries (%v), want 1", len(q), err)
	}
}

// TestSubmissionPlaintext: AUTH without TLS where the configuration
// allows it, and from loopback.
func TestSubmissionPlaintext(t *testing.T) {
	for _, tc := range []struct {
		name string
		su   setup
	}{
		{"allow_plaintext_auth", setup{remote: true, cfg: Config{AllowPlaintextAuth: true}}},
		{"loopback", setup{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.su)
			h.user("alice@example.org", 0)
			c := h.dial(RoleSubmission)
			if r := c.expect("EHLO client.example", "250"); extensions(r)["AUTH"] != "PLAIN LOGIN" {
				t.Fatalf("AUTH not offered: %q", r)
			}
			runSteps(t, c, []step{{"AUTH PLAIN " + plainAuth("alice@example.org", storetest.Password), "235"},
				{"MAIL FROM:<alice@example.org>", "250"}})
		})
	}
}

// TestSubmissions: implicit TLS (RFC 8314) on its own port.
func TestSubmissions(t *testing.T) {
	h := start(t, setup{remote: true})
	h.user("alice@example.org", 0)
	c := h.dialTLS()
	runSteps(t, c, []step{
		{"EHLO client.example", "250"},
		{"STARTTLS", "502 5.5.1"},
		{"AUTH LOGIN " + b64("alice@example.org"), "334 " + b64("Password:")},
		{b64(storetest.Password), "235"},
		{"MAIL FROM:<alice@example.org>", "250"},
		{"RCPT TO:<alice@example.org>", "250"},
	})
	if r := c.data(storetest.Message("alice@example.org", "alice@example.org", "note to self", "x")); r.code != 250 {
		t.Fatalf("DATA: %q", r)
	}
	if n := len(h.inbox("alice@example.org")); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

// TestLoginThrottle: the session service's throttle answers 454 4.7.0
// (RFC 4954 6) once an address has used up its failures, right password
// or not.
func TestLoginThrottle(t *testing.T) {
	h := start(t, setup{session: session.Config{FailuresPerIP: 2, FailuresPerAccount: 2}})
	h.user("alice@example.org", 0)
	c := h.dial(RoleSubmission)
	runSteps(t, c, []step{
		{"EHLO client.example", "250"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", "wrong 1"), "535 5.7.8"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", "wrong 2"), "535 5.7.8"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", storetest.Password), "454 4.7.0"},
	})
}

// TestAuthCutoff: failed logins count toward the error cutoff.
func TestAuthCutoff(t *testing.T) {
	h := start(t, setup{cfg: Config{MaxErrors: 3}})
	h.user("alice@example.org", 0)
	c := h.dial(RoleSubmission)
	runSteps(t, c, []step{
		{"EHLO client.example", "250"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", "wrong 1"), "535 5.7.8"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", "wrong 2"), "535 5.7.8"},
		{"AUTH PLAIN " + plainAuth("alice@example.org", "wrong 3"), "421 4.7.0"},
	})
	c.expectClosed()
}

// cramTestVerifier checks CRAM-MD5 against a password it holds, which is
// what the session service will do with the HMAC states it keeps.
// TestCRAMExchange: AUTH CRAM-MD5 (RFC 2195) end to end, checked by the
// session service against the stored HMAC states.
func TestCRAMExchange(t *testing.T) {
	h := start(t, setup{cram: true})
	h.user("alice@example.org", 0)
	answer := func(challenge, password string) string {
		raw, err := base64.StdEncoding.DecodeString(challenge)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(raw), "<") || !strings.HasSuffix(string(raw), "@"+testHost+">") {
			t.Fatalf("challenge %q is not a message id", raw)
		}
		m := hmac.New(md5.New, []byte(password))
		m.Write(raw)
		return b64("alice@example.org " + hex.EncodeToString(m.Sum(nil)))
	}
	c := h.dial(RoleSubmission)
	if r := c.expect("EHLO client.example", "250"); extensions(r)["AUTH"] != "PLAIN LOGIN CRAM-MD5" {
		t.Fatalf("EHLO: %q", r)
	}
	r := c.expect("AUTH CRAM-MD5", "334 ")
	c.expect(answer(r.text, "wrong password"), "535 5.7.8")
	c.expect("AUTH CRAM-MD5", "334 ")
	c.expect(b64("alice@example.org nothex"), "535 5.7.8")
	r = c.expect("AUTH CRAM-MD5", "334 ")
	c.expect(answer(r.text, storetest.Password), "235")
	c.expect("MAIL FROM:<alice@example.org>", "250")
}
