package static

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestServe: the page, its assets under the version path (immutable,
// gzipped when accepted, revalidated by ETag), the security headers on
// every answer, and what is refused.
func TestServe(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr ...string) *http.Response {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	body := func(res *http.Response) string {
		var rd io.Reader = res.Body
		if res.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		}
		b, _ := io.ReadAll(rd)
		return string(b)
	}
	idx := get("/")
	page := body(idx)
	if idx.StatusCode != 200 || idx.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(idx.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("index: %d %v", idx.StatusCode, idx.Header)
	}
	// The page names its assets under the current version and preloads every module.
	if strings.Contains(page, "v/0/") || !strings.Contains(page, `src="v/`+h.Version+`/js/app.js"`) || strings.Count(page, "modulepreload") < 5 {
		t.Fatalf("index does not name the versioned assets:\n%s", page)
	}
	for _, tc := range []struct {
		path   string
		hdr    []string
		status int
		gz     bool
	}{
		{"/", nil, 200, false},
		{"/v/" + h.Version + "/js/app.js", []string{"Accept-Encoding", "gzip, br"}, 200, true},
		{"/v/" + h.Version + "/app.css", []string{"Accept-Encoding", "gzip;q=0"}, 200, false},
		{"/v/0/js/app.js", nil, 404, false},
		{"/v/" + h.Version + "/static.go", nil, 404, false},
		{"/v/" + h.Version + "/../doc.go", nil, 404, false},
		{"/nothing", nil, 404, false},
	} {
		res := get(tc.path, tc.hdr...)
		if res.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, res.StatusCode, tc.status)
		}
		if res.Header.Get("Content-Security-Policy") != CSP || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: security headers %v", tc.path, res.Header)
		}
		if (res.Header.Get("Content-Encoding") == "gzip") != tc.gz {
			t.Errorf("%s: Content-Encoding %q", tc.path, res.Header.Get("Content-Encoding"))
		}
		if tc.status == 200 && strings.HasPrefix(tc.path, "/v/") {
			if !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
				t.Errorf("%s: Cache-Control %q", tc.path, res.Header.Get("Cache-Control"))
			}
			etag := res.Header.Get("ETag")
			if again := get(tc.path, "If-None-Match", `"x", `+etag); again.StatusCode != http.StatusNotModified {
				t.Errorf("%s: If-None-Match %s: %d", tc.path, etag, again.StatusCode)
			}
			if b := body(res); len(b) < 100 {
				t.Errorf("%s: body %q", tc.path, b)
			}
		}
	}
	if res := httptest.NewRecorder(); true {
		h.ServeHTTP(res, httptest.NewRequest(http.MethodPost, "/", nil))
		if res.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d", res.Code)
		}
	}
}

// TestCSP: the policy forbids inline script and eval, plugins, base
// changes and framing, and requires Trusted Types with no policy allowed.
func TestCSP(t *testing.T) {
	for _, want := range []string{"script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
		"require-trusted-types-for 'script'", "trusted-types 'none'", "style-src 'self'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	if strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", CSP)
	}
}

// TestSourceRules: the app's sources keep the rules the CSP and the
// Trusted Types rely on: no HTML written at all (no HTML sink, no srcdoc,
// no Trusted Types policy), no eval, no inline handlers in the page, and no
// network address but the app's own.
func TestSourceRules(t *testing.T) {
	sinks := regexp.MustCompile(`\.(innerHTML|outerHTML|srcdoc)\s*=[^=]|insertAdjacentHTML|document\.write|\bsrcdoc\b|createPolicy\(|DOMParser|createContextualFragment|setHTMLUnsafe|parseHTMLUnsafe|\beval\(|new Function\(|setTimeout\(['"]`)
	remote := regexp.MustCompile(`(src|href)=["']https?://|import\s.*from\s+['"]https?:`)
	n := 0
	for name, a := range h(t).assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		n++
		if m := sinks.Find(a.body); m != nil {
			t.Errorf("%s writes HTML or evaluates code: %q", name, m)
		}
		if m := remote.Find(a.body); m != nil {
			t.Errorf("%s loads from the network: %q", name, m)
		}
	}
	if n < 5 {
		t.Fatalf("only %d modules", n)
	}
	js, css := h(t).GzipSize()
	t.Logf("gzipped: JavaScript %d B, CSS %d B, together %d B", js, css, js+css)
	if js+css > 75_000 {
		t.Errorf("the app is %d bytes gzipped, over 75 KB", js+css)
	}
}

func h(t *testing.T) *Handler {
	t.Helper()
	x, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return x
}
