package rpc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/klauspost/compress/gzhttp"

	"basalt/delivery"
	"basalt/session"
	"basalt/store"
)

// Config tunes the webmail API; zero fields take the defaults. It is the
// [rpc] section of the configuration.
type Config struct {
	// MaxRequestBytes bounds a POST /rpc body; default 1 MiB.
	MaxRequestBytes int64 `toml:"max_request_bytes"`
	// MaxBatch bounds the calls in one batch; default 50.
	MaxBatch int `toml:"max_batch"`
	// MaxReplyBytes bounds the results of one batch: once they pass it,
	// the batch's remaining calls are not run and are answered
	// CodeTooLarge, for the client to send again; default 16 MiB.
	MaxReplyBytes int `toml:"max_reply_bytes"`
	// MaxUploadBytes bounds one uploaded attachment; default 25 MiB.
	MaxUploadBytes int64 `toml:"max_upload_bytes"`
	// RateLimit is the calls one session may make per minute; default
	// 6000. The app fetches rows as they scroll into view, a batch of
	// calls per screenful, and a fast scroll through a large folder
	// made 600 a minute; the count is per fixed minute, so the whole
	// minute's allowance is there for a burst.
	RateLimit int64 `toml:"rate_limit"`
	// CookieName names the session cookie; default "basalt_session".
	CookieName string `toml:"cookie_name"`
	// SecureCookie marks the cookie Secure even on plain HTTP, for a
	// server behind a proxy that terminates TLS. On TLS it always is.
	SecureCookie bool `toml:"secure_cookie"`
	// Origins are the origins ("https://mail.example.org") calls may come
	// from; empty: only the one the request was addressed to.
	Origins []string `toml:"origins"`
	// BasePath is where the API is mounted; "/rpc" unless a test mounts
	// it elsewhere. Links to attachments in loaded messages are made
	// under it, and the cookie is scoped to it.
	BasePath string `toml:"-"`
	// MaxEventStreams bounds the open GET /rpc/events streams of one
	// session on this node; default 4 (a browser opens one per tab).
	MaxEventStreams int `toml:"max_event_streams"`
	// Hostname names this server in Message-IDs of sent mail.
	Hostname string `toml:"-"`
	// CapabilityTTL is how long the signed image URLs of a message's
	// frame (frame.go) work; default 1h. Logout ends them sooner.
	CapabilityTTL time.Duration `toml:"capability_ttl"`
	// ImageProxyMaxBytes bounds one remote image; default 10 MiB.
	ImageProxyMaxBytes int64 `toml:"image_proxy_max_bytes"`
	// ImageProxyTimeout bounds one remote image's fetch, redirects and
	// all; default 10s.
	ImageProxyTimeout time.Duration `toml:"image_proxy_timeout"`
	// ImageProxyMaxRedirects bounds the redirects followed; default 3.
	ImageProxyMaxRedirects int `toml:"image_proxy_max_redirects"`
	// UndoSendSeconds is how long messages.send holds a message, to be
	// taken back, unless the call says; default 10, negative: none.
	UndoSendSeconds int `toml:"undo_send_seconds"`
	// UndoSendMaxSeconds bounds a call's delay; default 60.
	UndoSendMaxSeconds int `toml:"undo_send_max_seconds"`
	// SendLaterHorizon bounds how far ahead sendAt may be; default 30 days.
	SendLaterHorizon time.Duration `toml:"send_later_horizon"`
	// ImageProxyAllowPrivate lets the proxy reach private, loopback and
	// link-local addresses: for tests and closed networks only.
	ImageProxyAllowPrivate bool `toml:"image_proxy_allow_private"`
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 1 << 20
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 50
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 25 << 20
	}
	if c.MaxReplyBytes == 0 {
		c.MaxReplyBytes = 16 << 20
	}
	if c.RateLimit == 0 {
		c.RateLimit = 6000
	}
	if c.CookieName == "" {
		c.CookieName = "basalt_session"
	}
	if c.BasePath == "" {
		c.BasePath = "/rpc"
	}
	c.BasePath = "/" + strings.Trim(c.BasePath, "/")
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxEventStreams == 0 {
		c.MaxEventStreams = 4
	}
	if c.CapabilityTTL <= 0 {
		c.CapabilityTTL = time.Hour
	}
	if c.ImageProxyMaxBytes <= 0 {
		c.ImageProxyMaxBytes = 10 << 20
	}
	if c.ImageProxyTimeout <= 0 {
		c.ImageProxyTimeout = 10 * time.Second
	}
	if c.UndoSendSeconds == 0 {
		c.UndoSendSeconds = 10
	}
	if c.UndoSendMaxSeconds <= 0 {
		c.UndoSendMaxSeconds = 60
	}
	if c.SendLaterHorizon <= 0 {
		c.SendLaterHorizon = 30 * 24 * time.Hour
	}
	if c.ImageProxyMaxRedirects == 0 {
		c.ImageProxyMaxRedirects = 3
	}
	return c
}

// Deps are the services the API works through.
type Deps struct {
	Store   *store.Store
	Session *session.Service
	Agent   *delivery.Agent
	Log     *slog.Logger
}

// Handler serves the webmail API. Mount it on the HTTP core at
// Config.BasePath.
type Handler struct {
	cfg    Config
	st     *store.Store
	sess   *session.Service
	agent  *delivery.Agent
	log    *slog.Logger
	engine *Engine
	router chi.Router
	doc    []byte
	now    func() time.Time
	// heartbeat paces idle event streams (heartbeat in changes.go).
	heartbeat time.Duration
	// sanitizers are reused policies (sanitize.go).
	sanitizers sanitizerPool
	// streams counts the open event streams per session (changes.go).
	streams streamCounter
	// images is the remote image proxy (imageproxy.go).
	images *imageProxy
}

// New returns the API over the given services.
func New(cfg Config, d Deps) *Handler {
	cfg = cfg.withDefaults()
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: cfg, st: d.Store, sess: d.Session, agent: d.Agent, log: log, now: time.Now, heartbeat: heartbeat}
	h.images = newImageProxy(cfg)
	h.engine = newEngine(cfg.MaxBatch, cfg.MaxReplyBytes, log)
	h.engine.guard = h.guard
	h.register()
	doc, err := json.MarshalIndent(h.engine.OpenRPC("Basalt webmail API", "1"), "", "  ")
	if err != nil {
		panic(fmt.Sprintf("rpc: openrpc document: %v", err))
	}
	h.doc = doc
	r := chi.NewRouter()
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		// RFC 9110 15.5.6: a 405 names the methods that would do.
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case cfg.BasePath, cfg.BasePath + "/upload":
			w.Header().Set("Allow", "POST")
		default:
			w.Header().Set("Allow", "GET")
		}
		writeRPCError(w, http.StatusMethodNotAllowed, serverErr(CodeInvalidRequest, "invalid request: method "+r.Method+" not allowed"))
	})
	// JSON answers are compressed when the client accepts it (a page of
	// 50 messages is 26 KB, 4 KB gzipped). The event stream, messages'
	// parts and images are not: a stream must not wait on a compressor's
	// buffer, and parts are mostly compressed already.
	gz, err := gzhttp.NewWrapper(gzhttp.ContentTypes([]string{"application/json"}), gzhttp.MinSize(1024))
	if err != nil {
		panic(fmt.Sprintf("rpc: gzip: %v", err))
	}
	r.Post("/", gz(http.HandlerFunc(h.serveRPC)))
	r.Get("/openrpc.json", gz(http.HandlerFunc(h.serveDoc)))
	r.Get("/events", h.serveEvents)
	r.Get("/blob/{messageID}/{part}", h.serveBlob)
	r.Get("/frame/{messageID}", h.serveFrame)
	r.Get("/inline/{messageID}/{part}", h.serveInline)
	r.Get("/image", h.serveImage)
	r.Post("/upload", h.serveUpload)
	h.router = r
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

// register adds every method of the API.
func (h *Handler) register() {
	h.registerAuth()
	h.registerFolders()
	h.registerMessages()
	h.registerCompose()
	h.registerSendLater()
	h.registerIdentities()
	h.registerContacts()
	h.registerSettings()
	h.registerChanges()
}

// Call is one method call's view of its HTTP request: the session, once
// looked up, and the response, on which auth and logout set the cookie.
// The calls of one batch share it.
type Call struct {
	h *Handler
	r *http.Request
	w http.ResponseWriter
	// authTried is set by the request's first auth call: one password
	// check per request, so a batch cannot try many (auth.go).
	authTried bool

	looked bool
	web    *session.Web
	token  string
	webErr error
}

// session returns the caller's live session, looked up once per request.
func (c *Call) session(ctx context.Context) (*session.Web, error) {
	if !c.looked {
		c.looked = true
		ck, err := c.r.Cookie(c.h.cfg.CookieName)
		if err != nil || ck.Value == "" {
			c.webErr = serverErr(CodeNotAuthenticated, "not authenticated")
		} else {
			c.token = ck.Value
			c.web, c.webErr = c.h.sess.Web(ctx, ck.Value)
			if errors.Is(c.webErr, session.ErrNoSession) {
				c.webErr = serverErr(CodeSessionExpired, "session expired")
			} else if c.webErr != nil {
				c.webErr = &Error{Code: CodeUnavailable, Message: "session service unavailable", cause: c.webErr}
			}
		}
	}
	return c.web, c.webErr
}

// account returns the caller's mail. Only methods behind the guard call
// it, so the session is there.
func (c *Call) account() *store.Account {
	return c.h.st.Account(c.web.UserID, c.web.Key)
}

// userID returns the caller's user id.
func (c *Call) userID() int64 { return c.web.UserID }

// guard admits a call to a method that needs a session: the cookie's
// session must be live, the X-CSRF-Token header must be its token (a
// page on another site can send the cookie but cannot read the token),
// and the session must be within its rate.
func (h *Handler) guard(ctx context.Context, c *Call) error {
	web, err := c.session(ctx)
	if err != nil {
		return err
	}
	got := c.r.Header.Get("X-CSRF-Token")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(web.CSRF)) != 1 {
		return serverErr(CodeForbidden, "missing or wrong X-CSRF-Token")
	}
	return h.rate(ctx, web.ID)
}

// rate counts a call against its session's limit (the session service
// counts across nodes, and on this node alone while the cache is down).
func (h *Handler) rate(ctx context.Context, sessionID string) error {
	err := h.sess.AdmitCall(ctx, sessionID, h.cfg.RateLimit)
	var rl *session.RateLimitError
	switch {
	case errors.As(err, &rl):
		return &Error{Code: CodeRateLimited, Message: "rate limited", Data: ErrorData{Type: "rateLimited", RetryAfter: int(rl.RetryAfter / time.Second)}}
	case err != nil:
		return &Error{Code: CodeUnavailable, Message: "rate limiter unavailable", cause: err}
	}
	return nil
}

// originOK reports whether the request's Origin, when it has one, is the
// server's own (or a configured one). Browsers send Origin on every
// cross-origin POST, so a page elsewhere is refused here even before the
// CSRF token is looked at.
func (h *Handler) originOK(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if len(h.cfg.Origins) > 0 {
		for _, a := range h.cfg.Origins {
			if strings.EqualFold(strings.TrimRight(a, "/"), o) {
				return true
			}
		}
		return false
	}
	// RFC 6454 6.1: an origin is serialized as scheme "://" host [":"
	// port], nothing else (no user, path or query), so the one allowed is
	// compared whole.
	scheme := "http"
	if r.TLS != nil || h.cfg.SecureCookie {
		scheme = "https"
	}
	return strings.EqualFold(o, scheme+"://"+r.Host)
}

// fetchOK refuses GETs a browser says come from another site (Fetch
// Metadata, Sec-Fetch-Site): the SameSite cookie already keeps them
// unauthenticated, this says so plainly.
func (h *Handler) fetchOK(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Site") != "cross-site" && h.originOK(r)
}

// serveRPC is POST /rpc.
func (h *Handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.originOK(r) {
		writeRPCError(w, http.StatusForbidden, serverErr(CodeForbidden, "foreign origin"))
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		// A form on another site cannot send application/json without
		// a CORS preflight, which this server never grants.
		writeRPCError(w, http.StatusUnsupportedMediaType, serverErr(CodeInvalidRequest, "invalid request: Content-Type must be application/json"))
		return
	}
	if r.ContentLength > h.cfg.MaxRequestBytes {
		// Refused on its declared length, before a byte of it is read.
		tooLarge(w, h.cfg.MaxRequestBytes)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			tooLarge(w, h.cfg.MaxRequestBytes)
			return
		}
		writeRPCError(w, http.StatusBadRequest, serverErr(CodeParseError, "parse error: request body unreadable"))
		return
	}
	c := &Call{h: h, r: r, w: w}
	out := h.engine.serve(r.Context(), c, body)
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(out)
}

// tooLarge refuses a body over max bytes. The connection is closed after
// the answer: what is left of the body is not read.
func tooLarge(w http.ResponseWriter, max int64) {
	w.Header().Set("Connection", "close")
	writeRPCError(w, http.StatusRequestEntityTooLarge, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("request body over %d bytes", max)})
}

func writeRPCError(w http.ResponseWriter, status int, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(encode(errorResponse(nil, e)))
}

// serveDoc is GET /rpc/openrpc.json.
func (h *Handler) serveDoc(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(h.doc)
}

// httpSession authenticates a plain-HTTP GET (blob, events) by its
// cookie: it refuses what a browser says comes from another site, a
// request without a live session, and one over the session's rate. It
// writes the refusal itself and returns nil then.
func (h *Handler) httpSession(w http.ResponseWriter, r *http.Request) *Call {
	if !h.fetchOK(r) {
		writeRPCError(w, http.StatusForbidden, serverErr(CodeForbidden, "cross-site request"))
		return nil
	}
	c := &Call{h: h, r: r, w: w}
	if _, err := c.session(r.Context()); err != nil {
		e := asError(err)
		status := http.StatusUnauthorized
		if e.Code == CodeUnavailable {
			status = http.StatusServiceUnavailable
		}
		writeRPCError(w, status, e)
		return nil
	}
	if err := h.rate(r.Context(), c.web.ID); err != nil {
		writeRPCError(w, http.StatusTooManyRequests, asError(err))
		return nil
	}
	return c
}

// setCookie sets (token != "") or clears the session cookie.
func (c *Call) setCookie(token string, expires time.Time) {
	ck := &http.Cookie{
		Name: c.h.cfg.CookieName, Value: token, Path: c.h.cfg.BasePath,
		HttpOnly: true, Secure: c.r.TLS != nil || c.h.cfg.SecureCookie, SameSite: http.SameSiteStrictMode,
	}
	if token == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires
	}
	http.SetCookie(c.w, ck)
}
