package rest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"basalt/delivery"
	"basalt/session"
	"basalt/store"
	"basalt/store/admin"
)

// Config tunes the API.
type Config struct {
	// RatePerMinute is each key's budget of requests a minute; 0 is 600.
	RatePerMinute int64 `toml:"rate_per_minute"`
	// MaxBody bounds a request body in bytes (413 beyond); 0 is 1 MiB.
	MaxBody int64 `toml:"max_body"`
	// InlineUsers is how many users an operation over a domain's users
	// (applying a plan) does within the request; more make a job (202).
	// 0 is 100.
	InlineUsers int64 `toml:"inline_users"`
	// Hostname is the mail host the DNS records point at ("" mail.<domain>).
	Hostname string `toml:"-"`
}

// Deps are the services the API runs on.
type Deps struct {
	Store *store.Store
	Admin *admin.Store
	// Jobs runs the API's long operations; New registers their handlers
	// on it, and whoever built it runs it (Runner.Run).
	Jobs *admin.Runner
	// Session, Agent and Queue are for the users', messages' and queue's
	// resources (password hashing and keys, bulletins, the queue).
	Session *session.Service
	Agent   *delivery.Agent
	Queue   *delivery.Queue
	Log     *slog.Logger
}

// API is the admin REST API.
type API struct {
	cfg    Config
	st     *store.Store
	adm    *admin.Store
	jobs   *admin.Runner
	deps   Deps
	log    *slog.Logger
	routes []Route
	docs   []byte // the reference page, rendered once from the spec
}

// New builds the API and registers its jobs' handlers on d.Jobs.
func New(cfg Config, d Deps) (*API, error) {
	if cfg.RatePerMinute <= 0 {
		cfg.RatePerMinute = 600
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.InlineUsers <= 0 {
		cfg.InlineUsers = 100
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	a := &API{cfg: cfg, st: d.Store, adm: d.Admin, jobs: d.Jobs, deps: d, log: d.Log}
	a.routes = a.table()
	for kind, h := range a.jobHandlers() {
		d.Jobs.Handle(kind, h)
	}
	docs, err := renderDocs(Spec())
	if err != nil {
		return nil, err
	}
	a.docs = docs
	return a, nil
}

// Routes returns the route table.
func (a *API) Routes() []Route { return a.routes }

// Handler serves the API under the prefix it is mounted at ("/api"):
// /api/v1/... and the reference page /api/docs.
func (a *API) Handler() http.Handler {
	r := chi.NewRouter()
	r.Get("/docs", a.serveDocs)
	r.Get("/docs.css", a.serveDocs)
	r.Route("/v1", func(v chi.Router) {
		for i := range a.routes {
			rt := &a.routes[i]
			v.Method(rt.Method, rt.Path, a.wrap(rt))
		}
		v.NotFound(func(w http.ResponseWriter, _ *http.Request) {
			writeProblem(w, NotFound("No such resource."))
		})
		v.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
			writeProblem(w, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "The resource does not answer this method."))
		})
	})
	return r
}

// clientAddr is the connection's address (X-Forwarded-For is not trusted).
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// wrap is every route's way in: authentication, the rate limit, the scope
// and domain check, Idempotency-Key, then the handler; any failure is a
// problem+json answer.
func (a *API) wrap(rt *Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Ctx{W: w, R: r, Route: rt, api: a, ctx: r.Context()}
		w.Header().Set("Cache-Control", "no-store")
		if err := a.serve(c); err != nil {
			c.fail(err)
		}
	})
}

func (a *API) serve(c *Ctx) error {
	rt := c.Route
	if rt.Scope == "" {
		return rt.Handle(c)
	}
	// The scheme's name is matched ignoring case (RFC 9110 section 11.1;
	// RFC 6750 section 2.1 spells it "Bearer").
	scheme, secret, ok := strings.Cut(strings.TrimSpace(c.R.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return admin.ErrUnauthorized
	}
	client := clientAddr(c.R)
	p, err := a.adm.Authenticate(c.ctx, strings.TrimSpace(secret), client)
	if err != nil {
		return err
	}
	c.P = p
	c.ctx = store.WithActor(c.ctx, store.Actor{AdminID: p.Admin.ID, KeyID: p.Key.ID, Name: p.Admin.Name, Client: client.String()})
	if err := c.RateLimit("api", a.cfg.RatePerMinute, time.Minute); err != nil {
		return err
	}
	// The body's size and type are checked before anything else reads it
	// (413, 415), whatever the handler would have looked up first.
	if c.R.Method != http.MethodGet && c.R.ContentLength != 0 {
		if _, err := c.rawBody(); err != nil {
			return err
		}
	}
	if err := rt.Domain.authorize(c, rt.Scope); err != nil {
		return err
	}
	idem := c.R.Header.Get("Idempotency-Key")
	if !rt.Idempotent || idem == "" {
		return rt.Handle(c)
	}
	return a.idempotent(c, idem)
}

// idempotent runs a create under an Idempotency-Key: the first request's
// response is stored and replayed to a retry with the same body; the same
// key with another request is refused.
func (a *API) idempotent(c *Ctx, idem string) error {
	if len(idem) > 255 {
		return Invalid("Idempotency-Key", "at most 255 characters")
	}
	body, err := c.rawBody()
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write([]byte(c.R.Method + " " + c.R.URL.Path + "?" + c.R.URL.RawQuery + "\n"))
	h.Write(body)
	sum := h.Sum(nil)
	prev, err := a.adm.BeginIdempotent(c.ctx, c.P.Key.ID, idem, sum)
	if err != nil {
		return err
	}
	if prev != nil {
		hd := c.W.Header()
		hd.Set("Content-Type", prev.ContentType)
		if prev.Location != "" {
			hd.Set("Location", prev.Location)
		}
		hd.Set("Idempotent-Replayed", "true")
		c.W.WriteHeader(prev.Status)
		c.W.Write(prev.Body)
		return nil
	}
	rec := &recorder{ResponseWriter: c.W}
	c.W = rec
	herr := a.serveRecorded(c)
	status := rec.status
	if herr != nil {
		p, _ := problemOf(herr)
		status = p.Status
	}
	if status >= 500 || status == 0 || status == http.StatusTooManyRequests {
		// Worth retrying: the retry runs the request again.
		if err := a.adm.AbandonIdempotent(c.ctx, c.P.Key.ID, idem); err != nil {
			a.log.Warn("abandon idempotency key", "err", err)
		}
		return herr
	}
	if herr != nil {
		c.fail(herr)
	}
	if err := a.adm.FinishIdempotent(c.ctx, c.P.Key.ID, idem, admin.Response{Status: rec.status,
		ContentType: rec.Header().Get("Content-Type"), Location: rec.Header().Get("Location"), Body: withoutSecrets(rec.buf.Bytes())}); err != nil {
		a.log.Warn("store idempotent response", "err", err)
	}
	return nil
}

func (a *API) serveRecorded(c *Ctx) error { return c.Route.Handle(c) }

// withoutSecrets is a create's answer as it is kept for replays: without
// the members shown once and never kept (a key's secret, kept only as a
// hash; a generated password), which would otherwise sit in the database
// in clear for a day. A replay tells whoever retries that the resource was
// made; a secret lost with the first answer is replaced by a new key or a
// password reset.
func withoutSecrets(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	found := false
	for _, k := range []string{"secret", "generatedPassword"} {
		if _, ok := m[k]; ok {
			delete(m, k)
			found = true
		}
	}
	if !found {
		return body
	}
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return append(b, '\n')
}

// recorder keeps a copy of what a create answers, for replays.
type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
	r.ResponseWriter.WriteHeader(s)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}
