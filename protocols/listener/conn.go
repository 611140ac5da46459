package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline that has passed: a read given it returns at
// once.
var aLongTimeAgo = time.Unix(1, 0)

// watchMax bounds what Watch reads ahead of the session: a client that
// sends more during one command is not read further until the session
// reads.
const watchMax = 64 << 10

// Conn is a connection a Set admitted: the socket, which the protocol may
// wrap (in TLS, in a library's reader), with what the Set knows of it.
// Reads and deadlines must go through it, not around it.
type Conn struct {
	net.Conn
	set     *Set
	ctx     context.Context
	cancel  context.CancelFunc
	release func() // the connection's place in the limits

	closeOnce sync.Once

	mu       sync.Mutex
	busy     bool // a command or transaction is running
	draining bool // the Set is shutting down
	wake     func()
	// readDeadline is the last one set, which a stopped Watch restores;
	// stopping says a Watch is being stopped, and bg is closed when it
	// has (nil: no Watch runs).
	readDeadline time.Time
	stopping     bool
	bg           chan struct{}
	// watchTimer starts a Watch once the command has run watchDelay;
	// watchGen counts the Watches asked for and stopped, so that a timer
	// that fires after its Watch was stopped starts nothing.
	watchTimer *time.Timer
	watchGen   uint64
	// held is what Watch read ahead, for the next Read; heldErr the read
	// error after it (the client went away).
	held    []byte
	heldErr error
	// buf is Watch's read buffer, kept for the connection's next Watch.
	buf []byte
}

// Context is the connection's: it ends when the client goes away (a read
// fails, or Watch sees it leave), when the connection closes and when
// the Set aborts. What a command runs (store calls, logins) runs on it.
func (c *Conn) Context() context.Context { return c.ctx }

// NetConn returns the socket, so that Secure can look through.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Begin marks a command (or transaction) running: a shutdown lets it
// finish.
func (c *Conn) Begin() {
	c.mu.Lock()
	c.busy = true
	c.mu.Unlock()
}

// End marks the command over. It reports false when the Set is shutting
// down: the session should then say so and end, as the Set does not wake
// it.
func (c *Conn) End() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = false
	return !c.draining
}

// Busy reports whether a command is running (between Begin and End).
func (c *Conn) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy
}

// Draining reports whether the Set is shutting down.
func (c *Conn) Draining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// OnDrain sets how a shutdown ends this connection when it is idle (when
// busy, End tells the session instead). Without it, the connection's
// reads time out at once from then on (see SetReadDeadline), which a
// session takes for the end; a protocol that has something to say first
// (IMAP's BYE, RFC 9051 7.1.5) sets its own.
// When the shutdown has begun already, f runs at once if the connection
// is idle.
func (c *Conn) OnDrain(f func()) {
	c.mu.Lock()
	c.wake = f
	now := c.draining && !c.busy
	c.mu.Unlock()
	if now {
		f()
	}
}

// drain is a shutdown's word to the connection.
func (c *Conn) drain() {
	c.mu.Lock()
	c.draining = true
	idle, wake := !c.busy, c.wake
	c.mu.Unlock()
	switch {
	case !idle:
	case wake != nil:
		wake()
	default:
		c.SetReadDeadline(aLongTimeAgo)
	}
}

// SetReadDeadline sets the socket's read deadline; while the Set shuts
// down, an idle connection without an OnDrain gets one that has passed,
// whatever is asked, so that its session, waiting for the next command,
// wakes to end.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining && !c.busy && c.wake == nil {
		t = aLongTimeAgo
	}
	c.readDeadline = t
	if c.stopping {
		return nil // the Watch being stopped sets it when done
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Read reads what Watch read ahead first. A read that fails but for a
// timeout means the client went away (or the connection was closed):
// the connection's context ends.
func (c *Conn) Read(p []byte) (int, error) {
	c.stopWatch()
	c.mu.Lock()
	if len(c.held) > 0 {
		n := copy(p, c.held)
		if c.held = c.held[n:]; len(c.held) == 0 {
			c.held = nil
		}
		c.mu.Unlock()
		return n, nil
	}
	if err := c.heldErr; err != nil {
		c.mu.Unlock()
		c.cancel()
		return 0, err
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if err != nil && !isTimeout(err) {
		c.cancel()
	}
	return n, err
}

// Watch reads from the client in the background until the next Read, so
// that one that goes away while a command runs (nobody reading) ends the
// connection's context at once, and the command's store calls with it:
// net/http's background read, for line protocols. What it reads is kept
// for the next Read. Call it once the session has read a whole command
// and will read nothing more before it has answered; the next Read stops
// it. A client that closes its sending side only (a half-close after a
// pipelined QUIT) looks gone too, so it is not called for commands that
// must finish however the client leaves (POP3's QUIT).
//
// The background read starts only once the command has run watchDelay:
// most commands end well before, and starting and stopping a read for
// each of them (a goroutine, two deadline changes and a wake-up) was a
// tenth of a busy IMAP server's time, for nothing a client could notice.
func (c *Conn) Watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bg != nil || c.watchTimer != nil || c.heldErr != nil || len(c.held) >= watchMax {
		return
	}
	gen := c.watchGen
	c.watchTimer = time.AfterFunc(watchDelay, func() { c.startWatch(gen) })
}

// watchDelay is how long a command runs before Watch reads in the
// background.
const watchDelay = 20 * time.Millisecond

// startWatch runs the background read of the Watch numbered gen, in the
// timer's goroutine, unless it was stopped meanwhile.
func (c *Conn) startWatch(gen uint64) {
	c.mu.Lock()
	if gen != c.watchGen || c.bg != nil {
		c.mu.Unlock()
		return
	}
	c.watchTimer = nil
	done := make(chan struct{})
	c.bg = done
	if c.buf == nil {
		c.buf = make([]byte, 512)
	}
	buf := c.buf
	c.mu.Unlock()
	c.watch(done, buf)
}

// watch reads into buf, which no one else touches until done is closed.
func (c *Conn) watch(done chan struct{}, buf []byte) {
	defer close(done)
	for {
		n, err := c.Conn.Read(buf)
		c.mu.Lock()
		c.held = append(c.held, buf[:n]...)
		full := len(c.held) >= watchMax
		gone := err != nil && !isTimeout(err)
		if gone {
			c.heldErr = err
		}
		// A client that pipelined commands and then closed its sending
		// side (RFC 1939 and 2920 pipelining allow it) still waits for
		// their answers: its context ends only when the session has read
		// through them and meets the end itself. Under TLS what is held
		// is records, not commands, and a client's close_notify before
		// its FIN is how it leaves: a record starts with its content
		// type (20 to 24, RFC 8446 5.1), which no command line does.
		pending := errors.Is(err, io.EOF) && len(c.held) > 0 && c.held[0] >= ' '
		c.mu.Unlock()
		if gone && !pending {
			c.cancel()
		}
		// A timeout is the stop of stopWatch, or the session's own
		// deadline, which its next read then meets as well.
		if err != nil || full {
			return
		}
	}
}

// stopWatch ends a Watch, if one runs, and puts the session's read
// deadline back.
func (c *Conn) stopWatch() {
	c.mu.Lock()
	c.watchGen++
	if c.watchTimer != nil {
		c.watchTimer.Stop()
		c.watchTimer = nil
	}
	done := c.bg
	if done == nil {
		c.mu.Unlock()
		return
	}
	c.stopping = true
	c.Conn.SetReadDeadline(aLongTimeAgo)
	c.mu.Unlock()
	<-done
	c.mu.Lock()
	if c.bg == done {
		c.bg, c.stopping = nil, false
		c.Conn.SetReadDeadline(c.readDeadline)
	}
	c.mu.Unlock()
}

// Close closes the socket, ends the connection's context and gives its
// place back; the Set forgets it.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.cancel()
		c.set.forget(c)
	})
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
