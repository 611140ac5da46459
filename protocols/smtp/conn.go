package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"basalt/protocols/listener"
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
	*listener.Conn // busy between MAIL and the end of the transaction
	srv            *Server
	role           Role
	ip             netip.Addr // invalid on a unix socket

	mu       sync.Mutex
	readErr  error // a read timed out: every later read fails the same
	errors   int   // refused commands so far
	messages int   // DATA commands so far
	// counted: the next reply written was counted by the session (a
	// refusal of its own), so the writer must not count it again.
	counted bool
	// encrypted: TLS has started under go-smtp (STARTTLS) or above it
	// (implicit TLS), so what passes through here is no longer readable.
	encrypted bool
	// cut says why the logged-in session was ended (revoke); "" while
	// it may go on. top is the connection go-smtp speaks over (TLS, or
	// this one), through which the 421 of a cut is written.
	cut string
	top net.Conn
}

// aLongTimeAgo is a deadline that has passed: a read given it returns at
// once.
var aLongTimeAgo = time.Unix(1, 0)

// revoke ends the session (session.Front.Open's hook). Between
// transactions the read waiting for the next command is woken and the
// client told 421 (RFC 5321 3.8: a server that must close says so) with
// the reason; in a transaction (MAIL to the end of DATA) the next command
// of the transaction is answered 421 (smtpSession.revoked), and a message
// whose DATA is under way is taken whole and answered first: it is
// either stored and acknowledged or not stored at all.
func (c *conn) revoke(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = reason
	if !c.Busy() {
		c.Conn.SetReadDeadline(aLongTimeAgo)
	}
}

// revoked says why the session was ended, or "".
func (c *conn) revoked() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// cutNow reports whether a read must end the session: it was cut, and
// no transaction is open. Callers hold c.mu.
func (c *conn) cutNow() bool { return c.cut != "" && !c.Busy() }

// sayCut answers the cut with 421 and makes this and every later read
// end the connection. Callers hold c.mu, which it releases: the reply goes
// out through top, under TLS back through Write, which takes c.mu.
func (c *conn) sayCut() error {
	c.readErr = io.EOF
	top, why := c.top, c.cut
	c.mu.Unlock()
	if top != nil {
		// go-smtp is in its read, so nothing else writes now.
		e := errRevoked
		fmt.Fprintf(top, "%d %d.%d.%d %s: %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message, why)
	}
	return io.EOF
}

// tlsHandshakeRecord begins a TLS handshake record (RFC 8446 5.1), the
// first thing a server writes when TLS starts; no SMTP reply begins with
// it.
const tlsHandshakeRecord = 0x16

func (c *conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if err := c.readErr; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if c.cutNow() {
		return 0, c.sayCut()
	}
	// Between transactions during a shutdown the Set makes this a
	// deadline that has passed: go-smtp takes the timeout, answers 421
	// (RFC 5321 3.8) and closes. Set under c.mu, so that a revoke's
	// deadline is not overwritten.
	var d time.Time
	if c.srv.cfg.ReadTimeout > 0 {
		d = time.Now().Add(c.srv.cfg.ReadTimeout)
	}
	c.Conn.SetReadDeadline(d)
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		c.mu.Lock()
		if c.cutNow() {
			return n, c.sayCut()
		}
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
		return n, err
	}
	if c.syntaxErrors(b) {
		// go-smtp answered the command itself (500-504: syntax, an
		// unknown or out-of-sequence command) and it was the one too
		// many: RFC 5321 3.8 lets the server close with a 421.
		c.srv.log.Info("smtp connection dropped", "role", c.role, "remote", listener.AddrString(c.RemoteAddr()), "reason", errTooManyErrors.Message)
		e := errTooManyErrors
		fmt.Fprintf(c.Conn, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		c.Close()
	}
	return n, err
}

// syntaxErrors counts the replies in b (whole replies: go-smtp flushes
// each) that refuse a command as malformed or out of sequence, 500 to 504
// (RFC 5321 4.2.3), unless the session already counted the reply as its
// own refusal. It reports whether the error cutoff has been reached.
func (c *conn) syntaxErrors(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.encrypted || len(b) == 0 {
		return false
	}
	if b[0] == tlsHandshakeRecord {
		// Replies from here on are ciphertext, which cannot be read
		// here; under TLS only the session's own refusals count.
		c.encrypted = true
		return false
	}
	reached := false
	for line := range bytes.Lines(b) {
		// A reply's last line has a space (or nothing) after the code;
		// earlier lines of a multi-line reply have a hyphen.
		if len(line) < 4 || line[3] == '-' {
			continue
		}
		if c.counted {
			c.counted = false
			continue
		}
		if line[0] != '5' || line[1] != '0' || line[2] < '0' || line[2] > '4' {
			continue
		}
		c.errors++
		reached = reached || (c.srv.cfg.MaxErrors > 0 && c.errors >= c.srv.cfg.MaxErrors)
	}
	return reached
}

// setBusy marks a transaction open (MAIL taken) or ended.
func (c *conn) setBusy(b bool) {
	if b {
		c.Begin()
	} else {
		c.End()
	}
}

func (c *conn) isDraining() bool { return c.Draining() }

// violation counts a refused command and reports whether the connection
// has now had as many as it may.
func (c *conn) violation() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors++
	c.counted = true
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
