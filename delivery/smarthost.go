package delivery

import (
	"basalt/store/outbound"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// outcome is what one attempt learned about one recipient.
type outcome struct {
	class int    // 2 delivered, 4 try again, 5 failed for good
	reply string // the server's reply ("550 5.1.1 No such user") or a local error
}

// replyNoSMTPUTF8 is the failure of a message with internationalised
// addresses when the smarthost cannot take them (RFC 6531 3.2, RFC 6533 5).
const replyNoSMTPUTF8 = "553 5.6.7 The smarthost does not support SMTPUTF8, which these addresses need"

// attempt sends e to rcpts through the smarthost in one SMTP transaction
// (RFC 5321 3.3) and returns each recipient's outcome, in the order of
// rcpts. A failure before the recipients are named (no connection, TLS,
// AUTH, or MAIL refused) is every recipient's outcome. ctx bounds the whole
// transaction: when it ends, the connection is closed under the client.
func (q *Queue) attempt(ctx context.Context, e *outbound.Entry, rcpts []string) []outcome {
	out := make([]outcome, len(rcpts))
	all := func(o outcome) []outcome {
		for i := range out {
			out[i] = o
		}
		return out
	}
	// Open the message first: no point connecting if it cannot be read.
	body, err := q.rows.Open(ctx, e)
	if err != nil {
		q.log.Error("queue: cannot read a queued message", "queue_id", e.ID, "err", err)
		return all(outcome{class: 4, reply: "cannot read the queued message"})
	}
	defer body.Close()

	c, err := q.connect(ctx)
	if err != nil {
		return all(failure(err, "smarthost "+q.cfg.Smarthost))
	}
	defer c.Close()

	opts := &smtp.MailOptions{Size: e.Size}
	if !asciiAddrs(e.From, rcpts) {
		// RFC 6531 3.2: an internationalised address can only be relayed to
		// a server that takes SMTPUTF8; one that does not never will.
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return all(outcome{class: 5, reply: replyNoSMTPUTF8})
		}
		opts.UTF8 = true
	}
	if err := c.Mail(e.From, opts); err != nil {
		return all(failure(err, "MAIL FROM"))
	}
	var accepted []int
	for i, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			out[i] = failure(err, "RCPT TO")
			if !isReply(err) { // the connection broke: the rest were not tried
				for j := i + 1; j < len(rcpts); j++ {
					out[j] = out[i]
				}
				for _, j := range accepted {
					out[j] = out[i]
				}
				return out
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		_ = c.Reset()
		_ = c.Quit()
		return out
	}
	setAccepted := func(o outcome) []outcome {
		for _, i := range accepted {
			out[i] = o
		}
		return out
	}
	w, err := c.Data()
	if err != nil {
		return setAccepted(failure(err, "DATA"))
	}
	if _, err := io.Copy(w, body); err != nil {
		return setAccepted(failure(err, "sending the message"))
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		// A connection lost after the final dot leaves it unknown whether
		// the message was taken; trying again risks a duplicate, which RFC
		// 5321 6.1 prefers to a loss.
		return setAccepted(failure(err, "end of data"))
	}
	_ = c.Quit()
	return setAccepted(outcome{class: 2, reply: "250 " + resp.StatusText})
}

// connect dials the smarthost and gets as far as being ready for MAIL:
// greeting, EHLO, TLS and AUTH as configured.
func (q *Queue) connect(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{Timeout: min(30*time.Second, q.cfg.Timeout)}
	conn, err := d.DialContext(ctx, "tcp", q.cfg.Smarthost)
	if err != nil {
		return nil, err
	}
	// go-smtp's client has per-command timeouts but no context: closing
	// the connection is what makes a shutdown or the attempt's deadline
	// interrupt a command in progress.
	raw := conn
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	fail := func(err error) (*smtp.Client, error) {
		stop()
		raw.Close()
		return nil, err
	}
	if q.cfg.ImplicitTLS {
		conn = tls.Client(conn, q.tlsConfig())
	}
	var c *smtp.Client
	if q.cfg.StartTLS {
		// go-smtp offers STARTTLS only through this constructor, which says
		// EHLO localhost before it; the EHLO after TLS, the one whose name
		// counts, gives ours. A server without STARTTLS is an error, never
		// a fallback to plain text (RFC 3207 6).
		if c, err = smtp.NewClientStartTLS(conn, q.tlsConfig()); err != nil {
			return fail(fmt.Errorf("STARTTLS: %w", err))
		}
	} else {
		c = smtp.NewClient(conn)
	}
	// RFC 5321 4.5.3.2 gives each command 5 minutes, the final dot 10;
	// the attempt as a whole is bounded by ctx.
	c.CommandTimeout = min(5*time.Minute, q.cfg.Timeout)
	c.SubmissionTimeout = q.cfg.Timeout
	if err := c.Hello(q.cfg.Hostname); err != nil {
		c.Close()
		return fail(fmt.Errorf("EHLO: %w", err))
	}
	if q.cfg.Username != "" {
		if !c.SupportsAuth(sasl.Plain) {
			c.Close()
			return fail(errors.New("the smarthost does not offer AUTH PLAIN"))
		}
		if err := c.Auth(sasl.NewPlainClient("", q.cfg.Username, q.cfg.Password)); err != nil {
			c.Close()
			// A refused login is the operator's to fix; the mail waits for it
			// rather than bouncing (a 535 is not about the message).
			return fail(fmt.Errorf("AUTH: %w", asTemporary(err)))
		}
	}
	// The AfterFunc stays armed for the rest of the transaction; the
	// caller's deferred Close and the end of ctx both close the connection.
	return c, nil
}

func (q *Queue) tlsConfig() *tls.Config {
	host, _, _ := net.SplitHostPort(q.cfg.Smarthost)
	return &tls.Config{ServerName: host, InsecureSkipVerify: q.cfg.TLSInsecure, MinVersion: tls.VersionTLS12}
}

// temporaryError hides a permanent-looking reply (a 535 to AUTH) from
// failure, so that it defers the mail instead of bouncing it.
type temporaryError struct{ err error }

func (e temporaryError) Error() string { return e.err.Error() }

func asTemporary(err error) error { return temporaryError{err} }

// failure turns an error from the SMTP client into an outcome: a 5xx reply
// fails the recipients for good, a 4xx reply or anything else (no
// connection, a timeout, a broken TLS handshake) defers them (RFC 5321
// 4.2.1, 4.5.4.1).
func failure(err error, during string) outcome {
	var te temporaryError
	if errors.As(err, &te) {
		return outcome{class: 4, reply: during + ": " + oneLineReply(te.err)}
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		o := outcome{class: 4, reply: formatReply(se)}
		if se.Code/100 == 5 {
			o.class = 5
		}
		return o
	}
	return outcome{class: 4, reply: during + ": " + err.Error()}
}

func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

func oneLineReply(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return formatReply(se)
	}
	return err.Error()
}

// formatReply writes a reply as it was on the wire: "550 5.1.1 text".
func formatReply(se *smtp.SMTPError) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(se.Code))
	if ec := se.EnhancedCode; ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
		fmt.Fprintf(&b, " %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if se.Message != "" {
		b.WriteString(" " + strings.ReplaceAll(se.Message, "\n", " "))
	}
	return b.String()
}

var replyRE = regexp.MustCompile(`^([245])[0-9][0-9](?: ([245]\.[0-9]{1,3}\.[0-9]{1,3}))?(?: |$)`)

// parseReply reads back what formatReply wrote: the reply class and the
// enhanced status code (RFC 3463), "x.0.0" when the server gave none. ok
// is false for text that is not an SMTP reply (a local error).
func parseReply(s string) (class int, status string, ok bool) {
	m := replyRE.FindStringSubmatch(s)
	if m == nil {
		return 0, "", false
	}
	class = int(m[1][0] - '0')
	status = m[2]
	if status == "" || status[0] != m[1][0] {
		status = m[1] + ".0.0"
	}
	return class, status, true
}

func asciiAddrs(from string, rcpts []string) bool {
	if !dsnASCII(from) {
		return false
	}
	for _, r := range rcpts {
		if !dsnASCII(r) {
			return false
		}
	}
	return true
}
