package rpc

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// imageServer is a remote web server on loopback that serves a PNG at
// /img.png and records the headers of what it was asked.
type imageServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newImageServer(t *testing.T) *imageServer {
	s := &imageServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Header.Clone())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.seen...)
}

// imageMessage is an HTML message with an inline cid: image and a remote
// one at remote.
func imageMessage(from, remote string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: <%s>
To: a@example.org
Subject: pictures
Date: Mon, 02 Nov 2026 10:00:00 +0000
Message-ID: <img-%d@example.com>
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<p>Look</p><img src="cid:logo@example.com"><img src="%s"><div style="position:fixed;top:0">x</div>
--rel
Content-Type: image/png
Content-ID: <logo@example.com>
Content-Transfer-Encoding: base64

%s
--rel--
`, from, time.Now().UnixNano(), remote, base64.StdEncoding.EncodeToString(pngBytes)), "\n", "\r\n"))
}

// imgSrcs returns the src of every img in an HTML document.
func imgSrcs(t *testing.T, doc string) []string {
	t.Helper()
	root, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "img" {
			for _, a := range n.Attr {
				if a.Key == "src" && a.Val != "" {
					out = append(out, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return out
}

// anon fetches a URL as the sandboxed frame does: no cookie.
func anon(t *testing.T, fx *fixture, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", fx.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Site", "cross-site") // an opaque origin's request
	resp, err := fx.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestFrame: messages.load names the reading pane's document; it is a
// whole page with its own CSP and headers, its remote images blocked
// (and counted) by default; its cid: image is a signed URL that works
// without a cookie, for that part only, for that session only, until it
// expires or the session ends.
func TestFrame(t *testing.T) {
	remote := newImageServer(t)
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{ImageProxyAllowPrivate: true}})
	c, auth := fx.user(t, "a@example.org", false)
	remoteURL := remote.URL + "/img.png?u=1"
	res := fx.deliver(t, auth, imageMessage("news@example.com", remoteURL))
	id := msgRef{res.MailboxID, res.UID}.id()

	var ld loadResult
	c.must("messages.load", map[string]any{"messageID": id}, &ld)
	if ld.BodyURL != "/rpc/frame/"+id || ld.RemoteImages != 1 || ld.ImagesShown {
		t.Fatalf("load: bodyURL %q remoteImages %d shown %v", ld.BodyURL, ld.RemoteImages, ld.ImagesShown)
	}
	resp, body := c.get(ld.BodyURL, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("frame: %d %s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'unsafe-inline'", "frame-ancestors 'self'", "sandbox", "img-src data: " + fx.srv.URL + "/rpc/inline/;"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "allow-scripts") || strings.Contains(csp, "allow-same-origin") || strings.Contains(csp, "/rpc/image") {
		t.Errorf("CSP %q allows too much", csp)
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Content-Type": "text/html; charset=utf-8"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("Cache-Control %q", cc)
	}
	doc := string(body)
	if !strings.HasPrefix(doc, "<!DOCTYPE html>") || strings.Contains(doc, remote.URL) || strings.Contains(doc, "position") {
		t.Fatalf("frame document:\n%s", doc)
	}
	srcs := imgSrcs(t, doc)
	if len(srcs) != 1 || !strings.HasPrefix(srcs[0], "/rpc/inline/"+id+"/2?") {
		t.Fatalf("img srcs %q", srcs)
	}
	inline := srcs[0]

	// Without a cookie, as the sandboxed frame loads it.
	resp, img := anon(t, fx, inline)
	if resp.StatusCode != 200 || string(img) != string(pngBytes) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cross-Origin-Resource-Policy") != "" {
		t.Fatalf("inline image: %d %v %q", resp.StatusCode, resp.Header, img)
	}
	if n := len(remote.requests()); n != 0 {
		t.Fatalf("the remote server was asked %d times before consent", n)
	}

	u := mustParse(t, inline)
	q := u.Query()
	forged := func(mod func(q url.Values), path string) int {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = append([]string(nil), v...)
		}
		mod(qq)
		resp, _ := anon(t, fx, path+"?"+qq.Encode())
		return resp.StatusCode
	}
	sid := q.Get("s")
	_, key, err := fx.env.Session.WebCapability(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	past := fx.h.now().Add(-time.Minute).Unix()
	for name, tc := range map[string]struct {
		mod  func(q url.Values)
		path string
	}{
		"bad signature": {func(q url.Values) { q.Set("sig", strings.Repeat("A", 43)) }, u.Path},
		"no signature":  {func(q url.Values) { q.Del("sig") }, u.Path},
		"other part":    {func(q url.Values) {}, "/rpc/inline/" + id + "/1"},
		"other message": {func(q url.Values) {}, "/rpc/inline/" + msgRef{res.MailboxID, res.UID + 1}.id() + "/2"},
		"later expiry":  {func(q url.Values) { q.Set("e", strconv.FormatInt(mustInt(t, q.Get("e"))+600, 10)) }, u.Path},
		"expired": {func(q url.Values) {
			q.Set("e", strconv.FormatInt(past, 10))
			q.Set("sig", capSign(key, "inline", sid, past, id, "2"))
		}, u.Path},
		"as image proxy": {func(q url.Values) { q.Set("u", remoteURL) }, "/rpc/image"},
	} {
		if got := forged(tc.mod, tc.path); got != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403", name, got)
		}
	}

	// Another session (another user) cannot use its own key for this
	// message, nor its signature with this session's id.
	o, oauth := fx.user(t, "o@example.org", false)
	ores := fx.deliver(t, oauth, imageMessage("news@example.com", remoteURL))
	oid := msgRef{ores.MailboxID, ores.UID}.id()
	var old loadResult
	o.must("messages.load", map[string]any{"messageID": oid}, &old)
	_, obody := o.get(old.BodyURL, nil)
	osrc := imgSrcs(t, string(obody))
	if len(osrc) != 1 {
		t.Fatalf("other frame: %s", obody)
	}
	ou := mustParse(t, osrc[0])
	oq := ou.Query()
	if resp, _ := anon(t, fx, osrc[0]); resp.StatusCode != 200 {
		t.Fatalf("other user's own inline URL: %d", resp.StatusCode)
	}
	swap := url.Values{"s": {sid}, "e": oq["e"], "sig": oq["sig"]}
	if resp, _ := anon(t, fx, ou.Path+"?"+swap.Encode()); resp.StatusCode != 403 {
		t.Errorf("other session's signature with this session's id: %d", resp.StatusCode)
	}
	// The other user signs for this user's message under its own session.
	mine := url.Values{"s": oq["s"], "e": oq["e"], "sig": oq["sig"]}
	if resp, _ := anon(t, fx, "/rpc/inline/"+id+"/2?"+mine.Encode()); resp.StatusCode != 403 {
		t.Errorf("other session's URL for this message: %d", resp.StatusCode)
	}

	// Shown for this message: through the proxy, which forwards nothing
	// of the reader.
	c.must("messages.load", map[string]any{"messageID": id, "images": "show"}, &ld)
	if ld.BodyURL != "/rpc/frame/"+id+"?images=show" || ld.RemoteImages != 0 || !ld.ImagesShown {
		t.Fatalf("load show: %+v", ld)
	}
	resp, body = c.get(ld.BodyURL, map[string]string{"Referer": fx.srv.URL + "/mail/", "X-Forwarded-For": "198.51.100.7"})
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), fx.srv.URL+"/rpc/image") || strings.Contains(string(body), remote.URL) {
		t.Fatalf("frame with images: %v\n%s", resp.Header, body)
	}
	srcs = imgSrcs(t, string(body))
	if len(srcs) != 2 || !strings.HasPrefix(srcs[1], "/rpc/image?") || mustParse(t, srcs[1]).Query().Get("u") != remoteURL {
		t.Fatalf("srcs %q", srcs)
	}
	resp, img = anon(t, fx, srcs[1])
	if resp.StatusCode != 200 || string(img) != string(pngBytes) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("proxied image: %d %q", resp.StatusCode, img)
	}
	seen := remote.requests()
	if len(seen) != 1 {
		t.Fatalf("remote asked %d times", len(seen))
	}
	for _, k := range []string{"Cookie", "Referer", "X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if v := seen[0].Get(k); v != "" {
			t.Errorf("the remote server got %s: %q", k, v)
		}
	}
	// The proxy URL is for that remote URL only.
	pu := mustParse(t, srcs[1])
	pq := pu.Query()
	pq.Set("u", remote.URL+"/img.png?u=2")
	if resp, _ := anon(t, fx, "/rpc/image?"+pq.Encode()); resp.StatusCode != 403 {
		t.Errorf("proxy URL for another remote URL: %d", resp.StatusCode)
	}

	// After logout, nothing signed by the session works.
	c.must("logout", nil, nil)
	for _, p := range []string{inline, srcs[1]} {
		if resp, _ := anon(t, fx, p); resp.StatusCode != 403 {
			t.Errorf("%s after logout: %d", p, resp.StatusCode)
		}
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLinkify: plain text becomes escaped text with its http, https and
// mailto URLs linked, opening outside without a Referer.
func TestLinkify(t *testing.T) {
	const attrs = `" rel="noopener noreferrer" target="_blank">`
	for _, tc := range []struct{ in, want string }{
		{"see https://example.org/a?b=1&c=2.", `see <a href="https://example.org/a?b=1&amp;c=2` + attrs + `https://example.org/a?b=1&amp;c=2</a>.`},
		{"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"javascript:alert(1) data:text/html,<b>x</b> vbscript:x file:///etc/passwd", "javascript:alert(1) data:text/html,&lt;b&gt;x&lt;/b&gt; vbscript:x file:///etc/passwd"},
		{"(http://example.org/wiki/Foo_(bar)) and (https://example.org/x)", `(<a href="http://example.org/wiki/Foo_(bar)` + attrs + `http://example.org/wiki/Foo_(bar)</a>) and (<a href="https://example.org/x` + attrs + `https://example.org/x</a>)`},
		{`https://example.org/"onmouseover="alert(1)`, `<a href="https://example.org/` + attrs + `https://example.org/</a>&#34;onmouseover=&#34;alert(1)`},
		{"mail mailto:a@example.org?subject=hi, now", `mail <a href="mailto:a@example.org?subject=hi` + attrs + `mailto:a@example.org?subject=hi</a>, now`},
		{"HTTPS://EXAMPLE.ORG/X", `<a href="https://EXAMPLE.ORG/X` + attrs + `HTTPS://EXAMPLE.ORG/X</a>`},
		{"http:// nothing", "http:// nothing"},
		{"https://a.example/'><img src=x>", `<a href="https://a.example/` + attrs + `https://a.example/</a>&#39;&gt;&lt;img src=x&gt;`},
	} {
		if got := linkify(tc.in); got != tc.want {
			t.Errorf("linkify(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// TestFramePlainText: a plain-text body's frame is the text, escaped, with
// its links, and loads no image at all.
func TestFramePlainText(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "a@example.org", false)
	raw := "From: <b@example.com>\r\nTo: a@example.org\r\nSubject: text\r\nMessage-ID: <t@example.com>\r\n\r\n" +
		"<img src=https://tracker.example/t.gif> read https://example.org/?a=1&b=2 or javascript:alert(1)\r\n"
	res := fx.deliver(t, auth, []byte(raw))
	var ld loadResult
	c.must("messages.load", map[string]any{"messageID": msgRef{res.MailboxID, res.UID}.id()}, &ld)
	resp, body := c.get(ld.BodyURL, nil)
	doc := string(body)
	if resp.StatusCode != 200 || !strings.Contains(doc, `&lt;img src=<a href="https://tracker.example/t.gif" rel="noopener noreferrer" target="_blank">https://tracker.example/t.gif</a>&gt;`) ||
		!strings.Contains(doc, `<a href="https://example.org/?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">`) ||
		strings.Contains(doc, `href="javascript`) || len(imgSrcs(t, doc)) != 0 {
		t.Fatalf("%d\n%s", resp.StatusCode, doc)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src data:;") {
		t.Fatalf("CSP %q", csp)
	}
}

// TestImagePolicy: the remote-image policy and the sender list decide
// what messages.load's frame shows when the call does not say.
func TestImagePolicy(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "a@example.org", false)
	res := fx.deliver(t, auth, imageMessage("News@Example.com", "https://tracker.example/p.gif"))
	id := msgRef{res.MailboxID, res.UID}.id()
	shown := func(params map[string]any) (bool, int) {
		t.Helper()
		params["messageID"] = id
		var ld loadResult
		c.must("messages.load", params, &ld)
		return ld.ImagesShown, ld.RemoteImages
	}
	var ir imagesResult
	c.must("settings.images", map[string]any{}, &ir)
	if ir.Policy != "ask" || len(ir.Senders) != 0 {
		t.Fatalf("defaults: %+v", ir)
	}
	if s, n := shown(map[string]any{}); s || n != 1 {
		t.Fatalf("ask, not listed: shown %v blocked %d", s, n)
	}
	c.must("settings.images", map[string]any{"addSenders": []string{"Newsletter <news@EXAMPLE.com>", "b@example.net"}}, &ir)
	if ir.Policy != "ask" || strings.Join(ir.Senders, ",") != "news@example.com,b@example.net" {
		t.Fatalf("added: %+v", ir)
	}
	if s, n := shown(map[string]any{}); !s || n != 0 {
		t.Fatalf("ask, listed: shown %v blocked %d", s, n)
	}
	if s, n := shown(map[string]any{"images": "block"}); s || n != 1 {
		t.Fatalf("block asked: shown %v blocked %d", s, n)
	}
	c.must("settings.images", map[string]any{"policy": "never"}, &ir)
	if s, _ := shown(map[string]any{}); s {
		t.Fatal("never: shown for a listed sender")
	}
	if s, _ := shown(map[string]any{"images": "show"}); !s {
		t.Fatal("never: not shown when asked for this message")
	}
	c.must("settings.images", map[string]any{"policy": "always", "removeSenders": []string{"NEWS@example.com"}}, &ir)
	if ir.Policy != "always" || strings.Join(ir.Senders, ",") != "b@example.net" {
		t.Fatalf("removed: %+v", ir)
	}
	if s, _ := shown(map[string]any{}); !s {
		t.Fatal("always: not shown")
	}
	c.fail("settings.images", map[string]any{"policy": "sometimes"}, CodeInvalidParams, "")
	c.fail("settings.images", map[string]any{"addSenders": []string{"not an address"}}, CodeInvalid, "invalid")
}

// TestFrameSecure: a secure user's mail cannot be opened by a request
// without the cookie, so the frame carries its cid: images itself, as
// data: URLs of the sniffed raster type, and no capability URL.
func TestFrameSecure(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "s@example.org", true)
	res := fx.deliver(t, auth, imageMessage("news@example.com", "https://tracker.example/p.gif"))
	var ld loadResult
	c.must("messages.load", map[string]any{"messageID": msgRef{res.MailboxID, res.UID}.id()}, &ld)
	resp, body := c.get(ld.BodyURL, nil)
	srcs := imgSrcs(t, string(body))
	want := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngBytes)
	if resp.StatusCode != 200 || len(srcs) != 1 || srcs[0] != want || strings.Contains(string(body), "/rpc/inline/") || ld.RemoteImages != 1 {
		t.Fatalf("%d %q\n%s", resp.StatusCode, srcs, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src data:;") {
		t.Fatalf("CSP %q", csp)
	}
}

// TestLinkifyLinear: a URL followed by half a megabyte of closing brackets (or
// of punctuation) is linked in linear time, not quadratic.
func TestLinkifyLinear(t *testing.T) {
	for _, tail := range []string{")", "]", ".", ").", "}"} {
		text := "see http://example.org/a" + strings.Repeat(tail, (512<<10)/len(tail))
		start := time.Now()
		out := linkify(text)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("tail %q: %v for 512 KiB", tail, d)
		}
		if !strings.Contains(out, `<a href="http://example.org/a" `) {
			t.Errorf("tail %q: link not trimmed: %.200s", tail, out)
		}
	}
}

// TestInlineReadsPart: an inline image is read alone, not with the whole
// message: a frame asks for all its cid: images at once, and reading a
// large message whole for each took its size times their number.
func TestInlineReadsPart(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "a@example.org", false)
	filler := strings.Repeat(strings.Repeat("f", 76)+"\r\n", (8<<20)/78)
	raw := strings.ReplaceAll(`From: <news@example.com>
To: a@example.org
Subject: big
Date: Mon, 02 Nov 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<img src="cid:logo@example.com">
--rel
Content-Type: text/plain

FILLER
--rel
Content-Type: image/png
Content-ID: <logo@example.com>
Content-Transfer-Encoding: base64

`+base64.StdEncoding.EncodeToString(pngBytes)+`
--rel--
`, "\n", "\r\n")
	raw = strings.Replace(raw, "FILLER\r\n", filler, 1)
	res := fx.deliver(t, auth, []byte(raw))
	id := msgRef{res.MailboxID, res.UID}.id()
	var ld loadResult
	c.must("messages.load", map[string]any{"messageID": id}, &ld)
	_, body := c.get(ld.BodyURL, nil)
	srcs := imgSrcs(t, string(body))
	if len(srcs) != 1 {
		t.Fatalf("srcs %q", srcs)
	}
	anon(t, fx, srcs[0]) // warm
	// The least of a few tries: other tests' goroutines may still be
	// allocating while one is measured.
	least := uint64(1 << 62)
	for range 5 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		resp, img := anon(t, fx, srcs[0])
		runtime.ReadMemStats(&after)
		if resp.StatusCode != 200 || string(img) != string(pngBytes) {
			t.Fatalf("inline: %d %q", resp.StatusCode, img)
		}
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > 4<<20 {
		t.Errorf("serving a %d-byte image of an 8 MiB message allocated %d bytes", len(pngBytes), least)
	}
}
