package pop3

import (
	"net"
	"sync"
	"time"
)

// conn is a client connection as the server tracks it, under TLS when
// there is TLS. It knows whether a command is in progress, which decides
// what a shutdown does to it, and gives every write a deadline.
type conn struct {
	net.Conn
	srv *Server
	// release gives back the connection's place in the server's limits.
	release func()

	closeOnce sync.Once

	mu       sync.Mutex
	busy     bool // a command is being carried out
	draining bool // the server is shutting down
}

// aLongTimeAgo is a deadline that has passed: a read given it returns at once.
var aLongTimeAgo = time.Unix(1, 0)

// deadline is the deadline of an operation allowed d; a negative d (no
// limit) gives none.
func deadline(d time.Duration) time.Time {
	if d < 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

func (c *conn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(deadline(c.srv.cfg.WriteTimeout))
	return c.Conn.Write(b)
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { c.srv.forget(c) })
	return c.Conn.Close()
}

// idle marks the end of a command and arms the read deadline for the next
// one; false means the server is shutting down and the session should
// end instead. Both happen under mu, so a drain cannot slip in between
// and have its deadline overwritten.
func (c *conn) idle(timeout time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = false
	if c.draining {
		return false
	}
	c.Conn.SetReadDeadline(deadline(timeout))
	return true
}

// begin marks a command in progress: a shutdown now lets it finish.
func (c *conn) begin() {
	c.mu.Lock()
	c.busy = true
	c.mu.Unlock()
}

// readDeadline arms the deadline of a read inside a command (a SASL
// response).
func (c *conn) readDeadline(timeout time.Duration) {
	c.Conn.SetReadDeadline(deadline(timeout))
}

// drain is the shutdown's word to the connection: an idle one is woken
// from its read to be closed; a busy one finishes its command first.
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
