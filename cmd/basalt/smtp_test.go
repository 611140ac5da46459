package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/server"
	"basalt/store"
)

// TestSMTPDurability kills `basalt serve` with SIGKILL, many times, while
// clients are in the middle of sending: one is always halfway through
// DATA, the others at whatever point they have reached. Every message
// answered 250 must be in the store afterwards, whole; a message stored
// but not answered (the kill fell between commit and reply) is allowed,
// but it too must be whole.
func TestSMTPDurability(t *testing.T) {
	cases := []struct {
		name   string
		rounds int
		extra  func(t *testing.T) string
	}{
		{"sqlite", 20, func(t *testing.T) string { return "" }},
		{"mariadb", 8, func(t *testing.T) string {
			return fmt.Sprintf("[database]\ndriver = \"mysql\"\ndsn = %q\n", testsupport.MySQLDSN(t))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extra := tc.extra(t)
			mx := testsupport.FreePort(t)
			cfg := kdfConfig(t, extra+fmt.Sprintf("[http]\nlisten = %q\n[smtp]\nhostname = \"mx.test\"\nmx_listen = %q\n"+
				"submission_listen = \"off\"\nsubmissions_listen = \"off\"\nlmtp_listen = \"off\"\n"+
				"[pop3]\nlisten = \"off\"\ntls_listen = \"off\"\n[imap]\nlisten = \"off\"\ntls_listen = \"off\"\n", testsupport.FreePort(t), mx))
			data := t.TempDir()
			d := []string{"-data", data, "-config", cfg}
			mustBasalt(t, "", append([]string{"domain", "add", "example.org"}, d...)...)
			mustBasalt(t, "password one\n", append([]string{"user", "add", "alice@example.org", "--password-stdin"}, d...)...)

			var mu sync.Mutex
			sent := map[string][]byte{} // every message begun, by its token
			acked := map[string]bool{}  // those answered 250
			for round := range tc.rounds {
				durabilityRound(t, round, mx, d, func(token string, msg []byte, ok bool) {
					mu.Lock()
					defer mu.Unlock()
					sent[token] = msg
					if ok {
						acked[token] = true
					}
				})
			}

			c, err := server.LoadConfig(cfg, data)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := server.Open(context.Background(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			stored := storedMessages(t, svc.Store, "alice@example.org")
			found := map[string]bool{}
			for _, m := range stored {
				token := tokenOf(m)
				body, ok := sent[token]
				if !ok {
					t.Fatalf("a stored message was never sent (token %q):\n%.500s", token, m)
				}
				if !strings.HasSuffix(m, "\r\n"+string(body)) || !strings.HasPrefix(m, "Return-Path: <sender@remote.example>\r\n") {
					t.Fatalf("message %s is not whole: %d bytes stored for %d sent", token, len(m), len(body))
				}
				if found[token] {
					t.Fatalf("message %s stored twice", token)
				}
				found[token] = true
			}
			for token := range acked {
				if !found[token] {
					t.Errorf("message %s was answered 250 but is not in the store", token)
				}
			}
			if len(acked) < 2*tc.rounds {
				t.Fatalf("only %d messages acknowledged in %d rounds: the test did not test much", len(acked), tc.rounds)
			}
			t.Logf("%d rounds: %d messages begun, %d acknowledged, %d stored", tc.rounds, len(sent), len(acked), len(stored))
		})
	}
}

// durabilityRound starts the daemon, lets clients send until one of them
// is halfway through DATA and a moment more, and kills it.
func durabilityRound(t *testing.T, round int, mx string, args []string, record func(token string, msg []byte, ok bool)) {
	t.Helper()
	done, stderr, cmd := startDaemon(t, args...)
	waitSMTP(t, mx, done, stderr)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ackedNow atomic.Int64
	counted := func(token string, msg []byte, ok bool) {
		record(token, msg, ok)
		if ok {
			ackedNow.Add(1)
		}
	}
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendLoop(ctx, mx, fmt.Sprintf("r%d-c%d", round, c), counted)
		}()
	}
	midData := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		halfway(ctx, mx, fmt.Sprintf("r%d-half", round), midData, record)
	}()
	select {
	case err := <-midData:
		if err != nil {
			t.Fatalf("the client to be cut off halfway through DATA failed: %v\n%s", err, stderr.String())
		}
	case err := <-done:
		t.Fatalf("basalt exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no client got halfway through DATA\n%s", stderr.String())
	}
	// Let a few messages through first, so that each round has
	// acknowledged ones to lose, then kill at a random moment.
	for deadline := time.Now().Add(30 * time.Second); ackedNow.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
	cmd.Process.Kill()
	<-done
	cancel()
	wg.Wait()
}

func waitSMTP(t *testing.T, addr string, done <-chan error, stderr *bytes.Buffer) {
	t.Helper()
	waitFor(t, "SMTP", done, stderr, func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := textproto.NewReader(bufio.NewReader(nc)).ReadLine()
		return strings.HasPrefix(line, "220 ")
	})
}

// smtpConn is a minimal SMTP client for the kill test.
type smtpConn struct {
	nc net.Conn
	tp *textproto.Conn
}

func dialSMTP(addr string) (*smtpConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &smtpConn{nc: nc, tp: textproto.NewConn(nc)}
	if _, _, err := c.tp.ReadResponse(220); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.cmd(250, "EHLO client.example"); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *smtpConn) cmd(code int, line string) error {
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return err
	}
	_, _, err := c.tp.ReadResponse(code)
	return err
}

func (c *smtpConn) begin() error {
	if err := c.cmd(250, "MAIL FROM:<sender@remote.example>"); err != nil {
		return err
	}
	if err := c.cmd(250, "RCPT TO:<alice@example.org>"); err != nil {
		return err
	}
	return c.cmd(354, "DATA")
}

// testMessage is a message of about size bytes that names its token in
// its subject.
func testMessage(token string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender@remote.example\r\nTo: alice@example.org\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n", token, token)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s line %06d %s\r\n", token, i, strings.Repeat("abcdefghij", 6))
	}
	return b.Bytes()
}

// tokenOf finds the token in a stored message's subject.
func tokenOf(m string) string {
	_, rest, ok := strings.Cut(m, "\r\nSubject: ")
	if !ok {
		return ""
	}
	token, _, _ := strings.Cut(rest, "\r\n")
	return token
}

// sendLoop sends messages of varied sizes, in a few writes each, until
// the connection fails (the kill) or ctx ends.
func sendLoop(ctx context.Context, addr, name string, record func(string, []byte, bool)) {
	for n := 0; ctx.Err() == nil; {
		c, err := dialSMTP(addr)
		if err != nil {
			return
		}
		for ; ctx.Err() == nil; n++ {
			token := fmt.Sprintf("%s-m%d", name, n)
			msg := testMessage(token, 1000+rand.IntN(200_000))
			if c.begin() != nil {
				break
			}
			record(token, msg, false)
			w := c.tp.DotWriter()
			failed := false
			for chunk := range slices.Chunk(msg, 16<<10) {
				if _, err := w.Write(chunk); err != nil {
					failed = true
					break
				}
			}
			if failed || w.Close() != nil {
				break
			}
			if _, _, err := c.tp.ReadResponse(250); err != nil {
				break
			}
			record(token, msg, true)
		}
		c.nc.Close()
	}
}

// halfway sends half a message and waits, so that the kill falls inside
// its DATA. It says on midData whether it got there.
func halfway(ctx context.Context, addr, token string, midData chan<- error, record func(string, []byte, bool)) {
	c, err := dialSMTP(addr)
	if err != nil {
		midData <- err
		return
	}
	defer c.nc.Close()
	if err := c.begin(); err != nil {
		midData <- err
		return
	}
	msg := testMessage(token, 100_000)
	record(token, msg, false)
	w := c.tp.DotWriter()
	w.Write(msg[:len(msg)/2])
	midData <- c.tp.W.Flush()
	<-ctx.Done()
}

// storedMessages returns every message in a user's INBOX.
func storedMessages(t *testing.T, st *store.Store, addr string) []string {
	t.Helper()
	u, err := st.UserByAddress(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Messages(t, st.Account(u.ID, nil), "INBOX")
}
