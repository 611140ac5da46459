package imap

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The guard wraps every client connection between the socket and the
// library. The library has fixed limits of its own (a command is at most
// 50 KiB outside literals, a literal it buffers at most 4 KiB, an APPEND
// at most SessionAppendLimit; 30s to send each command before login and
// 35 minutes after) and no hook for what this server also wants, which
// the guard adds from where it sits:
//
//   - Timeouts: the read deadlines the library sets are shortened to the
//     configured login and autologout limits (RFC 9051 5.4), and when one
//     expires the client is told BYE before the connection closes.
//   - Literals: a non-synchronizing literal (RFC 7888) larger than the
//     command accepts is refused by the library, but the client sends its
//     data anyway, which the library would then read as commands. The
//     guard ends the connection after the library's refusal instead, with
//     "BYE [TOOBIG]" (RFC 7888 4), without reading the data.
//   - A line longer than MaxLineLength ends the connection.
//   - MaxBadCommands tagged BAD responses in a row end the connection.
//
// For that it follows the framing of both directions: where lines end,
// where literals ("{n}", "{n+}") start and how long they are, the first
// two words of a command line (tag and command) and of a tagged response
// (tag and status). It parses nothing else; the commands are the
// library's to parse. After STARTTLS the guard sees only ciphertext, so
// these checks stop there and the library's own limits remain; implicit
// TLS (ServeTLS) keeps them, as the guard sits above TLS there.
type guard struct {
	net.Conn
	srv         *Server
	release     func()
	implicitTLS bool
	sess        atomic.Pointer[session]
	closeOnce   sync.Once

	wmu sync.Mutex // one writer at a time: the library's, or the guard's BYE

	mu          sync.Mutex // the scanners, shared by the reading and writing goroutines
	in          inScan
	out         outScan
	bad         int    // tagged BAD responses in a row
	passthrough bool   // TLS runs over the guard: nothing more to see
	poisoned    string // the connection ends at the next read, with this BYE text
}

// litScan recognises a literal's announcement at the end of a line:
// "{" digits ["+"] "}" CRLF.
type litScan struct {
	state  uint8 // 0 none, 1 digits, 2 after '+', 3 after '}', 4 after CR
	digits uint8
	plus   bool
	n      int64
}

func (l *litScan) feed(b byte) {
	switch {
	case b == '{':
		*l = litScan{state: 1}
	case l.state == 1 && b >= '0' && b <= '9':
		if l.n < 1<<50 {
			l.n = l.n*10 + int64(b-'0')
		}
		l.digits++
	case l.state == 1 && b == '+' && l.digits > 0:
		l.state, l.plus = 2, true
	case (l.state == 1 && l.digits > 0 || l.state == 2) && b == '}':
		l.state = 3
	case l.state == 3 && b == '\r':
		l.state = 4
	default:
		l.state = 0
	}
}

// announced reports, at a line feed, whether the line announced a literal.
func (l *litScan) announced() bool { return l.state == 3 || l.state == 4 }

// word collects up to len(buf) bytes of a space-delimited word.
type word struct {
	buf [32]byte
	n   uint8
	big bool // longer than buf
}

func (w *word) add(b byte) {
	if int(w.n) < len(w.buf) {
		w.buf[w.n] = b
		w.n++
	} else {
		w.big = true
	}
}

func (w *word) is(s string) bool {
	if w.big || int(w.n) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := w.buf[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func (w *word) equal(o *word) bool {
	return !w.big && !o.big && w.n == o.n && w.buf == o.buf
}

// inScan follows what the client sends.
type inScan struct {
	skip    int64 // literal data still to pass unscanned
	lineLen int
	cont    bool  // the line continues a command after a literal
	field   uint8 // on a command's first line: 0 tag, 1 command, 2 the rest
	tag     word
	cmd     word
	lit     litScan
	// A synchronizing literal's data follows only if the server answers
	// "+"; a tagged answer instead refuses it, and the client sends none.
	// Its length is put in skip at once, so that data sent without
	// waiting (as some clients do) is passed over too, and taken back if
	// the server refuses the literal.
	waiting bool
	// startTLS holds the tag of a STARTTLS command awaiting its answer.
	startTLS    bool
	startTLSTag word
}

// outScan follows what the server sends.
type outScan struct {
	skip  int64
	pos   uint8 // 0 line start, 1 tag, 2 status word, 3 the rest
	tag   word
	state word
	lit   litScan
}

func newGuard(c net.Conn, srv *Server, release func(), implicitTLS bool) *guard {
	return &guard{Conn: c, srv: srv, release: release, implicitTLS: implicitTLS}
}

// NetConn returns the connection the guard wraps, so that
// connlimit.Secure can see a TLS connection underneath.
func (g *guard) NetConn() net.Conn { return g.Conn }

var errPoisoned = errors.New("connection ended by the server")

func (g *guard) Read(p []byte) (int, error) {
	g.mu.Lock()
	poisoned, passthrough := g.poisoned, g.passthrough
	g.mu.Unlock()
	if poisoned != "" {
		g.byeAndClose(poisoned)
		// io.EOF ends the library's command loop without an error log.
		return 0, io.EOF
	}
	n, err := g.Conn.Read(p)
	if n > 0 && !passthrough {
		g.mu.Lock()
		n = g.scanIn(p[:n])
		g.mu.Unlock()
	}
	if err != nil && !passthrough {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			msg := "Timed out waiting for a command"
			if s := g.sess.Load(); s != nil && s.authed.Load() {
				msg = "Autologout; idle for too long" // RFC 9051 5.4
			}
			g.byeAndClose(msg)
		}
	}
	return n, err
}

// scanIn follows the client's bytes and returns how many of them the
// library may have: all of them, unless the connection is to end, in
// which case the rest is never looked at.
func (g *guard) scanIn(p []byte) int {
	in := &g.in
	for i := 0; i < len(p); i++ {
		if in.skip > 0 {
			k := int(min(in.skip, int64(len(p)-i)))
			in.skip -= int64(k)
			i += k - 1
			continue
		}
		b := p[i]
		if b == '\n' {
			g.lineEnd()
			if g.poisoned != "" {
				return i + 1
			}
			continue
		}
		in.lineLen++
		if in.lineLen > g.srv.cfg.MaxLineLength {
			g.poisoned = "Command line too long"
			return i + 1
		}
		in.lit.feed(b)
		if !in.cont {
			switch in.field {
			case 0:
				if b == ' ' {
					in.field = 1
				} else {
					in.tag.add(b)
				}
			case 1:
				if b == ' ' || b == '\r' {
					in.field = 2
				} else {
					in.cmd.add(b)
				}
			}
		}
	}
	return len(p)
}

// lineEnd handles the end of a client line.
func (g *guard) lineEnd() {
	in := &g.in
	announced, lit := in.lit.announced(), in.lit
	in.lineLen, in.lit = 0, litScan{}
	if !announced {
		// The command is complete; the next line starts another.
		if !in.cont && in.cmd.is("STARTTLS") {
			in.startTLS, in.startTLSTag = true, in.tag
		}
		in.cont, in.field, in.tag, in.cmd = false, 0, word{}, word{}
		return
	}
	in.cont = true
	if !lit.plus {
		in.waiting, in.skip = true, lit.n
		return
	}
	// The library buffers literals of at most 4 KiB for any command but
	// APPEND, whose limit is the session's.
	limit := int64(4096)
	if in.cmd.is("APPEND") {
		limit = 0
		if s := g.sess.Load(); s != nil {
			limit = int64(s.AppendLimit())
		}
	}
	if lit.n > limit {
		g.poisoned = "[TOOBIG] Literal too large" // RFC 7888 4
		return
	}
	in.skip = lit.n
}

func (g *guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	if g.passthrough {
		g.mu.Unlock()
		return g.Conn.Write(p)
	}
	cut, startTLS := g.scanOut(p)
	g.mu.Unlock()
	n, err := g.Conn.Write(p)
	if startTLS {
		// The library starts TLS over the guard once this OK is out.
		g.mu.Lock()
		g.passthrough = true
		g.mu.Unlock()
	}
	if cut && err == nil {
		g.srv.log.Info("closing connection after repeated bad commands", "remote", g.RemoteAddr().String())
		g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(g.Conn, "* BYE Too many invalid commands\r\n")
		g.Close()
	}
	return n, err
}

// scanOut follows the server's bytes. It reports whether the connection
// has had too many bad commands, and whether this write is STARTTLS's OK.
func (g *guard) scanOut(p []byte) (cut, startTLS bool) {
	out, in := &g.out, &g.in
	for i := 0; i < len(p); i++ {
		if out.skip > 0 {
			k := int(min(out.skip, int64(len(p)-i)))
			out.skip -= int64(k)
			i += k - 1
			continue
		}
		b := p[i]
		if b == '\n' {
			if out.lit.announced() {
				out.skip = out.lit.n
			}
			out.pos, out.lit, out.tag, out.state = 0, litScan{}, word{}, word{}
			continue
		}
		out.lit.feed(b)
		switch out.pos {
		case 0:
			switch b {
			case '+':
				// A continuation request: a synchronizing literal's data
				// comes next (or an AUTHENTICATE answer, or DONE).
				in.waiting = false
				out.pos = 3
			case '*':
				out.pos = 3
			default:
				out.tag.add(b)
				out.pos = 1
			}
		case 1:
			if b == ' ' {
				out.pos = 2
			} else {
				out.tag.add(b)
			}
		case 2:
			if b != ' ' && b != '\r' {
				out.state.add(b)
				continue
			}
			out.pos = 3
			if in.waiting {
				// The command was answered before its literal was taken:
				// the client sends no data, and its next line is a command.
				in.waiting, in.skip = false, 0
				in.cont, in.field, in.tag, in.cmd = false, 0, word{}, word{}
			}
			switch {
			case out.state.is("BAD"):
				g.bad++
				if g.bad >= g.srv.cfg.MaxBadCommands {
					cut = true
				}
			case out.state.is("OK"):
				g.bad = 0
				if in.startTLS && out.tag.equal(&in.startTLSTag) {
					startTLS = true
				}
			}
			if in.startTLS && out.tag.equal(&in.startTLSTag) {
				in.startTLS = false
			}
		}
	}
	return cut, startTLS
}

// SetReadDeadline shortens the library's deadlines to the configured
// ones: LoginTimeout before login, IdleTimeout after.
func (g *guard) SetReadDeadline(t time.Time) error {
	return g.Conn.SetReadDeadline(g.clamp(t))
}

func (g *guard) SetDeadline(t time.Time) error {
	if err := g.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.Conn.SetReadDeadline(g.clamp(t))
}

func (g *guard) clamp(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	limit := g.srv.cfg.LoginTimeout
	if s := g.sess.Load(); s != nil && s.authed.Load() {
		limit = g.srv.cfg.IdleTimeout
	}
	if latest := time.Now().Add(limit); t.After(latest) {
		return latest
	}
	return t
}

// byeAndClose tells the client why the connection ends, then ends it.
func (g *guard) byeAndClose(text string) {
	g.wmu.Lock()
	g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(g.Conn, "* BYE "+text+"\r\n")
	g.wmu.Unlock()
	g.Close()
}

// bye ends the connection for a shutdown: after the store operation the
// session is in, with BYE.
func (g *guard) bye(text string) {
	if s := g.sess.Load(); s != nil {
		s.shutdown(text)
		return
	}
	g.Close()
}

func (g *guard) Close() error {
	var err error
	g.closeOnce.Do(func() {
		err = g.Conn.Close()
		g.release()
		g.srv.forget(g)
	})
	return err
}
