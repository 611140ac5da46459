package listener

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Accept waits for the next connection on ln. An error that passes (the
// process out of file descriptors or memory for a moment, a client gone
// before its connection was taken) is waited out and the accept retried,
// as net/http does: after 5ms, doubling up to a second; wait hears of
// each one. Any other error, the listener's closing among them, is
// returned.
func Accept(ln net.Listener, wait func(err error, retryIn time.Duration)) (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil || !passing(err) {
			return c, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		if wait != nil {
			wait(err, delay)
		}
		time.Sleep(delay)
	}
}

// passing reports whether an Accept error is one to wait out. The
// errno list is what net.Error's deprecated Temporary reported for
// accept.
func passing(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// Refuser answers the connections a server does not admit: one line in
// place of the greeting, saying why (SMTP's 421, POP3's -ERR, IMAP's
// BYE), then the connection is closed. It works on a goroutine of its
// own, so that a slow client cannot hold up accepting, within five
// seconds, and at most max at once: beyond that a refused connection is
// closed without a word. On a listener whose connections start with TLS
// the handshake comes first, as the client can read nothing else.
type Refuser struct {
	slots chan struct{}
}

// NewRefuser returns a Refuser that answers at most max connections at
// once.
func NewRefuser(max int) *Refuser { return &Refuser{slots: make(chan struct{}, max)} }

// Refuse answers c with line (CRLF is added) and closes it; with tlsCfg,
// after a TLS handshake. It reports false when it closed c without an
// answer, max refusals being under way.
func (r *Refuser) Refuse(c net.Conn, tlsCfg *tls.Config, line string) bool {
	select {
	case r.slots <- struct{}{}:
	default:
		c.Close()
		return false
	}
	go func() {
		defer func() { <-r.slots }()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		w := c
		if tlsCfg != nil {
			tc := tls.Server(c, tlsCfg)
			if err := tc.Handshake(); err != nil {
				c.Close()
				return
			}
			w = tc
		}
		io.WriteString(w, line+"\r\n")
		w.Close()
	}()
	return true
}
