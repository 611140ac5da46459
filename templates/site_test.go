package templates_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
	"basalt/store/contacts"
	"basalt/store/outbound"
	"basalt/store/signup"
	"basalt/templates"
)

// TestPages: every page renders in the site's look, with the operator's
// branding, its nav link marked, the security headers, and no resource
// from elsewhere; unknown paths get the 404 page in the same look.
func TestPages(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	b := h.browser(t)
	for _, tc := range []struct {
		path, title, nav string
		status           int
	}{
		{"/", "Home", "#nav-home", 200},
		{"/login", "Log in", "#nav-login", 200},
		{"/register", "Register", "#nav-register", 200},
		{"/password", "Change password", "", 200},
		{"/contact", "Contact", "#nav-contact", 200},
		{"/no/such/page", "Page not found", "", 404},
	} {
		b.get(tc.path)
		if b.status != tc.status || b.page == nil {
			t.Fatalf("%s: status %d", tc.path, b.status)
		}
		if got := b.text("title"); got != tc.title+" — Example Mail" {
			t.Errorf("%s: title %q", tc.path, got)
		}
		if b.text("#site-name") != "Example Mail" || b.text("#footer-name") != "Example Mail" {
			t.Errorf("%s: site name not set: %q", tc.path, b.text("#site-name"))
		}
		if a := b.page.Find(`#footer-links a[href="/terms"]`); strings.TrimSpace(a.Text()) != "Terms of use" {
			t.Errorf("%s: footer link missing", tc.path)
		}
		active := b.page.Find("nav a.active")
		if tc.nav == "" && active.Length() != 0 || tc.nav != "" && (active.Length() != 1 || !active.Is(tc.nav) || active.AttrOr("aria-current", "") != "page") {
			t.Errorf("%s: active nav link %v", tc.path, active.Nodes)
		}
		hd := b.resp.Header
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "script-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", tc.path, hd)
		}
		// Nothing from elsewhere, and no inline script or style.
		b.page.Find("[src], [href]").Each(func(_ int, s *goquery.Selection) {
			for _, a := range []string{"src", "href"} {
				if v := s.AttrOr(a, ""); strings.Contains(v, "//") {
					t.Errorf("%s: external %s %q", tc.path, a, v)
				}
			}
		})
		if b.page.Find("script, style, [style]").Length() > 0 {
			t.Errorf("%s: inline script or style", tc.path)
		}
		if b.page.Find("form").Length() > 0 && b.val(`form input[name="csrf"]`) == "" {
			t.Errorf("%s: form without a CSRF token", tc.path)
		}
	}
	resp, err := http.Get(h.srv.URL + "/site/brand.css")
	if err != nil {
		t.Fatal(err)
	}
	css, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(css), "--accent: #0f766e") {
		t.Errorf("brand.css = %q", css)
	}
	for _, f := range []string{"/site/site.css", "/site/logo.svg"} {
		if b.get(f); b.status != 200 {
			t.Errorf("%s: %d", f, b.status)
		}
	}
	// The assets are files only: no listing of their directory, no
	// redirect, and the site's 404 for the rest.
	for _, f := range []string{"/site/..%2f", "/site/.", "/site/nothing.css", "/site/site.css%2f"} {
		if b.get(f); b.status != 404 || b.text("#status") != "404" {
			t.Errorf("%s: %d %q, want the site's 404", f, b.status, b.resp.Header.Get("Location"))
		}
	}
	head, err := http.Head(h.srv.URL + "/login")
	if err != nil || head.StatusCode != 200 {
		t.Errorf("HEAD /login: %v %v", head, err)
	}
}

// TestTheme: the footer's toggle (a form: the site runs no script)
// keeps the chosen theme in a cookie, every page then carries it on
// <html>, "auto" follows the system again, and the toggle returns only to
// the site's own pages.
func TestTheme(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	b := h.browser(t)
	b.get("/contact?kind=abuse")
	if _, set := b.page.Find("html").Attr("data-theme"); set || b.val("#theme-back") != "/contact" {
		t.Fatalf("first visit: theme set %v, back %q", set, b.val("#theme-back"))
	}
	if b.page.Find(`.theme-form button[value="dark"]`).Length() != 1 || b.page.Find(`.theme-form button[value="light"]`).Length() != 1 {
		t.Fatal("no toggle in the footer")
	}
	for _, tc := range []struct{ theme, back, loc, attr string }{
		{"dark", "/contact", "/contact", "dark"},
		{"light", "/register", "/register", "light"},
		{"dark", "https://evil.example/", "/", "dark"},
		{"dark", "//evil.example/x", "/", "dark"},
		{"auto", "/login", "/login", ""},
	} {
		b.post("/theme", url.Values{"theme": {tc.theme}, "back": {tc.back}})
		if b.status != http.StatusSeeOther || b.resp.Header.Get("Location") != tc.loc {
			t.Fatalf("%s from %q: %d to %q", tc.theme, tc.back, b.status, b.resp.Header.Get("Location"))
		}
		b.follow()
		if got := b.page.Find("html").AttrOr("data-theme", ""); got != tc.attr {
			t.Errorf("%s: page's theme %q", tc.theme, got)
		}
	}
	b.get("/login")
	b.post("/theme", url.Values{"csrf": {"wrong"}, "theme": {"dark"}})
	if b.status != http.StatusForbidden {
		t.Errorf("toggle without the CSRF token: %d", b.status)
	}
}

// TestClosed: with registration off, the pages say it is closed and take
// no registration.
func TestClosed(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.Register.Mode = templates.ModeClosed })
	b := h.browser(t)
	b.get("/register")
	if !b.shown("#closed") || b.page.Find("#register-form").Length() != 0 {
		t.Fatalf("closed registration shows the form or no notice")
	}
	b.get("/")
	if b.page.Find("#nav-register, #home-register").Length() != 0 {
		t.Error("home links to a closed registration")
	}
	b.post("/register", url.Values{"username": {"x"}})
	if !b.shown("#closed") {
		t.Error("POST to a closed registration")
	}
}

// TestRegister: the three steps on both databases: a secure account is
// made with its key, folders, settings and probation, a welcome message
// waits in its inbox, and the login hands over to the webmail.
func TestRegister(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := newHarness(t, db, nil)
		b := h.browser(t)
		b.step1(nil)
		if b.status != http.StatusSeeOther || b.resp.Header.Get("Location") != "/register/plan" {
			t.Fatalf("step 1: status %d, error %q", b.status, b.text("#error"))
		}
		b.follow()
		if b.text("#address") != "newbie@example.org" || b.page.Find(`input[name="plan"]`).Length() != 2 {
			t.Fatalf("step 2 page: %q, %d plans", b.text("#address"), b.page.Find(`input[name="plan"]`).Length())
		}
		if _, checked := b.page.Find(`input[name="plan"][value="standard"]`).Attr("checked"); !checked {
			t.Error("first plan not preselected")
		}
		b.post("/register/plan", url.Values{"plan": {"nonsense"}})
		if b.status != http.StatusUnprocessableEntity || b.text("#error") != "Choose one of the plans." {
			t.Fatalf("unknown plan: %d %q", b.status, b.text("#error"))
		}
		b.post("/register/plan", url.Values{"plan": {"secure"}}).follow()
		if b.status != 200 || b.text("#address") != "newbie@example.org" || !b.shown("#ready") {
			t.Fatalf("done page: %d %q", b.status, b.text("#address"))
		}
		ctx := context.Background()
		st := h.env.Store
		u, err := st.UserByAddress(ctx, "newbie@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if !u.Secure || u.PublicKey == "" {
			t.Errorf("secure plan made %+v", u)
		}
		if d := time.Until(time.Unix(u.ProbationUntil, 0)); u.ProbationSendBytes != 1<<20 || d < 6*24*time.Hour || d > 7*24*time.Hour {
			t.Errorf("probation %d bytes until %v", u.ProbationSendBytes, d)
		}
		if lim, err := st.Limits(ctx, u); err != nil || lim.DailySendBytes != 1<<20 {
			t.Errorf("limits on probation: %+v %v", lim, err)
		}
		auth, err := h.env.Session.Authenticate(ctx, "newbie@example.org", "a good long password", "127.0.0.1")
		if err != nil || auth.Key == nil {
			t.Fatalf("log in as the new account: %v", err)
		}
		a := auth.Account(st)
		ms, err := a.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		uses := map[string]string{}
		for _, m := range ms {
			uses[m.Name] = m.SpecialUse
		}
		for name, use := range map[string]string{"INBOX": "", "Drafts": `\Drafts`, "Sent": `\Sent`, "Junk": `\Junk`, "Trash": `\Trash`} {
			if got, ok := uses[name]; !ok || got != use {
				t.Errorf("folder %s: %q %v", name, got, ok)
			}
		}
		msgs := storetest.Messages(t, a, "INBOX")
		if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: Welcome to Example Mail") || !strings.Contains(msgs[0], "newbie@example.org") {
			t.Fatalf("inbox: %q", msgs)
		}
		// The state is gone with the password: the steps do not run twice.
		b.get("/login").post("/register/plan", url.Values{"plan": {"secure"}})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.text("#error"), "start again") {
			t.Errorf("step 2 again: %d %q", b.status, b.text("#error"))
		}

		// The login hands over to the webmail: its session cookie and
		// the CSRF token in the fragment.
		b.get("/login")
		b.post("/login", url.Values{"username": {"newbie"}, "password": {"a good long password"}})
		loc := b.resp.Header.Get("Location")
		if b.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/mail/#csrf=") {
			t.Fatalf("login: %d %q, error %q", b.status, loc, b.text("#error"))
		}
		var ck *http.Cookie
		for _, c := range b.resp.Cookies() {
			if c.Name == "basalt_session" {
				ck = c
			}
		}
		if ck == nil || ck.Path != "/rpc" || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Fatalf("session cookie %+v", ck)
		}
		web, err := h.env.Session.Web(ctx, ck.Value)
		if err != nil || web.UserID != u.ID || web.CSRF != strings.TrimPrefix(loc, "/mail/#csrf=") || web.Key == nil {
			t.Fatalf("handed-over session %+v, %v", web, err)
		}
		if set, err := contacts.Of(a).Settings(ctx); err != nil || set["theme"] != "dark" {
			t.Errorf("first settings %v, %v", set, err)
		}
	})
}

// TestRegisterErrors: each wrong answer of step 1 is refused with its
// words under its field (which is marked and takes the focus), a summary
// at the top, the other answers kept, a new captcha, and no user made.
func TestRegisterErrors(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	ctx := context.Background()
	h.env.NewUser(t, "taken@example.org", false)
	if _, err := h.env.Store.AddAlias(ctx, "sales@example.org", "taken@example.org"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		fields map[string]string
		field  string // whose error shows
		want   string // in its message
	}{
		{"empty username", map[string]string{"username": ""}, "username", "Choose a username"},
		{"digit first", map[string]string{"username": "1abc"}, "username", "starts with a letter"},
		{"double underscore", map[string]string{"username": "ab__cd"}, "username", "two underscores"},
		{"ends with underscore", map[string]string{"username": "abcd_"}, "username", "ends with a letter or digit"},
		{"bad character", map[string]string{"username": "ab.cd"}, "username", "only letters"},
		{"too short", map[string]string{"username": "ab"}, "username", "3 to 32"},
		{"too long", map[string]string{"username": strings.Repeat("a", 33)}, "username", "3 to 32"},
		{"reserved", map[string]string{"username": "postmaster"}, "username", "reserved"},
		{"reserved by the operator", map[string]string{"username": "Billing"}, "username", "reserved"},
		{"taken", map[string]string{"username": "taken"}, "username", "taken"},
		{"an alias", map[string]string{"username": "sales"}, "username", "taken"},
		{"short password", map[string]string{"password": "short", "password2": "short"}, "password", "at least 8"},
		{"long password", map[string]string{"password": strings.Repeat("p", 201), "password2": strings.Repeat("p", 201)}, "password", "at most 200"},
		{"passwords differ", map[string]string{"password2": "another long password"}, "password2", "not the same"},
		{"wrong captcha", map[string]string{"captcha": "0000000"}, "captcha", "not right"},
		{"unknown captcha", map[string]string{"captcha_id": "AAAAAAAAAAAAAAAAAAAA"}, "captcha", "already answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser(t)
			b.step1(tc.fields)
			if b.status != http.StatusUnprocessableEntity || b.page == nil {
				t.Fatalf("status %d", b.status)
			}
			if got := b.text("#" + tc.field + "-error"); !strings.Contains(got, tc.want) {
				t.Errorf("#%s-error = %q, want %q", tc.field, got, tc.want)
			}
			f := b.page.Find("#" + tc.field)
			if f.AttrOr("aria-invalid", "") != "true" || !strings.Contains(f.AttrOr("aria-describedby", ""), tc.field+"-error") {
				t.Errorf("field not marked: %v", f.Nodes[0].Attr)
			}
			if _, ok := f.Attr("autofocus"); !ok || b.page.Find("[autofocus]").Length() != 1 {
				t.Errorf("the wrong field does not take the focus")
			}
			if !strings.Contains(b.text("#error"), "correction") {
				t.Errorf("summary %q", b.text("#error"))
			}
			if l := b.page.Find(`#error li a[href="#` + tc.field + `"]`); l.Length() != 1 || !strings.Contains(l.Text(), tc.want) {
				t.Errorf("summary does not lead to the field: %q", b.text("#error"))
			}
			// Exactly one field is wrong; the others keep their answers
			// (a wrong password is typed again).
			if n := b.page.Find(".field-error:not([hidden])").Length(); n != 1 {
				t.Errorf("%d field errors shown", n)
			}
			if tc.field != "username" && b.val("#username") != "newbie" {
				t.Errorf("username not kept: %q", b.val("#username"))
			}
			if tc.field != "password" && tc.field != "password2" && b.val("#password") != "a good long password" {
				t.Errorf("password not kept")
			}
			if b.val("#captcha-id") == "" {
				t.Error("no new captcha")
			}
			if n := countUsers(t, h); n != 1 {
				t.Errorf("%d users after a refusal", n)
			}
		})
	}
}

// TestNoOracleWithoutCaptcha: whether a username is taken, or an invite
// code good, is not told to a form whose captcha is wrong, unknown or
// missing: a script that reads no captcha learns neither.
func TestNoOracleWithoutCaptcha(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.Register.Mode = templates.ModeInvite })
	h.env.NewUser(t, "taken@example.org", false)
	inv, err := signup.New(h.env.Store).CreateInvite(context.Background(), 1, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		captcha map[string]string
	}{
		{"wrong digits", map[string]string{"captcha": "0000000"}},
		{"unknown id", map[string]string{"captcha_id": "AAAAAAAAAAAAAAAAAAAA"}},
		{"no captcha", map[string]string{"captcha_id": "", "captcha": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A taken name and a wrong code, then a free name and a
			// good code: the pages must not differ.
			var pages [2]string
			for i, f := range []map[string]string{{"username": "taken", "invite": "NOTACODE"}, {"username": "free", "invite": inv.Code}} {
				for k, v := range tc.captcha {
					f[k] = v
				}
				b := h.browser(t)
				b.step1(f)
				if b.status != http.StatusUnprocessableEntity || !b.shown("#captcha-error") {
					t.Fatalf("%v: %d, captcha error %q", f, b.status, b.text("#captcha-error"))
				}
				if b.shown("#username-error") || b.shown("#invite-error") {
					t.Errorf("%v told without a captcha: username %q, invite %q", f, b.text("#username-error"), b.text("#invite-error"))
				}
				pages[i] = b.text("#error")
			}
			if pages[0] != pages[1] {
				t.Errorf("summaries differ: %q, %q", pages[0], pages[1])
			}
		})
	}
	if n := countUsers(t, h); n != 1 {
		t.Errorf("%d users", n)
	}
}

func countUsers(t *testing.T, h *harness) int {
	t.Helper()
	us, err := h.env.Store.Users(context.Background(), store.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return len(us)
}

// TestCaptchaOneAnswer: a captcha id is good for one answer: replayed
// after a wrong answer, or after a right one, it is refused.
func TestCaptchaOneAnswer(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	b := h.browser(t)
	b.get("/register")
	id, ans := b.captcha()
	csrf := b.val(`input[name="csrf"]`)
	form := func(answer string) url.Values {
		return url.Values{"csrf": {csrf}, "username": {"newbie"}, "password": {"a good long password"},
			"password2": {"a good long password"}, "captcha_id": {id}, "captcha": {answer}}
	}
	b.post("/register", form("0"+ans[1:]+"9"))
	if !strings.Contains(b.text("#captcha-error"), "not right") {
		t.Fatalf("wrong answer: %q", b.text("#captcha-error"))
	}
	b.post("/register", form(ans))
	if !strings.Contains(b.text("#captcha-error"), "already answered") || countUsers(t, h) != 0 {
		t.Fatalf("right answer to a used captcha: %d %q", b.status, b.text("#captcha-error"))
	}
	b.get("/register")
	id, ans = b.captcha()
	b.post("/register", form(ans))
	if b.status != http.StatusSeeOther {
		t.Fatalf("right answer: %d %q", b.status, b.text("#error"))
	}
	b.post("/register", form(ans))
	if !strings.Contains(b.text("#captcha-error"), "already answered") {
		t.Fatalf("replayed right answer: %d %q", b.status, b.text("#captcha-error"))
	}
	// The pictures and the audio are drawn for a live captcha only.
	b.get("/register")
	id, _ = b.captcha()
	for _, f := range []string{id + ".png", id + ".wav"} {
		if b.get("/register/captcha/" + f); b.status != 200 || b.resp.ContentLength == 0 {
			t.Errorf("%s: %d", f, b.status)
		}
	}
	if b.get("/register/captcha/AAAAAAAAAAAAAAAAAAAA.png"); b.status != 404 {
		t.Errorf("unknown captcha drawn: %d", b.status)
	}
}

// TestCaptchaRate: making captchas is rate-limited per network.
func TestCaptchaRate(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.Register.CaptchasPerHour = 2 })
	b := h.browser(t)
	for i := range 2 {
		if b.get("/register"); b.status != 200 {
			t.Fatalf("captcha %d: %d", i+1, b.status)
		}
	}
	b.get("/register")
	if b.status != http.StatusTooManyRequests || b.text("#status") != "429" || b.text("#heading") != "Too many requests" {
		t.Fatalf("third captcha: %d %q", b.status, b.text("#heading"))
	}
	if b.text("#site-name") != "Example Mail" {
		t.Error("429 page not in the site's look")
	}
}

// TestCaptchaRateNetworks: captchas made, and drawn, are counted per
// network: an IPv6 /64, and its /48 at four times the limit (a site
// holding a /48 does not get 65536 limits); an IPv4-mapped client is its
// IPv4 /24; X-Forwarded-For changes nothing.
func TestCaptchaRateNetworks(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.Register.CaptchasPerHour = 2 })
	get := func(remote string, want int, header ...string) {
		t.Helper()
		if got := h.from(remote, "/register", header...); got != want {
			t.Errorf("captcha for %s: %d, want %d", remote, got, want)
		}
	}
	get("[2001:db8:1:1::1]:1000", 200)
	get("[2001:db8:1:1::2]:1000", 200)
	get("[2001:db8:1:1::3]:1000", 429)
	get("[2001:db8:1:1::3]:1000", 429, "X-Forwarded-For", "192.0.2.1")
	for _, n := range []string{"2", "3", "4"} {
		get("[2001:db8:1:"+n+"::1]:1000", 200)
		get("[2001:db8:1:"+n+"::2]:1000", 200)
	}
	get("[2001:db8:1:5::1]:1000", 429) // the /48's eight are made
	get("[2001:db8:2:1::1]:1000", 200) // another /48

	get("[::ffff:198.51.100.1]:1000", 200)
	get("198.51.100.2:1000", 200)
	get("[::ffff:198.51.100.3]:1000", 429)

	// Drawing one live captcha again and again is counted too.
	b := h.browser(t)
	b.get("/register")
	id, _ := b.captcha()
	for i := range 8 {
		if b.get("/register/captcha/" + id + ".wav"); b.status != 200 {
			t.Fatalf("drawing %d: %d", i+1, b.status)
		}
	}
	if b.get("/register/captcha/" + id + ".png"); b.status != http.StatusTooManyRequests {
		t.Fatalf("ninth drawing: %d", b.status)
	}
}

// TestNetworkLimits: a network registers at most per_network_per_day
// accounts a day, and a banned network none; each refusal says why and
// makes no user.
func TestNetworkLimits(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	ctx := context.Background()
	register := func(b *browser, name string) {
		t.Helper()
		b.step1(map[string]string{"username": name})
		if b.status != http.StatusSeeOther {
			t.Fatalf("register %s: %d %q", name, b.status, b.text("#error"))
		}
		b.follow().post("/register/plan", url.Values{"plan": {"standard"}})
		if b.status != http.StatusSeeOther {
			t.Fatalf("register %s, step 2: %d %q", name, b.status, b.text("#error"))
		}
	}
	register(h.browserFrom(t, "127.0.200.1"), "first")
	register(h.browserFrom(t, "127.0.200.2"), "second")
	b := h.browserFrom(t, "127.0.200.3")
	b.get("/register")
	if b.status != http.StatusForbidden || !strings.Contains(b.text("#error"), "Too many accounts") || b.page.Find("#register-form").Length() != 0 {
		t.Fatalf("third from the /24: %d %q", b.status, b.text("#error"))
	}
	// A step 1 passed before the limit is checked again at step 2.
	early := h.browserFrom(t, "127.0.201.1")
	register(early, "third")
	early2 := h.browserFrom(t, "127.0.201.2")
	early2.step1(map[string]string{"username": "fourth"})
	early3 := h.browserFrom(t, "127.0.201.3")
	register(early3, "fifth")
	early2.follow().post("/register/plan", url.Values{"plan": {"standard"}})
	if early2.status != http.StatusForbidden || !strings.Contains(early2.text("#error"), "Too many accounts") {
		t.Fatalf("step 2 over the limit: %d %q", early2.status, early2.text("#error"))
	}
	if _, err := h.env.Store.UserByAddress(ctx, "fourth@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused registration made a user: %v", err)
	}

	if _, err := signup.New(h.env.Store).Ban(ctx, netip.MustParsePrefix("127.0.202.0/24"), "spam", time.Time{}); err != nil {
		t.Fatal(err)
	}
	banned := h.browserFrom(t, "127.0.202.9")
	banned.get("/register")
	if banned.status != http.StatusForbidden || !strings.Contains(banned.text("#error"), "not allowed") {
		t.Fatalf("banned network: %d %q", banned.status, banned.text("#error"))
	}
	banned.post("/register", url.Values{"username": {"spammer"}, "password": {"a good long password"}, "password2": {"a good long password"}})
	if banned.status != http.StatusForbidden || !strings.Contains(banned.text("#error"), "not allowed") {
		t.Fatalf("banned network's POST: %d %q", banned.status, banned.text("#error"))
	}
	// A ban made between the steps holds at step 2.
	late := h.browserFrom(t, "127.0.203.1")
	late.step1(map[string]string{"username": "late"})
	if late.status != http.StatusSeeOther {
		t.Fatalf("step 1 before the ban: %d %q", late.status, late.text("#error"))
	}
	if _, err := signup.New(h.env.Store).Ban(ctx, netip.MustParsePrefix("127.0.203.0/24"), "spam", time.Time{}); err != nil {
		t.Fatal(err)
	}
	late.follow().post("/register/plan", url.Values{"plan": {"standard"}})
	if late.status != http.StatusForbidden || !strings.Contains(late.text("#error"), "not allowed") {
		t.Fatalf("step 2 after the ban: %d %q", late.status, late.text("#error"))
	}
	if n := countUsers(t, h); n != 4 {
		t.Fatalf("%d users, want 4", n)
	}
}

// TestInvites: in invite mode a missing or wrong invite code is refused
// under its field; a right one registers and is spent.
func TestInvites(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.Register.Mode = templates.ModeInvite })
	inv, err := signup.New(h.env.Store).CreateInvite(context.Background(), 1, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ code, want string }{{"", "needs an invite code"}, {"NOTACODE", "not valid"}} {
		b := h.browser(t)
		b.step1(map[string]string{"invite": tc.code})
		if b.status != http.StatusUnprocessableEntity || !strings.Contains(b.text("#invite-error"), tc.want) || b.val("#username") != "newbie" {
			t.Fatalf("invite %q: %d %q", tc.code, b.status, b.text("#invite-error"))
		}
	}
	b := h.browser(t)
	b.step1(map[string]string{"invite": strings.ToLower(inv.Code)})
	if b.status != http.StatusSeeOther {
		t.Fatalf("right invite: %d %q", b.status, b.text("#error"))
	}
	b.follow().post("/register/plan", url.Values{"plan": {"standard"}}).follow()
	if b.text("#address") != "newbie@example.org" {
		t.Fatalf("done: %q", b.text("#address"))
	}
	b2 := h.browser(t)
	b2.step1(map[string]string{"username": "other", "invite": inv.Code})
	if !strings.Contains(b2.text("#invite-error"), "not valid") || countUsers(t, h) != 1 {
		t.Fatalf("spent invite: %d %q", b2.status, b2.text("#invite-error"))
	}
}

// TestApproval: in approval mode the account waits, and its login says
// so, until an administrator approves it.
func TestApproval(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.Register.Mode = templates.ModeApproval })
	admin := h.env.NewUser(t, "postmaster@example.org", false)
	b := h.browser(t)
	b.step1(nil).follow().post("/register/plan", url.Values{"plan": {"standard"}}).follow()
	if !b.shown("#pending") || b.page.Find("#ready").Length() != 0 {
		t.Fatal("done page does not say the account waits")
	}
	b.get("/login").post("/login", url.Values{"username": {"newbie@example.org"}, "password": {"a good long password"}})
	if b.status != http.StatusForbidden || b.text("#error") != "This account is "+signup.PendingReason+"." {
		t.Fatalf("pending login: %d %q", b.status, b.text("#error"))
	}
	if msgs := storetest.Messages(t, h.env.Account(admin), "INBOX"); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: [Approval] newbie@example.org waits for approval") {
		t.Fatalf("the administrator was not told: %q", msgs)
	}
	g := signup.New(h.env.Store)
	ps, err := g.Pending(context.Background())
	if err != nil || len(ps) != 1 {
		t.Fatalf("pending %v %v", ps, err)
	}
	if err := g.Approve(context.Background(), ps[0].ID); err != nil {
		t.Fatal(err)
	}
	b.get("/login").post("/login", url.Values{"username": {"newbie@example.org"}, "password": {"a good long password"}})
	if b.status != http.StatusSeeOther {
		t.Fatalf("approved login: %d %q", b.status, b.text("#error"))
	}
	// The welcome message waited for the approval.
	if msgs := storetest.Messages(t, h.env.Store.Account(ps[0].ID, nil), "INBOX"); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: Welcome to Example Mail") {
		t.Fatalf("approved account's inbox: %q", msgs)
	}
}

// TestCSRF: a form without the token, or with another, is refused and
// does nothing; the page says why and carries a fresh token.
func TestCSRF(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	h.env.NewUser(t, "alice@example.org", false)
	for _, path := range []string{"/login", "/register", "/register/plan", "/password", "/contact"} {
		for _, token := range []string{"", "wrong-token-wrong-token-wrong-token-wrong00"} {
			b := h.browser(t)
			b.get("/login") // has the cookie now
			b.post(path, url.Values{"csrf": {token}, "username": {"alice@example.org"}, "password": {storetest.Password},
				"current": {storetest.Password}, "password2": {"x"}, "email": {"a@example.org"}, "subject": {"s"}, "message": {"m"}, "kind": {"question"}})
			if b.status != http.StatusForbidden || !strings.Contains(b.text("#error"), "expired") {
				t.Errorf("%s with token %q: %d %q", path, token, b.status, b.text("#error"))
			}
			if len(b.resp.Cookies()) > 0 && b.resp.Cookies()[0].Name == "basalt_session" {
				t.Errorf("%s: a session was opened", path)
			}
		}
	}
	// Without the cookie, the form's token alone is not enough.
	b := h.browser(t)
	b.get("/login")
	tok := b.val(`input[name="csrf"]`)
	fresh := h.browser(t)
	fresh.post("/login", url.Values{"csrf": {tok}, "username": {"alice@example.org"}, "password": {storetest.Password}})
	if fresh.status != http.StatusForbidden {
		t.Errorf("token without its cookie: %d", fresh.status)
	}
	b.post("/login", url.Values{"username": {"alice@example.org"}, "password": {storetest.Password}})
	if b.status != http.StatusSeeOther {
		t.Errorf("with the token: %d %q", b.status, b.text("#error"))
	}
	if _, err := h.env.Store.UserByAddress(context.Background(), "newbie@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Error("a refused form made a user")
	}
}

// TestCSRFHostCookie: over HTTPS the CSRF cookie is a __Host- cookie
// (Secure, path /, no domain), which a neighbour under the same domain
// cannot set; a token planted in a cookie of the plain name opens
// nothing.
func TestCSRFHostCookie(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.SecureCookie = true })
	h.env.NewUser(t, "alice@example.org", false)
	resp, err := http.Get(h.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "basalt_site_csrf") {
			got = c
		}
	}
	if got == nil || got.Name != "__Host-basalt_site_csrf" || !got.Secure || got.Path != "/" || got.Domain != "" {
		t.Fatalf("CSRF cookie %+v", got)
	}
	login := func(cookie, token string) int {
		t.Helper()
		f := url.Values{"csrf": {token}, "username": {"alice@example.org"}, "password": {storetest.Password}}
		req, _ := http.NewRequest("POST", h.srv.URL+"/login", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", cookie+"="+token)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	planted := strings.Repeat("A", 43)
	if st := login("basalt_site_csrf", planted); st != http.StatusForbidden {
		t.Errorf("a planted plain cookie: %d", st)
	}
	if st := login(got.Name, got.Value); st != http.StatusSeeOther {
		t.Errorf("the __Host- cookie: %d", st)
	}
}

// TestSignupHostCookie: over HTTPS the registration's state cookie is a
// __Host- cookie too, so a state planted under the plain name (by a
// neighbour under the same domain) is not taken up at step 2.
func TestSignupHostCookie(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.SecureCookie = true })
	// The cookies by hand: a cookie jar keeps Secure cookies from
	// plain-HTTP test servers.
	jar := map[string]*http.Cookie{}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values, names map[string]string) (*http.Response, *goquery.Document) {
		t.Helper()
		req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for n, c := range jar {
			if alias, ok := names[n]; ok {
				n = alias
			}
			req.AddCookie(&http.Cookie{Name: n, Value: c.Value})
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for _, c := range resp.Cookies() {
			jar[c.Name] = c
		}
		doc, _ := goquery.NewDocumentFromReader(resp.Body)
		return resp, doc
	}
	_, page := do("GET", "/register", url.Values{}, nil)
	id := page.Find("#captcha-id").AttrOr("value", "")
	h.mu.Lock()
	answer := h.answers[id]
	h.mu.Unlock()
	csrf := jar["__Host-basalt_site_csrf"]
	if csrf == nil {
		t.Fatalf("no __Host- CSRF cookie: %v", jar)
	}
	resp, page := do("POST", "/register", url.Values{"csrf": {csrf.Value}, "username": {"newbie"}, "password": {"a good long password"},
		"password2": {"a good long password"}, "captcha_id": {id}, "captcha": {answer}}, nil)
	st := jar["__Host-basalt_signup"]
	if resp.StatusCode != http.StatusSeeOther || st == nil || st.Path != "/" || !st.Secure {
		t.Fatalf("step 1: %d %q, state cookie %v", resp.StatusCode, page.Find("#error").Text(), st)
	}
	plan := url.Values{"csrf": {csrf.Value}, "plan": {"standard"}}
	resp, page = do("POST", "/register/plan", plan, map[string]string{"__Host-basalt_signup": "basalt_signup"})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page.Find("#error").Text(), "start again") {
		t.Fatalf("state under the plain name: %d %q", resp.StatusCode, page.Find("#error").Text())
	}
	if resp, _ = do("POST", "/register/plan", plan, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("state under the __Host- name: %d", resp.StatusCode)
	}
}

// TestLogin: a missing field or wrong password is shown under its field,
// the address kept; the password is never sent back.
func TestLogin(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	h.env.NewUser(t, "alice@example.org", false)
	b := h.browser(t)
	for _, tc := range []struct {
		user, pass, field, want string
		status                  int
	}{
		{"", "x", "username", "Enter your address", 422},
		{"alice@example.org", "", "password", "Enter your password", 422},
		{"alice@example.org", "wrong password", "password", "Check the password", 401},
	} {
		b.get("/login").post("/login", url.Values{"username": {tc.user}, "password": {tc.pass}})
		if b.status != tc.status || !strings.Contains(b.text("#"+tc.field+"-error"), tc.want) {
			t.Errorf("%q/%q: %d %q", tc.user, tc.pass, b.status, b.text("#"+tc.field+"-error"))
		}
		if b.val("#username") != tc.user || b.val("#password") != "" {
			t.Errorf("%q: values %q %q", tc.user, b.val("#username"), b.val("#password"))
		}
		if b.text("#error") == "" {
			t.Error("no summary")
		}
	}
	// A locked account is told why, in the administrator's words.
	u, err := h.env.Store.UserByAddress(context.Background(), "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.env.Store.Lock(context.Background(), u.ID, time.Now().Add(time.Hour), "abuse review"); err != nil {
		t.Fatal(err)
	}
	b.get("/login").post("/login", url.Values{"username": {"alice@example.org"}, "password": {storetest.Password}})
	if b.status != http.StatusForbidden || !strings.HasPrefix(b.text("#error"), "This account is locked until ") || !strings.HasSuffix(b.text("#error"), ": abuse review.") {
		t.Errorf("locked: %d %q", b.status, b.text("#error"))
	}
}

// TestPasswordChange: the current password is needed; a secure user's
// key is re-sealed under the new one, so the login with it opens the key;
// the old password no longer works. Each wrong answer shows under its
// field.
func TestPasswordChange(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	h.env.NewUser(t, "sec@example.org", true)
	b := h.browser(t)
	good := url.Values{"username": {"sec@example.org"}, "current": {storetest.Password}, "password": {"a brand new password"}, "password2": {"a brand new password"}}
	for _, tc := range []struct {
		field, value, errField, want string
	}{
		{"username", "", "username", "Enter your address"},
		{"current", "", "current", "Enter your current password"},
		{"current", "not my password", "current", "Check the current password"},
		{"password", "short", "password", "at least 8"},
		{"password2", "something else", "password2", "not the same"},
		{"password", storetest.Password, "password", "same as the current"},
	} {
		f := url.Values{}
		for k, v := range good {
			f[k] = v
		}
		f.Set(tc.field, tc.value)
		if tc.field == "password" {
			f.Set("password2", tc.value)
		}
		b.get("/password").post("/password", f)
		if got := b.text("#" + tc.errField + "-error"); !strings.Contains(got, tc.want) {
			t.Errorf("%s=%q: %d %q", tc.field, tc.value, b.status, got)
		}
		if tc.field != "username" && b.val("#username") != "sec@example.org" {
			t.Errorf("%s: address not kept", tc.field)
		}
	}
	b.get("/password").post("/password", good)
	if b.status != 200 || !b.shown("#changed") || b.page.Find("#password-form").Length() != 0 {
		t.Fatalf("change: %d %q", b.status, b.text("#error"))
	}
	ctx := context.Background()
	auth, err := h.env.Session.Authenticate(ctx, "sec@example.org", "a brand new password", "127.0.0.1")
	if err != nil || auth.Key == nil {
		t.Fatalf("new password: %v", err)
	}
	if _, err := h.env.Session.Authenticate(ctx, "sec@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrAuthFailed) {
		t.Fatalf("old password: %v", err)
	}
}

// TestContact: the message goes as mail to the administrators, with the
// visitor's address to answer to; wrong answers are shown under their
// fields with the others kept; messages per network are limited.
func TestContact(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.ContactPerHour = 2 })
	admin := h.env.NewUser(t, "postmaster@example.org", false)
	b := h.browser(t)
	good := url.Values{"kind": {"abuse"}, "name": {"Zoë"}, "email": {"zoe@elsewhere.example"}, "subject": {"Spam from you\r\nBcc: x@y"}, "message": {"It came from spammer@example.org.\nHeaders below."}}
	for _, tc := range []struct{ field, value, want string }{
		{"email", "not an address", "not an address"},
		{"email", "", "Enter your address"},
		{"subject", "", "Enter a subject"},
		{"message", "  ", "Write your message"},
		{"kind", "other", "Choose what"},
	} {
		f := url.Values{}
		for k, v := range good {
			f[k] = v
		}
		f.Set(tc.field, tc.value)
		b.get("/contact").post("/contact", f)
		if b.status != 422 || !strings.Contains(b.text("#"+tc.field+"-error"), tc.want) {
			t.Errorf("%s=%q: %d %q", tc.field, tc.value, b.status, b.text("#"+tc.field+"-error"))
		}
		if tc.field != "message" && !strings.Contains(b.text("#message"), "spammer@example.org") {
			t.Errorf("%s: message not kept", tc.field)
		}
		if tc.field != "email" && b.val("#email") != "zoe@elsewhere.example" {
			t.Errorf("%s: email not kept", tc.field)
		}
	}
	b.get("/contact?kind=abuse")
	if _, ok := b.page.Find(`#kind option[value="abuse"]`).Attr("selected"); !ok {
		t.Error("?kind=abuse does not choose abuse")
	}
	b.post("/contact", good)
	if b.status != 200 || !b.shown("#sent") {
		t.Fatalf("send: %d %q", b.status, b.text("#error"))
	}
	msgs := storetest.Messages(t, h.env.Account(admin), "INBOX")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Reply-To: <zoe@elsewhere.example>") ||
		!strings.Contains(msgs[0], "\r\nSubject: [Abuse report] Spam from you  Bcc: x@y\r\n") ||
		strings.Contains(msgs[0], "\r\nBcc:") || !strings.Contains(msgs[0], "spammer@example.org") {
		t.Fatalf("admin's inbox: %q", msgs)
	}
	b.get("/contact").post("/contact", good)
	b.get("/contact").post("/contact", good)
	if b.status != http.StatusTooManyRequests {
		t.Fatalf("third message in the hour: %d", b.status)
	}
}

// TestAdminsElsewhere: administrators with addresses on other servers
// get the contact form's mail and the approval notes too, through the
// outbound queue (delivery's path for remote recipients), as the local
// ones get theirs in their inbox.
func TestAdminsElsewhere(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) {
		c.Admins = []string{"postmaster@example.org", "Ops <ops@elsewhere.test>"}
		c.Register.Mode = templates.ModeApproval
	})
	ctx := context.Background()
	admin := h.env.NewUser(t, "postmaster@example.org", false)
	b := h.browser(t)
	b.get("/contact").post("/contact", url.Values{"kind": {"question"}, "email": {"zoe@elsewhere.example"}, "subject": {"Hello"}, "message": {"A question."}})
	if b.status != 200 || !b.shown("#sent") {
		t.Fatalf("send: %d %q", b.status, b.text("#error"))
	}
	b.step1(nil).follow().post("/register/plan", url.Values{"plan": {"standard"}})
	if b.status != http.StatusSeeOther {
		t.Fatalf("register: %d %q", b.status, b.text("#error"))
	}
	q := outbound.New(h.env.Store)
	es, err := q.Entries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, e := range es {
		if len(e.Rcpts) != 1 || e.Rcpts[0].Address != "ops@elsewhere.test" {
			t.Errorf("queued for %+v", e.Rcpts)
			continue
		}
		rc, err := q.Open(ctx, &e)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(rc)
		rc.Close()
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, subj)
	}
	slices.Sort(subjects)
	if len(subjects) != 2 || subjects[0] != "[Approval] newbie@example.org waits for approval" || subjects[1] != "[Contact] Hello" {
		t.Errorf("queued for the remote administrator: %q", subjects)
	}
	if msgs := storetest.Messages(t, h.env.Account(admin), "INBOX"); len(msgs) != 2 {
		t.Errorf("local administrator got %d messages", len(msgs))
	}
}

// TestHTTPSRedirect: with https_redirect, plain HTTP goes to https://,
// and HTTPS answers carry HSTS.
func TestHTTPSRedirect(t *testing.T) {
	h := newHarness(t, sqlite(t), func(c *templates.Config) { c.HTTPSRedirect = true })
	b := h.browser(t)
	b.get("/login?x=1")
	if b.status != http.StatusPermanentRedirect || !strings.HasPrefix(b.resp.Header.Get("Location"), "https://127.0.0.1:") || !strings.HasSuffix(b.resp.Header.Get("Location"), "/login?x=1") {
		t.Fatalf("plain HTTP: %d %q", b.status, b.resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	b.do(req)
	if b.status != 200 || b.resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("behind a TLS proxy: %d %v", b.status, b.resp.Header)
	}
	// With site.host the redirect goes there, whatever Host the client
	// sent; a path that looks like a host stays a path.
	h = newHarness(t, sqlite(t), func(c *templates.Config) { c.HTTPSRedirect, c.Host = true, "mail.example.org" })
	for _, tc := range []struct{ host, path, want string }{
		{"evil.example", "/login?x=1", "https://mail.example.org/login?x=1"},
		{"", "//evil.example/x", "https://mail.example.org//evil.example/x"},
	} {
		req, _ := http.NewRequest("GET", h.srv.URL+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		b := h.browser(t)
		b.do(req)
		if b.status != http.StatusPermanentRedirect || b.resp.Header.Get("Location") != tc.want {
			t.Errorf("Host %q %s: %d %q", tc.host, tc.path, b.status, b.resp.Header.Get("Location"))
		}
	}
	if err := (templates.Config{Host: "mail.example.org/x"}).WithDefaults().Validate(); err == nil {
		t.Error("a host with a path is taken")
	}
}

// TestServerError: when the store fails, the visitor gets the 500 (or
// 503) page in the site's look, not a bare error.
func TestServerError(t *testing.T) {
	h := newHarness(t, sqlite(t), nil)
	b := h.browser(t)
	b.get("/register")
	h.env.DB.Close()
	id, ans := b.captcha()
	b.post("/register", url.Values{"username": {"newbie"}, "password": {"a good long password"}, "password2": {"a good long password"}, "captcha_id": {id}, "captcha": {ans}})
	if b.status != http.StatusInternalServerError && b.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", b.status)
	}
	if b.text("#status") != strconv.Itoa(b.status) || b.text("#site-name") != "Example Mail" || b.text("#heading") == "" {
		t.Fatalf("error page: %q %q", b.text("#status"), b.text("#heading"))
	}
}
