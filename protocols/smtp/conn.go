package smtp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// conn is a client connection as Basalt tracks it, under go-smtp (and
// under TLS, when there is TLS). It holds what lasts across the
// connection's SMTP sessions (a STARTTLS starts a new one): the counts its
// limits are checked against, and whether a transaction is open, which
// decides what a shutdown does to it.
//
// Every read and write gets a deadline of its own here. go-smtp sets one
// per command line only, which would make ReadTimeout bound a whole DATA
// transfer rather than the silence inside it; and it carries on after a
// write fails, so a client that stops reading is closed here.
type conn struct {
	net.Conn
	srv  *Server
	role Role
	ip   netip.Addr // invalid on a unix socket
	// release gives back the connection's place in the server's limits.
	release func()

	closeOnce sync.Once

	mu       sync.Mutex
	busy     bool  // between MAIL and the end of the transaction
	draining bool  // the server is shutting down
	readErr  error // a read timed out: every later read fails the same
	errors   int   // refused commands so far
	messages int   // DATA commands so far
}

// aLongTimeAgo is a deadline that has passed: a read given it returns at once.
var aLongTimeAgo = time.Unix(1, 0)

func (c *conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if err := c.readErr; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	switch {
	case c.draining && !c.busy:
		// Between transactions during a shutdown: go-smtp takes the
		// timeout, answers 421 (RFC 5321 3.8) and closes.
		c.Conn.SetReadDeadline(aLongTimeAgo)
	case c.srv.cfg.ReadTimeout > 0:
		c.Conn.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		c.mu.Lock()
		c.readErr = err
		c.mu.Unlock()
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	if c.srv.cfg.WriteTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		c.Close()
	}
	return n, err
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { c.srv.forget(c) })
	return c.Conn.Close()
}

// setBusy marks a transaction open (MAIL taken) or ended.
func (c *conn) setBusy(b bool) {
	c.mu.Lock()
	c.busy = b
	c.mu.Unlock()
}

// drain is the shutdown's word to the connection: an idle one is woken
// from its read to be closed; a busy one finishes its transaction first.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if !c.busy {
		c.Conn.SetReadDeadline(aLongTimeAgo)
	}
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// violation counts a refused command and reports whether the connection
// has now had as many as it may.
func (c *conn) violation() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors++
	return c.srv.cfg.MaxErrors > 0 && c.errors >= c.srv.cfg.MaxErrors
}

// mayStartMessage reports whether another transaction may begin.
func (c *conn) mayStartMessage() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv.cfg.MaxMessagesPerConn <= 0 || c.messages < c.srv.cfg.MaxMessagesPerConn
}

func (c *conn) countMessage() {
	c.mu.Lock()
	c.messages++
	c.mu.Unlock()
}
