package delivery_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
	"basalt/store/outbound"
)

// --- a smarthost to relay to ------------------------------------------------

// relayTx is one transaction the test smarthost took.
type relayTx struct {
	from   string
	to     []string
	data   []byte
	helo   string
	tls    bool
	authed bool
}

// relayServer is a smarthost on 127.0.0.1 built on go-smtp's server. It
// records what it takes and answers each RCPT as rcptReply says.
type relayServer struct {
	addr string
	srv  *smtp.Server
	// rcptReply, if set, answers RCPT TO for the try'th time this recipient
	// is named (from 1); nil accepts.
	rcptReply func(rcpt string, try int) error
	// user and pass, if set, are required (AUTH PLAIN) before MAIL.
	user, pass string
	// hold, if set, keeps DATA waiting until it is closed.
	hold chan struct{}
	// dataStarted is signalled when a DATA begins.
	dataStarted chan struct{}

	mu    sync.Mutex
	txs   []relayTx
	tries map[string]int
}

type relayOptions struct {
	tls        bool
	user, pass string
	rcptReply  func(rcpt string, try int) error
	hold       bool
}

func newRelayServer(t *testing.T, o relayOptions) *relayServer {
	t.Helper()
	rs := &relayServer{rcptReply: o.rcptReply, user: o.user, pass: o.pass, tries: map[string]int{}, dataStarted: make(chan struct{}, 100)}
	if o.hold {
		rs.hold = make(chan struct{})
		t.Cleanup(func() { close(rs.hold) })
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{rs: rs, conn: c}, nil }))
	srv.Domain = "relay.test"
	srv.ErrorLog = silentLog{}
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	if o.tls {
		cert, _, _ := testsupport.TestCert(t, "relay.test")
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	} else {
		srv.AllowInsecureAuth = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs.addr, rs.srv = ln.Addr().String(), srv
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rs
}

func (rs *relayServer) transactions() []relayTx {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.txs)
}

type silentLog struct{}

func (silentLog) Printf(string, ...any) {}
func (silentLog) Println(...any)        {}

type relaySession struct {
	rs     *relayServer
	conn   *smtp.Conn
	from   string
	to     []string
	authed bool
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if s.rs.user == "" || user != s.rs.user || pass != s.rs.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.rs.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rs.mu.Lock()
	s.rs.tries[to]++
	try := s.rs.tries[to]
	s.rs.mu.Unlock()
	if s.rs.rcptReply != nil {
		if err := s.rs.rcptReply(to, try); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.rs.dataStarted <- struct{}{}
	if s.rs.hold != nil {
		<-s.rs.hold
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "going away"}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.rs.mu.Lock()
	s.rs.txs = append(s.rs.txs, relayTx{from: s.from, to: slices.Clone(s.to), data: b, helo: s.conn.Hostname(), tls: isTLS, authed: s.authed})
	s.rs.mu.Unlock()
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// --- the rest of the harness ------------------------------------------------

// localBox is the LocalDelivery the queue bounces to.
type localBox struct {
	mu   sync.Mutex
	msgs []localMsg
	err  error // returned (once) instead of taking the message, if set
}

type localMsg struct {
	from, to string
	raw      []byte
}

func (b *localBox) DeliverLocal(_ context.Context, from, to string, raw []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		err := b.err
		b.err = nil
		return err
	}
	b.msgs = append(b.msgs, localMsg{from, to, raw})
	return nil
}

func (b *localBox) got() []localMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func sqliteEnv(t *testing.T) *storetest.Env {
	t.Helper()
	return storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
}

// quick is a queue configuration that retries within milliseconds.
func quick(smarthost string) delivery.QueueConfig {
	return delivery.QueueConfig{
		Smarthost: smarthost, Hostname: "mx.example.org", Concurrency: 4,
		Backoff: []time.Duration{30 * time.Millisecond}, MaxAge: time.Hour,
		PollInterval: 50 * time.Millisecond, Timeout: 20 * time.Second,
	}
}

// runQueue runs q until the returned stop is called (or the test ends);
// stop fails the test if Run does not return promptly.
func runQueue(t *testing.T, q *delivery.Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func queueEmpty(t *testing.T, st *store.Store) func() bool {
	return func() bool {
		l, err := outbound.New(st).Entries(context.Background(), 0)
		if err != nil {
			t.Errorf("list queue: %v", err)
			return true
		}
		return len(l) == 0
	}
}

func entries(t *testing.T, st *store.Store) []outbound.Entry {
	t.Helper()
	l, err := outbound.New(st).Entries(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func blobFiles(t *testing.T, e *storetest.Env) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(e.BlobDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func reply(code int, enh smtp.EnhancedCode, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// --- tests ------------------------------------------------------------------

// TestQueueRelays: one transaction per entry carrying all its recipients,
// over STARTTLS with AUTH PLAIN, saying our name in EHLO; done, the entry
// and its file are gone.
func TestQueueRelays(t *testing.T) {
	e := sqliteEnv(t)
	rs := newRelayServer(t, relayOptions{tls: true, user: "relay-user", pass: "s3cret"})
	cfg := quick(rs.addr)
	cfg.StartTLS, cfg.TLSInsecure, cfg.Username, cfg.Password = true, true, "relay-user", "s3cret"
	q := delivery.NewQueue(cfg, e.Store, &localBox{}, testLogger(t))
	runQueue(t, q)
	msg := storetest.Message("alice@example.org", "bob@remote.test", "hello", "a line\n.leading dot\nend")
	if err := q.Enqueue(context.Background(), "alice@example.org", []string{"bob@remote.test", "carol@remote.test", "dave@elsewhere.test"}, msg); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the message to be relayed", queueEmpty(t, e.Store))
	txs := rs.transactions()
	if len(txs) != 1 {
		t.Fatalf("%d transactions, want 1", len(txs))
	}
	tx := txs[0]
	if tx.from != "alice@example.org" || !slices.Equal(tx.to, []string{"bob@remote.test", "carol@remote.test", "dave@elsewhere.test"}) {
		t.Errorf("envelope %s -> %v", tx.from, tx.to)
	}
	if !bytes.Equal(tx.data, msg) {
		t.Errorf("relayed content differs:\n%q\nwant\n%q", tx.data, msg)
	}
	if !tx.tls || !tx.authed || tx.helo != "mx.example.org" {
		t.Errorf("tls=%v authed=%v helo=%q", tx.tls, tx.authed, tx.helo)
	}
	// The file goes just after the row's delete commits.
	testsupport.WaitFor(t, 5*time.Second, "the message file to be removed", func() bool { return blobFiles(t, e) == 0 })
}

// TestQueueConfigRefused: Run refuses configurations it cannot run with,
// and a smarthost without the TLS the configuration asks for gets no mail.
func TestQueueConfigRefused(t *testing.T) {
	e := sqliteEnv(t)
	for _, tt := range []struct {
		name string
		cfg  delivery.QueueConfig
	}{
		{"no port", delivery.QueueConfig{Smarthost: "relay.example.org"}},
		{"password in clear", delivery.QueueConfig{Smarthost: "relay.example.org:25", Username: "u", Password: "p"}},
		{"both TLS modes", delivery.QueueConfig{Smarthost: "relay.example.org:25", StartTLS: true, ImplicitTLS: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := delivery.NewQueue(tt.cfg, e.Store, nil, testLogger(t)).Run(ctx); err == nil || ctx.Err() != nil {
				t.Fatalf("Run = %v, want a configuration error at once", err)
			}
		})
	}
	t.Run("no STARTTLS offered", func(t *testing.T) {
		rs := newRelayServer(t, relayOptions{}) // no TLS configured: no STARTTLS offered
		cfg := quick(rs.addr)
		cfg.StartTLS = true
		q := delivery.NewQueue(cfg, e.Store, &localBox{}, testLogger(t))
		runQueue(t, q)
		if err := q.Enqueue(context.Background(), "alice@example.org", []string{"bob@remote.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		testsupport.WaitFor(t, 10*time.Second, "an attempt", func() bool {
			l := entries(t, e.Store)
			return len(l) == 1 && l[0].Attempts >= 2
		})
		if l := entries(t, e.Store); !strings.Contains(l[0].LastError, "STARTTLS") {
			t.Errorf("last error %q", l[0].LastError)
		}
		if n := len(rs.transactions()); n != 0 {
			t.Fatalf("%d messages went out without TLS", n)
		}
	})
}

// TestQueueRetriesDeferred: a 4xx defers only the recipient it was for;
// the retry names only that recipient.
func TestQueueRetriesDeferred(t *testing.T) {
	e := sqliteEnv(t)
	rs := newRelayServer(t, relayOptions{rcptReply: func(rcpt string, try int) error {
		if rcpt == "slow@remote.test" && try < 3 {
			return reply(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")
		}
		return nil
	}})
	q := delivery.NewQueue(quick(rs.addr), e.Store, &localBox{}, testLogger(t))
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@example.org", []string{"fast@remote.test", "slow@remote.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "both recipients", queueEmpty(t, e.Store))
	txs := rs.transactions()
	if len(txs) != 2 || !slices.Equal(txs[0].to, []string{"fast@remote.test"}) || !slices.Equal(txs[1].to, []string{"slow@remote.test"}) {
		t.Fatalf("transactions %+v", txs)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.tries["fast@remote.test"] != 1 || rs.tries["slow@remote.test"] != 3 {
		t.Fatalf("RCPT counts %v", rs.tries)
	}
}

// TestQueueBounces: a 5xx fails its recipient for good; the sender gets one
// DSN naming it, locally or through the queue, and a bounce that fails is
// never bounced.
func TestQueueBounces(t *testing.T) {
	tests := []struct {
		name   string
		sender string
		local  bool // the sender's domain is ours
	}{
		{"local sender", "alice@example.org", true},
		{"remote sender", "zed@sender.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := sqliteEnv(t)
			if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
				t.Fatal(err)
			}
			rs := newRelayServer(t, relayOptions{rcptReply: func(rcpt string, _ int) error {
				if strings.HasPrefix(rcpt, "nobody@") || rcpt == "zed@sender.test" {
					return reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")
				}
				return nil
			}})
			box := &localBox{}
			q := delivery.NewQueue(quick(rs.addr), e.Store, box, testLogger(t))
			runQueue(t, q)
			msg := storetest.Message(tt.sender, "bob@remote.test", "Lunch?", "SECRET BODY")
			if err := q.Enqueue(ctx, tt.sender, []string{"bob@remote.test", "nobody@remote.test"}, msg); err != nil {
				t.Fatal(err)
			}
			testsupport.WaitFor(t, 10*time.Second, "the queue to drain", queueEmpty(t, e.Store))

			var dsn []byte
			if tt.local {
				got := box.got()
				if len(got) != 1 || got[0].from != "" || got[0].to != tt.sender {
					t.Fatalf("local deliveries %+v", got)
				}
				dsn = got[0].raw
			} else {
				if n := len(box.got()); n != 0 {
					t.Fatalf("%d local deliveries for a remote sender", n)
				}
				// The DSN went out from the null sender; the smarthost refused
				// it too, and that made no further bounce.
				rs.mu.Lock()
				tries := rs.tries["zed@sender.test"]
				rs.mu.Unlock()
				if tries != 1 {
					t.Fatalf("the DSN was offered %d times, want once and never bounced", tries)
				}
			}
			txs := rs.transactions()
			if len(txs) != 1 || !slices.Equal(txs[0].to, []string{"bob@remote.test"}) {
				t.Fatalf("transactions %+v", txs)
			}
			if dsn == nil {
				return
			}
			p := parseDSN(t, dsn)
			if len(p.perRcpt) != 1 {
				t.Fatalf("DSN reports %d recipients:\n%s", len(p.perRcpt), p.statusRaw)
			}
			r := p.perRcpt[0]
			for k, v := range map[string]string{
				"Final-Recipient": "rfc822; nobody@remote.test", "Action": "failed", "Status": "5.1.1",
				"Diagnostic-Code": "smtp; 550 5.1.1 No such user", "Remote-MTA": "dns; 127.0.0.1",
			} {
				if got := r.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if p.perMessage.Get("Reporting-MTA") != "dns; mx.example.org" || p.perMessage.Get("Arrival-Date") == "" {
				t.Errorf("per-message fields %v", p.perMessage.Map())
			}
			if !strings.Contains(p.original, "Subject: Lunch?") || strings.Contains(string(dsn), "SECRET BODY") {
				t.Errorf("returned headers %q", p.original)
			}
		})
	}
}

// TestQueueBounceOfRemoteSender: the DSN to a remote sender is queued and
// relayed from the null sender.
func TestQueueBounceOfRemoteSender(t *testing.T) {
	ctx := context.Background()
	e := sqliteEnv(t)
	rs := newRelayServer(t, relayOptions{rcptReply: func(rcpt string, _ int) error {
		if rcpt == "nobody@remote.test" {
			return reply(554, smtp.EnhancedCode{5, 7, 1}, "Relay denied")
		}
		return nil
	}})
	q := delivery.NewQueue(quick(rs.addr), e.Store, &localBox{}, testLogger(t))
	runQueue(t, q)
	if err := q.Enqueue(ctx, "zed@sender.test", []string{"nobody@remote.test"}, storetest.Message("zed@sender.test", "nobody@remote.test", "hi", "x")); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the DSN to be relayed", func() bool { return len(rs.transactions()) == 1 && queueEmpty(t, e.Store)() })
	tx := rs.transactions()[0]
	if tx.from != "" || !slices.Equal(tx.to, []string{"zed@sender.test"}) {
		t.Fatalf("DSN envelope %q -> %v", tx.from, tx.to)
	}
	p := parseDSN(t, tx.data)
	if len(p.perRcpt) != 1 || p.perRcpt[0].Get("Status") != "5.7.1" || p.perRcpt[0].Get("Final-Recipient") != "rfc822; nobody@remote.test" {
		t.Fatalf("DSN %s", p.statusRaw)
	}
}

// TestQueueExpires: a smarthost that never answers makes the message
// expire after MaxAge, retried until then, and bounce with 5.4.7.
func TestQueueExpires(t *testing.T) {
	ctx := context.Background()
	e := sqliteEnv(t)
	if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	// The smarthost hangs up on every connection: each attempt is one
	// accepted connection, counted here rather than read off the queue's
	// rows (the last attempt, the one that finds the entry expired, removes
	// its row at once, so a reader of the rows can miss it under load).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	cfg := quick(ln.Addr().String())
	cfg.MaxAge = 400 * time.Millisecond
	cfg.Backoff = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	box := &localBox{}
	q := delivery.NewQueue(cfg, e.Store, box, testLogger(t))
	start := time.Now()
	if err := q.Enqueue(ctx, "alice@example.org", []string{"bob@remote.test"}, storetest.Message("alice@example.org", "bob@remote.test", "x", "x")); err != nil {
		t.Fatal(err)
	}
	runQueue(t, q)
	testsupport.WaitFor(t, 10*time.Second, "the bounce", func() bool { return len(box.got()) == 1 })
	if age := time.Since(start); age < cfg.MaxAge {
		t.Fatalf("bounced after %v, before MaxAge", age)
	}
	if n := accepted.Load(); n < 2 {
		t.Errorf("only %d attempts made before expiry", n)
	}
	testsupport.WaitFor(t, 5*time.Second, "the entry to go", queueEmpty(t, e.Store))
	p := parseDSN(t, box.got()[0].raw)
	r := p.perRcpt[0]
	if r.Get("Status") != "5.4.7" || r.Get("Action") != "failed" || !strings.HasPrefix(r.Get("Diagnostic-Code"), "X-Basalt; ") ||
		!strings.Contains(r.Get("Diagnostic-Code"), "EOF") || r.Get("Remote-MTA") != "" {
		t.Fatalf("expiry DSN fields %v", r.Map())
	}
}

// TestQueueWithAgent: the queue and the Agent wired to each other, as the
// server does: a user's relayed message that fails comes back as a DSN in
// the user's INBOX.
func TestQueueWithAgent(t *testing.T) {
	ctx := context.Background()
	e := sqliteEnv(t)
	auth := e.NewUser(t, "alice@example.org", false)
	rs := newRelayServer(t, relayOptions{rcptReply: func(string, int) error {
		return reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")
	}})
	var agent *delivery.Agent
	q := delivery.NewQueue(quick(rs.addr), e.Store, delivery.LocalDeliveryFunc(func(ctx context.Context, from, to string, raw []byte) error {
		return agent.DeliverLocal(ctx, from, to, raw)
	}), testLogger(t))
	agent = delivery.New(delivery.Config{Hostname: "mx.example.org"}, e.Store, q, testLogger(t))
	runQueue(t, q)
	env := &delivery.Envelope{Source: delivery.SourceSubmission, From: "alice@example.org", Auth: auth}
	if err := agent.CheckSender(ctx, env); err != nil {
		t.Fatal(err)
	}
	rc, err := agent.CheckRecipient(ctx, env, "nobody@remote.test")
	if err != nil {
		t.Fatal(err)
	}
	msg := storetest.Message("alice@example.org", "nobody@remote.test", "Lost letter", "x")
	res, err := agent.Deliver(ctx, env, []delivery.Recipient{rc}, bytes.NewReader(msg))
	if err != nil || res[0] != nil {
		t.Fatalf("submit: %v %v", res, err)
	}
	a := e.Account(auth)
	inbox := storetest.Inbox(t, a)
	var msgs []store.Message
	testsupport.WaitFor(t, 10*time.Second, "the DSN in alice's INBOX", func() bool {
		msgs, err = a.List(ctx, inbox, store.ListQuery{})
		return err == nil && len(msgs) == 1
	})
	r, err := a.Open(ctx, msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("Return-Path: <>\r\n")) {
		t.Errorf("the DSN was not delivered from the null sender:\n%.200s", raw)
	}
	p := parseDSN(t, raw)
	if len(p.perRcpt) != 1 || p.perRcpt[0].Get("Final-Recipient") != "rfc822; nobody@remote.test" || !strings.Contains(p.original, "Lost letter") {
		t.Fatalf("DSN in the INBOX: %s\n%s", p.statusRaw, p.original)
	}
	testsupport.WaitFor(t, 5*time.Second, "the queue to drain", queueEmpty(t, e.Store))
}

// TestQueueLocal: without a smarthost the queue still holds what must be
// delivered here later: a copy that a full mailbox refused after its
// recipient was answered as delivered, retried until the mailbox has
// room; a bounce to a sender whose mailbox stays full, given up at the
// maximum age with nothing more sent; and a stray remote recipient,
// failed at once and reported.
func TestQueueLocal(t *testing.T) {
	ctx := context.Background()
	e := sqliteEnv(t)
	alice := e.NewUser(t, "alice@example.org", false)
	bob := e.NewUser(t, "bob@example.org", false)
	carol := e.NewUser(t, "carol@example.org", false)
	for _, to := range []string{"alice@example.org", "bob@example.org"} {
		if _, err := e.Store.AddAlias(ctx, "team@example.org", to); err != nil {
			t.Fatal(err)
		}
	}
	tiny := int64(100)
	for _, u := range []*session.Auth{bob, carol} {
		if err := e.Store.SetLimits(ctx, u.User.ID, "", store.LimitOverrides{QuotaBytes: &tiny}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := quick("")
	cfg.MaxAge = 2 * time.Second
	var agent *delivery.Agent
	q := delivery.NewQueue(cfg, e.Store, delivery.LocalDeliveryFunc(func(ctx context.Context, from, to string, raw []byte) error {
		return agent.DeliverLocal(ctx, from, to, raw)
	}), testLogger(t))
	agent = delivery.New(delivery.Config{Hostname: "mx.example.org"}, e.Store, q, testLogger(t))
	mx := &delivery.Envelope{Source: delivery.SourceMX, From: "someone@elsewhere.test", Helo: "elsewhere.test"}
	if _, err := agent.CheckRecipient(ctx, mx, "x@remote.test"); err == nil {
		t.Fatal("a remote recipient was taken from the internet")
	}
	rc, err := agent.CheckRecipient(ctx, mx, "team@example.org")
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: someone@elsewhere.test\r\nTo: team@example.org\r\nSubject: for the team\r\n\r\n" + strings.Repeat("text ", 100) + "\r\n"
	res, err := agent.Deliver(ctx, mx, []delivery.Recipient{rc}, strings.NewReader(msg))
	if err != nil || res[0] != nil {
		t.Fatalf("deliver: %v %v", res, err)
	}
	if l := entries(t, e.Store); len(l) != 1 || l[0].From != "someone@elsewhere.test" || len(l[0].Rcpts) != 1 || l[0].Rcpts[0].Address != "bob@example.org" {
		t.Fatalf("queue after a full mailbox: %+v", l)
	}
	// A bounce to carol, who stays full; and a message to elsewhere.
	if err := q.Enqueue(ctx, "", []string{"carol@example.org"}, storetest.Message("", "carol@example.org", "bounce", "x")); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, "alice@example.org", []string{"x@remote.test"}, storetest.Message("alice@example.org", "x@remote.test", "away", "x")); err != nil {
		t.Fatal(err)
	}
	runQueue(t, q)
	time.Sleep(200 * time.Millisecond) // some failed attempts at bob's copy
	big := int64(1 << 20)
	if err := e.Store.SetLimits(ctx, bob.User.ID, "", store.LimitOverrides{QuotaBytes: &big}); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the queue to drain", queueEmpty(t, e.Store))

	if got := storetest.Messages(t, e.Account(bob), "INBOX"); len(got) != 1 || !strings.Contains(got[0], "Subject: for the team") {
		t.Fatalf("bob's retried copy: %q", got)
	}
	if got := storetest.Messages(t, e.Account(carol), "INBOX"); len(got) != 0 {
		t.Fatalf("carol's full mailbox got %d", len(got))
	}
	got := storetest.Messages(t, e.Account(alice), "INBOX")
	if len(got) != 2 {
		t.Fatalf("alice has %d messages, want the team's and a bounce", len(got))
	}
	var dsn string
	for _, m := range got {
		if strings.Contains(m, "multipart/report") {
			dsn = m
		}
	}
	if !strings.Contains(dsn, "Final-Recipient: rfc822; x@remote.test") || !strings.Contains(dsn, "Relaying is not configured") {
		t.Fatalf("bounce for the remote recipient:\n%s", dsn)
	}
}

// TestQueueLocalBounceRetried: a bounce the local delivery cannot take yet
// is tried again, without sending the message again; one refused for good
// is dropped.
func TestQueueLocalBounceRetried(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantBoxed int
	}{
		{"temporary", delivery.ErrTemporary, 1},
		{"permanent", delivery.ErrUnknownUser, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := sqliteEnv(t)
			if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
				t.Fatal(err)
			}
			rs := newRelayServer(t, relayOptions{rcptReply: func(string, int) error {
				return reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")
			}})
			box := &localBox{err: tt.err}
			q := delivery.NewQueue(quick(rs.addr), e.Store, delivery.LocalDeliveryFunc(box.DeliverLocal), testLogger(t))
			runQueue(t, q)
			if err := q.Enqueue(ctx, "alice@example.org", []string{"nobody@remote.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
				t.Fatal(err)
			}
			testsupport.WaitFor(t, 10*time.Second, "the queue to drain", queueEmpty(t, e.Store))
			if n := len(box.got()); n != tt.wantBoxed {
				t.Fatalf("%d bounces delivered, want %d", n, tt.wantBoxed)
			}
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if n := rs.tries["nobody@remote.test"]; n != 1 {
				t.Fatalf("the failed recipient was tried %d times, want 1", n)
			}
		})
	}
}

// TestQueueSurvivesRestart: entries outlive the queue and the store that
// held them; one cut off mid-transaction by a shutdown is given back at
// once, not after its lease, and a new queue over a reopened store sends
// both.
func TestQueueSurvivesRestart(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e1 := storetest.Open(t, db, storetest.Options{})
		stuck := newRelayServer(t, relayOptions{hold: true})
		q1 := delivery.NewQueue(quick(stuck.addr), e1.Store, &localBox{}, testLogger(t))
		stop1 := runQueue(t, q1)
		m1 := storetest.Message("alice@example.org", "bob@remote.test", "first", "1")
		if err := q1.Enqueue(ctx, "alice@example.org", []string{"bob@remote.test"}, m1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-stuck.dataStarted:
		case <-time.After(10 * time.Second):
			t.Fatal("the first message never reached DATA")
		}
		stopped := time.Now()
		stop1()
		if d := time.Since(stopped); d > 5*time.Second {
			t.Fatalf("shutdown took %v with a transaction in flight", d)
		}
		// Queued while no queue runs: durable all the same.
		m2 := storetest.Message("alice@example.org", "carol@remote.test", "second", "2")
		if err := q1.Enqueue(ctx, "alice@example.org", []string{"carol@remote.test"}, m2); err != nil {
			t.Fatal(err)
		}
		l := entries(t, e1.Store)
		if len(l) != 2 || time.Until(l[0].NextAttempt) > time.Second || l[0].Attempts != 0 {
			t.Fatalf("after shutdown the queue holds %+v; want 2 entries due now, the cut-off attempt not counted", l)
		}

		e2 := storetest.Open(t, db, storetest.Options{BlobDir: e1.BlobDir})
		rs := newRelayServer(t, relayOptions{})
		q2 := delivery.NewQueue(quick(rs.addr), e2.Store, &localBox{}, testLogger(t))
		runQueue(t, q2)
		testsupport.WaitFor(t, 10*time.Second, "the restarted queue to send both", queueEmpty(t, e2.Store))
		txs := rs.transactions()
		if len(txs) != 2 {
			t.Fatalf("%d transactions, want 2", len(txs))
		}
		got := map[string][]byte{}
		for _, tx := range txs {
			got[tx.to[0]] = tx.data
		}
		if !bytes.Equal(got["bob@remote.test"], m1) || !bytes.Equal(got["carol@remote.test"], m2) {
			t.Fatalf("relayed %v", got)
		}
		testsupport.WaitFor(t, 5*time.Second, "the message files to be removed", func() bool { return blobFiles(t, e2) == 0 })
	})
}

// TestQueueTwoNodes: two nodes share one database and one blob directory,
// each running a queue; every message goes out exactly once.
func TestQueueTwoNodes(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		a := storetest.Open(t, db, storetest.Options{})
		b := storetest.Open(t, db, storetest.Options{BlobDir: a.BlobDir})
		rs := newRelayServer(t, relayOptions{})
		qa := delivery.NewQueue(quick(rs.addr), a.Store, &localBox{}, testLogger(t))
		qb := delivery.NewQueue(quick(rs.addr), b.Store, &localBox{}, testLogger(t))
		const n = 30
		// Queue half before the nodes start, so both race for a backlog,
		// and half while they run.
		enqueue := func(from, to int) {
			for i := from; i < to; i++ {
				q := qa
				if i%2 == 1 {
					q = qb
				}
				to := fmt.Sprintf("r%d@remote.test", i)
				if err := q.Enqueue(ctx, "alice@example.org", []string{to}, storetest.Message("alice@example.org", to, "m", "x")); err != nil {
					t.Fatal(err)
				}
			}
		}
		enqueue(0, n/2)
		runQueue(t, qa)
		runQueue(t, qb)
		enqueue(n/2, n)
		testsupport.WaitFor(t, 20*time.Second, "all messages", func() bool { return len(rs.transactions()) >= n && queueEmpty(t, a.Store)() })
		time.Sleep(100 * time.Millisecond) // room for a duplicate to show
		count := map[string]int{}
		for _, tx := range rs.transactions() {
			count[tx.to[0]]++
		}
		if len(count) != n {
			t.Fatalf("%d distinct recipients reached, want %d", len(count), n)
		}
		for r, c := range count {
			if c != 1 {
				t.Errorf("%s got %d copies", r, c)
			}
		}
	})
}

// --- Postfix's smtp-sink as the smarthost -------------------------------------

// startSink runs smtp-sink on addr, dumping each transaction into a file
// under the returned directory, and waits until it answers.
func startSink(t *testing.T, addr string, args ...string) string {
	t.Helper()
	bin := testsupport.NeedCommand(t, "smtp-sink")
	dir := t.TempDir()
	argv := []string{"-h", "sink.test", "-d", dir + "/msg."}
	if os.Geteuid() == 0 {
		argv = append(argv, "-u", "root") // required when run as root
	}
	argv = append(append(argv, args...), addr, "16")
	cmd := exec.Command(bin, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	testsupport.WaitFor(t, 10*time.Second, "smtp-sink to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return dir
}

func sinkDumps(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "msg.*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestQueueSmtpSinkRetry: the smarthost is down (connection refused), the
// entry is retried, and once smtp-sink listens the message goes through.
func TestQueueSmtpSinkRetry(t *testing.T) {
	testsupport.NeedCommand(t, "smtp-sink")
	ctx := context.Background()
	e := sqliteEnv(t)
	addr := freeAddr(t)
	q := delivery.NewQueue(quick(addr), e.Store, &localBox{}, testLogger(t))
	runQueue(t, q)
	msg := storetest.Message("alice@example.org", "bob@remote.test", "via sink", "body text")
	if err := q.Enqueue(ctx, "alice@example.org", []string{"bob@remote.test", "carol@remote.test"}, msg); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "a refused attempt", func() bool {
		l := entries(t, e.Store)
		return len(l) == 1 && l[0].Attempts >= 1
	})
	if l := entries(t, e.Store); !strings.Contains(l[0].LastError, "refused") {
		t.Fatalf("last error %q, want a refused connection", l[0].LastError)
	}
	dir := startSink(t, addr)
	testsupport.WaitFor(t, 10*time.Second, "the retry to get through", queueEmpty(t, e.Store))
	var dumps []string
	testsupport.WaitFor(t, 5*time.Second, "smtp-sink's dump", func() bool { dumps = sinkDumps(t, dir); return len(dumps) == 1 })
	d := dumps[0]
	for _, want := range []string{"X-Mail-Args: <alice@example.org>", "X-Rcpt-Args: <bob@remote.test>", "X-Rcpt-Args: <carol@remote.test>",
		"X-Helo-Args: mx.example.org", "Subject: via sink", "body text"} {
		if !strings.Contains(d, want) {
			t.Errorf("dump lacks %q:\n%s", want, d)
		}
	}
}

// TestQueueSmtpSinkBounce: smtp-sink refuses every recipient with a 5xx;
// the sender gets a DSN carrying that reply, and nothing is retried.
func TestQueueSmtpSinkBounce(t *testing.T) {
	testsupport.NeedCommand(t, "smtp-sink")
	ctx := context.Background()
	e := sqliteEnv(t)
	if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	dir := startSink(t, addr, "-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected")
	box := &localBox{}
	q := delivery.NewQueue(quick(addr), e.Store, box, testLogger(t))
	runQueue(t, q)
	if err := q.Enqueue(ctx, "alice@example.org", []string{"bob@remote.test"}, storetest.Message("alice@example.org", "bob@remote.test", "doomed", "x")); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the bounce", func() bool { return len(box.got()) == 1 })
	testsupport.WaitFor(t, 5*time.Second, "the entry to go", queueEmpty(t, e.Store))
	got := box.got()[0]
	if got.from != "" || got.to != "alice@example.org" {
		t.Fatalf("bounce envelope %q -> %q", got.from, got.to)
	}
	p := parseDSN(t, got.raw)
	r := p.perRcpt[0]
	if r.Get("Status") != "5.1.1" || r.Get("Diagnostic-Code") != "smtp; 550 5.1.1 Recipient address rejected" ||
		r.Get("Final-Recipient") != "rfc822; bob@remote.test" {
		t.Fatalf("DSN fields %v", r.Map())
	}
	if !strings.Contains(p.original, "Subject: doomed") {
		t.Fatalf("original headers %q", p.original)
	}
	if n := len(sinkDumps(t, dir)); n != 0 {
		t.Fatalf("smtp-sink stored %d messages", n)
	}
}
