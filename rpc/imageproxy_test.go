package rpc

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPublicAddr: the addresses the image proxy may dial.
func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"93.184.216.34", true},
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.1.2.3", false},
		{"10.0.0.1", false},
		{"172.16.5.4", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata, link-local
		{"fe80::1", false},
		{"fc00::1", false}, // unique local
		{"fd12:3456::1", false},
		{"224.0.0.1", false}, // multicast
		{"ff02::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"0.1.2.3", false},
		{"100.64.0.1", false}, // CGN
		{"255.255.255.255", false},
		{"198.18.0.1", false},
		{"64:ff9b::7f00:1", false}, // NAT64 of 127.0.0.1
		{"2002:7f00:1::", false},   // 6to4 of 127.0.0.1
		{"fec0::1", false},
		{"::7f00:1", false},           // IPv4-compatible 127.0.0.1 (RFC 4291 2.5.5.1)
		{"::a00:1", false},            // IPv4-compatible 10.0.0.1
		{"::ffff:0:7f00:1", false},    // IPv4-translated 127.0.0.1 (RFC 2765)
		{"::ffff:0:a9fe:a9fe", false}, // IPv4-translated metadata address
		{"2001:10::1", false},         // ORCHID
		{"2001:2::1", false},          // benchmarking (RFC 5180)
		{"3fff::1", false},            // documentation (RFC 9637)
		{"5f00::1", false},            // outside global unicast
		{"192.88.99.1", false},        // 6to4 relay anycast
	} {
		if got := publicAddr(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("publicAddr(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if err := dialControl("tcp", "127.0.0.1:80", nil); !errors.Is(err, errPrivateTarget) {
		t.Errorf("dialControl loopback: %v", err)
	}
	if err := dialControl("tcp", "[2606:4700:4700::1111]:443", nil); err != nil {
		t.Errorf("dialControl public: %v", err)
	}
}

// TestImageProxyPrivateRefused: without image_proxy_allow_private, a
// loopback server is not reached, by address or by a name that resolves
// to it: the dialed address is what is checked.
func TestImageProxyPrivateRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p := newImageProxy(Config{}.withDefaults())
	for _, u := range []string{srv.URL + "/a.png", "http://localhost:" + port + "/a.png", "http://[::ffff:127.0.0.1]:" + port + "/a.png"} {
		if _, _, err := p.fetch(context.Background(), u); !errors.Is(err, errPrivateTarget) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	// IPv4 written as one number, in octal or hex, or short: Go does not
	// take them as addresses, a C resolver may (inet_aton); either way
	// what would be dialed is 127.0.0.1, and nothing reaches it.
	for _, host := range []string{"2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "0", "0.0.0.0", "[::]", "[::ffff:7f00:1]", "[::7f00:1]"} {
		if _, _, err := p.fetch(context.Background(), "http://"+host+":"+port+"/a.png"); err == nil {
			t.Errorf("%s: fetched", host)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times", n)
	}
}

// TestImageProxy: against a real server on loopback (allowed for the
// test): image types only, by header and by bytes, SVG never, sizes and
// times bounded, redirects bounded and stripped of Referer.
func TestImageProxy(t *testing.T) {
	big := append(append([]byte{}, pngBytes...), make([]byte, 2048)...)
	mux := http.NewServeMux()
	serve := func(path, ctype string, body []byte) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Write(body)
		})
	}
	serve("/ok.png", "image/png", pngBytes)
	serve("/gif", "image/gif; charset=binary", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	serve("/svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	serve("/svg-as-png", "image/png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`))
	serve("/html-as-png", "image/png", []byte(`<html><script>alert(1)</script></html>`))
	serve("/png-as-html", "text/html", pngBytes)
	serve("/big.png", "image/png", big)
	mux.HandleFunc("/chunked-big.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(big[:100])
		w.(http.Flusher).Flush()
		w.Write(big[100:])
	})
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	// A slowloris answer: headers at once, then a byte now and then; the
	// time limit covers the body too.
	mux.HandleFunc("/trickle.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		for i := range 40 {
			w.Write(big[i : i+1])
			w.(http.Flusher).Flush()
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/404.png", http.NotFound)
	var mu sync.Mutex
	var referers []string
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		referers = append(referers, r.Header.Get("Referer"))
		mu.Unlock()
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if n == 0 {
			http.Redirect(w, r, "/ok.png", http.StatusFound)
			return
		}
		http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p := newImageProxy(Config{ImageProxyAllowPrivate: true, ImageProxyMaxBytes: 1024, ImageProxyTimeout: 300 * time.Millisecond}.withDefaults())
	for _, tc := range []struct {
		path  string
		ctype string // "" refused
		err   error
	}{
		{"/ok.png", "image/png", nil},
		{"/gif", "image/gif", nil},
		{"/svg", "", errNotImage},
		{"/svg-as-png", "", errNotImage},
		{"/html-as-png", "", errNotImage},
		{"/png-as-html", "", errNotImage},
		{"/big.png", "", errImageTooLarge},
		{"/chunked-big.png", "", errImageTooLarge},
		{"/slow.png", "", context.DeadlineExceeded},
		{"/trickle.png", "", nil},
		{"/404.png", "", nil},
		{"/hop/2", "image/png", nil}, // three redirects: allowed
		{"/hop/3", "", nil},          // four: refused
		{"/to-file", "", nil},
	} {
		b, ctype, err := p.fetch(context.Background(), srv.URL+tc.path)
		if ctype != tc.ctype || (tc.ctype != "" && (err != nil || len(b) == 0)) || (tc.ctype == "" && err == nil) {
			t.Errorf("%s: type %q err %v, want %q", tc.path, ctype, err, tc.ctype)
		}
		if tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.path, err, tc.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range referers {
		if r != "" {
			t.Errorf("a redirect hop got Referer %q", r)
		}
	}
	if _, _, err := p.fetch(context.Background(), "javascript:alert(1)"); err == nil {
		t.Error("fetched a javascript: URL")
	}
}

// TestImageProxyUserinfo: credentials in an image's URL, or in a
// redirect's, are refused, never sent as Authorization.
func TestImageProxyUserinfo(t *testing.T) {
	var auths atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok.png", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			auths.Add(1)
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes)
	})
	var self string
	mux.HandleFunc("/to-userinfo", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(self, "http://", "http://admin:secret@", 1)+"/ok.png", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	self = srv.URL
	p := newImageProxy(Config{ImageProxyAllowPrivate: true}.withDefaults())
	for _, u := range []string{strings.Replace(srv.URL, "http://", "http://admin:secret@", 1) + "/ok.png", srv.URL + "/to-userinfo"} {
		if _, _, err := p.fetch(context.Background(), u); !errors.Is(err, errUserinfo) {
			t.Errorf("%s: %v, want refused for its credentials", u, err)
		}
	}
	if n := auths.Load(); n != 0 {
		t.Errorf("credentials sent %d times", n)
	}
	if _, _, err := p.fetch(context.Background(), srv.URL+"/ok.png"); err != nil {
		t.Errorf("plain URL: %v", err)
	}
}

// TestImageProxyBounded: however many images are asked for at once, at
// most maxImageFetches are fetched (and held in memory) at a time; the
// others wait their turn within the time limit.
func TestImageProxyBounded(t *testing.T) {
	var inflight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes)
	}))
	defer srv.Close()
	p := newImageProxy(Config{ImageProxyAllowPrivate: true, ImageProxyTimeout: 20 * time.Second}.withDefaults())
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 3 * maxImageFetches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := p.fetch(context.Background(), srv.URL+"/i"+strconv.Itoa(i)+".png"); err != nil {
				failed.Add(1)
				t.Log(err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d fetches failed", n)
	}
	if n := peak.Load(); n > maxImageFetches || n < 2 {
		t.Errorf("%d fetches at once, want 2..%d", n, maxImageFetches)
	}
	// One waiting past its time limit gives up.
	for range maxImageFetches {
		p.slots <- struct{}{}
	}
	short := newImageProxy(Config{ImageProxyAllowPrivate: true, ImageProxyTimeout: 50 * time.Millisecond}.withDefaults())
	short.slots = p.slots
	if _, _, err := short.fetch(context.Background(), srv.URL+"/x.png"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no slot free: %v", err)
	}
}

// TestImageProxyIgnoresEnvProxy: HTTP_PROXY and HTTPS_PROXY are not used:
// the proxy's address is what would be dialed and checked, not the
// image's, and the images would leave by a path no one chose for them.
func TestImageProxyIgnoresEnvProxy(t *testing.T) {
	var hits atomic.Int32
	envProxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes)
	}))
	defer envProxy.Close()
	t.Setenv("HTTP_PROXY", envProxy.URL)
	t.Setenv("HTTPS_PROXY", envProxy.URL)
	t.Setenv("NO_PROXY", "")
	p := newImageProxy(Config{ImageProxyAllowPrivate: true, ImageProxyTimeout: 2 * time.Second}.withDefaults())
	if _, _, err := p.fetch(context.Background(), "http://images.invalid/x.png"); err == nil {
		t.Error("fetched an image of a name that does not resolve")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the environment's proxy was used %d times", n)
	}
}

// TestImageProxyBombs: a gzip bomb is cut at the size limit as it is
// inflated, and a response whose headers alone are huge is refused.
func TestImageProxyBombs(t *testing.T) {
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(pngBytes)
	zw.Write(make([]byte, 16<<20))
	zw.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/bomb.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	})
	mux.HandleFunc("/headers.png", func(w http.ResponseWriter, r *http.Request) {
		for i := range 200 {
			w.Header().Set("X-Pad-"+strconv.Itoa(i), strings.Repeat("p", 1000))
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p := newImageProxy(Config{ImageProxyAllowPrivate: true, ImageProxyMaxBytes: 1 << 20}.withDefaults())
	if _, _, err := p.fetch(context.Background(), srv.URL+"/bomb.png"); !errors.Is(err, errImageTooLarge) {
		t.Errorf("gzip bomb: %v, want too large", err)
	}
	if _, _, err := p.fetch(context.Background(), srv.URL+"/headers.png"); err == nil {
		t.Error("200 KB of headers accepted")
	}
}

// TestImageProxySessionSlots: one session fetches at most
// maxSessionFetches images at once; others are not held up by it, and a
// session's entry goes when its last fetch does.
func TestImageProxySessionSlots(t *testing.T) {
	p := newImageProxy(Config{ImageProxyTimeout: 50 * time.Millisecond}.withDefaults())
	ctx := context.Background()
	var held []func()
	for range maxSessionFetches {
		release, err := p.sessionSlot(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	if _, err := p.sessionSlot(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("one more for the session: %v", err)
	}
	rb, err := p.sessionSlot(ctx, "b")
	if err != nil {
		t.Fatalf("another session: %v", err)
	}
	rb()
	held[0]()
	ra, err := p.sessionSlot(ctx, "a")
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	ra()
	for _, r := range held[1:] {
		r()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sessions) != 0 {
		t.Errorf("%d sessions left", len(p.sessions))
	}
}
