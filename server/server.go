package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Run serves until ctx ends, then shuts down gracefully: listeners stop
// accepting, requests in flight get the configured time to finish, and the
// services close last.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.NewLogger()
	svc, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.Close()

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen http on %s: %w", cfg.HTTP.Listen, err)
	}
	srv := &http.Server{
		Handler:           svc.Router(svc.newRegistry()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          nil,
	}
	log.Info("basalt serving", "http", ln.Addr().String(), "database", cfg.Database.Driver,
		"cache", map[bool]string{true: "redis", false: "memory"}[cfg.Cache.RedisAddr != ""], "data", cfg.DataDir)

	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve http: %w", err)
		}
	}()
	mctx, stopMaint := context.WithCancel(ctx)
	go func() {
		defer wg.Done()
		svc.maintain(mctx)
	}()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	stopMaint()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("http shutdown", "err", serr)
	}
	wg.Wait()
	return err
}

// maintain runs the periodic cleanup: message files left by crashes and
// interrupted expunges, and old daily counters. The first run is at start,
// which is when a crash's leftovers are freshest.
func (s *Services) maintain(ctx context.Context) {
	t := time.NewTicker(s.Config.Maint.Interval)
	defer t.Stop()
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
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
