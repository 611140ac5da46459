package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"basalt/store/webmail"
)

// Run serves until ctx ends, then shuts down gracefully: listeners stop
// accepting, requests in flight get the configured time to finish, and the
// services close last.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.NewLogger()
	if limit := cfg.Server.ApplyMemoryLimit(); limit != math.MaxInt64 {
		log.Info("memory limit", "bytes", limit)
	}
	svc, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := cfg.Site.CheckPlans(ctx, svc.Store); err != nil {
		return err
	}

	servers := []*http.Server{{Addr: cfg.HTTP.Listen, Handler: svc.Router()}}
	if cfg.HTTP.MetricsListen != "" {
		servers = append(servers, &http.Server{Addr: cfg.HTTP.MetricsListen, Handler: svc.MetricsHandler()})
	}
	var listeners []net.Listener
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listen on %s: %w", srv.Addr, err)
		}
		listeners = append(listeners, ln)
		srv.ReadHeaderTimeout = 10 * time.Second
		srv.ReadTimeout = 5 * time.Minute
		srv.IdleTimeout = 2 * time.Minute
		srv.MaxHeaderBytes = maxHeaderBytes
	}
	tlsCfg, err := cfg.ServerTLS(log)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	// The mail front ends: SMTP (with submission and LMTP), POP3, IMAP.
	var (
		fronts []frontEnd
		names  = []string{"mail", "pop3", "imap"}
	)
	listenMail := func(c *tls.Config) (frontEnd, error) { return svc.listenMail(c) }
	for _, listen := range []func(*tls.Config) (frontEnd, error){listenMail, svc.listenPOP3, svc.listenIMAP} {
		f, err := listen(tlsCfg)
		if err != nil {
			for _, f := range fronts {
				f.close()
			}
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		fronts = append(fronts, f)
	}
	attrs := []any{"http", listeners[0].Addr().String()}
	for i, f := range fronts {
		attrs = append(attrs, names[i], f.addrs())
	}
	log.Info("basalt serving", append(attrs, "database", cfg.Database.Driver,
		"cache", map[bool]string{true: "redis", false: "memory"}[cfg.Cache.RedisAddr != ""], "data", cfg.DataDir)...)

	var wg sync.WaitGroup
	capacity := len(servers) + 1
	for _, f := range fronts {
		capacity += f.count()
	}
	errc := make(chan error, capacity)
	for _, f := range fronts {
		f.serve(&wg, errc)
	}
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve http on %s: %w", srv.Addr, err)
			}
		}()
	}
	mctx, stopMaint := context.WithCancel(ctx)
	// The queue stops with the maintenance, after the listeners have
	// stopped taking mail, and records the state of what was in flight
	// before the database closes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Queue.Run(mctx); err != nil {
			errc <- fmt.Errorf("outbound queue: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		svc.maintain(mctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		svc.Jobs.Run(mctx)
	}()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	stopMaint()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	// The front ends drain at once, each finishing its work in flight.
	var drained sync.WaitGroup
	for i, f := range fronts {
		drained.Add(1)
		go func() {
			defer drained.Done()
			if serr := f.shutdown(sctx); serr != nil {
				log.Warn(names[i]+" shutdown", "err", serr)
			}
		}()
	}
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("http shutdown", "addr", srv.Addr, "err", serr)
		}
	}
	drained.Wait()
	wg.Wait()
	return err
}

// maintain runs the periodic cleanup: message files left by crashes and
// interrupted expunges, and old daily counters. The first run is at start,
// which is when a crash's leftovers are freshest.
func (s *Services) maintain(ctx context.Context) {
	t := time.NewTicker(s.Config.Maint.Interval)
	defer t.Stop()
	// Mail stored before the full-text index existed is indexed once, in
	// the background, resuming where a previous start stopped; mail that
	// arrives is indexed as it is stored, or on SQLite soon after
	// (IndexPending).
	go s.Store.IndexPending(ctx)
	go func() {
		if n, err := s.Store.IndexBacklog(ctx, 20*time.Millisecond); err != nil {
			s.Log.Warn("maintenance: text index backlog", "err", err)
		} else if n > 0 {
			s.Log.Info("maintenance: indexed stored messages", "count", n)
		}
	}()
	for {
		if n, err := s.Store.SweepUnreferenced(ctx); err != nil {
			s.Log.Warn("maintenance: unreferenced blobs", "err", err)
		} else if n > 0 {
			s.Log.Info("maintenance: removed unreferenced blobs", "count", n)
		}
		if _, err := s.Store.SweepOrphans(ctx, s.Config.Maint.OrphanGrace); err != nil {
			s.Log.Warn("maintenance: orphan blobs", "err", err)
		}
		if _, err := s.Store.PruneCounters(ctx, s.Config.Maint.CounterDays); err != nil {
			s.Log.Warn("maintenance: counters", "err", err)
		}
		if _, err := webmail.Prune(ctx, s.Store, webmail.ComposeMaxAge); err != nil {
			s.Log.Warn("maintenance: webmail drafts and uploads", "err", err)
		}
		if _, err := s.Store.PruneWebSessions(ctx); err != nil {
			s.Log.Warn("maintenance: ended web sessions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
