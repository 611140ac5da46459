package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrShuttingDown refuses a connection that arrives while its Set shuts
// down.
var ErrShuttingDown = errors.New("server shutting down")

// Config tunes a Set.
type Config struct {
	// Name is the protocol, in logs and errors ("smtp", "imap").
	Name string
	// Max and PerIP are the Limiter's: connections at once in all and
	// from one client network; 0 or less: unlimited.
	Max, PerIP int
	Log        *slog.Logger
	// Refusal is the line (without CRLF) a connection that is not
	// admitted reads in place of the greeting; err is ErrTooMany,
	// ErrTooManyFromIP or ErrShuttingDown. Default: err's text.
	Refusal func(err error) string
	// Drain, when set, waits for work the connections started that may
	// outlive them (SMTP's deliveries in flight) and stops new work from
	// starting, until ctx ends. Shutdown calls it once every connection
	// has ended, an abort after closing them, with AbortWait to go.
	Drain func(ctx context.Context)
	// AbortWait bounds how long an abort waits for the sessions to
	// notice, so that the store is not closed under them; default 5s.
	AbortWait time.Duration
}

// refusingMax bounds the goroutines that answer refused connections, so
// that a flood of them costs a bounded amount; beyond it they are just
// closed.
const refusingMax = 64

// Set is one server's connections: it admits them, tracks them and ends
// them (see the package doc). It is safe for concurrent use.
type Set struct {
	cfg     Config
	limit   Limiter
	refuser *Refuser

	// base is the context every connection's is derived from; it ends
	// when the Set aborts, or once a Shutdown is done.
	base   context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	draining  bool
	// active counts the connections admitted and not yet closed, and
	// Serve's handlers still running. Add only under mu while not
	// draining, so that it never races Shutdown's Wait from zero.
	active sync.WaitGroup
}

// NewSet returns a Set whose connections' contexts derive from ctx.
func NewSet(ctx context.Context, cfg Config) *Set {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Refusal == nil {
		cfg.Refusal = func(err error) string { return err.Error() }
	}
	if cfg.AbortWait <= 0 {
		cfg.AbortWait = 5 * time.Second
	}
	s := &Set{
		cfg: cfg, limit: Limiter{Max: max(cfg.Max, 0), PerIP: max(cfg.PerIP, 0)},
		refuser:   NewRefuser(refusingMax),
		listeners: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{},
	}
	s.base, s.cancel = context.WithCancel(ctx)
	return s
}

// Context is the Set's run context: it ends when the Set aborts or has
// shut down.
func (s *Set) Context() context.Context { return s.base }

// Open returns the number of connections admitted and not yet closed.
func (s *Set) Open() int { return s.limit.Open() }

// Draining reports whether Shutdown or Close has been called.
func (s *Set) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Listener returns ln as a net.Listener whose Accept returns the
// connections the Set admits, as *Conn, for a library that runs its own
// accept loop. Refused connections are answered there (with tlsCfg, after
// a TLS handshake: set it for a listener whose clients start with TLS).
// Shutdown and Close close ln; its Accept then returns net.ErrClosed.
func (s *Set) Listener(ln net.Listener, tlsCfg *tls.Config) net.Listener {
	return s.listener(ln, tlsCfg, false)
}

func (s *Set) listener(ln net.Listener, tlsCfg *tls.Config, handled bool) *setListener {
	s.mu.Lock()
	if s.draining {
		ln.Close()
	} else {
		s.listeners[ln] = struct{}{}
	}
	s.mu.Unlock()
	return &setListener{Listener: ln, set: s, tlsCfg: tlsCfg, handled: handled}
}

// Serve accepts connections on ln and runs handle for each on a goroutine
// of its own, closing the connection when it returns, until Shutdown or
// Close, which make Serve return nil.
func (s *Set) Serve(ln net.Listener, tlsCfg *tls.Config, handle func(*Conn)) error {
	l := s.listener(ln, tlsCfg, true)
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.Draining() {
				return nil
			}
			return fmt.Errorf("%s: serve on %s: %w", s.cfg.Name, ln.Addr(), err)
		}
		c := nc.(*Conn)
		go func() {
			defer s.active.Done()
			defer c.Close()
			handle(c)
		}()
	}
}

// setListener admits connections before whoever accepts sees them.
type setListener struct {
	net.Listener
	set    *Set
	tlsCfg *tls.Config
	// handled: Serve runs a handler for each connection, which active
	// counts too.
	handled bool
}

func (l *setListener) Accept() (net.Conn, error) {
	s := l.set
	for {
		raw, err := Accept(l.Listener, func(err error, retryIn time.Duration) {
			s.cfg.Log.Warn(s.cfg.Name+" accept", "err", err, "retry_in", retryIn)
		})
		if err != nil {
			if s.Draining() {
				return nil, net.ErrClosed
			}
			return nil, err
		}
		c, err := s.admit(raw, l.handled)
		if err != nil {
			s.cfg.Log.Info(s.cfg.Name+" connection refused", "remote", AddrString(raw.RemoteAddr()), "reason", err)
			s.refuser.Refuse(raw, l.tlsCfg, s.cfg.Refusal(err))
			continue
		}
		return c, nil
	}
}

func (l *setListener) Close() error {
	l.set.mu.Lock()
	delete(l.set.listeners, l.Listener)
	l.set.mu.Unlock()
	return l.Listener.Close()
}

// admit counts a new connection in and tracks it, or says why not.
func (s *Set) admit(raw net.Conn, handled bool) (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, ErrShuttingDown
	}
	release, err := s.limit.Admit(raw.RemoteAddr())
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: raw, set: s, release: release}
	c.ctx, c.cancel = context.WithCancel(s.base)
	s.conns[c] = struct{}{}
	if handled {
		s.active.Add(2)
	} else {
		s.active.Add(1)
	}
	return c, nil
}

// forget drops c, which has closed.
func (s *Set) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.release()
	s.active.Done()
}

// stop stops accepting: it closes the listeners and returns the
// connections open.
func (s *Set) stop() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	for ln := range s.listeners {
		ln.Close()
	}
	clear(s.listeners)
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Shutdown stops accepting connections and wakes the idle ones, which
// their sessions then close (Conn.SetReadDeadline, Conn.OnDrain); a busy
// connection finishes what it is doing first (Conn.End reports the
// shutdown). Then the Drain hook runs. When ctx ends first, what is left
// is aborted (as Close) and ctx's error returned.
func (s *Set) Shutdown(ctx context.Context) error {
	for _, c := range s.stop() {
		c.drain()
	}
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		if s.cfg.Drain != nil {
			s.cfg.Drain(ctx)
		}
		close(done)
	}()
	select {
	case <-done:
		if ctx.Err() == nil {
			s.cancel()
			return nil
		}
	case <-ctx.Done():
	}
	s.abort()
	return fmt.Errorf("%s shutdown: %w", s.cfg.Name, ctx.Err())
}

// Close stops at once: the listeners and every connection are closed and
// the contexts of what runs on them cancelled.
func (s *Set) Close() error {
	s.abort()
	return nil
}

// abort cancels every connection's context, closes them all and waits a
// little (AbortWait) for the sessions and the Drain hook to end.
func (s *Set) abort() {
	conns := s.stop()
	for _, c := range conns {
		c.mu.Lock()
		c.draining = true
		c.mu.Unlock()
	}
	s.cancel()
	for _, c := range conns {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.AbortWait)
	defer cancel()
	if wait(ctx, &s.active) && s.cfg.Drain != nil {
		s.cfg.Drain(ctx)
	}
	if ctx.Err() != nil {
		s.cfg.Log.Warn(s.cfg.Name + ": sessions still running after shutdown")
	}
}

// AddrString is a client's address for logs; a unix socket's client may
// have none.
func AddrString(a net.Addr) string {
	if a == nil {
		return "local"
	}
	if s := a.String(); s != "" && s != "@" {
		return s
	}
	return "local"
}

// Busy returns the number of connections with a command running.
func (s *Set) Busy() int {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.Busy() {
			n++
		}
	}
	return n
}
