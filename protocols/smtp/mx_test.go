package smtp

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// extensions returns the EHLO keywords of a reply, upper-cased, with
// their parameters.
func extensions(r resp) map[string]string {
	ext := map[string]string{}
	for _, l := range strings.Split(r.text, "\n")[1:] {
		k, v, _ := strings.Cut(l, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext
}

func TestEHLO(t *testing.T) {
	const size = 123456
	trusted := start(t, setup{agent: delivery.Config{MaxSize: size}})
	remote := start(t, setup{agent: delivery.Config{MaxSize: size}, remote: true})
	mx := map[string]string{"PIPELINING": "", "SIZE": fmt.Sprint(size), "8BITMIME": "", "ENHANCEDSTATUSCODES": "", "SMTPUTF8": ""}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		connect func() *client
		hello   string
		want    map[string]string // keyword -> parameters
		absent  []string
	}{
		{"mx", func() *client { return trusted.dial(RoleMX) }, "EHLO", with(mx, "STARTTLS", ""), []string{"AUTH"}},
		{"submission from loopback", func() *client { return trusted.dial(RoleSubmission) }, "EHLO",
			with(mx, "STARTTLS", "", "AUTH", "PLAIN LOGIN"), nil},
		{"submission in plaintext", func() *client { return remote.dial(RoleSubmission) }, "EHLO",
			with(mx, "STARTTLS", ""), []string{"AUTH"}},
		{"submission after STARTTLS", func() *client {
			c := remote.dial(RoleSubmission)
			c.expect("EHLO client.example", "250")
			c.startTLS(remote.tls)
			return c
		}, "EHLO", with(mx, "AUTH", "PLAIN LOGIN"), []string{"STARTTLS"}},
		{"submissions", func() *client { return remote.dialTLS() }, "EHLO", with(mx, "AUTH", "PLAIN LOGIN"), []string{"STARTTLS"}},
		{"lmtp", func() *client { return trusted.dial(RoleLMTP) }, "LHLO", mx, []string{"STARTTLS", "AUTH"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.connect()
			r := c.expect(tc.hello+" client.example", "250")
			got := extensions(r)
			for k, v := range tc.want {
				if gv, ok := got[k]; !ok || gv != v {
					t.Errorf("%s %q: want %s %q in %q", tc.hello, k, k, v, r.text)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s offers %s: %q", tc.hello, k, r.text)
				}
			}
		})
	}
	t.Run("EHLO on LMTP", func(t *testing.T) {
		trusted.dial(RoleLMTP).expect("EHLO client.example", "500")
	})
}

// step is a command and the start of the reply it must get.
type step struct{ send, want string }

func runSteps(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		if s.send == "<message>" {
			if r := c.body(storetest.Message("a@remote.example", "alice@example.org", "hi", "hello")); !strings.HasPrefix(r.String(), s.want) {
				t.Fatalf("message: got %q, want %q", r, s.want)
			}
			continue
		}
		c.expect(s.send, s.want)
	}
}

// TestMXReplies: each refusal on the MX path gets its reply code.
func TestMXReplies(t *testing.T) {
	const maxSize = 64 << 10
	h := start(t, setup{agent: delivery.Config{MaxRecipients: 3, MaxSize: maxSize}})
	h.user("alice@example.org", 0)
	h.user("full@example.org", 1000)
	storetest.Append(t, h.account("full@example.org"), storetest.Inbox(t, h.account("full@example.org")), storetest.SizedMessage(1000), store.AppendOptions{})

	ehlo := step{"EHLO client.example", "250"}
	mail := step{"MAIL FROM:<a@remote.example>", "250 2.0.0"}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"local recipient", []step{ehlo, mail, {"RCPT TO:<alice@example.org>", "250 2.0.0"}}},
		{"unknown local recipient", []step{ehlo, mail, {"RCPT TO:<nobody@example.org>", "550 5.1.1"}}},
		{"no relaying", []step{ehlo, mail, {"RCPT TO:<someone@elsewhere.example>", "554 5.7.1"}}},
		{"null sender from a host not in the table", []step{ehlo, {"MAIL FROM:<>", "550 5.7.1"}}},
		{"declared size too big", []step{ehlo, {fmt.Sprintf("MAIL FROM:<a@remote.example> SIZE=%d", maxSize+1), "552 5.3.4"}}},
		{"sender without a domain", []step{ehlo, {"MAIL FROM:<nodomain>", "501"}}},
		{"recipient address syntax", []step{ehlo, mail, {"RCPT TO:<a b@example.org>", "501"}}},
		{"mailbox full at RCPT", []step{ehlo, mail, {"RCPT TO:<full@example.org>", "452 4.2.2"}}},
		{"too many recipients", []step{ehlo, mail, {"RCPT TO:<alice@example.org>", "250"}, {"RCPT TO:<alice@example.org>", "250"},
			{"RCPT TO:<alice@example.org>", "250"}, {"RCPT TO:<alice@example.org>", "452 4.5.3"}}},
		{"AUTH on MX", []step{ehlo, {"AUTH PLAIN " + plainAuth("alice@example.org", storetest.Password), "502 5.5.1"}}},
		{"MAIL before EHLO", []step{{"MAIL FROM:<a@remote.example>", "502 5.5.1"}}},
		{"RCPT before MAIL", []step{ehlo, {"RCPT TO:<alice@example.org>", "502 5.5.1"}}},
		{"DATA before RCPT", []step{ehlo, mail, {"DATA", "502 5.5.1"}}},
		{"unknown command", []step{ehlo, {"XYZW now", "500 5.5.2"}}},
		{"mangled command", []step{ehlo, {"FROBNICATE", "501 5.5.2"}}},
		{"VRFY says nothing", []step{ehlo, {"VRFY alice", "252"}}},
		{"message too big", []step{ehlo, mail, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}, {"<big>", "552 5.3.4"}}},
		{"message taken", []step{ehlo, mail, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}, {"<message>", "250 2.0.0"}}},
		{"MAIL inside a transaction", []step{ehlo, mail, {"RCPT TO:<alice@example.org>", "250"}, {"MAIL FROM:<b@remote.example>", "503 5.5.1"}}},
		{"RSET ends the transaction", []step{ehlo, mail, {"RCPT TO:<alice@example.org>", "250"}, {"RSET", "250"}, {"DATA", "502 5.5.1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(RoleMX)
			for i, s := range tc.steps {
				if s.send == "<big>" {
					if r := c.body(storetest.SizedMessage(maxSize + 100)); !strings.HasPrefix(r.String(), s.want) {
						t.Fatalf("big message: got %q, want %q", r, s.want)
					}
					continue
				}
				runSteps(t, c, tc.steps[i:i+1])
			}
			c.expect("QUIT", "221")
		})
	}
}

// TestQuotaPermanent: a site may answer a full mailbox 552 5.2.2 (RFC
// 5321 4.5.3.1.10) instead of 452 4.2.2.
func TestQuotaPermanent(t *testing.T) {
	for _, tc := range []struct {
		permanent bool
		want      string
	}{{false, "452 4.2.2"}, {true, "552 5.2.2"}} {
		t.Run(tc.want, func(t *testing.T) {
			h := start(t, setup{agent: delivery.Config{QuotaPermanent: tc.permanent}})
			h.user("full@example.org", 1000)
			a := h.account("full@example.org")
			storetest.Append(t, a, storetest.Inbox(t, a), storetest.SizedMessage(1000), store.AppendOptions{})
			c := h.dial(RoleMX)
			runSteps(t, c, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<a@remote.example>", "250"}, {"RCPT TO:<full@example.org>", tc.want}})
		})
	}
}

// TestNullSender: MAIL FROM:<> is taken from hosts in the null-sender
// table, matched by client address or HELO name.
func TestNullSender(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	ctx := context.Background()
	c := h.dial(RoleMX)
	runSteps(t, c, []step{{"EHLO mta.bounces.example", "250"}, {"MAIL FROM:<>", "550 5.7.1"}})
	if err := h.env.Store.AddNullSender(ctx, "*.bounces.example"); err != nil {
		t.Fatal(err)
	}
	runSteps(t, c, []step{{"MAIL FROM:<>", "250"}, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}, {"<message>", "250"}})
	c2 := h.dial(RoleMX)
	runSteps(t, c2, []step{{"EHLO other.example", "250"}, {"MAIL FROM:<>", "550 5.7.1"}})
	if err := h.env.Store.AddNullSender(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	runSteps(t, c2, []step{{"MAIL FROM:<>", "250"}})
	msgs := h.inbox("alice@example.org")
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "Return-Path: <>\r\n") {
		t.Fatalf("inbox: %q", msgs)
	}
}

var receivedRE = regexp.MustCompile(`^Return-Path: <sender@remote\.example>\r\nDelivered-To: alice@example\.org\r\n` +
	`Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Basalt\) with (ESMTP[SA]*|LMTP) id ([a-z2-7]{13});\r\n\t[^\r]+\r\n`)

// TestDelivered: a message answered 250 is in the store, whole, after the
// agent's Return-Path and Received headers, with the transaction ID in
// both the header and the log; on SQLite and MariaDB.
func TestDelivered(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		for _, role := range []Role{RoleMX, RoleLMTP} {
			t.Run(role.String(), func(t *testing.T) {
				h := start(t, setup{db: testsupport.Database{Driver: db.Driver, DSN: dsnFor(t, db)}})
				h.user("alice@example.org", 0)
				msg := storetest.Message("sender@remote.example", "alice@example.org", "delivered", "Hello.\n.leading dot\n")
				c := h.dial(role)
				hello := "EHLO client.example"
				if role == RoleLMTP {
					hello = "LHLO client.example"
				}
				runSteps(t, c, []step{{hello, "250"}, {"MAIL FROM:<sender@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}})
				r := c.data(msg)
				if r.code != 250 {
					t.Fatalf("DATA: %q", r)
				}
				msgs := h.inbox("alice@example.org")
				if len(msgs) != 1 {
					t.Fatalf("%d messages in the inbox", len(msgs))
				}
				m := receivedRE.FindStringSubmatch(msgs[0])
				if m == nil {
					t.Fatalf("trace headers:\n%s", msgs[0])
				}
				if want := map[Role]string{RoleMX: "ESMTP", RoleLMTP: "LMTP"}[role]; m[1] != want {
					t.Errorf("Received says with %s, want %s", m[1], want)
				}
				if !strings.HasSuffix(msgs[0], "\r\n"+string(msg)) {
					t.Fatalf("the message is not whole after the trace headers:\n%s", msgs[0])
				}
				if !strings.Contains(h.logs.String(), "id="+m[2]) {
					t.Errorf("transaction id %s not logged:\n%s", m[2], h.logs.String())
				}
				if want := "2.0.0 <alice@example.org> Delivered, id " + m[2]; role == RoleLMTP && r.text != want {
					t.Errorf("LMTP reply %q, want %q", r.text, want)
				}
				if want := "2.0.0 Delivered, id " + m[2]; role == RoleMX && r.text != want {
					t.Errorf("reply %q, want %q", r.text, want)
				}
			})
		}
	})
}

// dsnFor gives each subtest its own database: SQLite a new file, MariaDB a
// new database (ForEachDatabase made one for the parent only).
func dsnFor(t *testing.T, db testsupport.Database) string {
	if db.Driver == "mysql" {
		return testsupport.MySQLDSN(t)
	}
	return testsupport.SQLiteDSN(t)
}

// TestPartialFailure: SMTP has one reply after DATA. Some recipients
// failing is 250, and the failures go back to the sender in a DSN; all
// failing is the first failure's reply, and no DSN.
func TestPartialFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bounces *bounces
		from    string
		want    string // in the log
	}{
		{"bounced", &bounces{}, "sender@remote.example", "smtp: bounce sent"},
		{"no bounce sender", nil, "sender@remote.example", "reason=\"no bounce sender configured\""},
		{"null sender", &bounces{}, "", "reason=\"null sender\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{bounces: tc.bounces})
			h.user("alice@example.org", 0)
			h.user("tight@example.org", 1500) // room at RCPT, none for this message
			if err := h.env.Store.AddNullSender(context.Background(), "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			msg := storetest.SizedMessage(2000)
			c := h.dial(RoleMX)
			runSteps(t, c, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<" + tc.from + ">", "250"},
				{"RCPT TO:<alice@example.org>", "250"}, {"RCPT TO:<tight@example.org>", "250"}})
			if r := c.data(msg); !strings.HasPrefix(r.String(), "250 2.0.0") {
				t.Fatalf("some failed: %q, want 250", r)
			}
			if n := len(h.inbox("alice@example.org")); n != 1 {
				t.Fatalf("alice has %d messages", n)
			}
			if n := len(h.inbox("tight@example.org")); n != 0 {
				t.Fatalf("tight has %d messages", n)
			}
			if !strings.Contains(h.logs.String(), "recipient failed after DATA") || !strings.Contains(h.logs.String(), tc.want) {
				t.Fatalf("log lacks %q:\n%s", tc.want, h.logs.String())
			}
			var sent []bounce
			if tc.bounces != nil {
				sent = tc.bounces.all()
			}
			if tc.name != "bounced" {
				if len(sent) != 0 {
					t.Fatalf("bounces sent: %v", sent)
				}
				return
			}
			if len(sent) != 1 || sent[0].to != tc.from {
				t.Fatalf("bounces: %+v", sent)
			}
			for _, want := range []string{"Content-Type: multipart/report", "Final-Recipient: rfc822; tight@example.org",
				"Status: 4.2.2", "Reporting-MTA: dns; " + testHost, "Subject: sized"} {
				if !strings.Contains(sent[0].dsn, want) {
					t.Errorf("DSN lacks %q:\n%s", want, sent[0].dsn)
				}
			}
			if strings.Contains(sent[0].dsn, "alice@example.org;") || strings.Contains(sent[0].dsn, strings.Repeat("x", 76)) {
				t.Errorf("DSN names the delivered recipient or carries the body:\n%s", sent[0].dsn)
			}
			runSteps(t, c, []step{{"MAIL FROM:<sender@remote.example>", "250"}, {"RCPT TO:<tight@example.org>", "250"}})
			if r := c.data(msg); !strings.HasPrefix(r.String(), "452 4.2.2") {
				t.Fatalf("all failed: %q, want 452 4.2.2", r)
			}
			if n := len(tc.bounces.all()); n != 1 {
				t.Fatalf("%d bounces after a message refused outright", n)
			}
		})
	}
}

// TestDuplicateRecipients: a recipient given twice gets the message once.
func TestDuplicateRecipients(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	c := h.dial(RoleMX)
	runSteps(t, c, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<sender@remote.example>", "250"},
		{"RCPT TO:<alice@example.org>", "250"}, {"RCPT TO:<Alice@Example.org>", "250"}, {"DATA", "354"}, {"<message>", "250"}})
	if n := len(h.inbox("alice@example.org")); n != 1 {
		t.Fatalf("alice has %d messages, want 1", n)
	}
}

// TestTransactionIDs: each transaction has an ID of its own.
func TestTransactionIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if len(id) != 13 || seen[id] || strings.ToLower(id) != id {
			t.Fatalf("id %q (seen: %v)", id, seen[id])
		}
		seen[id] = true
	}
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	c := h.dial(RoleMX)
	c.expect("EHLO client.example", "250")
	for range 2 {
		runSteps(t, c, []step{{"MAIL FROM:<sender@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}, {"<message>", "250"}})
	}
	var ids []string
	for _, m := range h.inbox("alice@example.org") {
		if sm := regexp.MustCompile(` id ([a-z2-7]{13});`).FindStringSubmatch(m); sm != nil {
			ids = append(ids, sm[1])
		}
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("ids %v", ids)
	}
	if slices.Contains(ids, "") {
		t.Fatal("empty id")
	}
}

// TestBDAT: go-smtp always offers CHUNKING (RFC 3030); a message sent in
// BDAT chunks takes the same path as one sent with DATA, over SMTP and
// LMTP, and the size limit holds across chunks.
func TestBDAT(t *testing.T) {
	h := start(t, setup{agent: delivery.Config{MaxSize: 4000}})
	h.user("alice@example.org", 0)
	msg := storetest.Message("sender@remote.example", "alice@example.org", "chunked", "in two chunks")
	half := len(msg) / 2
	for _, tc := range []struct {
		role  Role
		hello string
	}{{RoleMX, "EHLO"}, {RoleLMTP, "LHLO"}} {
		t.Run(tc.role.String(), func(t *testing.T) {
			c := h.dial(tc.role)
			runSteps(t, c, []step{{tc.hello + " client.example", "250"}, {"MAIL FROM:<sender@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}})
			fmt.Fprintf(c.nc, "BDAT %d\r\n%s", half, msg[:half])
			if r := c.read(); !strings.HasPrefix(r.String(), "250") {
				t.Fatalf("first chunk: %q", r)
			}
			fmt.Fprintf(c.nc, "BDAT %d LAST\r\n%s", len(msg)-half, msg[half:])
			if r := c.read(); !strings.HasPrefix(r.String(), "250 2.0.0") || !strings.Contains(r.text, "Delivered, id ") {
				t.Fatalf("last chunk: %q", r)
			}
			runSteps(t, c, []step{{"MAIL FROM:<sender@remote.example>", "250"}, {"RCPT TO:<alice@example.org>", "250"}})
			chunk := strings.Repeat(strings.Repeat("x", 58)+"\r\n", 50) // 3000 bytes
			fmt.Fprintf(c.nc, "BDAT %d\r\n%s", len(chunk), chunk)
			if r := c.read(); !strings.HasPrefix(r.String(), "250") {
				t.Fatalf("chunk within the limit: %q", r)
			}
			fmt.Fprintf(c.nc, "BDAT %d LAST\r\n%s", len(chunk), chunk)
			if r := c.read(); !strings.HasPrefix(r.String(), "552 5.3.4") {
				t.Fatalf("chunks over the limit: %q", r)
			}
		})
	}
	msgs := h.inbox("alice@example.org")
	if len(msgs) != 2 || !strings.HasSuffix(msgs[0], "\r\n"+string(msg)) {
		t.Fatalf("inbox: %q", msgs)
	}
}
