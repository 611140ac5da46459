package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The image proxy loads a remote image the user chose to see, so that the
// sender's server sees Basalt, never the reader: no cookie, no Referer, no
// client address goes with it. What comes back is served only if it is a
// raster image both by its Content-Type and by its bytes (SVG never), within
// a size and a time limit. Only public addresses are dialed: the check is
// on the address actually dialed (net.Dialer.Control), after DNS, so a name
// that resolves to a public address when looked at and to 127.0.0.1 when
// dialed (DNS rebinding) is still refused, and every redirect's hop is
// dialed, and so checked, the same way.

// blockedPrefixes are the ranges not routed on the public Internet, beyond
// what netip.Addr's predicates name (RFC 6890 and its updates).
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", RFC 791
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGN), RFC 6598
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments, RFC 6890
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1, RFC 5737
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking, RFC 2544
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast, deprecated (RFC 7526)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (RFC 6052): reaches IPv4 inside
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64, RFC 8215
	netip.MustParsePrefix("100::/64"),        // discard-only, RFC 6666
	netip.MustParsePrefix("2001:db8::/32"),   // documentation, RFC 3849
	netip.MustParsePrefix("2002::/16"),       // 6to4: wraps any IPv4, private ones too
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (RFC 2928): Teredo (wraps IPv4 too), ORCHID, benchmarking
	netip.MustParsePrefix("3fff::/20"),       // documentation, RFC 9637
	netip.MustParsePrefix("fec0::/10"),       // site-local, deprecated (RFC 3879)
}

// globalUnicast6 is the IPv6 global unicast space (RFC 4291 2.4): what lies
// outside it is loopback, unspecified, IPv4-compatible (::/96, ::7f00:1
// being 127.0.0.1, RFC 4291 2.5.5.1), IPv4-translated (::ffff:0:0:0/96,
// RFC 2765), discard, unique or link local, multicast, or unassigned;
// none of it is a public web server.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// publicAddr reports whether the image proxy may dial ip.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return false
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// errPrivateTarget refuses a dial to an address publicAddr does not allow.
var errPrivateTarget = errors.New("image proxy: target address not allowed")

// dialControl checks the address about to be dialed.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errPrivateTarget, address)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", errPrivateTarget, ap.Addr())
	}
	return nil
}

// maxImageFetches bounds the remote images being fetched at once, server
// wide: each holds up to ImageProxyMaxBytes in memory, and one message
// with a thousand images, loaded over HTTP/2, would otherwise ask for a
// thousand at once. maxSessionFetches bounds one session's share of them
// (what a browser fetches at once from one HTTP/1.1 host), so that a
// message whose images come slowly from a tarpit holds a few slots for
// the time limit, not all of them, for every user.
const (
	maxImageFetches   = 64
	maxSessionFetches = 6
)

// sessionSlots are one session's fetches under way.
type sessionSlots struct {
	ch    chan struct{}
	users int // holding or waiting for a slot; the entry goes at 0
}

// imageProxy fetches remote images.
type imageProxy struct {
	client   *http.Client
	maxBytes int64
	timeout  time.Duration
	// slots holds a token per fetch under way (maxImageFetches).
	slots chan struct{}
	// sessions holds each session's slots (maxSessionFetches).
	mu       sync.Mutex
	sessions map[string]*sessionSlots
}

// sessionSlot waits for one of the session's slots, within the time
// limit, and returns its release.
func (p *imageProxy) sessionSlot(ctx context.Context, key string) (func(), error) {
	p.mu.Lock()
	ss := p.sessions[key]
	if ss == nil {
		ss = &sessionSlots{ch: make(chan struct{}, maxSessionFetches)}
		p.sessions[key] = ss
	}
	ss.users++
	p.mu.Unlock()
	leave := func() {
		p.mu.Lock()
		if ss.users--; ss.users == 0 {
			delete(p.sessions, key)
		}
		p.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	select {
	case ss.ch <- struct{}{}:
		return func() { <-ss.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, fmt.Errorf("image proxy: session busy: %w", ctx.Err())
	}
}

func newImageProxy(cfg Config) *imageProxy {
	d := &net.Dialer{Timeout: cfg.ImageProxyTimeout}
	if !cfg.ImageProxyAllowPrivate {
		d.Control = dialControl
	}
	tr := &http.Transport{
		// Never through an environment proxy: its address is what would
		// be dialed and checked, not the target's.
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    cfg.ImageProxyTimeout,
		ResponseHeaderTimeout:  cfg.ImageProxyTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	maxRedirects := cfg.ImageProxyMaxRedirects
	return &imageProxy{
		slots:    make(chan struct{}, maxImageFetches),
		sessions: map[string]*sessionSlots{},
		maxBytes: cfg.ImageProxyMaxBytes,
		timeout:  cfg.ImageProxyTimeout,
		client: &http.Client{
			Transport: tr,
			// No Jar: no cookie is kept or sent.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > maxRedirects {
					return fmt.Errorf("image proxy: more than %d redirects", maxRedirects)
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("image proxy: redirect to scheme %q", req.URL.Scheme)
				}
				if req.URL.User != nil {
					return errUserinfo
				}
				// The client adds a Referer on redirects: it would tell
				// the next server where the image was.
				req.Header.Del("Referer")
				return nil
			},
		},
	}
}

// errNotImage refuses what is not a raster image.
var errNotImage = errors.New("image proxy: not a raster image")

// errUserinfo refuses a URL with credentials in it (RFC 3986 3.2.1
// deprecates them; RFC 9110 4.2.4 forbids them in http(s) URLs).
var errUserinfo = errors.New("image proxy: credentials in the URL")

// errImageTooLarge refuses an image over the size limit.
var errImageTooLarge = errors.New("image proxy: image too large")

// fetch loads one image: its bytes and the type they are.
func (p *imageProxy) fetch(ctx context.Context, remote string) ([]byte, string, error) {
	u, err := url.Parse(remote)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("image proxy: %w", errNotImage)
	}
	if u.User != nil {
		// The client would send it as Authorization (RFC 7617): a
		// sender's credentials, or a probe of someone's, from Basalt.
		return nil, "", errUserinfo
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	// Waiting for a slot counts toward the time limit.
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	case <-ctx.Done():
		return nil, "", fmt.Errorf("image proxy: busy: %w", ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("image proxy: %w", err)
	}
	// Only these: nothing of the reader's browser (cookies, Referer,
	// X-Forwarded-For, its User-Agent) goes along.
	req.Header.Set("User-Agent", "Basalt-ImageProxy/1")
	req.Header.Set("Accept", "image/avif,image/webp,image/png,image/jpeg,image/gif;q=0.9,*/*;q=0.1")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("image proxy: fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("image proxy: status %d", resp.StatusCode)
	}
	if !declaredImage(resp.Header.Get("Content-Type")) {
		return nil, "", errNotImage
	}
	if resp.ContentLength > p.maxBytes {
		return nil, "", errImageTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("image proxy: read: %w", err)
	}
	if int64(len(b)) > p.maxBytes {
		return nil, "", errImageTooLarge
	}
	ctype := sniffImage(b)
	if ctype == "" {
		return nil, "", errNotImage
	}
	return b, ctype, nil
}

// serveImage is GET /rpc/image?u=..: a remote image through the proxy,
// for its capability URL.
func (h *Handler) serveImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	remote := q.Get("u")
	if _, err := h.checkCapability(ctx, q, "image", remote); err != nil {
		h.capError(w, err)
		return
	}
	release, err := h.images.sessionSlot(ctx, q.Get("s"))
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	b, ctype, err := h.images.fetch(ctx, remote)
	release()
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		switch {
		case errors.Is(err, errNotImage):
			http.Error(w, "not an image", http.StatusUnsupportedMediaType)
		case errors.Is(err, errImageTooLarge):
			http.Error(w, "image too large", http.StatusBadGateway)
		default:
			// The remote's failure, not the server's: not logged as an
			// error, and its address is not told to the frame.
			h.log.Debug("image proxy", "err", err)
			http.Error(w, "image unavailable", http.StatusBadGateway)
		}
		return
	}
	exp, _ := strconv.ParseInt(q.Get("e"), 10, 64)
	imageHeaders(w, ctype, exp-h.now().Unix())
	w.Write(b)
}
