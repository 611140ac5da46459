package pop3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
)

// TestConnectionLimits: connections beyond the per-address and total
// limits are answered -ERR [SYS/TEMP] in place of the greeting and closed.
func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"per address", Config{MaxConnectionsPerIP: 2}, "-ERR [SYS/TEMP] Too many connections from your address"},
		{"total", Config{MaxConnections: 2, MaxConnectionsPerIP: -1}, "-ERR [SYS/TEMP] Too many connections, try again later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{cfg: tc.cfg})
			a, b := h.dial(), h.dial()
			for _, dial := range []func() (net.Conn, error){
				func() (net.Conn, error) { return net.Dial("tcp", h.addr) },
				func() (net.Conn, error) { return tlsDial(h) },
			} {
				nc, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				c := newClient(t, nc)
				if l := c.line(); l != tc.want {
					t.Fatalf("third connection: %q, want %q", l, tc.want)
				}
				c.expectClosed()
			}
			a.expect("QUIT", "+OK")
			h.waitConnections(1)
			c := h.dial()
			c.expect("QUIT", "+OK")
			b.expect("QUIT", "+OK")
		})
	}
}

func tlsDial(h *harness) (net.Conn, error) {
	nc, err := net.Dial("tcp", h.tlsAddr)
	if err != nil {
		return nil, err
	}
	return tlsClient(h.t, nc, h), nil
}

// TestTimeouts: a client silent before login, or during the TLS
// handshake, is dropped after the login timeout, without an answer (RFC
// 1939 3); one that stops reading is dropped after the write timeout and
// its maildrop freed.
func TestTimeouts(t *testing.T) {
	h := start(t, setup{cfg: Config{LoginTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, string(storetest.SizedMessage(8<<20)))

	c := h.dial()
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
	raw, err := net.Dial("tcp", h.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	newClient(t, raw).expectClosed()

	c = h.dial()
	c.login("bob@example.org")
	c.nc.(*net.TCPConn).SetReadBuffer(256 << 10)
	c.write("RETR 1\r\n")
	h.waitConnections(0)
	if !strings.Contains(h.logs.String(), "pop3 send message") {
		t.Fatalf("no failed send logged:\n%s", h.logs.String())
	}
	c = h.dial()
	c.login("bob@example.org") // the lock went with the connection
	c.expect("QUIT", "+OK")
}

// TestShutdown: a shutdown closes idle sessions with -ERR [SYS/TEMP] and
// lets a RETR in progress finish first; sessions that did not QUIT delete
// nothing. New connections are not taken.
func TestShutdown(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	ann := h.user("ann@example.org", false)
	big := string(storetest.SizedMessage(8 << 20))
	h.deliver(bob, big, testMessages[0])
	h.deliver(ann, testMessages[0])

	idle := h.dial()
	idle.login("ann@example.org")
	idle.expect("DELE 1", "+OK")
	busy := h.dial()
	busy.login("bob@example.org")
	busy.expect("DELE 2", "+OK")
	busy.nc.(*net.TCPConn).SetReadBuffer(256 << 10)
	busy.write("RETR 1\r\n")
	waitBusy(t, h)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	if l := idle.line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP] Server shutting down") {
		t.Fatalf("idle session got %q", l)
	}
	idle.expectClosed()
	if l := busy.line(); l != fmt.Sprintf("+OK %d octets", len(crlf(big))) {
		t.Fatalf("RETR: %q", l)
	}
	if got := unstuff(busy.body()); got != crlf(big) {
		t.Fatalf("RETR cut by the shutdown: %d octets of %d", len(got), len(crlf(big)))
	}
	if l := busy.line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP] Server shutting down") {
		t.Fatalf("after the RETR: %q", l)
	}
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Fatal("a connection was taken after the shutdown")
	}
	if n, m := len(h.inbox(bob)), len(h.inbox(ann)); n != 2 || m != 1 {
		t.Fatalf("after the shutdown bob has %d messages, ann %d; want 2 and 1", n, m)
	}
}

// TestShutdownDeadline: a command still running when the shutdown's time
// is up is cut off, and Shutdown says so.
func TestShutdownDeadline(t *testing.T) {
	h := start(t, setup{})
	bob := h.user("bob@example.org", false)
	h.deliver(bob, string(storetest.SizedMessage(8<<20)))
	c := h.dial()
	c.login("bob@example.org")
	c.nc.(*net.TCPConn).SetReadBuffer(256 << 10)
	c.write("RETR 1\r\n")
	waitBusy(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	h.waitConnections(0)
}

// waitBusy waits until a connection is in the middle of a command, and
// stays there: a RETR blocked in its writes on a client not reading.
func waitBusy(t *testing.T, h *harness) {
	t.Helper()
	busy := func() bool { return h.srv.set.Busy() > 0 }
	deadline := time.Now().Add(10 * time.Second)
	for !busy() {
		if time.Now().After(deadline) {
			t.Fatal("no connection became busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if !busy() {
		t.Fatal("the command finished at once; the test needs it blocked")
	}
}

// TestAcceptErrorsPass: running out of file descriptors for a moment does
// not stop the server: the accept is retried (listener.Accept).
func TestAcceptErrorsPass(t *testing.T) {
	emfile := testsupport.AcceptError(syscall.EMFILE)
	h := start(t, setup{wrap: func(ln net.Listener) net.Listener {
		return &testsupport.FailingListener{Listener: ln, Errs: []error{emfile, emfile}}
	}})
	h.user("bob@example.org", false)
	c := h.dial()
	c.login("bob@example.org")
	c.expect("QUIT", "+OK")
	if !strings.Contains(h.logs.String(), "too many open files") {
		t.Errorf("the accept errors were not logged:\n%s", h.logs.String())
	}
}

// TestLimitsAfterSTLS: the line limit, the bad-command cutoff and the
// timeouts hold over TLS as before it: the command loop reads what TLS
// decrypted, and the deadlines are on the socket under it.
func TestLimitsAfterSTLS(t *testing.T) {
	h := start(t, setup{cfg: Config{MaxBadCommands: 3, LoginTimeout: 300 * time.Millisecond}})
	h.user("bob@example.org", false)
	c := h.dial()
	c.expect("FROB", "-ERR Unknown command") // the count goes on over TLS
	c.startTLS(h.tls)
	c.expect("NOOP "+strings.Repeat("x", 600), "-ERR Line too long")
	c.expect("FROB", "-ERR Unknown command; too many errors, closing connection")
	c.expectClosed()

	c = h.dial()
	c.startTLS(h.tls)
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silent client over TLS closed after %v", d)
	}
}
