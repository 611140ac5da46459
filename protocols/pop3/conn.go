package pop3

import (
	"time"

	"basalt/protocols/listener"
)

// conn is a client connection as the server's listener.Set tracks it,
// under TLS when there is TLS; it gives every write a deadline.
type conn struct {
	*listener.Conn
	srv *Server
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
