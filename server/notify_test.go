package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	protosmtp "basalt/protocols/smtp"
	"basalt/session"
)

// TestChangesReachIMAP: a change made through every other way into the
// store (SMTP delivery, the webmail's JSON-RPC, POP3) reaches an IMAP
// session in IDLE within a second, and a selected session that is not
// idling at its next command, as the daemon wires them.
func TestChangesReachIMAP(t *testing.T) {
	svc, _ := openWired(t, "submission_listen = \"127.0.0.1:0\"\nmx_listen = \"off\"\nsubmissions_listen = \"off\"\nlmtp_listen = \"off\"\n"+
		"[imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"off\"\n[pop3]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"off\"\n")
	ctx := context.Background()
	if _, err := svc.Session.CreateUser(ctx, session.NewUser{Address: "alice@example.org", Password: "password one"}); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := svc.Config.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	mail, err := svc.listenMail(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	imapFE, err := svc.listenIMAP(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	popFE, err := svc.listenPOP3(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	serveFrontEnds(t, mail, imapFE, popFE)
	web := httptest.NewServer(svc.Router())
	defer web.Close()
	var submission string
	for _, l := range mail.lns {
		if l.role == protosmtp.RoleSubmission {
			submission = l.ln.Addr().String()
		}
	}
	imapAddr := imapFE.(*pairListeners).lns[0].ln.Addr().String()
	popAddr := popFE.(*pairListeners).lns[0].ln.Addr().String()

	idle := dialIMAP(t, imapAddr)
	idle.cmd(`LOGIN bob@example.org "password one"`)
	must1(t, idle.cmd("SELECT INBOX"), "* 1 EXISTS")
	poll := dialIMAP(t, imapAddr)
	poll.cmd(`LOGIN bob@example.org "password one"`)
	poll.cmd("SELECT INBOX")
	fmt.Fprintf(idle.c, "i1 IDLE\r\n")
	if l, _ := idle.read(5 * time.Second); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	// expectEach waits for want in IDLE, and for pollWant after NOOPs in
	// the other session, each within a second of the change; expect
	// waits for the same in both.
	expectEach := func(source, want, pollWant string) {
		t.Helper()
		start := time.Now()
		for {
			l, err := idle.read(time.Second - time.Since(start))
			if err != nil {
				t.Fatalf("%s: IDLE did not get %q within a second: %v", source, want, err)
			}
			if l == want {
				break
			}
		}
		for {
			if u := poll.cmd("NOOP"); slicesContains(u, pollWant) {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: the selected session did not get %q within a second", source, pollWant)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	expect := func(source, want string) { t.Helper(); expectEach(source, want, want) }

	// SMTP: alice submits to bob.
	c, err := gosmtp.Dial(submission)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "password one")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@example.org", []string{"bob@example.org"}, strings.NewReader("From: alice@example.org\r\nTo: bob@example.org\r\nSubject: by smtp\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	expect("SMTP", "* 2 EXISTS")

	// The webmail: bob flags message 2.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	rpc := func(method string, params any, csrf string) json.RawMessage {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		req, _ := http.NewRequest("POST", web.URL+"/rpc", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Result json.RawMessage `json:"result"`
			Error  any             `json:"error"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Error != nil {
			t.Fatalf("%s: %s", method, b)
		}
		return r.Result
	}
	var auth struct{ CSRF string }
	json.Unmarshal(rpc("auth", map[string]any{"username": "bob@example.org", "password": "password one"}, ""), &auth)
	u, err := svc.Store.UserByAddress(ctx, "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := svc.Store.Account(u.ID, nil).MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	rpc("messages.flag", map[string]any{"messageIDs": []string{fmt.Sprintf("%d-2", inbox.ID)}, "action": "add", "flags": []string{"flagged"}}, auth.CSRF)
	// Message 2 is recent to the IDLE session, the first to hear of it
	// (RFC 3501 2.3.2).
	expectEach("JSON-RPC", `* 2 FETCH (UID 2 FLAGS (\Flagged \Recent))`, `* 2 FETCH (UID 2 FLAGS (\Flagged))`)

	// POP3: bob deletes message 1 and quits.
	pc, err := net.Dial("tcp", popAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	pr := bufio.NewReader(pc)
	for _, cmd := range []string{"", "USER bob@example.org", "PASS password one", "DELE 1", "QUIT"} {
		if cmd != "" {
			fmt.Fprintf(pc, "%s\r\n", cmd)
		}
		if l, _ := pr.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 %s: %q", cmd, l)
		}
	}
	expect("POP3", "* 1 EXPUNGE")
	fmt.Fprintf(idle.c, "DONE\r\n")
}

func must1(t *testing.T, lines []string, want string) {
	t.Helper()
	if !slicesContains(lines, want) {
		t.Fatalf("%q lacks %q", lines, want)
	}
}

func slicesContains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
