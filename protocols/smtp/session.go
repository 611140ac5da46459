package smtp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"basalt/delivery"
	"basalt/protocols/listener"
	"basalt/protocols/saslserver"
	"basalt/session"
)

// smtpSession is one SMTP session: from EHLO to QUIT, or to a STARTTLS,
// after which go-smtp starts a new one on the same connection.
type smtpSession struct {
	srv    *Server
	conn   *conn
	c      *smtp.Conn
	role   Role
	remote string // the client's host:port, for logs and the login throttle

	// mu guards the transaction: with BDAT (RFC 3030) go-smtp runs Data on
	// a goroutine of its own while RSET may still come in.
	mu       sync.Mutex
	user     *session.Auth
	live     *session.Conn      // the user's live session (session.Front.Open)
	env      *delivery.Envelope // nil outside a transaction
	rcpts    []delivery.Recipient
	accepted []accepted
}

// accepted is one RCPT the agent took: the address as the client gave it
// (LMTP answers each by it, RFC 2033 4.2) and its recipient in rcpts,
// where a repeated address appears once so it is stored once.
type accepted struct {
	to  string
	idx int
}

// tracked finds Basalt's conn under go-smtp's, and under TLS.
func tracked(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// newSession is go-smtp's Backend: it is called at the first HELO, EHLO or
// LHLO of a connection, and again after STARTTLS.
func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	cn := tracked(c.Conn())
	if cn == nil {
		return nil, errors.New("connection not admitted") // cannot happen: listener admits all
	}
	cn.mu.Lock()
	cn.top = c.Conn()
	cn.mu.Unlock()
	return &smtpSession{srv: s, conn: cn, c: c, role: cn.role, remote: listener.AddrString(c.Conn().RemoteAddr())}, nil
}

// ctx is the connection's context: it ends when the client goes away or
// the server aborts, and the agent's calls with it.
func (s *smtpSession) ctx() context.Context { return s.conn.Context() }

func (s *smtpSession) isTLS() bool {
	_, ok := s.c.TLSConnectionState()
	return ok
}

// newID names a transaction: 13 characters, random enough that two seldom
// meet in a log.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// refuse gives a refused command its reply. A permanent refusal counts
// toward the connection's error cutoff; the one that reaches it is
// answered 421 instead and the connection closed.
func (s *smtpSession) refuse(err error) error {
	r := reply(err)
	if r.Code >= 500 && s.conn.violation() {
		return s.hangup(errTooManyErrors)
	}
	return r
}

// hangup answers the command with e and closes the connection (RFC 5321
// 3.8: a server that must close answers 421 to whatever came). go-smtp
// would write e only after the session method returns, and has no way to
// close after it; so it is written here, and go-smtp's own write then
// fails on the closed connection.
func (s *smtpSession) hangup(e *smtp.SMTPError) error {
	s.srv.log.Info("smtp connection dropped", "role", s.role, "remote", s.remote, "reason", e.Message)
	fmt.Fprintf(s.c.Conn(), "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
	s.c.Close()
	return e
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.conn.isDraining() {
		return s.hangup(errShuttingDown)
	}
	if err := s.revoked(); err != nil {
		return err
	}
	s.mu.Lock()
	user, open := s.user, s.env != nil
	s.mu.Unlock()
	if open {
		// RFC 5321 4.1.4: MAIL inside a transaction is out of sequence;
		// go-smtp would keep the first one's recipients.
		return errBadSequence
	}
	if s.role.submission() && user == nil {
		return s.refuse(delivery.ErrNeedsAuth) // RFC 4954 6: 530 5.7.0
	}
	if !s.conn.mayStartMessage() {
		return s.hangup(errTooManyMsgs)
	}
	env := &delivery.Envelope{
		Source: s.role.source(), From: from, RemoteIP: s.conn.ip, Helo: s.c.Hostname(),
		TLS: s.isTLS(), Auth: user, ID: newID(),
	}
	if err := s.srv.agent.CheckSender(s.ctx(), env); err != nil {
		s.srv.log.Info("smtp sender refused", "id", env.ID, "role", s.role, "remote", s.remote, "from", from, "err", err)
		return s.refuse(err)
	}
	s.mu.Lock()
	s.env, s.rcpts, s.accepted = env, nil, nil
	s.mu.Unlock()
	s.conn.setBusy(true)
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.revoked(); err != nil {
		return err
	}
	s.mu.Lock()
	env := s.env
	s.mu.Unlock()
	if env == nil {
		return errBadSequence // go-smtp sends RCPT on only after a MAIL that was taken
	}
	r, err := s.srv.agent.CheckRecipient(s.ctx(), env, to)
	if err != nil {
		s.srv.log.Info("smtp recipient refused", "id", env.ID, "role", s.role, "remote", s.remote, "rcpt", to, "err", err)
		return s.refuse(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := slices.IndexFunc(s.rcpts, func(x delivery.Recipient) bool { return x.Address == r.Address })
	if idx < 0 {
		idx = len(s.rcpts)
		s.rcpts = append(s.rcpts, r)
	}
	s.accepted = append(s.accepted, accepted{to: to, idx: idx})
	return nil
}

// Data answers SMTP's DATA (and BDAT LAST) once for the message (RFC 5321
// 4.1.1.4). When some recipients failed and others did not, the message
// is taken (250) and the failures go back to the sender as a bounce.
func (s *smtpSession) Data(r io.Reader) error {
	if err := s.revoked(); err != nil {
		return err
	}
	env, rcpts, _, err := s.begin()
	if err != nil {
		return err
	}
	results, err := s.deliver(env, rcpts, r)
	if err != nil {
		return err
	}
	var failed []failure
	for i, e := range results.errs {
		if e != nil {
			failed = append(failed, failure{rcpt: rcpts[i].Address, err: e})
		}
	}
	if len(failed) == len(rcpts) {
		return reply(failed[0].err)
	}
	if len(failed) > 0 {
		s.srv.bounceLater(s.ctx(), env, failed, results.header)
	}
	return delivered(env)
}

// delivered is the reply to a message taken: 250 with the transaction's
// ID, which is in the log and the Received header too. go-smtp takes a
// reply as the error value.
func delivered(env *delivery.Envelope) error {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Delivered, id " + env.ID}
}

// LMTPData answers each recipient for itself (RFC 2033 4.2), in the order
// of their RCPT commands.
func (s *smtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	env, rcpts, acc, err := s.begin()
	if err != nil {
		return err
	}
	results, err := s.deliver(env, rcpts, r)
	if err != nil {
		return err // go-smtp gives it to every recipient
	}
	for _, a := range acc {
		if err := results.errs[a.idx]; err != nil {
			status.SetStatus(a.to, reply(err))
		} else {
			status.SetStatus(a.to, delivered(env))
		}
	}
	return nil
}

// begin takes the transaction as it stands at DATA.
func (s *smtpSession) begin() (*delivery.Envelope, []delivery.Recipient, []accepted, error) {
	s.mu.Lock()
	env, rcpts, acc := s.env, s.rcpts, s.accepted
	s.mu.Unlock()
	if env == nil || len(rcpts) == 0 {
		return nil, nil, nil, errBadSequence
	}
	s.conn.countMessage()
	return env, rcpts, acc, nil
}

// outcome is a delivery's result per recipient (in the order of rcpts)
// and the message's header, which a bounce returns (RFC 3464 2).
type outcome struct {
	errs   []error
	header []byte
}

// deliver hands the message to the agent, which answers once it is
// durable, and logs the transaction.
func (s *smtpSession) deliver(env *delivery.Envelope, rcpts []delivery.Recipient, r io.Reader) (outcome, error) {
	if !s.srv.inflight.Start() {
		return outcome{}, errShuttingDown
	}
	defer s.srv.inflight.Done()
	start := time.Now()
	body := &countingReader{r: r}
	results, err := s.srv.agent.Deliver(s.ctx(), env, rcpts, body)
	var e *smtp.SMTPError
	switch {
	case body.err != nil && body.err != io.EOF:
		e = readError(body.err) // the client's side failed, whatever the agent made of it
	case err != nil:
		e = reply(err)
	}
	attrs := []any{"id", env.ID, "role", s.role, "remote", s.remote, "from", env.From, "rcpts", len(rcpts),
		"size", body.n, "ms", time.Since(start).Milliseconds()}
	if e != nil {
		cause := err
		if body.err != nil && body.err != io.EOF {
			cause = body.err
		}
		s.srv.log.Info("smtp message refused", append(attrs, "reply", e.Code, "err", cause)...)
		if e == errReadTimeout || e == errLineTooLong || e == errBareNewline {
			// The client's side is done for: go-smtp would answer again
			// at its next read, so answer once and close here.
			return outcome{}, s.hangup(e)
		}
		return outcome{}, e
	}
	failed := 0
	for _, r := range results {
		if r != nil {
			failed++
		}
	}
	s.srv.log.Info("smtp message accepted", append(attrs, "failed", failed)...)
	return outcome{errs: results, header: body.head}, nil
}

// headMax bounds the copy of a message's beginning kept for a bounce.
const headMax = 64 << 10

// errBareNewlineRead stops the reading of a message with a CR or LF that
// is not part of a CRLF pair. RFC 5321 2.3.8 and RFC 5322 2.3 allow
// neither in a message; a server that takes them and relays the message
// lets "<LF>.<CR><LF>" or "<CR>.<CR><LF>" end the message early at a host
// that reads them as a line end: SMTP smuggling (CVE-2023-51764/5/6),
// where the rest is taken as further commands, a forged message. The
// message is refused, and the connection closed: the client may think
// its message ended where this server did not, so what it sends next is
// not reliably a command.
var errBareNewlineRead = errors.New("bare CR or LF in the message")

// countingReader counts the message, keeps the reading's error, keeps the
// message's beginning (up to headMax) for a bounce, and fails on a bare
// CR or LF (errBareNewlineRead).
type countingReader struct {
	r    io.Reader
	n    int64
	err  error
	head []byte
	cr   bool // the last byte read was a CR
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if i := c.bareNewline(p[:n]); i >= 0 {
		n, err = i, errBareNewlineRead
	}
	if err == io.EOF && c.cr {
		err = errBareNewlineRead // the message ended with a CR alone (BDAT)
	}
	c.n += int64(n)
	if room := headMax - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(n, room)]...)
	}
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// bareNewline returns the index in b of the first CR or LF that is not in
// a CRLF pair (a CR at the end of b waits for the next read), or -1.
func (c *countingReader) bareNewline(b []byte) int {
	for i, ch := range b {
		switch {
		case c.cr && ch != '\n':
			return i
		case !c.cr && ch == '\n':
			return i
		}
		c.cr = ch == '\r'
	}
	return -1
}

func (s *smtpSession) Reset() {
	s.mu.Lock()
	s.env, s.rcpts, s.accepted = nil, nil, nil
	s.mu.Unlock()
	s.conn.setBusy(false)
}

func (s *smtpSession) Logout() error {
	s.Reset()
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	live.Close()
	return nil
}

// revoked answers a command of a transaction with 421 and closes, when the
// session was ended in the transaction (conn.revoke).
func (s *smtpSession) revoked() error {
	if why := s.conn.revoked(); why != "" {
		e := *errRevoked
		e.Message += ": " + why
		return s.hangup(&e)
	}
	return nil
}

// failure is a recipient whose delivery failed after the message was
// taken for others.
type failure struct {
	rcpt string
	err  error
}

// bounceLater is the one place where the failures of a message that was
// also delivered (and answered 250) are handed on: SMTP has one reply for
// the whole message (RFC 5321 4.1.1.4), so the failed recipients go back
// to the sender as a delivery status notification (RFC 3464) with the
// message's header, sent by Config.SendBounce. Without it, or for the null
// sender (RFC 3464 2: a bounce is never bounced), they are only logged.
func (s *Server) bounceLater(ctx context.Context, env *delivery.Envelope, failed []failure, original []byte) {
	now := time.Now()
	d := delivery.DSN{ReportingMTA: s.cfg.Hostname, To: env.From, Arrival: now, Original: original}
	for _, f := range failed {
		s.log.Warn("smtp recipient failed after DATA", "id", env.ID, "from", env.From, "rcpt", f.rcpt, "err", f.err)
		d.Recipients = append(d.Recipients, delivery.FailedRecipient(f.rcpt, f.err, now))
	}
	if s.cfg.SendBounce == nil || env.From == "" {
		s.log.Warn("smtp: no bounce sent", "id", env.ID, "from", env.From,
			"reason", map[bool]string{true: "null sender", false: "no bounce sender configured"}[env.From == ""])
		return
	}
	dsn, err := delivery.BuildDSN(d)
	if err == nil {
		err = s.cfg.SendBounce(ctx, env.From, dsn)
	}
	if err != nil {
		s.log.Error("smtp: bounce not sent", "id", env.ID, "to", env.From, "err", err)
		return
	}
	s.log.Info("smtp: bounce sent", "id", env.ID, "to", env.From, "failed", len(failed))
}

// authAllowed reports whether AUTH may be used on this connection: over
// TLS, from loopback, or anywhere when plaintext is allowed (RFC 4954 4:
// mechanisms that send passwords need a protected channel).
func (s *smtpSession) authAllowed() bool {
	return s.isTLS() || s.srv.cfg.AllowPlaintextAuth || (s.srv.trustLoopback && s.conn.ip.IsLoopback())
}

// AuthMechanisms are those advertised in EHLO; none where AUTH may not be
// used, so that clients do not send passwords in the clear.
func (s *smtpSession) AuthMechanisms() []string {
	if !s.role.submission() || s.srv.auth == nil || !s.authAllowed() {
		return nil
	}
	m := []string{sasl.Plain, sasl.Login}
	if s.srv.cfg.CRAM != nil {
		m = append(m, saslserver.CRAMMD5)
	}
	return m
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	switch {
	case !s.role.submission() || s.srv.auth == nil:
		return nil, s.authRefused(errAuthNotHere)
	case !s.authAllowed():
		return nil, s.authRefused(errAuthEncrypt)
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, login, password string) error {
			// No proxy authorization (RFC 4616 2): the authzid is the
			// login or nothing.
			if identity != "" && identity != login {
				return s.authRefused(errAuthzid)
			}
			return s.login(login, password)
		}), nil
	case sasl.Login:
		return saslserver.NewLogin(s.login), nil
	case saslserver.CRAMMD5:
		if s.srv.cfg.CRAM != nil {
			return saslserver.NewCRAMMD5(s.srv.cfg.Hostname, func(login, challenge, digest string) error {
				a, err := s.srv.cfg.CRAM.AuthenticateCRAM(s.ctx(), login, challenge, digest, s.remote)
				return s.authResult(login, a, err)
			}, func() error { return s.authRefused(errAuthFailed) }), nil
		}
	}
	return nil, s.authRefused(smtp.ErrAuthUnknownMechanism)
}

// login checks a password with the session service, whose throttle counts
// the attempt.
func (s *smtpSession) login(login, password string) error {
	a, err := s.srv.auth.Authenticate(s.ctx(), login, password, s.remote)
	return s.authResult(login, a, err)
}

// authResult takes the outcome of a login by any mechanism.
func (s *smtpSession) authResult(login string, a *session.Auth, err error) error {
	if err == nil {
		var live *session.Conn
		if s.srv.auth != nil {
			live = s.srv.auth.Open(a, s.remote, s.conn.revoke)
		}
		s.mu.Lock()
		s.user, s.live = a, live
		s.mu.Unlock()
		s.srv.log.Info("smtp login", "role", s.role, "remote", s.remote, "user", a.User.Address)
		return nil
	}
	s.srv.log.Info("smtp login failed", "role", s.role, "remote", s.remote, "login", login, "err", err)
	switch {
	case errors.Is(err, session.ErrAuthFailed):
		return s.authRefused(errAuthFailed)
	case errors.Is(err, session.ErrThrottled):
		return s.authRefused(errAuthThrottled)
	case errors.Is(err, session.ErrUserLocked):
		return s.authRefused(errAuthLocked)
	}
	return errAuthTemporary
}

// authRefused counts a failed AUTH toward the error cutoff, whatever its
// code: guessing passwords is what the cutoff is for.
func (s *smtpSession) authRefused(e *smtp.SMTPError) error {
	if s.conn.violation() {
		return s.hangup(errTooManyErrors)
	}
	return e
}
