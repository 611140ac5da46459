package delivery_test

import (
	"bytes"
	"context"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-milter"

	"basalt/delivery"
	"basalt/internal/testsupport"
)

// testMilter is a real milter on a real socket, deciding like a content
// filter would: it refuses a virus, marks spam with a header, quarantines,
// and defers one recipient.
type testMilter struct {
	milter.NoOpMilter
	mu   *sync.Mutex
	seen *[]string
	body bytes.Buffer
	from string
}

func (m *testMilter) MailFrom(from string, _ *milter.Modifier) (milter.Response, error) {
	m.from = from
	return milter.RespContinue, nil
}

func (m *testMilter) RcptTo(rcpt string, _ *milter.Modifier) (milter.Response, error) {
	m.mu.Lock()
	*m.seen = append(*m.seen, rcpt)
	m.mu.Unlock()
	if strings.Contains(rcpt, "defer") {
		return milter.RespTempFail, nil
	}
	return milter.RespContinue, nil
}

func (m *testMilter) Headers(h textproto.MIMEHeader, _ *milter.Modifier) (milter.Response, error) {
	if strings.Contains(h.Get("Subject"), "virus") {
		return milter.NewResponseStr('y', "554 5.7.1 Virus found: Eicar-Test"), nil
	}
	return milter.RespContinue, nil
}

func (m *testMilter) BodyChunk(chunk []byte, _ *milter.Modifier) (milter.Response, error) {
	m.body.Write(chunk)
	return milter.RespContinue, nil
}

func (m *testMilter) Body(mod *milter.Modifier) (milter.Response, error) {
	if err := mod.AddHeader("X-Filtered", "yes"); err != nil {
		return nil, err
	}
	if strings.Contains(m.body.String(), "cheap pills") {
		if err := mod.AddHeader("X-Spam", "Yes"); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(strings.Trim(m.from, "<>"), "q@") {
		if err := mod.Quarantine("suspicious"); err != nil {
			return nil, err
		}
	}
	return milter.RespAccept, nil
}

func startMilter(t *testing.T) (string, *[]string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	srv := &milter.Server{
		NewMilter: func() milter.Milter { return &testMilter{mu: &mu, seen: &seen} },
		Actions:   milter.OptAddHeader | milter.OptQuarantine,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &seen
}

func TestMilter(t *testing.T) {
	addr, seen := startMilter(t)
	db := testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
	f := setup(t, db, delivery.NewMilter(delivery.MilterConfig{Network: "tcp", Address: addr}, nil))

	if _, err := deliver(t, f, mx, "Subject: hello\r\n\r\nplain words\r\n", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	got := inbox(t, f, f.alice, "INBOX")
	if len(got) != 1 || !strings.Contains(got[0], "X-Filtered: yes\r\n") {
		t.Fatalf("accepted message: %q", got)
	}
	if len(*seen) != 1 || strings.Trim((*seen)[0], "<>") != "alice@example.org" {
		t.Fatalf("milter saw recipients %v", *seen)
	}
	if _, err := deliver(t, f, mx, "Subject: a virus\r\n\r\nx\r\n", "alice@example.org"); code(err) != 554 || !strings.Contains(err.Error(), "Eicar") {
		t.Fatalf("virus: %v", err)
	}
	if _, err := deliver(t, f, mx, "Subject: offer\r\n\r\ncheap pills\r\n", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	q := *mx
	q.From = "q@elsewhere.test"
	if _, err := deliver(t, f, &q, "Subject: hm\r\n\r\nx\r\n", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if junk := inbox(t, f, f.alice, "Junk"); len(junk) != 2 || !strings.Contains(junk[0], "X-Spam: Yes") {
		t.Fatalf("junk: %d messages", len(junk))
	}
	if _, err := f.env.Store.AddAlias(context.Background(), "defer@example.org", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver(t, f, mx, "Subject: x\r\n\r\nx\r\n", "defer@example.org"); code(err) != 451 {
		t.Fatalf("tempfail: %v", err)
	}
}

func TestMilterUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	db := testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
	f := setup(t, db, delivery.NewMilter(delivery.MilterConfig{Network: "tcp", Address: addr}, nil))
	if _, err := deliver(t, f, mx, "Subject: x\r\n\r\nx\r\n", "alice@example.org"); code(err) != 451 {
		t.Fatalf("milter down: %v", err)
	}
	open := setup(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, delivery.NewMilter(delivery.MilterConfig{Network: "tcp", Address: addr, FailOpen: true}, nil))
	if _, err := deliver(t, open, mx, "Subject: x\r\n\r\nx\r\n", "alice@example.org"); err != nil {
		t.Fatalf("milter down, failing open: %v", err)
	}
}
