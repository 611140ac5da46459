package imap

import (
	"context"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestCommandContext: a command's store calls run on its connection's
// context, which ends when the client goes away while the command runs
// (over TLS too, where the client's close_notify comes first); a client
// that stays keeps it.
func TestCommandContext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tls      bool
		leave    bool
		wantDone bool
		// how long the SEARCH waits for its context to end: a client
		// gone is seen at once, one that stays never.
		wait time.Duration
	}{
		{"plain, client gone", false, true, true, 10 * time.Second},
		{"TLS, client gone", true, true, true, 10 * time.Second},
		{"plain, client stays", false, false, false, 300 * time.Millisecond},
		{"TLS, client stays", true, false, false, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entered := make(chan struct{}, 1)
			proceed := make(chan struct{})
			done := make(chan bool, 1)
			h := start(t, setup{beforeSearch: func(ctx context.Context) {
				entered <- struct{}{}
				<-proceed
				select {
				case <-ctx.Done():
					done <- true
				case <-time.After(tc.wait):
					done <- false
				}
			}})
			alice := h.user("alice@example.org", false)
			h.deliver(alice, "INBOX", storetest.Message("bob@example.org", "alice@example.org", "Hi", "Hello"), store.AppendOptions{})
			c := h.dial(t)
			if tc.tls {
				c = h.dialTLS(t)
			}
			c.login("alice@example.org")
			c.ok("SELECT INBOX")
			c.send("s1 SEARCH ALL\r\n")
			<-entered
			if tc.leave {
				c.conn.Close()
			}
			close(proceed)
			if got := <-done; got != tc.wantDone {
				t.Fatalf("context done: %v, want %v", got, tc.wantDone)
			}
			if !tc.leave {
				u, status := c.until("s1")
				must(t, u, "* SEARCH 1")
				if status[:2] != "OK" {
					t.Errorf("SEARCH: %s", status)
				}
			}
		})
	}
}
