package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// relayLog records what the agent hands to the outbound queue.
type relayLog struct {
	mu   sync.Mutex
	sent []relayed
}

type relayed struct {
	from string
	to   []string
	raw  []byte
}

func (r *relayLog) Enqueue(_ context.Context, from string, to []string, raw []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, relayed{from, to, raw})
	return nil
}

func (r *relayLog) Relays() bool { return true }

func (r *relayLog) EnqueueSent(ctx context.Context, _ int64, from string, to []string, raw []byte) error {
	return r.Enqueue(ctx, from, to, raw)
}

type fixture struct {
	env   *storetest.Env
	agent *delivery.Agent
	relay *relayLog
	alice *session.Auth
	bob   *session.Auth
}

func setup(t *testing.T, db testsupport.Database, filters ...delivery.Filter) *fixture {
	e := storetest.Open(t, db, storetest.Options{})
	f := &fixture{env: e, relay: &relayLog{}}
	f.agent = delivery.New(delivery.Config{Hostname: "mx.example.org", MaxRecipients: 5, MaxSize: 64 << 10}, e.Store, f.relay, nil, filters...)
	f.alice = e.NewUser(t, "alice@example.org", false)
	f.bob = e.NewUser(t, "bob@example.org", false)
	ctx := context.Background()
	for _, a := range [][2]string{{"sales@example.org", "alice@example.org"}, {"sales@example.org", "bob@example.org"}, {"fwd@example.org", "carol@elsewhere.test"}, {"al@example.org", "alice@example.org"}} {
		if _, err := e.Store.AddAlias(ctx, a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func each(t *testing.T, f func(t *testing.T, db testsupport.Database)) {
	testsupport.ForEachDatabase(t, f)
}

func code(err error) int {
	var de *delivery.Error
	if errors.As(err, &de) {
		return de.Code
	}
	if err == nil {
		return 250
	}
	return -1
}

var mx = &delivery.Envelope{Source: delivery.SourceMX, From: "someone@elsewhere.test", RemoteIP: netip.MustParseAddr("192.0.2.9"), Helo: "mail.elsewhere.test", ID: "t1"}

func TestCheckRecipient(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		ctx := context.Background()
		storetest.Append(t, f.env.Account(f.bob), storetest.Inbox(t, f.env.Account(f.bob)), []byte(strings.Repeat("x", 20)), store.AppendOptions{})
		full := int64(10)
		if err := f.env.Store.SetLimits(ctx, f.bob.User.ID, "", store.LimitOverrides{QuotaBytes: &full}); err != nil {
			t.Fatal(err)
		}
		sub := &delivery.Envelope{Source: delivery.SourceSubmission, From: "alice@example.org", Auth: f.alice, RemoteIP: netip.MustParseAddr("127.0.0.1")}
		for _, tc := range []struct {
			env  *delivery.Envelope
			rcpt string
			want int
		}{
			{mx, "alice@example.org", 250},
			{mx, "ALICE@example.org", 250},
			{mx, "nobody@example.org", 550},
			{mx, "someone@elsewhere.test", 554}, // no open relay
			{mx, "bob@example.org", 452},        // over quota
			{mx, "not an address", 501},
			{sub, "someone@elsewhere.test", 250}, // an authenticated user relays
			{sub, "nobody@example.org", 550},
		} {
			_, err := f.agent.CheckRecipient(ctx, tc.env, tc.rcpt)
			if got := code(err); got != tc.want {
				t.Errorf("RCPT %s (source %d): %d (%v), want %d", tc.rcpt, tc.env.Source, got, err, tc.want)
			}
		}
		permanent := delivery.New(delivery.Config{QuotaPermanent: true}, f.env.Store, nil, nil)
		if _, err := permanent.CheckRecipient(ctx, mx, "bob@example.org"); code(err) != 552 {
			t.Errorf("permanent quota: %v", err)
		}
		if err := f.env.Store.Lock(ctx, f.alice.User.ID, time.Now().Add(time.Hour), "held"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.agent.CheckRecipient(ctx, mx, "alice@example.org"); code(err) != 450 {
			t.Errorf("locked mailbox: %v", err)
		}
	})
}

func TestCheckSender(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		ctx := context.Background()
		if err := f.env.Store.AddNullSender(ctx, "*.trusted.test"); err != nil {
			t.Fatal(err)
		}
		ip := netip.MustParseAddr("192.0.2.1")
		for _, tc := range []struct {
			env  delivery.Envelope
			want int
		}{
			{delivery.Envelope{Source: delivery.SourceMX, From: "x@elsewhere.test", RemoteIP: ip}, 250},
			{delivery.Envelope{Source: delivery.SourceMX, From: "", Helo: "mx.trusted.test", RemoteIP: ip}, 250},
			{delivery.Envelope{Source: delivery.SourceMX, From: "", Helo: "mx.untrusted.test", RemoteIP: ip}, 550},
			{delivery.Envelope{Source: delivery.SourceMX, From: "broken", RemoteIP: ip}, 501},
			{delivery.Envelope{Source: delivery.SourceSubmission, From: "alice@example.org"}, 530},
			{delivery.Envelope{Source: delivery.SourceSubmission, From: "alice@example.org", Auth: f.alice}, 250},
			{delivery.Envelope{Source: delivery.SourceSubmission, From: "al@example.org", Auth: f.alice}, 250},    // her alias
			{delivery.Envelope{Source: delivery.SourceSubmission, From: "sales@example.org", Auth: f.alice}, 553}, // shared: not hers alone
			{delivery.Envelope{Source: delivery.SourceSubmission, From: "bob@example.org", Auth: f.alice}, 553},
			{delivery.Envelope{Source: delivery.SourceSubmission, From: "", Auth: f.alice}, 553},
		} {
			if got := code(f.agent.CheckSender(ctx, &tc.env)); got != tc.want {
				t.Errorf("MAIL FROM:<%s> helo %q source %d: %d, want %d", tc.env.From, tc.env.Helo, tc.env.Source, got, tc.want)
			}
		}
	})
}

func deliver(t *testing.T, f *fixture, env *delivery.Envelope, raw string, rcpts ...string) ([]error, error) {
	t.Helper()
	var rs []delivery.Recipient
	for _, r := range rcpts {
		rc, err := f.agent.CheckRecipient(context.Background(), env, r)
		if err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
		rs = append(rs, rc)
	}
	return f.agent.Deliver(context.Background(), env, rs, strings.NewReader(raw))
}

func inbox(t *testing.T, f *fixture, auth *session.Auth, mailbox string) []string {
	t.Helper()
	return storetest.Messages(t, f.env.Account(auth), mailbox)
}

func TestDeliver(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		msg := "From: someone@elsewhere.test\r\nTo: sales@example.org\r\nSubject: hello\r\n\r\nbody\r\n"
		results, err := deliver(t, f, mx, msg, "sales@example.org", "fwd@example.org")
		if err != nil || results[0] != nil || results[1] != nil {
			t.Fatalf("deliver: %v %v", results, err)
		}
		for _, u := range []*session.Auth{f.alice, f.bob} {
			got := inbox(t, f, u, "INBOX")
			if len(got) != 1 {
				t.Fatalf("%s has %d messages", u.User.Address, len(got))
			}
			m := got[0]
			for _, want := range []string{"Return-Path: <someone@elsewhere.test>\r\n", "Delivered-To: sales@example.org\r\n",
				"Received: from mail.elsewhere.test ([192.0.2.9])\r\n\tby mx.example.org (Basalt) with ESMTP id t1;", "\r\n\r\nbody\r\n"} {
				if !strings.Contains(m, want) {
					t.Errorf("delivered message lacks %q:\n%s", want, m)
				}
			}
			if !strings.HasPrefix(m, "Return-Path:") {
				t.Errorf("Return-Path is not first")
			}
		}
		if len(f.relay.sent) != 1 || f.relay.sent[0].to[0] != "carol@elsewhere.test" || !bytes.Contains(f.relay.sent[0].raw, []byte("Received: ")) {
			t.Fatalf("forward through the queue: %+v", f.relay.sent)
		}
		looped := strings.Repeat("Received: from a by b; Sun, 22 Nov 2026 08:00:00 +0000\r\n", 101) + "Subject: loop\r\n\r\nx\r\n"
		if _, err := deliver(t, f, mx, looped, "alice@example.org"); code(err) != 554 {
			t.Fatalf("mail loop: %v", err)
		}
		big := strings.Repeat("x", 65<<10)
		if _, err := deliver(t, f, mx, big, "alice@example.org"); code(err) != 552 {
			t.Fatalf("too big: %v", err)
		}
	})
}

func TestSubmissionHeaderFrom(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		env := &delivery.Envelope{Source: delivery.SourceSubmission, From: "alice@example.org", Auth: f.alice, TLS: true}
		results, err := deliver(t, f, env, "From: Alice <alice@example.org>\r\nSubject: hi\r\n\r\nx\r\n", "bob@example.org", "carol@elsewhere.test")
		if err != nil || results[0] != nil || results[1] != nil {
			t.Fatalf("submission: %v %v", results, err)
		}
		if got := inbox(t, f, f.bob, "INBOX"); len(got) != 1 || !strings.Contains(got[0], "with ESMTPSA") {
			t.Fatalf("bob's copy: %q", got)
		}
		if len(f.relay.sent) != 1 {
			t.Fatalf("remote copy not queued")
		}
		if _, err := deliver(t, f, env, "From: bob@example.org\r\n\r\nforged\r\n", "bob@example.org"); code(err) != 550 {
			t.Fatalf("forged From header: %v", err)
		}
		if _, err := deliver(t, f, env, "Subject: no from\r\n\r\nx\r\n", "bob@example.org"); code(err) != 550 {
			t.Fatalf("missing From header: %v", err)
		}
	})
}

// tagger is a filter: it marks mail from spam.test as junk, refuses mail
// whose subject says so, and tags everything.
type tagger struct{ delivery.NopFilter }

func (tagger) Mail(_ context.Context, env *delivery.Envelope) delivery.Verdict {
	if strings.HasSuffix(env.From, "@blocked.test") {
		return delivery.Verdict{Action: delivery.Reject, Reply: &delivery.Error{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "sender blocked"}}
	}
	return delivery.Verdict{}
}

func (tagger) Data(_ context.Context, env *delivery.Envelope, _ []delivery.Recipient, h textproto.Header, _ []byte) delivery.Verdict {
	v := delivery.Verdict{Headers: []delivery.HeaderField{{Key: "X-Basalt-Filter", Value: "seen"}}}
	switch {
	case strings.Contains(h.Get("Subject"), "reject me"):
		v.Action, v.Reply = delivery.Reject, &delivery.Error{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "content refused"}
	case strings.HasSuffix(env.From, "@spam.test"):
		v.Action = delivery.Junk
	}
	return v
}

func TestFilters(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db, tagger{})
		ctx := context.Background()
		if err := f.agent.CheckSender(ctx, &delivery.Envelope{Source: delivery.SourceMX, From: "x@blocked.test"}); code(err) != 550 {
			t.Fatalf("filter at MAIL: %v", err)
		}
		if _, err := deliver(t, f, mx, "Subject: please reject me\r\n\r\nx\r\n", "alice@example.org"); code(err) != 554 {
			t.Fatalf("filter at DATA: %v", err)
		}
		spam := *mx
		spam.From = "x@spam.test"
		if _, err := deliver(t, f, &spam, "Subject: offer\r\n\r\nx\r\n", "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		junk := inbox(t, f, f.alice, "Junk")
		if len(junk) != 1 || !strings.Contains(junk[0], "X-Basalt-Filter: seen\r\n") {
			t.Fatalf("junk: %q", junk)
		}
		if got := inbox(t, f, f.alice, "INBOX"); len(got) != 0 {
			t.Fatalf("junk reached the inbox: %d", len(got))
		}
		ms, _ := f.env.Account(f.alice).List(ctx, storetest.MailboxID(t, f.env.Account(f.alice), "Junk"), store.ListQuery{})
		if !ms[0].Flags.Has(store.FlagJunk) {
			t.Fatal("junk flag not set")
		}
	})
}

func TestDeliverLocal(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		if err := f.agent.DeliverLocal(context.Background(), "", "alice@example.org", []byte("Subject: bounce\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		if got := inbox(t, f, f.alice, "INBOX"); len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <>\r\n") {
			t.Fatalf("local bounce: %q", got)
		}
		if err := f.agent.DeliverLocal(context.Background(), "", "nobody@example.org", []byte("x")); code(err) != 550 {
			t.Fatalf("to an unknown local: %v", err)
		}
	})
}

// gatedReader blocks its first read until the gate opens.
type gatedReader struct {
	gate    chan struct{}
	started chan struct{}
	r       io.Reader
	once    sync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.started); <-g.gate })
	return g.r.Read(p)
}

// TestMaxConcurrent: no more messages are read into memory at once than
// the agent allows; the next waits until one is done.
func TestMaxConcurrent(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	e.NewUser(t, "alice@example.org", false)
	agent := delivery.New(delivery.Config{MaxConcurrent: 1}, e.Store, nil, nil)
	ctx := context.Background()
	rc, err := agent.CheckRecipient(ctx, mx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	first := &gatedReader{gate: make(chan struct{}), started: make(chan struct{}), r: strings.NewReader("Subject: 1\r\n\r\nx\r\n")}
	done := make(chan error, 2)
	go func() { _, err := agent.Deliver(ctx, mx, []delivery.Recipient{rc}, first); done <- err }()
	<-first.started // the first holds the only slot
	second := &gatedReader{gate: make(chan struct{}), started: make(chan struct{}), r: strings.NewReader("Subject: 2\r\n\r\nx\r\n")}
	close(second.gate)
	go func() { _, err := agent.Deliver(ctx, mx, []delivery.Recipient{rc}, second); done <- err }()
	select {
	case <-second.started:
		t.Fatal("a second message was read while the only slot was taken")
	case <-time.After(200 * time.Millisecond):
	}
	close(first.gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// A caller that gives up while waiting gets a temporary failure.
	hold := &gatedReader{gate: make(chan struct{}), started: make(chan struct{}), r: strings.NewReader("x")}
	go agent.Deliver(ctx, mx, []delivery.Recipient{rc}, hold)
	<-hold.started
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := agent.Deliver(cctx, mx, []delivery.Recipient{rc}, strings.NewReader("x")); code(err) != 451 {
		t.Fatalf("waiting past the deadline: %v", err)
	}
	close(hold.gate)
}

// TestPartialRecipient: an alias whose targets partly fail is answered as
// delivered (a retry would duplicate the copies that were stored); a
// target that failed for the time being is queued to be tried again, and
// one that failed for good is reported to the sender in a DSN.
func TestPartialRecipient(t *testing.T) {
	each(t, func(t *testing.T, db testsupport.Database) {
		f := setup(t, db)
		ctx := context.Background()
		small := int64(100)
		if err := f.env.Store.SetLimits(ctx, f.bob.User.ID, "", store.LimitOverrides{QuotaBytes: &small}); err != nil {
			t.Fatal(err)
		}
		msg := "From: someone@elsewhere.test\r\nTo: sales@example.org\r\nSubject: big enough\r\n\r\n" + strings.Repeat("text ", 100) + "\r\n"
		results, err := deliver(t, f, mx, msg, "sales@example.org")
		if err != nil || results[0] != nil {
			t.Fatalf("partly delivered recipient: %v %v", results, err)
		}
		if got := inbox(t, f, f.alice, "INBOX"); len(got) != 1 {
			t.Fatalf("alice has %d", len(got))
		}
		if got := inbox(t, f, f.bob, "INBOX"); len(got) != 0 {
			t.Fatalf("bob over quota has %d", len(got))
		}
		if len(f.relay.sent) != 1 || f.relay.sent[0].from != "someone@elsewhere.test" || !slices.Equal(f.relay.sent[0].to, []string{"bob@example.org"}) ||
			!bytes.Contains(f.relay.sent[0].raw, []byte("Subject: big enough")) {
			t.Fatalf("retry of the full mailbox's copy: %+v", f.relay.sent)
		}
		// Where a full mailbox is a permanent failure, a DSN instead.
		permanent := delivery.New(delivery.Config{Hostname: "mx.example.org", QuotaPermanent: true}, f.env.Store, f.relay, nil)
		results, err = permanent.Deliver(ctx, mx, []delivery.Recipient{{Address: "sales@example.org", Users: []int64{f.alice.User.ID, f.bob.User.ID}}}, strings.NewReader(msg))
		if err != nil || results[0] != nil {
			t.Fatalf("partly delivered recipient: %v %v", results, err)
		}
		if len(f.relay.sent) != 2 || f.relay.sent[1].from != "" || f.relay.sent[1].to[0] != "someone@elsewhere.test" ||
			!bytes.Contains(f.relay.sent[1].raw, []byte("Final-Recipient: rfc822; sales@example.org")) {
			t.Fatalf("DSN for the failed target: %+v", f.relay.sent)
		}
		// When every target fails, the recipient is refused and no DSN goes out.
		if err := f.env.Store.SetLimits(ctx, f.alice.User.ID, "", store.LimitOverrides{QuotaBytes: &small}); err != nil {
			t.Fatal(err)
		}
		results, err = f.agent.Deliver(ctx, mx, []delivery.Recipient{{Address: "sales@example.org", Users: []int64{f.alice.User.ID, f.bob.User.ID}}}, strings.NewReader(msg))
		if err != nil || code(results[0]) != 452 || len(f.relay.sent) != 2 {
			t.Fatalf("all targets over quota: %v %v, %d sent", results, err, len(f.relay.sent))
		}
	})
}

// TestVacationNoDeadlock: a vacation reply to a local sender is itself a
// delivery; it must not wait for the slot its trigger holds.
func TestVacationNoDeadlock(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	alice := e.NewUser(t, "alice@example.org", false)
	bob := e.NewUser(t, "bob@example.org", false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Account(alice).SaveRules(ctx, store.Vacation{Enabled: true, Body: "away"}, store.Forwarding{}); err != nil {
		t.Fatal(err)
	}
	agent := delivery.New(delivery.Config{MaxConcurrent: 1}, e.Store, nil, nil)
	env := &delivery.Envelope{Source: delivery.SourceMX, From: "bob@example.org", RemoteIP: netip.MustParseAddr("192.0.2.1")}
	rc, err := agent.CheckRecipient(ctx, env, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	results, err := agent.Deliver(ctx, env, []delivery.Recipient{rc}, strings.NewReader("From: bob@example.org\r\nTo: alice@example.org\r\n\r\nhi\r\n"))
	if err != nil || results[0] != nil {
		t.Fatalf("deliver: %v %v", results, err)
	}
	if got := storetest.Messages(t, e.Account(bob), "INBOX"); len(got) != 1 || !strings.Contains(got[0], "Auto-Submitted: auto-replied") {
		t.Fatalf("bob's auto-reply: %q", got)
	}
}
