package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"basalt/rpc"
	"basalt/static"
	"basalt/templates"
)

// maxHeaderBytes bounds request headers on the HTTP core.
const maxHeaderBytes = 64 << 10

// Router returns the HTTP core. Front ends (JSON-RPC, the site, the admin
// API) mount under it as they are built. Client addresses are taken from
// the connection only: X-Forwarded-For is not trusted from anyone.
func (s *Services) Router() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.ready)
	webmail := s.Config.RPC
	webmail.Hostname = s.Config.SMTP.Hostname
	r.Mount("/rpc", rpc.New(webmail, rpc.Deps{Store: s.Store, Session: s.Session, Agent: s.Agent, Log: s.Log}))
	r.Mount("/api", s.API.Handler())
	// The webmail app.
	// static.New fails only if the embedded files are broken: a build
	// error, not a condition to run on.
	spa, err := static.New()
	if err != nil {
		panic(err)
	}
	app := http.StripPrefix("/mail", spa)
	r.Handle("/mail", http.RedirectHandler("/mail/", http.StatusMovedPermanently))
	r.Handle("/mail/*", app)
	// The site takes what no other front end does, at /: its pages, and
	// the 404 page for everything else.
	site := s.Config.Site
	site.SessionCookie, site.SecureCookie = webmail.CookieName, webmail.SecureCookie
	if site.MinPassword == 0 {
		site.MinPassword = s.Config.Auth.MinPassword
	}
	site = site.WithDefaults() // a Config not from LoadConfig (tests)
	if pages, err := templates.New(site, templates.Deps{Store: s.Store, Session: s.Session, Agent: s.Agent, Log: s.Log, CaptchaHook: s.captchaHook}); err != nil {
		s.Log.Error("site not served", "err", err)
	} else {
		r.Mount("/", pages)
	}
	return r
}

// MetricsHandler serves Prometheus metrics; it is mounted on its own
// listener (http.metrics_listen), apart from what users reach.
func (s *Services) MetricsHandler() http.Handler {
	reg := s.newRegistry()
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// ready answers 200 only when the database and the cache both answer, so a
// load balancer stops sending work to a node that lost either.
func (s *Services) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "cache": "ok"}
	status := http.StatusOK
	// The reasons go to the log, not to whoever asks: driver errors name
	// hosts and users.
	if err := s.DB.PingContext(ctx); err != nil {
		checks["database"] = "unavailable"
		status = http.StatusServiceUnavailable
		s.Log.Warn("readiness: database", "err", err)
	}
	if err := s.Cache.Ping(ctx); err != nil {
		checks["cache"] = "unavailable"
		status = http.StatusServiceUnavailable
		s.Log.Warn("readiness: cache", "err", err)
	}
	writeJSON(w, status, map[string]any{"status": http.StatusText(status), "checks": checks})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// newRegistry returns the metrics registry with the process and Go
// collectors and the database pool's statistics.
func (s *Services) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(s.DB.DB.DB, s.DB.Dialect()),
	)
	return reg
}
