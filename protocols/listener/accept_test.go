package listener

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// TestAccept: errors that pass (out of descriptors, a client gone) are
// waited out with a growing wait; others are returned at once.
func TestAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fl := &testsupport.FailingListener{Listener: ln, Errs: []error{testsupport.AcceptError(syscall.EMFILE), testsupport.AcceptError(syscall.ECONNABORTED), testsupport.AcceptError(syscall.ENFILE)}}
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	var waits []time.Duration
	c, err := Accept(fl, func(err error, d time.Duration) { waits = append(waits, d) })
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	c.Close()
	if len(waits) != 3 || waits[0] != 5*time.Millisecond || waits[1] != 10*time.Millisecond || waits[2] != 20*time.Millisecond {
		t.Errorf("waits %v, want 5ms, 10ms, 20ms", waits)
	}
	for _, bad := range []error{testsupport.AcceptError(syscall.EINVAL), net.ErrClosed} {
		fl.Errs = []error{bad}
		if _, err := Accept(fl, func(error, time.Duration) { t.Errorf("waited out %v", bad) }); !errors.Is(err, bad) && err != bad {
			t.Errorf("Accept with %v: %v", bad, err)
		}
	}
}

// TestRefuser: a refused client reads the line, over TLS on an implicit
// TLS listener; beyond the limit of refusals at once, it is just closed.
func TestRefuser(t *testing.T) {
	cert, pool, _ := testsupport.TestCert(t, "mail.test")
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := NewRefuser(1)
	refuse := func(cfg *tls.Config) chan bool {
		answered := make(chan bool, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			answered <- r.Refuse(c, cfg, "-ERR [SYS/TEMP] Too many connections")
		}()
		return answered
	}
	read := func(c net.Conn) string {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}

	refuse(nil)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if l := read(c); l != "-ERR [SYS/TEMP] Too many connections\r\n" {
		t.Errorf("plain refusal %q", l)
	}
	c.Close()

	// A refusal frees its slot once its own goroutine has closed the
	// connection, which may be after the client has read the line: wait
	// for it, or the next refusal finds the one slot taken.
	slotFree := func() {
		testsupport.WaitFor(t, 5*time.Second, "the refusal's slot", func() bool { return len(r.slots) == 0 })
	}
	slotFree()
	refuse(srvTLS)
	tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "mail.test"})
	if err != nil {
		t.Fatalf("TLS refusal: %v", err)
	}
	if l := read(tc); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Errorf("TLS refusal %q", l)
	}
	tc.Close()
	slotFree()

	// A client that says nothing holds the one slot (its handshake waits);
	// the next refused connection is closed without a word.
	first := refuse(srvTLS)
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	<-first
	second := refuse(nil)
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if ok := <-second; ok {
		t.Error("a second refusal was answered while the only slot was taken")
	}
	if l := read(c); l != "" {
		t.Errorf("refused beyond the limit, the client read %q", l)
	}
}
