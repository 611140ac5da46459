package pop3

import (
	"sync"
	"time"

	"basalt/protocols/listener"
)

// conn is a client connection as the server's listener.Set tracks it,
// under TLS when there is TLS; it gives every write a deadline.
type conn struct {
	*listener.Conn
	srv *Server

	mu  sync.Mutex
	cut string // why the session was ended (revoke); "" while it may go on
}

// revoke ends the session: at once when it waits for a command, else
// once the command running has been answered (what it changes is then
// done whole: a QUIT's removals, RFC 1939 6). RFC 1939 has no reply a
// server may send unasked, so a waiting client is told nothing: the
// connection just closes; a command read after the cut is answered
// -ERR (see popSession.loop).
func (c *conn) revoke(reason string) {
	c.mu.Lock()
	c.cut = reason
	c.mu.Unlock()
	// The loop marks itself idle before it looks at cut, and this looks
	// at busy after setting cut, so one of the two sees the other.
	if !c.Busy() {
		c.Conn.Close()
	}
}

// revoked says why the session was ended, or "".
func (c *conn) revoked() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

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

// idle marks the end of a command and arms the read deadline for the next
// one; false means the server is shutting down and the session should
// end instead. A shutdown that comes between the two still wins: the
// Set gives an idle connection a deadline that has passed, whatever is
// asked.
func (c *conn) idle(timeout time.Duration) bool {
	if !c.End() {
		return false
	}
	c.SetReadDeadline(deadline(timeout))
	return true
}

// begin marks a command in progress: a shutdown now lets it finish.
func (c *conn) begin() { c.Begin() }

// readDeadline arms the deadline of a read inside a command (a SASL
// response).
func (c *conn) readDeadline(timeout time.Duration) {
	c.SetReadDeadline(deadline(timeout))
}

func (c *conn) isDraining() bool { return c.Draining() }
