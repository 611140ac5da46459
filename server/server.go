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
	mail, err := svc.listenMail(tlsCfg)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	pop, err := svc.listenPOP3(tlsCfg)
	if err != nil {
		mail.close()
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	imapLns, err := svc.listenIMAP(tlsCfg)
	if err != nil {
		pop.close()
		mail.close()
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	log.Info("basalt serving", "http", listeners[0].Addr().String(), "mail", mail.addrs(), "pop3", pop.addrs(), "imap", imapLns.addrs(), "database", cfg.Database.Driver,
		"cache", map[bool]string{true: "redis", false: "memory"}[cfg.Cache.RedisAddr != ""], "data", cfg.DataDir)

	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+len(mail.lns)+len(pop.lns)+len(imapLns.lns)+1)
	mail.serve(&wg, errc)
	pop.serve(&wg, errc)
	imapLns.serve(&wg, errc)
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

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	stopMaint()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	mailDone := make(chan struct{})
	go func() {
		defer close(mailDone)
		if serr := mail.shutdown(sctx); serr != nil {
			log.Warn("mail shutdown", "err", serr)
		}
	}()
	popDone := make(chan struct{})
	go func() {
		defer close(popDone)
		if serr := pop.shutdown(sctx); serr != nil {
			log.Warn("pop3 shutdown", "err", serr)
		}
	}()
	imapDone := make(chan struct{})
	go func() {
		defer close(imapDone)
		if serr := imapLns.shutdown(sctx); serr != nil {
			log.Warn("imap shutdown", "err", serr)
		}
	}()
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("http shutdown", "addr", srv.Addr, "err", serr)
		}
	}
	<-mailDone
	<-popDone
	<-imapDone
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
