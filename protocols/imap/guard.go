package imap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"basalt/protocols/listener"
)

// The guard wraps every client connection between the socket (or the TLS
// connection over it) and the library. The library has fixed limits of its
// own (a command is at most 50 KiB outside literals, a literal it buffers
// at most 4 KiB, an APPEND at most SessionAppendLimit; 30s to send each
// command before login and 35 minutes after) and no hook for what this
// server also wants, which the guard adds from where it sits:
//
//   - Timeouts: the read deadlines the library sets are shortened to the
//     configured login and autologout limits (RFC 9051 5.4), and when one
//     expires the client is told BYE before the connection closes.
//   - Literals: a non-synchronizing literal (RFC 7888) larger than the
//     command accepts is refused by the library, but the client sends its
//     data anyway, which the library would then read as commands. The
//     guard ends the connection after the library's refusal instead, with
//     "BYE [TOOBIG]" (RFC 7888 4), without reading the data.
//   - The same holds for a non-synchronizing literal of any size whose
//     command the library refuses before it reaches the literal (a
//     syntax error earlier on the line, an APPEND date it cannot parse):
//     the library discards only the rest of the line and would run the
//     literal's data as commands, which lets a message's text, say, run
//     IMAP commands on the user's account. The guard hands the library
//     a literal's data only when it asks for more after the announcing
//     line; if the command was answered first, the connection ends with
//     "BYE [CLIENTBUG]".
//   - A line longer than MaxLineLength ends the connection.
//   - MaxBadCommands tagged BAD responses in a row end the connection.
//
// For that it follows the framing of both directions: where lines end,
// where literals ("{n}", "{n+}") start and how long they are, the first
// two words of a command line (tag and command) and of a tagged response
// (tag and status). It parses nothing else, with three exceptions where
// the library release falls short (quirks.go): it answers ID itself and
// makes LIST and LSUB patterns readable to the library, reading each
// command line's start before handing it over (commandline.go); and in
// responses it writes a partial BINARY section's origin (binorigin.go)
// and an address's source route (adl.go).
//
// STARTTLS: the library answers it and then runs TLS over whatever
// connection it was given, here the guard, which would leave the guard
// below TLS, seeing ciphertext only, for the rest of the session. So when
// the guard sees the library's OK to STARTTLS go out, it takes the
// connection back: the library's session there reads end-of-file and
// ends (it is not authenticated; nothing is lost), and the socket, with
// whatever the client sent after STARTTLS, goes under a TLS server and a
// new guard to the implicit-TLS engine, exactly as a connection to the
// implicit-TLS port does (upgrade in server.go). That engine's greeting
// is not sent: the client expects none after STARTTLS (RFC 9051 6.2.1).
// So every check above holds after STARTTLS as before it.
type guard struct {
	net.Conn
	srv *Server
	// lc is the connection as the server's listener.Set tracks it, under
	// TLS when there is TLS: closing it gives back its place, and its
	// context is the session's.
	lc        *listener.Conn
	sess      atomic.Pointer[session]
	closeOnce sync.Once

	wmu sync.Mutex // one writer at a time: the library's, or the guard's BYE
	// pending is what the library wrote of a command's untagged responses
	// and the guard has not sent yet (under wmu): see Write.
	pending []byte

	mu  sync.Mutex // everything below, shared by the reading and writing goroutines
	in  inScan
	out outScan
	bad int // tagged BAD responses in a row
	// held are bytes read from the client and not yet scanned or given to
	// the library, and heldErr the read error that came after them.
	held    []byte
	heldErr error
	// quiet drops the server's first line: the greeting of a connection
	// that came from STARTTLS.
	quiet bool
	// handedOff says the connection went on under TLS with a new guard
	// after STARTTLS: this one no longer reads, writes or closes it.
	handedOff bool
	poisoned  string // the connection ends at the next read, with this BYE text
	// wdl is the write deadline set on the connection, and wclear says
	// the library has since cleared it, which the next write does (see
	// SetWriteDeadline).
	wdl    time.Time
	wclear bool
	// watch says a command line has just been read whole: unless the
	// client sent more after it, the connection is watched while it
	// runs (listener.Conn.Watch).
	watch bool
	// open says a command is running whose tagged response has not gone
	// out: its untagged responses may wait for it (see Write). Not while
	// the server waits for the client (after a continuation request, in
	// IDLE), when what it writes must go out at once.
	open bool
	// lsub says the command being run is LSUB, which the library hands
	// to the session as a LIST (SUBSCRIBED) (see List).
	lsub atomic.Bool
	// asksUpdates says the command being run is NOOP or CHECK, whose
	// purpose is to hear of changes (see pipelined).
	asksUpdates bool
}

// litScan recognises a literal's announcement at the end of a line:
// "{" digits ["+"] "}" [SP] [CR] LF, all that the library takes for one
// (go-imap's Decoder.CRLF allows a space before the line end, and a bare
// LF): a literal the library reads and the guard does not see would have
// its data taken for command lines here, and escape the literal checks.
type litScan struct {
	state  uint8 // 0 none, 1 digits, 2 after '+', 3 after '}', 4 after CR, 5 after '}' SP
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
	case (l.state == 3 || l.state == 5) && b == '\r':
		l.state = 4
	case l.state == 3 && b == ' ':
		l.state = 5
	default:
		l.state = 0
	}
}

// announced reports, at a line feed, whether the line announced a literal.
func (l *litScan) announced() bool { return l.state >= 3 }

// word collects a space-delimited word: its first len(buf) bytes, for
// matching command and status names, and a hash of all of it with its
// length, for telling tags apart however long they are.
type word struct {
	buf [32]byte
	n   uint32 // length of the whole word
	h   uint64 // FNV-1a of the whole word
}

func (w *word) add(b byte) {
	if w.n == 0 {
		w.h = 14695981039346656037
	}
	if int(w.n) < len(w.buf) {
		w.buf[w.n] = b
	}
	w.n++
	w.h = (w.h ^ uint64(b)) * 1099511628211
}

func (w *word) is(s string) bool {
	if int(w.n) != len(s) || len(s) > len(w.buf) {
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

func (w *word) equal(o *word) bool { return w.n > 0 && w.n == o.n && w.h == o.h }

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
	// litPending says the library has had a line announcing a
	// non-synchronizing literal and not yet the literal's data, which is
	// held back until it asks for more. litTag is the command's tag, and
	// orphan says the command was answered meanwhile: the library did
	// not take the literal and would read its data as commands.
	litPending, orphan bool
	litTag             word
	// startTLS holds the tag of a STARTTLS command awaiting its answer;
	// what the client sent after it is held back until then, as it is
	// the start of the TLS handshake if the answer is OK.
	startTLS    bool
	startTLSTag word
	// afterIdle says the last command was IDLE: the next line is its
	// DONE (RFC 2177), whatever it looks like.
	afterIdle bool
	// A quoted string: the library reads one across line ends, which
	// the guard takes for command ends, so a line end inside one ends
	// the connection. A string starts with a '"' at a token's start
	// (after a space or '('), as the library reads one; prev is the
	// byte before.
	quoted, escaped bool
	prev            byte
}

// atCommandStart reports whether the client's next byte starts a line
// that is a command's first.
func (in *inScan) atCommandStart() bool {
	return in.skip == 0 && !in.cont && in.lineLen == 0
}

// outScan follows what the server sends.
type outScan struct {
	skip  int64
	pos   uint8 // 0 line start, 1 tag, 2 status word, 3 the rest
	tag   word
	state word
	lit   litScan
	// The origin of a partial BINARY section (binorigin.go).
	quoted, escaped bool   // in a quoted string, after its backslash
	bin             int    // how much of "BINARY[" was just seen
	mark            []byte // a marked section part held back, from its "-"
	// Addresses to swap in this response, and how much of the first was
	// just seen (adl.go).
	adl   []adlSwap
	adlAt int
}

func newGuard(c net.Conn, lc *listener.Conn, srv *Server) *guard {
	return &guard{Conn: c, lc: lc, srv: srv}
}

// NetConn returns the connection the guard wraps, so that
// listener.Secure can see a TLS connection underneath.
func (g *guard) NetConn() net.Conn { return g.Conn }

// Read gives the library what the client sent, as far as the scan lets
// it: up to the end of a line that must be answered (or its literal
// asked for) before more is read, and never past the end of a command.
// At the start of each command line it first reads enough to see the
// command (classify): ID it answers itself, and the patterns of LIST
// and LSUB it makes readable to the library (see commandline.go).
func (g *guard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		g.mu.Lock()
		switch {
		case g.handedOff:
			g.mu.Unlock()
			return 0, io.EOF
		case g.in.litPending && g.in.orphan:
			g.poisoned = "[CLIENTBUG] Command refused before its literal; closing rather than reading the literal as commands"
		}
		g.in.litPending, g.in.orphan = false, false
		if poisoned := g.poisoned; poisoned != "" {
			g.mu.Unlock()
			g.byeAndClose(poisoned)
			// io.EOF ends the library's command loop without an error log.
			return 0, io.EOF
		}
		if g.in.atCommandStart() {
			kind, n := g.classify(g.held)
			if kind == lineMore && g.heldErr == nil {
				g.mu.Unlock()
				if err := g.fill(p); err != nil {
					return 0, err
				}
				continue
			}
			switch kind {
			case lineID:
				// Everything before it has been read and answered: the
				// library asks for the next command only then.
				line := g.held[:n]
				if g.held = g.held[n:]; len(g.held) == 0 {
					g.held = nil
				}
				g.mu.Unlock()
				g.answerID(line)
				continue
			case lineList:
				g.held = append(readablePatterns(g.held[:n]), g.held[n:]...)
			}
		}
		if len(g.held) > 0 {
			n := copy(p, g.held)
			k := g.scanIn(p[:n])
			if g.held = g.held[k:]; g.poisoned != "" || len(g.held) == 0 {
				// Nothing kept of a buffer read through: an idle
				// connection holds no memory for it.
				g.held = nil
			}
			g.startWatch()
			g.mu.Unlock()
			return k, nil
		}
		if err := g.heldErr; err != nil {
			g.mu.Unlock()
			return 0, err
		}
		g.mu.Unlock()

		n, err := g.Conn.Read(p)
		g.mu.Lock()
		if g.handedOff {
			g.mu.Unlock()
			return 0, io.EOF
		}
		k := n
		if n > 0 {
			k = g.scanIn(p[:n])
			if k < n && g.poisoned == "" {
				g.held = append([]byte(nil), p[k:n]...)
				if err != nil {
					g.heldErr, err = err, nil
				}
			}
		}
		g.startWatch()
		g.mu.Unlock()
		if err != nil {
			g.readFailed(err)
		}
		return k, err
	}
}

// startWatch has the connection watched while the command just read
// runs, so that a client that goes away meanwhile ends the session's
// context and the command's store calls with it; not when the client has
// sent more already (it is there, pipelining), nor during IDLE, whose
// DONE the library reads meanwhile itself. Called under mu.
func (g *guard) startWatch() {
	if g.watch && len(g.held) == 0 && g.heldErr == nil && g.poisoned == "" && !g.handedOff {
		g.lc.Watch()
	}
	g.watch = false
}

// fill reads more of a command line into held, using p as the buffer.
// A read error with nothing read is returned (and a timeout told to the
// client); one after some bytes is kept for when they have been passed on.
func (g *guard) fill(p []byte) error {
	g.mu.Lock()
	var err error
	if isTLS(g.Conn) {
		// TLS 1.3 answers a client's KeyUpdate from within Read: a
		// write deadline the library cleared but SetWriteDeadline kept
		// would have run out by then on an idle connection, and the
		// failed write ends it. A read that may wait clears it first.
		err = g.dropKeptDeadline()
	}
	g.mu.Unlock()
	if err != nil {
		return err
	}
	n, err := g.Conn.Read(p)
	g.mu.Lock()
	if g.handedOff {
		g.mu.Unlock()
		return io.EOF
	}
	g.held = append(g.held, p[:n]...)
	if n > 0 && err != nil {
		g.heldErr, err = err, nil
	}
	g.mu.Unlock()
	if err != nil {
		g.readFailed(err)
	}
	return err
}

// pipelined reports whether the client has sent more after the command
// being run (it is held, unread by the library: Read gives it no further
// than a command's end), and that command is not one sent to hear of
// changes.
func (g *guard) pipelined() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.held) > 0 && !g.asksUpdates
}

// readFailed says BYE to a client whose time to send a command ran out.
func (g *guard) readFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg := "Timed out waiting for a command"
		if s := g.sess.Load(); s != nil && s.authed.Load() {
			msg = "Autologout; idle for too long" // RFC 9051 5.4
		}
		g.byeAndClose(msg)
	}
}

// scanIn follows the client's bytes and returns how many of them the
// library may have now: all of them, unless a line must be answered
// first (the rest is then the caller's to hold) or the connection is to
// end (the rest is never looked at).
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
			if in.quoted {
				g.poisoned = "[CLIENTBUG] Line break in a quoted string"
				return i + 1
			}
			in.prev = 0
			if g.lineEnd() || g.poisoned != "" {
				return i + 1
			}
			continue
		}
		switch {
		case in.escaped:
			in.escaped = false
		case in.quoted:
			in.escaped = b == '\\'
			in.quoted = b != '"'
		case b == '"' && (in.prev == ' ' || in.prev == '('):
			in.quoted = true
		}
		in.prev = b
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

// lineEnd handles the end of a client line. It reports whether what
// follows must wait until the library has dealt with the line.
func (g *guard) lineEnd() (hold bool) {
	in := &g.in
	announced, lit := in.lit.announced(), in.lit
	in.lineLen, in.lit = 0, litScan{}
	if !announced {
		// The command is complete; the next line starts another, which
		// the next Read looks at first (classify). After IDLE the next
		// line is DONE, no command.
		if !in.cont && in.cmd.is("STARTTLS") {
			in.startTLS, in.startTLSTag = true, in.tag
		}
		g.watch = !in.afterIdle && !in.cmd.is("IDLE") && !in.cmd.is("STARTTLS")
		g.asksUpdates = !in.cont && (in.cmd.is("NOOP") || in.cmd.is("CHECK"))
		g.open = g.watch
		in.afterIdle = !in.cont && in.cmd.is("IDLE")
		in.cont, in.field, in.tag, in.cmd = false, 0, word{}, word{}
		return true
	}
	in.cont = true
	if !lit.plus {
		in.waiting, in.skip = true, lit.n
		return false
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
		return true
	}
	in.skip = lit.n
	in.litPending, in.orphan, in.litTag = true, false, in.tag
	return true
}

// maxPending bounds the untagged responses Write keeps back.
const maxPending = 16 << 10

// pendingBuf returns an empty buffer to keep responses back in. The
// buffers are shared by the server's connections: every command's
// responses pass through one, and making a new one for each was a sixth
// of what IMAP's steady state allocated.
func (srv *Server) pendingBuf() []byte {
	if b, ok := srv.pending.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 4096)
}

// pendingDone gives back a buffer from pendingBuf once it is written; one
// that grew past what Write keeps back (a literal went out with it) is
// left to the collector.
func (srv *Server) pendingDone(b []byte) {
	if cap(b) <= 2*maxPending {
		srv.pending.Put(&b)
	}
}

// Write sends what the library wrote. The library flushes at the end of
// every response line, which cost a system call (and a wakeup of the
// client) per untagged FETCH, EXPUNGE or EXISTS: a command's untagged
// responses are therefore kept back, up to maxPending, and go out with
// its tagged response, a continuation request, or whatever is written
// when no command is running (IDLE's updates, a BYE), in one write. The
// client acts on a command's results once the tagged response came
// (RFC 9051 2.2.2), so nothing waits that it could have used.
func (g *guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	if g.handedOff {
		g.mu.Unlock()
		return 0, net.ErrClosed
	}
	q := p
	if g.quiet {
		i := bytes.IndexByte(q, '\n')
		if i < 0 {
			g.mu.Unlock()
			return len(p), nil
		}
		g.quiet, q = false, q[i+1:]
		if len(q) == 0 {
			g.mu.Unlock()
			return len(p), nil
		}
	}
	w, cut, startTLS := g.scanOut(q)
	hold := g.open && !cut && !startTLS && len(g.pending)+len(w) <= maxPending
	if !hold {
		if err := g.dropKeptDeadline(); err != nil {
			g.mu.Unlock()
			return 0, err
		}
	}
	g.mu.Unlock()
	if hold {
		if g.pending == nil {
			g.pending = g.srv.pendingBuf()
		}
		g.pending = append(g.pending, w...)
		return len(p), nil
	}
	held := len(g.pending) > 0
	var buf []byte
	if held {
		// Not kept: a connection in IDLE holds no buffer.
		w, g.pending = append(g.pending, w...), nil
		buf = w
	}
	n, err := g.Conn.Write(w)
	if buf != nil {
		g.srv.pendingDone(buf)
	}
	if held || len(w) != len(q) {
		// Bytes were put in or held back: all of p or none is written.
		n = 0
		if err == nil {
			n = len(q)
		}
	}
	n += len(p) - len(q)
	if startTLS && err == nil {
		g.handOff()
		return n, nil
	}
	if cut && err == nil {
		g.srv.log.Info("closing connection after repeated bad commands", "remote", g.RemoteAddr().String())
		g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(g.Conn, "* BYE Too many invalid commands\r\n")
		g.Close()
	}
	return n, err
}

// handOff takes the connection from the library after its OK to
// STARTTLS, and has it go on under TLS with a new guard (see guard).
func (g *guard) handOff() {
	g.mu.Lock()
	g.handedOff = true
	held, bad := g.held, g.bad
	g.held, g.heldErr = nil, nil
	g.mu.Unlock()
	go g.srv.upgrade(g, held, bad)
}

// scanOut follows the server's bytes. It reports whether the connection
// has had too many bad commands, and whether this write is STARTTLS's OK;
// and returns what is to be written for p, which is p unless a partial
// BINARY section's origin was put in (binorigin.go).
func (g *guard) scanOut(p []byte) (w []byte, cut, startTLS bool) {
	out, in := &g.out, &g.in
	var res []byte // what is written, once it differs from p
	rewritten := false
	for i := 0; i < len(p); i++ {
		if out.skip > 0 {
			k := int(min(out.skip, int64(len(p)-i)))
			out.skip -= int64(k)
			if rewritten {
				res = append(res, p[i:i+k]...)
			}
			i += k - 1
			continue
		}
		if out.pos == 3 && len(out.adl) == 0 && out.mark == nil && out.bin == 0 && !out.escaped && out.lit.state == 0 {
			// Most of a response is bytes that none of the scans below
			// acts on in this state: they pass in one step.
			if k := plainRun(p[i:], out.quoted); k > 0 {
				if rewritten {
					res = append(res, p[i:i+k]...)
				}
				i += k - 1
				continue
			}
		}
		b := p[i]
		if out.pos == 3 && len(out.adl) > 0 {
			// Addresses to swap (adl.go): what comes of the byte then
			// goes through the BINARY scan.
			pass := out.adlByte(b)
			changed := len(pass) != 1 || pass[0] != b
			var w []byte
			for _, c := range pass {
				emit, held := out.binOrigin(c)
				if held || emit != nil {
					changed = true
					w = append(w, emit...)
				} else {
					w = append(w, c)
				}
			}
			if changed && !rewritten {
				res, rewritten = append(make([]byte, 0, len(p)+16), p[:i]...), true
			}
			if rewritten {
				res = append(res, w...)
			}
		} else if out.pos == 3 {
			emit, held := out.binOrigin(b)
			if held || emit != nil {
				if !rewritten {
					res, rewritten = append(make([]byte, 0, len(p)+16), p[:i]...), true
				}
				res = append(res, emit...)
			} else if rewritten {
				res = append(res, b)
			}
		} else if rewritten {
			res = append(res, b)
		}
		if b == '\n' {
			pos := uint8(0)
			if out.lit.announced() {
				// The response goes on after the literal.
				out.skip, pos = out.lit.n, 3
			} else {
				// Swaps not found in the response are not looked for in
				// the next.
				out.adl, out.adlAt = nil, 0
			}
			out.pos, out.lit, out.tag, out.state = pos, litScan{}, word{}, word{}
			out.quoted, out.escaped, out.bin = false, false, 0
			continue
		}
		out.lit.feed(b)
		switch out.pos {
		case 0:
			switch b {
			case '+':
				// A continuation request: a synchronizing literal's data
				// comes next (or an AUTHENTICATE answer, or DONE). The
				// server now waits for the client: nothing waits in Write.
				in.waiting = false
				out.pos = 3
				g.open = false
			case '*':
				out.pos = 3
			default:
				// A tagged response: its command is done.
				out.tag.add(b)
				out.pos = 1
				g.open = false
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
			if in.litPending && out.tag.equal(&in.litTag) {
				in.orphan = true
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
	if rewritten {
		return res, cut, startTLS
	}
	return p, cut, startTLS
}

// plainRun returns how many of p's first bytes the scan of the rest of a
// response line passes over unchanged, with no literal or BINARY[ begun
// and no backslash before: all but a quote, a brace, a line feed, and
// outside a quoted string the B that may begin "BINARY[", inside one a
// backslash.
func plainRun(p []byte, quoted bool) int {
	for i, b := range p {
		switch b {
		case '"', '{', '\n':
			return i
		case '\\':
			if quoted {
				return i
			}
		case binaryItem[0]:
			if !quoted {
				return i
			}
		}
	}
	return len(p)
}

// SetReadDeadline shortens the library's deadlines to the configured
// ones: LoginTimeout before login, IdleTimeout after.
func (g *guard) SetReadDeadline(t time.Time) error {
	if g.isHandedOff() {
		return nil
	}
	return g.Conn.SetReadDeadline(g.clamp(t))
}

// writeDeadlineSlack is how much earlier than asked a write deadline
// already set may be and be kept.
const writeDeadlineSlack = time.Second

// SetWriteDeadline passes the library's write deadlines on, coarsely. The
// library sets one (30 s on) before every response and clears it after:
// two changes of the connection's timer for each line of output, 2% of
// IMAP's CPU under load. A deadline already set that is at most a second
// short of the new one is kept (the 30 s are then at least 29), and a
// clear waits for the next write, before which the library sets a new
// deadline in any case (Write clears it for one it did not), or on TLS
// for the next read that may wait (fill).
func (g *guard) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.handedOff {
		return nil
	}
	if t.IsZero() {
		g.wclear = !g.wdl.IsZero()
		return nil
	}
	g.wclear = false
	if !g.wdl.IsZero() && !t.Before(g.wdl) && t.Sub(g.wdl) < writeDeadlineSlack {
		return nil
	}
	g.wdl = t
	return g.Conn.SetWriteDeadline(t)
}

// dropKeptDeadline clears a write deadline the library cleared and
// SetWriteDeadline kept. g.mu is held.
func (g *guard) dropKeptDeadline() error {
	if !g.wclear {
		return nil
	}
	g.wclear, g.wdl = false, time.Time{}
	return g.Conn.SetWriteDeadline(time.Time{})
}

func (g *guard) SetDeadline(t time.Time) error {
	if err := g.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.SetReadDeadline(t)
}

func (g *guard) isHandedOff() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.handedOff
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
	if !g.isHandedOff() {
		g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		g.Conn.Write(append(g.pending, "* BYE "+text+"\r\n"...))
		g.pending = nil
	}
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

// Close closes the connection, unless it went on under TLS: the library
// closes its side when its session there ends.
func (g *guard) Close() error {
	if g.isHandedOff() {
		return nil
	}
	var err error
	g.closeOnce.Do(func() {
		// What the library wrote last (a BYE before it hung up) is sent
		// before the connection ends. TryLock: a writer stuck on a slow
		// client, which Close is there to end, holds wmu.
		if g.wmu.TryLock() {
			if len(g.pending) > 0 {
				g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
				g.Conn.Write(g.pending)
				g.pending = nil
			}
			g.wmu.Unlock()
		}
		// Closing TLS closes the listener.Conn under it, which gives
		// back its place.
		err = g.Conn.Close()
	})
	return err
}
