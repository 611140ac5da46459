package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// imapClient is a minimal IMAP client for the daemon's tests: it reads
// responses whole, literals (literal8 too) included, so it serves both for
// watching unilateral responses and for fetching message data.
type imapClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	n int
}

func dialIMAP(t *testing.T, addr string) *imapClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &imapClient{t: t, c: c, r: bufio.NewReader(c)}
	if _, err := l.read(5 * time.Second); err != nil { // greeting
		t.Fatal(err)
	}
	return l
}

var literalEnd = regexp.MustCompile(`~?\{(\d+)\}\r\n$`)

// read reads one response, its literals included, waiting at most wait.
func (l *imapClient) read(wait time.Duration) (string, error) {
	l.c.SetReadDeadline(time.Now().Add(wait))
	var out strings.Builder
	for {
		s, err := l.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		out.WriteString(s)
		m := literalEnd.FindStringSubmatch(s)
		if m == nil {
			return strings.TrimSuffix(out.String(), "\r\n"), nil
		}
		n, _ := strconv.Atoi(m[1])
		if _, err := io.CopyN(&out, l.r, int64(n)); err != nil {
			return "", fmt.Errorf("read literal: %w", err)
		}
	}
}

// do sends a command and returns its untagged responses and its status
// (the tagged response without the tag).
func (l *imapClient) do(c string) ([]string, string) {
	l.t.Helper()
	l.n++
	tag := fmt.Sprintf("t%d", l.n)
	fmt.Fprintf(l.c, "%s %s\r\n", tag, c)
	var out []string
	for {
		s, err := l.read(5 * time.Second)
		if err != nil {
			l.t.Fatalf("%s: %v", c, err)
		}
		if rest, ok := strings.CutPrefix(s, tag+" "); ok {
			return out, rest
		}
		out = append(out, s)
	}
}

// cmd is do for a command that must succeed; it returns the untagged
// responses.
func (l *imapClient) cmd(c string) []string {
	l.t.Helper()
	out, status := l.do(c)
	if !strings.HasPrefix(status, "OK") {
		l.t.Fatalf("%s: %s", c, status)
	}
	return out
}
