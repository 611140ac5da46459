package templates

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"basalt/delivery"
	"basalt/session"
	"basalt/store"
	"basalt/store/signup"
)

//go:embed assets
var assetFiles embed.FS

// Deps are the services the site works through.
type Deps struct {
	Store   *store.Store
	Session *session.Service
	Agent   *delivery.Agent
	Log     *slog.Logger
	// CaptchaHook, when set, is told every captcha's id and answer as it
	// is made. Tests set it: they cannot read the picture. Nothing the
	// server runs in production sets it, and no HTTP request reaches it.
	CaptchaHook func(id, answer string)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Site serves the site's pages. Mount it at / of the HTTP core.
type Site struct {
	cfg    Config
	st     *store.Store
	sess   *session.Service
	agent  *delivery.Agent
	signup *signup.Signup
	log    *slog.Logger
	hook   func(id, answer string)
	now    func() time.Time
	pages  map[string]*goquery.Document
	router chi.Router
	csp    string
	brand  []byte // brand.css
}

// assetName is the name of a file of the site's assets.
var assetName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.(css|svg|png)$`)

// csrfCookie holds the double-submit token; its value goes in every form.
const csrfCookie = "basalt_site_csrf"

// csrfName is the CSRF cookie's name for r. Over HTTPS it carries the
// __Host- prefix (RFC 6265bis 4.1.3.2): a browser takes such a cookie only
// from this host itself, Secure, for path /, so a neighbour under the
// same domain (evil.example.org) cannot plant a token it knows, the known
// weakness of a double-submit cookie; the plain name is then not read.
func (s *Site) csrfName(r *http.Request) string {
	if s.secureCookie(r) {
		return "__Host-" + csrfCookie
	}
	return csrfCookie
}

// New loads the pages and returns the site. cfg must have its defaults
// (Config.WithDefaults) and be valid.
func New(cfg Config, d Deps) (*Site, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pages, err := loadPages(cfg)
	if err != nil {
		return nil, err
	}
	s := &Site{cfg: cfg, st: d.Store, sess: d.Session, agent: d.Agent, signup: signup.New(d.Store), log: d.Log,
		hook: d.CaptchaHook, now: d.Now, pages: pages}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	img := "'self' data:"
	if u, err := url.Parse(cfg.LogoURL); err == nil && u.Scheme != "" && u.Host != "" {
		img += " " + u.Scheme + "://" + u.Host
	}
	// No script at all; styles from the site's own files only (no style
	// attributes either), forms only to the site itself.
	s.csp = "default-src 'self'; script-src 'none'; style-src 'self'; img-src " + img +
		"; media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
	s.brand = []byte(":root { --accent: " + cfg.Accent + "; }\n")
	s.routes()
	return s, nil
}

// ServeHTTP serves the site.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Site) routes() {
	r := chi.NewRouter()
	r.Use(s.secure, middleware.GetHead)
	assets, _ := fs.Sub(assetFiles, "assets")
	r.Get("/site/brand.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(s.brand)
	})
	// The assets are a few named files: no directory listing, no
	// FileServer redirects, and the site's own 404 for anything else.
	r.Get("/site/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "file")
		b, err := fs.ReadFile(assets, name)
		if !assetName.MatchString(name) || err != nil {
			s.errorPage(w, r, http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
	r.Get("/", s.home)
	r.Get("/login", s.loginForm)
	r.Post("/login", s.csrf(s.login))
	r.Get("/register", s.registerForm)
	r.Post("/register", s.csrf(s.register))
	r.Get("/register/captcha/{file}", s.captchaFile)
	r.Get("/register/plan", s.planForm)
	r.Post("/register/plan", s.csrf(s.plan))
	r.Get("/register/done", s.done)
	r.Get("/password", s.passwordForm)
	r.Post("/password", s.csrf(s.password))
	r.Get("/contact", s.contactForm)
	r.Post("/contact", s.csrf(s.contact))
	r.Post("/theme", s.csrf(s.theme))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.errorPage(w, r, http.StatusNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.errorPage(w, r, http.StatusNotFound) })
	s.router = r
}

// secure sets the security headers on every answer, and sends plain HTTP
// to HTTPS when configured.
func (s *Site) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		https := r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
		if s.cfg.HTTPSRedirect && !https {
			u := *r.URL
			u.Scheme, u.Host = "https", s.cfg.Host
			if u.Host == "" {
				u.Host = r.Host
			}
			http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.cfg.HTTPSRedirect && https {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// secureCookie says whether cookies set on r are marked Secure.
func (s *Site) secureCookie(r *http.Request) bool {
	return r.TLS != nil || s.cfg.SecureCookie || s.cfg.HTTPSRedirect
}

// token returns the request's CSRF token, setting a new cookie when the
// browser has none.
func (s *Site) token(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(s.csrfName(r)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	t := randomToken()
	http.SetCookie(w, &http.Cookie{Name: s.csrfName(r), Value: t, Path: "/", HttpOnly: true,
		Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
	return t
}

// randomToken returns 32 random bytes, base64url (43 characters).
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrf admits a form's POST only when its csrf field is the browser's
// CSRF cookie (double submit: a page elsewhere can make the browser send
// the cookie, but cannot read it to put it in the form; the cookie is
// SameSite=Strict besides). A refused form is shown again, emptied, with
// a fresh token and the reason.
func (s *Site) csrf(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, r, http.StatusBadRequest)
			return
		}
		c, err := r.Cookie(s.csrfName(r))
		got := r.PostForm.Get("csrf")
		if err != nil || c.Value == "" || got == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) != 1 {
			s.log.Info("site: form refused: CSRF token missing or wrong", "path", r.URL.Path)
			s.refused(w, r)
			return
		}
		next(w, r)
	}
}

// refused answers a form whose CSRF token did not match.
func (s *Site) refused(w http.ResponseWriter, r *http.Request) {
	page := map[string]string{"/login": "login", "/register": "register", "/register/plan": "register",
		"/password": "password", "/contact": "contact"}[r.URL.Path]
	if page == "" {
		s.errorPage(w, r, http.StatusForbidden)
		return
	}
	if page == "register" {
		s.registerPage(w, r, http.StatusForbidden, formExpired, nil, nil)
		return
	}
	v := s.view(page)
	v.status = http.StatusForbidden
	v.summary(formExpired)
	s.render(w, r, v)
}

const formExpired = "This form had expired or did not come from this site. Nothing was done; please send it again."

// errorTexts are the error pages' words.
var errorTexts = map[int][2]string{
	http.StatusBadRequest:          {"Bad request", "The request could not be understood."},
	http.StatusForbidden:           {"Not allowed", "This request is not allowed."},
	http.StatusNotFound:            {"Page not found", "There is no page at this address. It may have moved, or the link was mistyped."},
	http.StatusTooManyRequests:     {"Too many requests", "You made too many requests in a short time. Please wait a few minutes and try again."},
	http.StatusInternalServerError: {"Something went wrong", "The server could not finish your request. Please try again in a moment."},
	http.StatusServiceUnavailable:  {"Unavailable", "The service is unavailable for a moment. Please try again shortly."},
}

// errorPage answers with the error page for status, in the site's look.
func (s *Site) errorPage(w http.ResponseWriter, r *http.Request, status int) {
	t, ok := errorTexts[status]
	if !ok {
		t = [2]string{http.StatusText(status), ""}
	}
	v := s.view("error")
	v.status = status
	v.text("status", fmt.Sprint(status))
	v.text("heading", t[0])
	v.text("explain", t[1])
	v.doc.Find("title").SetText(t[0] + " — " + s.cfg.Name)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "300")
	}
	s.render(w, r, v)
}

// fail logs an error of the server's and shows the 500 page (503 when
// the store or cache is what failed).
func (s *Site) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error("site: "+what, "path", r.URL.Path, "err", err)
	status := http.StatusInternalServerError
	if store.IsUnavailable(err) {
		status = http.StatusServiceUnavailable
	}
	s.errorPage(w, r, status)
}

// clientIP is the client's address, from the connection only: headers
// saying otherwise are not trusted from anyone (as in the HTTP core).
func clientIP(r *http.Request) netip.Addr {
	ip, err := session.ParseClientIP(r.RemoteAddr)
	if err != nil {
		return netip.IPv6Unspecified()
	}
	return ip
}

// admit counts one request of kind from ip's network against limit an
// hour: its IPv4 /24 or IPv6 /64, and for IPv6 its /48 too, against four
// times limit (one site holds a /48: 65536 /64s each with a limit of its
// own would be no limit). Over either, signup.ErrRateLimited.
func (s *Site) admit(ctx context.Context, kind string, ip netip.Addr, limit int64) error {
	network, wide := signup.Networks(ip)
	if err := s.signup.Admit(ctx, kind, network.String(), limit, time.Hour); err != nil {
		return err
	}
	if wide == network {
		return nil
	}
	return s.signup.Admit(ctx, kind, wide.String(), 4*limit, time.Hour)
}

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	v := s.view("home")
	if s.cfg.Register.Mode == ModeClosed {
		v.remove("#home-register")
		v.remove("#nav-register")
	}
	v.doc.Find("#lead").SetText("Private mail at " + s.cfg.Name + ", with a webmail that is quick to use, and IMAP, POP3 and SMTP for any other client.")
	s.render(w, r, v)
}

// ctxTimeout bounds one page's work with the store.
func ctxTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
