package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
)

//go:embed index.html app.css js/*.js
var files embed.FS

// CSP is the app's Content-Security-Policy. Scripts and styles come only
// from the app itself; message bodies are shown in sandboxed frames whose
// documents carry their own, stricter policy. require-trusted-types-for
// with trusted-types 'none' shuts every HTML sink: the app writes no HTML
// (it builds nodes) and may create no policy to write any.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; frame-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// assetPrefix is where index.html points at the assets before the version
// is put in (index.html refers to "v/0/app.css" and so on).
const assetPrefix = "v/0/"

type asset struct {
	body, gz    []byte
	ctype, etag string
}

// Handler serves the app. Mount it with the prefix stripped (it sees
// "/", "/v/<version>/js/app.js").
type Handler struct {
	// Version names the current assets: a hash of all of them, so a
	// changed file is a new URL and the old ones may be cached forever.
	Version string
	index   *asset
	assets  map[string]*asset
}

// New reads the embedded files and prepares each one (hash, gzip).
func New() (*Handler, error) {
	h := &Handler{assets: map[string]*asset{}}
	var names []string
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "index.html" {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static: listing the app's files: %w", err)
	}
	slices.Sort(names)
	sum := sha256.New()
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("static: reading %s: %w", n, err)
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", n, len(b))
		sum.Write(b)
		a, err := newAsset(n, b)
		if err != nil {
			return nil, err
		}
		h.assets[n] = a
	}
	h.Version = hex.EncodeToString(sum.Sum(nil))[:16]
	idx, err := files.ReadFile("index.html")
	if err != nil {
		return nil, fmt.Errorf("static: reading index.html: %w", err)
	}
	// Every module is announced up front so the browser fetches them in
	// parallel instead of discovering them import by import.
	var pre strings.Builder
	for _, n := range names {
		if strings.HasSuffix(n, ".js") && n != "js/app.js" {
			fmt.Fprintf(&pre, "<link rel=\"modulepreload\" href=\"%s%s\">\n", assetPrefix, n)
		}
	}
	idx = bytes.Replace(idx, []byte("<!--preload-->\n"), []byte(pre.String()), 1)
	idx = bytes.ReplaceAll(idx, []byte(assetPrefix), []byte("v/"+h.Version+"/"))
	if h.index, err = newAsset("index.html", idx); err != nil {
		return nil, err
	}
	return h, nil
}

func newAsset(name string, b []byte) (*asset, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("static: gzip %s: %w", name, err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("static: gzip %s: %w", name, err)
	}
	sum := sha256.Sum256(b)
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	}
	return &asset{body: b, gz: gz.Bytes(), ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}, nil
}

// GzipSize is the gzipped size of the JavaScript and CSS the browser
// downloads: what the app costs on the wire.
func (h *Handler) GzipSize() (js, css int) {
	for n, a := range h.assets {
		switch path.Ext(n) {
		case ".js":
			js += len(a.gz)
		case ".css":
			css += len(a.gz)
		}
	}
	return js, css
}

// SetHeaders puts the app's security headers on a response.
func SetHeaders(hdr http.Header) {
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SetHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" || p == "" || p == "/index.html" {
		// The page itself is revalidated on every load so a new version
		// is picked up at once; its assets are then immutable.
		w.Header().Set("Cache-Control", "no-cache")
		serve(w, r, h.index)
		return
	}
	rest, ok := strings.CutPrefix(p, "/v/"+h.Version+"/")
	a := h.assets[rest]
	if !ok || a == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	serve(w, r, a)
}

func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("Vary", "Accept-Encoding")
	hdr.Set("ETag", a.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		hdr.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// etagMatch applies RFC 9110 13.1.2 (weak comparison) to If-None-Match.
func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding (RFC 9110 12.5.3): gzip unless its
// q is 0.
func acceptsGzip(header string) bool {
	for t := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(t), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") || strings.TrimSpace(name) == "*" {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
