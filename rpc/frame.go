package rpc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"basalt/message"
	"basalt/session"
	"basalt/store"
)

// The reading pane's document. The app shows a message's body in an
// <iframe sandbox> (no allow-scripts, no allow-same-origin) whose src is
// messages.load's bodyURL, GET /rpc/frame/{messageID}: a whole HTML
// document with its own Content-Security-Policy, so that even if the
// sanitizer let something through, the frame runs no script, loads
// nothing but the images allowed, submits no form and cannot be framed by
// another site.
//
// A sandboxed frame has an opaque origin: the images its document loads
// go out as cross-site requests, without the SameSite session cookie.
// They are therefore capability URLs, each signed (HMAC-SHA256) with the
// session's own key (session.Web.CapKey) for one message's part or one
// remote URL, until an expiry; the key dies with the session, so a URL
// stops working at logout or expiry, and one session's URL is nothing to
// another's:
//
//	GET /rpc/inline/{messageID}/{part}?s=<session id>&e=<unix expiry>&sig=<mac>
//	GET /rpc/image?u=<remote URL>&s=<session id>&e=<unix expiry>&sig=<mac>
//
// A secure user's mail cannot be opened without the key the cookie
// unseals, so its cid: images are written into the document as data: URLs
// instead (raster types, bounded).

// imagePolicy is the remote-image policy setting.
type imagePolicy string

const (
	// imagesNever blocks remote images unless the user asks for them
	// message by message (the sender list is not used).
	imagesNever imagePolicy = "never"
	// imagesAsk blocks them unless the sender is on the user's list.
	imagesAsk imagePolicy = "ask"
	// imagesAlways shows them (through the proxy) for every message.
	imagesAlways imagePolicy = "always"
)

const (
	settingImagePolicy  = "images.policy"
	settingImageSenders = "images.senders"
	maxImageSenders     = 250
	// maxInlineData bounds the cid: images a secure user's document
	// carries as data: URLs, each and together.
	maxInlineData      = 2 << 20
	maxInlineDataTotal = 8 << 20
)

// imagePrefs are the user's remote-image settings.
type imagePrefs struct {
	Policy  imagePolicy
	Senders []string
}

func loadImagePrefs(kv map[string]string) imagePrefs {
	p := imagePrefs{Policy: imagePolicy(kv[settingImagePolicy]), Senders: []string{}}
	if p.Policy != imagesNever && p.Policy != imagesAlways {
		p.Policy = imagesAsk
	}
	for _, a := range strings.Split(kv[settingImageSenders], "\n") {
		if a = strings.TrimSpace(a); a != "" {
			p.Senders = append(p.Senders, a)
		}
	}
	return p
}

// sender returns the message's From address, lower-cased ("" if none).
func sender(info *message.Info) string {
	for _, a := range info.Envelope.From {
		if !a.IsGroupStart() && a.Mailbox != "" && a.Host != "" {
			return strings.ToLower(a.Mailbox + "@" + a.Host)
		}
	}
	return ""
}

// showImages decides whether a message's remote images are shown: asked
// "show" or "block" for this message wins; otherwise the policy, and
// under "ask" the list of senders whose images are always shown.
func (h *Handler) showImages(ctx context.Context, a *store.Account, info *message.Info, asked string) (bool, error) {
	switch asked {
	case "show":
		return true, nil
	case "block":
		return false, nil
	}
	kv, err := settingsOf(ctx, a)
	if err != nil {
		return false, err
	}
	p := loadImagePrefs(kv)
	switch p.Policy {
	case imagesAlways:
		return true, nil
	case imagesNever:
		return false, nil
	}
	from := sender(info)
	return from != "" && slices.Contains(p.Senders, from), nil
}

// capability signs what a capability URL grants.
func capSign(key []byte, kind, sessionID string, exp int64, what ...string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("basalt " + kind + "\x00" + sessionID + "\x00" + strconv.FormatInt(exp, 10)))
	for _, w := range what {
		m.Write([]byte{0})
		m.Write([]byte(w))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// capExpiry is when URLs signed now expire: the TTL from now, rounded up
// to a tenth of it, so that the same image has the same URL for a while
// and the browser's cache serves it.
func (h *Handler) capExpiry() int64 {
	step := int64(h.cfg.CapabilityTTL/time.Second) / 10
	if step < 1 {
		step = 1
	}
	t := h.now().Add(h.cfg.CapabilityTTL).Unix()
	return (t/step + 1) * step
}

// inlineURL is the capability URL of one part of one message.
func (h *Handler) inlineURL(web *session.Web, exp int64, messageID, part string) string {
	q := url.Values{"s": {web.ID}, "e": {strconv.FormatInt(exp, 10)}, "sig": {capSign(web.CapKey, "inline", web.ID, exp, messageID, part)}}
	return h.cfg.BasePath + "/inline/" + url.PathEscape(messageID) + "/" + url.PathEscape(part) + "?" + q.Encode()
}

// imageURL is the capability URL of one remote image, through the proxy.
func (h *Handler) imageURL(web *session.Web, exp int64, remote string) string {
	q := url.Values{"u": {remote}, "s": {web.ID}, "e": {strconv.FormatInt(exp, 10)}, "sig": {capSign(web.CapKey, "image", web.ID, exp, remote)}}
	return h.cfg.BasePath + "/image?" + q.Encode()
}

// errCapability refuses a capability URL: forged, for something else,
// expired, or of a session that ended.
var errCapability = errors.New("capability refused")

// checkCapability verifies a capability URL's query for what it names and
// returns the session's user; it also counts the load against the
// session's rate.
func (h *Handler) checkCapability(ctx context.Context, q url.Values, kind string, what ...string) (int64, error) {
	sid, sig := q.Get("s"), q.Get("sig")
	exp, err := strconv.ParseInt(q.Get("e"), 10, 64)
	if err != nil || sid == "" || sig == "" || h.now().Unix() >= exp {
		return 0, errCapability
	}
	userID, key, err := h.sess.WebCapability(ctx, sid)
	if errors.Is(err, session.ErrNoSession) {
		return 0, errCapability
	}
	if err != nil {
		return 0, err
	}
	if !hmac.Equal([]byte(sig), []byte(capSign(key, kind, sid, exp, what...))) {
		return 0, errCapability
	}
	if err := h.rate(ctx, sid); err != nil {
		return 0, err
	}
	return userID, nil
}

// capError answers a refused capability request.
func (h *Handler) capError(w http.ResponseWriter, err error) {
	w.Header().Set("Cache-Control", "no-store")
	switch e := asError(err); {
	case errors.Is(err, errCapability):
		http.Error(w, "forbidden", http.StatusForbidden)
	case e.Code == CodeRateLimited:
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	case e.Code == CodeNotFound, errors.Is(err, message.ErrNoPart), errors.Is(err, message.ErrBadPath):
		http.Error(w, "not found", http.StatusNotFound)
	case e.Code == CodeUnavailable:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	default:
		h.log.Error("capability request", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// imageHeaders are the headers of an image served to the frame. No
// Cross-Origin-Resource-Policy: the sandboxed frame's opaque origin would
// be refused by "same-origin", and the signature is what guards it.
func imageHeaders(w http.ResponseWriter, ctype string, maxAge int64) {
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Disposition", "inline")
	if maxAge < 0 {
		maxAge = 0
	}
	hdr.Set("Cache-Control", fmt.Sprintf("private, max-age=%d", maxAge))
}

// rasterTypes are the image types served to the frame, as
// http.DetectContentType names them. SVG is not one: it is a document
// that can hold script.
var rasterTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/x-icon", "image/avif"}

// sniffImage returns the raster type the bytes are, or "".
func sniffImage(b []byte) string {
	t := http.DetectContentType(b)
	if slices.Contains(rasterTypes, t) {
		return t
	}
	// DetectContentType does not know AVIF (ISO BMFF, brand avif/avis).
	if len(b) >= 12 && string(b[4:8]) == "ftyp" && (string(b[8:12]) == "avif" || string(b[8:12]) == "avis") {
		return "image/avif"
	}
	return ""
}

// declaredImage reports whether a declared Content-Type is a raster image.
func declaredImage(ctype string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(ctype)), ";")
	mt = strings.TrimSpace(mt)
	switch mt {
	case "image/jpg", "image/pjpeg", "image/vnd.microsoft.icon":
		return true
	}
	return slices.Contains(rasterTypes, mt)
}

// serveInline is GET /rpc/inline/{messageID}/{part}: a message's image
// part, for its capability URL.
func (h *Handler) serveInline(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, part := chi.URLParam(r, "messageID"), chi.URLParam(r, "part")
	q := r.URL.Query()
	userID, err := h.checkCapability(ctx, q, "inline", id, part)
	if err != nil {
		h.capError(w, err)
		return
	}
	a, m, err := loadAny(ctx, h.st.Account(userID, nil), MessageID(id))
	if err != nil {
		h.capError(w, err)
		return
	}
	p, err := m.Info.Body.Find(part)
	if err != nil {
		h.capError(w, err)
		return
	}
	if p.Type != "image" {
		h.capError(w, errNotFound)
		return
	}
	body, err := readPart(ctx, a, m, p)
	if err != nil {
		h.capError(w, err)
		return
	}
	ctype := sniffImage(body)
	if ctype == "" {
		http.Error(w, "not an image", http.StatusUnsupportedMediaType)
		return
	}
	exp, _ := strconv.ParseInt(q.Get("e"), 10, 64)
	imageHeaders(w, ctype, exp-h.now().Unix())
	w.Write(body)
}

// readPart reads one part of a message, decoded, holding no more of the
// message than the part: a frame loads each of its cid: images at once,
// and a large message with many small images read whole for each would
// take its size times their number in memory.
func readPart(ctx context.Context, a *store.Account, m store.Message, p *message.Part) ([]byte, error) {
	rc, err := a.Open(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, p.BodyStart); err != nil {
		return nil, fmt.Errorf("read message %d: %w", m.ID, err)
	}
	enc, err := io.ReadAll(io.LimitReader(rc, p.BodyEnd-p.BodyStart))
	if err != nil {
		return nil, fmt.Errorf("read message %d: %w", m.ID, err)
	}
	body, _ := message.Decode(p.Encoding, enc) // what decodes is served; the sniffing judges it
	return body, nil
}

// frameCSP is the frame document's policy: nothing but inline styles and
// the images listed. sandbox keeps it in an opaque origin without script
// or forms even when opened on its own; popups are allowed (and escape
// the sandbox) so that its links, all target=_blank rel="noopener
// noreferrer", open in a tab of their own.
func frameCSP(imgSrc []string) string {
	return "default-src 'none'; style-src 'unsafe-inline'; img-src " + strings.Join(imgSrc, " ") +
		"; frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
}

// origin is the scheme and host the request came to, for the frame's
// policy: in a sandboxed document 'self' is not reliably the server.
func (h *Handler) origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || h.cfg.SecureCookie {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// frameDoc is what the frame shows.
type frameDoc struct {
	html string
	// blocked counts remote images left out.
	blocked int
	// inline, remote: whether capability URLs of each kind are in it.
	inline, remote bool
}

const frameStyle = `:root{color-scheme:light}body{margin:0;padding:12px 16px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}` +
	`img{max-width:100%;height:auto}pre.basalt-text{white-space:pre-wrap;font:inherit;margin:0}blockquote{margin:0 0 0 .8em;padding-left:.8em;border-left:2px solid #ccc}`

// buildFrame renders a message's body as the frame's document.
func (h *Handler) buildFrame(web *session.Web, id string, m store.Message, raw []byte, show bool) frameDoc {
	var doc frameDoc
	info := m.Info
	plain, htmlPart := textParts(&info.Body)
	var body string
	switch {
	case htmlPart != nil:
		src, _ := htmlPart.Text(raw, maxBodyBytes)
		exp := h.capExpiry()
		encrypted := m.Flags.Has(store.FlagEncrypted) || m.Flags.Has(store.FlagSecure)
		inlineTotal := 0
		rw := srcRewrite{cid: func(cid string) (string, bool) {
			for _, at := range info.Attachments {
				if at.ContentID != cid {
					continue
				}
				if !encrypted {
					doc.inline = true
					return h.inlineURL(web, exp, id, at.Path), true
				}
				// The capability route cannot open this mail: the image
				// goes in the document itself.
				p, err := info.Body.Find(at.Path)
				if err != nil || p.Type != "image" || p.Size > maxInlineData*2 {
					return "", false
				}
				b, _ := p.Decode(raw)
				ctype := sniffImage(b)
				if ctype == "" || len(b) > maxInlineData || inlineTotal+len(b) > maxInlineDataTotal {
					return "", false
				}
				inlineTotal += len(b)
				return "data:" + ctype + ";base64," + base64.StdEncoding.EncodeToString(b), true
			}
			return "", false
		}}
		if show {
			rw.remote = func(u *url.URL) string {
				doc.remote = true
				return h.imageURL(web, exp, u.String())
			}
		}
		body, doc.blocked = h.sanitizers.sanitizeWith(src, rw)
	case plain != nil:
		text, _ := plain.Text(raw, maxBodyBytes)
		body = `<pre class="basalt-text">` + linkify(text) + `</pre>`
	}
	doc.html = `<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">` +
		`<style>` + frameStyle + `</style></head><body>` + body + `</body></html>`
	return doc
}

// serveFrame is GET /rpc/frame/{messageID}[?images=show|block]: the
// message's body as a document of its own, for the session whose message
// it is (the iframe's navigation from the app is same-site and carries
// the cookie).
func (h *Handler) serveFrame(w http.ResponseWriter, r *http.Request) {
	c := h.httpSession(w, r)
	if c == nil {
		return
	}
	ctx := r.Context()
	own := c.account()
	id := MessageID(chi.URLParam(r, "messageID"))
	a, m, err := loadAny(ctx, own, id)
	if err != nil {
		h.blobError(w, err)
		return
	}
	show, err := h.showImages(ctx, own, m.Info, r.URL.Query().Get("images"))
	if err != nil {
		h.blobError(w, err)
		return
	}
	raw, err := readRaw(ctx, a, m)
	if err != nil {
		h.blobError(w, err)
		return
	}
	doc := h.buildFrame(c.web, msgRef{m.MailboxID, m.UID}.id(), m, raw, show)
	// The raster data: URLs the sanitizer admits (rasterDataURI).
	imgSrc := []string{"data:"}
	// The origin the request came to, and those configured: behind a
	// proxy the Host seen here may not be the one the browser used. (An
	// http: source also matches https:, CSP3 6.7.2.8.)
	origins := append([]string{h.origin(r)}, h.cfg.Origins...)
	for _, o := range origins {
		o = strings.TrimRight(o, "/")
		if doc.inline {
			imgSrc = append(imgSrc, o+h.cfg.BasePath+"/inline/")
		}
		if doc.remote {
			imgSrc = append(imgSrc, o+h.cfg.BasePath+"/image")
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", frameCSP(imgSrc))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "private, no-cache")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	w.Write([]byte(doc.html))
}

// linkable finds URLs in plain text: http, https and mailto only.
var linkable = regexp.MustCompile(`(?i)\b(?:https?://|mailto:)[^\s<>"'\x60\x00-\x1f\x7f]+`)

// linkify escapes plain text for HTML and links the URLs in it: each one
// parsed, of an allowed scheme, escaped as an attribute, and opened
// outside with noopener and noreferrer. Punctuation that ends a sentence
// is left out of the link, and so is a closing bracket with no opening
// one in the URL.
func linkify(text string) string {
	var b strings.Builder
	b.Grow(len(text) + len(text)/8)
	last := 0
	for _, loc := range linkable.FindAllStringIndex(text, -1) {
		start, end := loc[0], loc[1]
		// The brackets are counted once and the counts kept as the end
		// moves: counting again at each step is quadratic, minutes of
		// CPU for a body of a URL and megabytes of ")".
		var opened, closed [3]int
		for i := start; i < end; i++ {
			if k := strings.IndexByte("([{", text[i]); k >= 0 {
				opened[k]++
			} else if k := strings.IndexByte(")]}", text[i]); k >= 0 {
				closed[k]++
			}
		}
		for end > start {
			c := text[end-1]
			if strings.IndexByte(".,;:!?", c) >= 0 {
				end--
				continue
			}
			if k := strings.IndexByte(")]}", c); k >= 0 && opened[k] < closed[k] {
				closed[k]--
				end--
				continue
			}
			break
		}
		raw := text[start:end]
		u, err := url.Parse(raw)
		// url.Parse lower-cases the scheme.
		if err != nil || !slices.Contains([]string{"http", "https", "mailto"}, u.Scheme) ||
			(u.Scheme != "mailto" && u.Host == "") || (u.Scheme == "mailto" && u.Opaque == "") {
			continue
		}
		b.WriteString(html.EscapeString(text[last:start]))
		b.WriteString(`<a href="`)
		b.WriteString(html.EscapeString(u.String()))
		b.WriteString(`" rel="noopener noreferrer" target="_blank">`)
		b.WriteString(html.EscapeString(raw))
		b.WriteString(`</a>`)
		last = end
	}
	b.WriteString(html.EscapeString(text[last:]))
	return b.String()
}
