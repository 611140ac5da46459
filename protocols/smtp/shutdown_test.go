package smtp

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
)

// TestShutdownGraceful: a shutdown stops accepting, closes idle
// connections with 421, and lets a transaction in flight finish: its
// message is answered 250 and stored before its connection is closed.
func TestShutdownGraceful(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	idle := h.dial(RoleSubmission)
	idle.expect("EHLO client.example", "250")
	busy := h.dial(RoleMX)
	runSteps(t, busy, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<sender@remote.example>", "250"},
		{"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}})
	msg := string(storetest.Message("sender@remote.example", "alice@example.org", "in flight", "first half\nsecond half"))
	half := strings.Index(msg, "second half")
	io.WriteString(busy.nc, msg[:half])

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	if r := idle.read(); r.code != 421 {
		t.Fatalf("idle connection at shutdown: %q, want 421", r)
	}
	idle.expectClosed()
	if nc, err := net.DialTimeout("tcp", h.addr[RoleMX], time.Second); err == nil {
		nc.Close()
		t.Fatal("a new connection was accepted during shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned with a transaction in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	io.WriteString(busy.nc, msg[half:]+".\r\n")
	if r := busy.read(); !strings.HasPrefix(r.String(), "250 2.0.0") {
		t.Fatalf("the transaction in flight: %q", r)
	}
	if r := busy.read(); r.code != 421 {
		t.Fatalf("after its transaction: %q, want 421", r)
	}
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	msgs := h.inbox("alice@example.org")
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], "\r\n"+msg) {
		t.Fatalf("inbox: %q", msgs)
	}
}

// TestShutdownDeadline: a transaction that does not finish in time is cut
// off, unacknowledged and not stored.
func TestShutdownDeadline(t *testing.T) {
	h := start(t, setup{})
	h.user("alice@example.org", 0)
	busy := h.dial(RoleMX)
	runSteps(t, busy, []step{{"EHLO client.example", "250"}, {"MAIL FROM:<sender@remote.example>", "250"},
		{"RCPT TO:<alice@example.org>", "250"}, {"DATA", "354"}})
	io.WriteString(busy.nc, "Subject: never finished\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	busy.expectClosed()
	if n := len(h.inbox("alice@example.org")); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	if n := h.connections(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}
