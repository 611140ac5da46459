package templates_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/templates"
)

// harness is the site served over real HTTP on 127.0.0.1, on a real
// store, with the captcha answers it makes told to the test through
// Deps.CaptchaHook (never over HTTP).
type harness struct {
	env     *storetest.Env
	srv     *httptest.Server
	site    http.Handler // the site itself, for requests from any address
	cfg     templates.Config
	mu      sync.Mutex
	answers map[string]string
}

// nets hands each browser a loopback /24 of its own (127.0.N.1), so the
// per-network limits of one test do not reach another's browsers.
var nets atomic.Int32

func newHarness(t *testing.T, db testsupport.Database, mutate func(*templates.Config)) *harness {
	t.Helper()
	so := storetest.Options{}
	if db.Driver == "mysql" {
		so.RedisAddr, so.RedisPrefix = testsupport.Redis(t)
	}
	env := storetest.Open(t, db, so)
	ctx := context.Background()
	if _, err := env.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	queue := delivery.NewQueue(delivery.QueueConfig{Smarthost: "127.0.0.1:9"}, env.Store, nil, log)
	agent := delivery.New(delivery.Config{Hostname: "mail.example.org"}, env.Store, queue, log)
	cfg := templates.Config{
		Name:   "Example Mail",
		Accent: "#0f766e",
		Footer: []templates.Link{{Title: "Terms of use", URL: "/terms"}},
		Admins: []string{"postmaster@example.org"},
		Register: templates.RegisterConfig{
			Mode: templates.ModeOpen, Domain: "example.org", Reserved: []string{"billing"},
			Settings: map[string]string{"theme": "dark"},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg = cfg.WithDefaults()
	h := &harness{env: env, cfg: cfg, answers: map[string]string{}}
	site, err := templates.New(cfg, templates.Deps{Store: env.Store, Session: env.Session, Agent: agent, Log: log,
		CaptchaHook: func(id, answer string) {
			h.mu.Lock()
			h.answers[id] = answer
			h.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.site = site
	h.srv = httptest.NewServer(site)
	t.Cleanup(h.srv.Close)
	return h
}

func sqlite(t testing.TB) testsupport.Database {
	return testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
}

// from serves a GET of path to a client at remote ("[2001:db8::1]:1234"),
// straight to the site: loopback connections cannot come from anywhere
// else. It returns the status.
func (h *harness) from(remote, path string, header ...string) int {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.site.ServeHTTP(rec, req)
	return rec.Code
}

// browser is one client: its own cookies and loopback network; it does
// not follow redirects by itself.
type browser struct {
	t      *testing.T
	h      *harness
	hc     *http.Client
	ip     string
	resp   *http.Response
	status int
	page   *goquery.Document
}

func (h *harness) browser(t *testing.T) *browser {
	n := nets.Add(1)
	ip := "127.0." + strconv.Itoa(int(n%250)+1) + ".1"
	return h.browserFrom(t, ip)
}

// browserFrom is a browser connecting from ip (a loopback address).
func (h *harness) browserFrom(t *testing.T, ip string) *browser {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, h: h, ip: ip, hc: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b.resp, b.status = resp, resp.StatusCode
	b.page = nil
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		doc, err := goquery.NewDocumentFromReader(resp.Body)
		if err != nil {
			b.t.Fatalf("parse %s: %v", req.URL.Path, err)
		}
		b.page = doc
	}
}

// get loads path.
func (b *browser) get(path string) *browser {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.h.srv.URL+path, nil)
	b.do(req)
	return b
}

// post sends form to path, with the current page's CSRF token unless
// form has a csrf value of its own (or nil to send none).
func (b *browser) post(path string, form url.Values) *browser {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok && b.page != nil {
		form.Set("csrf", b.page.Find(`input[name="csrf"]`).AttrOr("value", ""))
	}
	req, _ := http.NewRequest("POST", b.h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.do(req)
	return b
}

// follow follows a redirect.
func (b *browser) follow() *browser {
	b.t.Helper()
	if b.status != http.StatusSeeOther && b.status != http.StatusFound {
		b.t.Fatalf("status %d, want a redirect; page error %q", b.status, b.text("#error"))
	}
	return b.get(b.resp.Header.Get("Location"))
}

// text is the trimmed text of what sel matches in the current page.
func (b *browser) text(sel string) string {
	if b.page == nil {
		return ""
	}
	return strings.TrimSpace(b.page.Find(sel).Text())
}

// val is the value attribute of what sel matches.
func (b *browser) val(sel string) string {
	if b.page == nil {
		return ""
	}
	return b.page.Find(sel).AttrOr("value", "")
}

// shown says whether sel matches an element that is not hidden.
func (b *browser) shown(sel string) bool {
	s := b.page.Find(sel)
	_, hidden := s.Attr("hidden")
	return s.Length() > 0 && !hidden
}

// captcha returns the current page's captcha id and its answer, as the
// hook told it.
func (b *browser) captcha() (string, string) {
	b.t.Helper()
	id := b.val("#captcha-id")
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	ans, ok := b.h.answers[id]
	if id == "" || !ok {
		b.t.Fatalf("no captcha on the page (status %d, error %q)", b.status, b.text("#error"))
	}
	return id, ans
}

// step1 fills in registration's first step from a fresh form; fields
// override the right answers.
func (b *browser) step1(fields map[string]string) *browser {
	b.t.Helper()
	b.get("/register")
	id, ans := b.captcha()
	f := url.Values{"username": {"newbie"}, "password": {"a good long password"}, "password2": {"a good long password"},
		"captcha_id": {id}, "captcha": {ans}}
	for k, v := range fields {
		f.Set(k, v)
	}
	return b.post("/register", f)
}
