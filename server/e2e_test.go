package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"basalt/internal/testsupport/storetest"
	protosmtp "basalt/protocols/smtp"
	"basalt/session"
	"basalt/store"
)

// bigFolder is the size of the folder the browser scrolls to the middle
// of: 100,000 messages, one appended and the rest copies of its row
// (storetest.SeedCopies), seconds on SQLite. Under the race detector (make
// test) the embedded SQLite's index updates cost about 2 ms a row, minutes
// for 100,000, so the folder holds 5,000 there, and make test runs this
// test a second time without the race detector, over 100,000. E2E_BIG
// sets another size.
func bigFolder() int {
	if n, err := strconv.Atoi(os.Getenv("E2E_BIG")); err == nil && n > 0 {
		return n
	}
	if raceBuild {
		return 5_000
	}
	return 100_000
}

// browserEnv finds what the browser tests need: node, Debian's chromium
// and e2e/node_modules (scripts/webdeps.sh installs them; make test runs
// it). Missing pieces skip the test, except under CI=true, where they fail
// it: a browser test that never runs shows nothing.
func browserEnv(t *testing.T) (node, chromium, dir string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests: %s is missing (run scripts/webdeps.sh)", what)
		}
		t.Skipf("browser tests: %s is missing (run scripts/webdeps.sh)", what)
	}
	node, err = exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(chromium)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing("e2e/node_modules")
	}
	return node, chromium, dir
}

// e2eWorld is Basalt with its HTTP core and SMTP listeners on loopback,
// and the control server through which the browser test asks the Go test
// to act (deliver a message now) or to read what the server holds. The
// control server is the test's own, never an endpoint of Basalt's.
type e2eWorld struct {
	t       *testing.T
	svc     *Services
	web     *httptest.Server
	mx      string
	users   map[string]int64
	mu      sync.Mutex
	canary  []string
	control *httptest.Server
}

func startE2E(t *testing.T) *e2eWorld {
	t.Helper()
	svc, cfg := openServices(t, "", "mx_listen = \"127.0.0.1:0\"\nsubmission_listen = \"off\"\n"+
		"submissions_listen = \"off\"\nlmtp_listen = \"off\"\n"+
		"[rpc]\nrate_limit = 100000\nimage_proxy_allow_private = true\n")
	ctx := context.Background()
	w := &e2eWorld{t: t, svc: svc, users: map[string]int64{}}
	for _, a := range []string{"alice@example.org", "bob@example.org"} {
		u, err := svc.Session.CreateUser(ctx, session.NewUser{Address: a, Password: "password one"})
		if err != nil {
			t.Fatal(err)
		}
		w.users[a] = u.ID
	}
	tlsCfg, err := cfg.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := svc.listenMail(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	serveFrontEnds(t, m)
	for _, l := range m.lns {
		if l.role == protosmtp.RoleMX {
			w.mx = l.ln.Addr().String()
		}
	}
	if w.mx == "" {
		t.Fatalf("no MX listener: %v", m.addrs())
	}
	// The outbound queue sends what messages.send held back (undo send,
	// send later).
	qctx, qcancel := context.WithCancel(ctx)
	qdone := make(chan struct{})
	go func() { defer close(qdone); svc.Queue.Run(qctx) }()
	t.Cleanup(func() { qcancel(); <-qdone })
	w.web = httptest.NewServer(svc.Router())
	t.Cleanup(w.web.Close)
	w.control = httptest.NewServer(w.controlHandler())
	t.Cleanup(w.control.Close)
	return w
}

// deliver sends a message to the MX listener over SMTP, as mail from
// outside arrives.
func (w *e2eWorld) deliver(from, to string, raw []byte) error {
	c, err := gosmtp.Dial(w.mx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(raw); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func (w *e2eWorld) account(addr string) *store.Account {
	return w.svc.Store.Account(w.users[addr], nil)
}

// controlHandler: POST /deliver (from, to, subject, body, html),
// GET /messages?user=&folder= (the subjects a folder holds),
// GET /vacation?user=, GET /canary/... (what hostile mail would load),
// GET /hits (the canary's hits).
func (w *e2eWorld) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /deliver", func(rw http.ResponseWriter, r *http.Request) {
		var m struct{ From, To, Subject, Body, HTML string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		raw := e2eMessage(m.From, m.To, m.Subject, m.Body, m.HTML)
		from := m.From
		if i := strings.LastIndex(from, "<"); i >= 0 {
			from = strings.Trim(from[i:], "<>")
		}
		if err := w.deliver(from, m.To, raw); err != nil {
			http.Error(rw, err.Error(), 502)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /messages", func(rw http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		a := w.account(r.URL.Query().Get("user"))
		mb, err := a.MailboxByName(ctx, r.URL.Query().Get("folder"))
		if err != nil {
			http.Error(rw, err.Error(), 404)
			return
		}
		ms, err := a.List(ctx, mb.ID, store.ListQuery{WithInfo: true, Limit: 500})
		if err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		type out struct {
			Subject     string `json:"subject"`
			Attachments bool   `json:"attachments"`
		}
		res := []out{}
		for _, m := range ms {
			if m.Info != nil {
				res = append(res, out{m.Info.Envelope.Subject, m.HasAttachments})
			}
		}
		json.NewEncoder(rw).Encode(res)
	})
	mux.HandleFunc("GET /vacation", func(rw http.ResponseWriter, r *http.Request) {
		v, _, err := w.account(r.URL.Query().Get("user")).Rules(r.Context())
		if err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		json.NewEncoder(rw).Encode(v)
	})
	mux.HandleFunc("GET /canary/", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.canary = append(w.canary, r.URL.String())
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "image/gif")
		rw.Write([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	})
	mux.HandleFunc("GET /hits", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		json.NewEncoder(rw).Encode(append([]string{}, w.canary...))
	})
	return mux
}

func e2eMessage(from, to, subject, text, html string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.%s@e2e.test>\r\nMIME-Version: 1.0\r\n",
		from, to, subject, time.Now().Format(time.RFC1123Z), time.Now().UnixNano(), strings.ReplaceAll(strings.Fields(subject + " x")[0], "@", "."))
	if html == "" {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", text)
		return []byte(b.String())
	}
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"+
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s\r\n--b1--\r\n", text, html)
	return []byte(b.String())
}

// hostileHTML is mail that tries to run script, load from the canary or
// cover the page, from rpc/sanitize_test.go's cases and beyond: SVG
// animate and feImage, CSS overlays, var() and url() tricks. A script that
// ran would log the marker or open a dialog; a remote load would reach the
// canary.
func hostileHTML(canary string) string {
	marker := "console.log('E2E-XSS-MARKER');alert(1)"
	return strings.Join([]string{
		`<p>hostile</p><script>` + marker + `</script><SCRIPT SRC=` + canary + `/x.js></SCRIPT>`,
		`<scr<script>ipt>` + marker + `</scr</script>ipt>`,
		`<img src="data:image/png;base64,iVBORw0KGgo=" onerror="` + marker + `"><body onload="` + marker + `">`,
		`<a href="javascript:` + marker + `">js</a><a href="&#106;avascript:alert(3)">c</a>`,
		`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>`,
		`<svg><use href="` + canary + `/sprite.svg#x"/></svg><svg onload="` + marker + `">`,
		`<svg><animate attributeName="href" values="javascript:alert(1)"/><a><text>anim</text></a></svg>`,
		`<svg><filter id="f"><feImage href="` + canary + `/feimage.png"/></filter><rect filter="url(#f)"/></svg>`,
		`<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:99999;background:red">overlay</div>`,
		`<div style="--x:url(` + canary + `/var.png);background:var(--x)">var</div>`,
		`<p style="background:url(` + canary + `/bg.png)">bg</p><div style="width: expression(alert(1))">e</div>`,
		`<style>body{background:url(` + canary + `/style.gif)}</style>`,
		`<meta http-equiv="refresh" content="0;url=` + canary + `/refresh">`,
		`<iframe src="` + canary + `/frame"></iframe><object data="` + canary + `/x.swf"></object><embed src="` + canary + `/e.swf">`,
		`<base href="` + canary + `/"><link rel="stylesheet" href="` + canary + `/x.css">`,
		`<img src="` + canary + `/pixel.gif?u=1"><img src="data:image/png;base64,iVBORw0KGgo=" srcset="` + canary + `/a.png 2x">`,
		`<form action="` + canary + `/login"><input name="p"><button>go</button></form>`,
		`<p id="location">clobber</p><img name="getElementById" src="cid:x">`,
	}, "\n")
}

// TestWebmailBrowser runs the webmail in headless Chromium against a whole
// Basalt (HTTP core, SMTP on loopback, SQLite): e2e/webmail.mjs logs in,
// receives mail while the page is open, reads, replies with an attachment,
// moves by drag and drop, scrolls a 100,000-message folder, searches,
// edits a contact, sets a vacation reply, uses the shortcuts and the phone
// layout, opens hostile mail, runs axe-core on each main screen, and logs
// out. It prints the performance marks it measured and where the
// screenshots are.
func TestWebmailBrowser(t *testing.T) {
	node, chromium, dir := browserEnv(t)
	w := startE2E(t)
	ctx := context.Background()

	// Alice's mail: 60 ordinary messages in INBOX (a first page of 50 and
	// more), one with an attachment, and a big folder.
	alice := w.account("alice@example.org")
	inbox, err := alice.MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		raw := e2eMessage(fmt.Sprintf("Sender %d <sender%d@example.net>", i, i), "alice@example.org", fmt.Sprintf("Weekly note %02d", i),
			fmt.Sprintf("Body of note %d. See https://example.net/notes/%d for more.", i, i), "")
		if _, err := alice.Append(ctx, inbox.ID, raw, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	att := "From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: Photo attached\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n--m1\r\nContent-Type: text/plain\r\n\r\nThe photo.\r\n" +
		"--m1\r\nContent-Type: image/png; name=\"dot.png\"\r\nContent-Disposition: attachment; filename=\"dot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n" +
		"--m1\r\nContent-Type: image/svg+xml; name=\"x.svg\"\r\nContent-Disposition: attachment; filename=\"x.svg\"\r\n\r\n<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>\r\n--m1--\r\n"
	if _, err := alice.Append(ctx, inbox.ID, []byte(att), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	canary := w.control.URL + "/canary"
	hostile := e2eMessage("Mallory <mallory@example.net>", "alice@example.org", "Hostile HTML", "see html", hostileHTML(canary))
	if _, err := alice.Append(ctx, inbox.ID, hostile, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	plain := e2eMessage("Mallory <mallory@example.net>", "alice@example.org", "Hostile text",
		"Links: https://example.org/ok and javascript:alert(1) and <script>console.log('E2E-XSS-MARKER')</script> "+canary+"/textlink", "")
	if _, err := alice.Append(ctx, inbox.ID, plain, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	news := e2eMessage("News <news@example.net>", "alice@example.org", "Newsletter with images", "see html",
		`<h1>News</h1><p>A picture:</p><img src="`+canary+`/newsletter.png" width="1" height="1" alt="pic">`)
	if _, err := alice.Append(ctx, inbox.ID, news, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// A conversation of three, by Message-ID and References (RFC 5322 3.6.4).
	for i, ref := range []string{"", "<t0@e2e.test>", "<t0@e2e.test> <t1@e2e.test>"} {
		raw := fmt.Sprintf("From: Frank <frank@example.net>\r\nTo: alice@example.org\r\nSubject: %sPlanning the trip\r\nMessage-ID: <t%d@e2e.test>\r\n",
			strings.Repeat("Re: ", min(i, 1)), i)
		if ref != "" {
			raw += "In-Reply-To: " + ref[strings.LastIndex(ref, "<"):] + "\r\nReferences: " + ref + "\r\n"
		}
		raw += fmt.Sprintf("\r\nPart %d of the trip talk.\r\n", i+1)
		if _, err := alice.Append(ctx, inbox.ID, []byte(raw), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	big, err := alice.CreateMailbox(ctx, "Big", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nbig := bigFolder()
	storetest.SeedCopies(t, &storetest.Env{DB: w.svc.DB}, alice, big.ID, nbig)
	t.Logf("seeded %d messages in %v", nbig, time.Since(start).Round(time.Millisecond))
	if _, err := alice.CreateMailbox(ctx, "Projects", ""); err != nil {
		t.Fatal(err)
	}

	script := os.Getenv("E2E_SCRIPT")
	if script == "" {
		script = "webmail.mjs"
	}
	runBrowserScript(t, node, chromium, dir, script, 4*time.Minute,
		"BASE_URL="+w.web.URL, "CONTROL_URL="+w.control.URL, "BIG_FOLDER="+strconv.Itoa(nbig))
}
