package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"basalt/protocols/listener"
	"basalt/session"
	"basalt/store"
)

// state is a session's RFC 1939 state.
type state int

const (
	stateAuthorization state = iota // RFC 1939 4
	stateTransaction                // RFC 1939 5
	stateUpdate                     // RFC 1939 6
)

// saslLineMax bounds a client's SASL response line. It may be longer than
// a command (RFC 5034 4 lifts RFC 2449's 255 octets for it); 8 KiB holds
// any password PLAIN carries.
const saslLineMax = 8 << 10

// errLineTooLong is a line longer than allowed; the rest of it has been
// read and thrown away.
var errLineTooLong = errors.New("line too long")

// popSession is one connection's conversation.
type popSession struct {
	srv    *Server
	c      *conn
	nc     net.Conn // c, or TLS over it
	r      *bufio.Reader
	w      *bufio.Writer
	tls    bool
	remote string
	log    *slog.Logger
	line   []byte // the line being read, reused

	state state
	bad   int    // refused commands so far
	user  string // from USER, for the PASS that must follow it

	// Set at login.
	auth    *session.Auth
	acct    *store.Account
	lock    *store.MaildropLock
	drop    *store.Maildrop
	live    *session.Conn // the user's live session (session.Front.Open)
	deleted []bool        // by message number - 1
}

// reply is a refusal: the text after "-ERR ", and whether it counts
// toward MaxBadCommands (the client's mistakes and failed logins do; the
// server's own troubles and a busy maildrop do not).
type reply struct {
	text  string
	count bool
}

func (r *reply) Error() string { return r.text }

func bad(format string, args ...any) *reply {
	return &reply{text: fmt.Sprintf(format, args...), count: true}
}

// Refusals given in more than one place. The codes are RFC 2449 8 and
// RFC 3206's.
var (
	errWrongState  = bad("Command not valid in this state")
	errNoMessage   = bad("No such message")
	errTemporary   = &reply{text: "[SYS/TEMP] Temporary failure, try again later"}
	errPlaintext   = bad("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS or TLS")
	errAuthFailed  = bad("[AUTH] Authentication failed")
	errInUse       = &reply{text: "[IN-USE] Maildrop in use by another session"}
	errLockLost    = &reply{text: "[IN-USE] Maildrop lock lost to another session; QUIT and log in again"}
	errTooManyArgs = bad("Too many arguments")
)

func (s *Server) handle(c *conn, implicitTLS bool) {
	defer c.Close()
	p := &popSession{srv: s, c: c, nc: c, remote: c.RemoteAddr().String()}
	p.log = s.log.With("remote", p.remote)
	defer p.end()
	if implicitTLS {
		if !p.startTLS() {
			return
		}
	} else {
		p.setIO()
	}
	p.ok("%s Basalt POP3 server ready", s.cfg.Hostname)
	p.loop()
}

func (p *popSession) setIO() {
	p.r = bufio.NewReaderSize(p.nc, 4096)
	p.w = bufio.NewWriterSize(p.nc, 16<<10)
}

// startTLS runs the server side of a TLS handshake over the connection,
// within the login timeout.
func (p *popSession) startTLS() bool {
	ctx := p.ctx()
	if d := p.srv.cfg.LoginTimeout; d >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	tc := tls.Server(p.c, p.srv.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		p.log.Debug("pop3 tls handshake failed", "err", err)
		return false
	}
	p.nc, p.tls = tc, true
	p.setIO()
	return true
}

// end releases what the session holds. A session that did not QUIT
// removes nothing (RFC 1939 6).
func (p *popSession) end() {
	p.live.Close()
	p.release()
}

// release gives up the maildrop lock, if held.
func (p *popSession) release() {
	if p.lock != nil {
		p.lock.Unlock()
		p.lock = nil
	}
}

// ctx is the connection's context: it ends when the client goes away,
// so a command's store calls stop with it.
func (p *popSession) ctx() context.Context { return p.c.Context() }

// loop reads and carries out commands until the session ends.
func (p *popSession) loop() {
	for {
		timeout := p.srv.cfg.LoginTimeout
		if p.state == stateTransaction {
			timeout = p.srv.cfg.IdleTimeout
		}
		// Answers to pipelined commands (RFC 2449 6.6) go out together,
		// when the client has sent nothing more.
		if p.r.Buffered() == 0 {
			if err := p.w.Flush(); err != nil {
				return
			}
		}
		if !p.c.idle(timeout) {
			p.shuttingDown()
			return
		}
		if p.c.revoked() != "" {
			return // nothing asked, nothing to answer (conn.revoke)
		}
		line, err := p.readLine(p.srv.cfg.MaxLineLength)
		p.c.begin()
		if why := p.c.revoked(); why != "" {
			// A command came in as the session was ended: it is
			// refused, and a QUIT removes nothing (RFC 1939 6).
			if err == nil {
				p.err("[AUTH] Session ended: " + why)
				p.w.Flush()
			}
			return
		}
		switch {
		case errors.Is(err, errLineTooLong):
			if !p.refuse(bad("Line too long")) {
				return
			}
			continue
		case err != nil:
			if p.c.isDraining() {
				p.shuttingDown()
			}
			// A client that stays silent too long is dropped without an
			// answer and without entering UPDATE (RFC 1939 3).
			return
		}
		if !p.command(line) {
			p.w.Flush()
			return
		}
	}
}

func (p *popSession) shuttingDown() {
	p.err("[SYS/TEMP] Server shutting down, try again later")
	p.w.Flush()
}

// readLine reads one line of at most max octets (CRLF included) and
// returns it without its line end. A longer line is read to its end and
// thrown away, never held, and errLineTooLong returned.
func (p *popSession) readLine(max int) (string, error) {
	p.line = p.line[:0]
	tooLong := false
	for {
		chunk, err := p.r.ReadSlice('\n')
		if !tooLong {
			if len(p.line)+len(chunk) > max {
				tooLong = true
			} else {
				p.line = append(p.line, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return "", errLineTooLong
			}
			line := p.line[:len(p.line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(p.line) > 0:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

func (p *popSession) ok(format string, args ...any) {
	if format == "" {
		p.w.WriteString("+OK\r\n")
		return
	}
	p.w.WriteString("+OK ")
	fmt.Fprintf(p.w, format, args...)
	p.w.WriteString("\r\n")
}

func (p *popSession) err(text string) {
	p.w.WriteString("-ERR " + text + "\r\n")
}

// refuse answers -ERR and counts the refusal when it is the client's;
// false means the connection has had as many as it may and must close.
func (p *popSession) refuse(r *reply) bool {
	if !r.count {
		p.err(r.text)
		return true
	}
	p.bad++
	if max := p.srv.cfg.MaxBadCommands; max > 0 && p.bad >= max {
		p.err(r.text + "; too many errors, closing connection")
		p.log.Info("pop3 connection closed after too many errors", "errors", p.bad)
		return false
	}
	p.err(r.text)
	return true
}

// command carries out one command line; false ends the session.
func (p *popSession) command(line string) bool {
	name, rest, _ := strings.Cut(line, " ")
	name = strings.ToUpper(name)
	args := strings.Fields(rest)
	// The client waits for the answer, having sent nothing more: one
	// that goes away meanwhile ends the connection's context, and the
	// command's store calls with it (listener.Conn.Watch). Not QUIT,
	// whose removals are done however the client leaves (RFC 1939 6),
	// nor STLS and AUTH, which read from the client again before they
	// answer (the TLS handshake, the SASL exchange).
	switch name {
	case "QUIT", "STLS", "AUTH":
	default:
		if p.r.Buffered() == 0 {
			p.c.Watch()
		}
	}
	// USER and PASS take the rest of the line: a password may hold
	// spaces (RFC 1939 7, PASS).
	if name != "PASS" {
		p.user = ""
	}
	switch p.state {
	case stateAuthorization:
		switch name {
		case "CAPA":
			return p.capa(args)
		case "STLS":
			return p.stls(args)
		case "USER":
			return p.userCmd(strings.TrimSpace(rest))
		case "PASS":
			return p.pass(rest)
		case "AUTH":
			return p.authCmd(args)
		case "APOP":
			return p.refuse(bad("APOP is not supported; use USER/PASS or AUTH"))
		case "QUIT":
			p.ok("Bye")
			return false
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			return p.refuse(bad("Not logged in"))
		}
	case stateTransaction:
		switch name {
		case "CAPA":
			return p.capa(args)
		case "STAT":
			return p.stat(args)
		case "LIST":
			return p.list(args)
		case "UIDL":
			return p.uidl(args)
		case "RETR":
			return p.retr(args)
		case "TOP":
			return p.top(args)
		case "DELE":
			return p.dele(args)
		case "NOOP":
			if len(args) > 0 {
				return p.refuse(errTooManyArgs)
			}
			p.ok("")
			return true
		case "RSET":
			return p.rset(args)
		case "QUIT":
			p.update()
			return false
		case "USER", "PASS", "AUTH", "APOP", "STLS":
			return p.refuse(errWrongState)
		}
	}
	return p.refuse(bad("Unknown command"))
}

// plaintextOK reports whether a password may be sent in the clear here:
// over TLS, from loopback or a unix socket (listener.Secure), or anywhere
// when the configuration allows it (RFC 2595 2.3 leaves it to policy).
func (p *popSession) plaintextOK() bool {
	return p.tls || p.srv.cfg.AllowPlaintextAuth || (p.srv.trustLoopback && listener.Secure(p.c.Conn))
}

// capa answers CAPA (RFC 2449 5) with what this connection offers in its
// present state.
func (p *popSession) capa(args []string) bool {
	if len(args) > 0 {
		return p.refuse(errTooManyArgs)
	}
	p.ok("Capability list follows")
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if d := p.srv.cfg.LoginDelay; d > 0 {
		caps = append(caps, fmt.Sprintf("LOGIN-DELAY %d", int64(d.Seconds())))
	}
	if p.state == stateAuthorization {
		if p.plaintextOK() {
			caps = append(caps, "USER")
		}
		if m := p.mechanisms(); len(m) > 0 {
			caps = append(caps, "SASL "+strings.Join(m, " "))
		}
		if p.srv.cfg.TLS != nil && !p.tls {
			caps = append(caps, "STLS")
		}
	}
	caps = append(caps, "IMPLEMENTATION Basalt")
	for _, c := range caps {
		p.w.WriteString(c + "\r\n")
	}
	p.w.WriteString(".\r\n")
	return true
}

// stls starts TLS (RFC 2595 4).
func (p *popSession) stls(args []string) bool {
	switch {
	case len(args) > 0:
		return p.refuse(errTooManyArgs)
	case p.tls:
		return p.refuse(bad("Already using TLS"))
	case p.srv.cfg.TLS == nil:
		return p.refuse(bad("STLS is not available"))
	}
	p.ok("Begin TLS negotiation")
	if p.w.Flush() != nil {
		return false
	}
	// Whatever the client sent after STLS in the clear is dropped, not
	// taken as if it came over TLS (the STARTTLS command injection of
	// CVE-2011-0411).
	p.r.Discard(p.r.Buffered())
	return p.startTLS()
}

func (p *popSession) userCmd(name string) bool {
	switch {
	case !p.plaintextOK():
		return p.refuse(errPlaintext)
	case name == "":
		return p.refuse(bad("USER needs a name"))
	}
	// The same answer whether or not the user exists (RFC 1939 7 allows
	// -ERR for an unknown name, which would tell a guesser which exist).
	p.user = name
	p.ok("Send your password")
	return true
}

func (p *popSession) pass(password string) bool {
	user := p.user
	p.user = ""
	switch {
	case user == "":
		return p.refuse(bad("PASS must follow USER"))
	case !p.plaintextOK():
		return p.refuse(errPlaintext)
	}
	if err := p.password(user, password); err != nil {
		return p.refuse(asReply(err))
	}
	p.loggedIn()
	return true
}

// password checks a password with the session service, whose throttle
// counts the attempt, and opens the maildrop.
func (p *popSession) password(login, password string) error {
	a, err := p.srv.auth.Authenticate(p.ctx(), login, password, p.remote)
	return p.admit(login, a, err)
}

// admit takes the outcome of a login by any mechanism: on success it locks
// the maildrop and fixes its message list (RFC 1939 4: the session then
// has exclusive access).
func (p *popSession) admit(login string, a *session.Auth, err error) error {
	if err != nil {
		p.log.Info("pop3 login failed", "login", login, "err", err)
		switch {
		case errors.Is(err, session.ErrAuthFailed):
			return errAuthFailed
		case errors.Is(err, session.ErrThrottled):
			// Temporary (RFC 3206 4): the client should come back later,
			// not ask the user for another password.
			return bad("[SYS/TEMP] Too many failed logins, try again later")
		case errors.Is(err, session.ErrUserLocked):
			return bad("[AUTH] Account locked")
		}
		return errTemporary
	}
	if d := p.srv.cfg.LoginDelay; d > 0 {
		// RFC 2449 6.5: what CAPA advertises is kept, per user, across
		// nodes sharing the cache.
		due, err := p.srv.store.LoginDue(p.ctx(), "pop3", a.User.ID, d)
		if err != nil {
			// The delay is a courtesy to the server, not a protection:
			// with the cache away, the login goes on rather than fail.
			p.log.Warn("pop3 login delay not checked", "user", a.User.Address, "err", err)
			due = true
		}
		if !due {
			p.log.Info("pop3 login within the login delay", "user", a.User.Address)
			return bad("[LOGIN-DELAY] Minimum time between logins has not passed")
		}
	}
	lock, err := p.srv.store.LockMaildrop(p.ctx(), a.User.ID)
	if errors.Is(err, store.ErrInUse) {
		p.log.Info("pop3 maildrop in use", "user", a.User.Address)
		return errInUse
	}
	if err != nil {
		p.log.Error("pop3 lock maildrop", "user", a.User.Address, "err", err)
		return errTemporary
	}
	acct := a.Account(p.srv.store)
	md, err := acct.Maildrop(p.ctx())
	if err != nil {
		lock.Unlock()
		p.log.Error("pop3 open maildrop", "user", a.User.Address, "err", err)
		return errTemporary
	}
	p.auth, p.acct, p.lock, p.drop = a, acct, lock, md
	p.deleted = make([]bool, len(md.Messages))
	p.live = p.srv.auth.Open(a, p.remote, p.c.revoke)
	p.state = stateTransaction
	p.log = p.log.With("user", a.User.Address)
	p.log.Info("pop3 login", "tls", p.tls, "messages", len(md.Messages))
	return nil
}

func (p *popSession) loggedIn() {
	n, size := p.totals()
	p.ok("Logged in, maildrop has %d messages (%d octets)", n, size)
}

// asReply is the refusal for a login error: this package's own, or a
// SASL exchange that broke down.
func asReply(err error) *reply {
	if r, ok := errors.AsType[*reply](err); ok {
		return r
	}
	return bad("Malformed authentication exchange")
}
