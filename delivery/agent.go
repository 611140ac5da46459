package delivery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"basalt/session"
	"basalt/store"
)

// DefaultMaxRecipients is the recipients one message may have unless
// configured: RFC 5321 4.5.3.1.8 requires taking at least 100.
const DefaultMaxRecipients = 100

// maxHops is the most Received headers a message may carry (RFC 5321
// 6.3 suggests at least 100).
const maxHops = 100

// Source says how a message came in.
type Source int

// Sources.
const (
	SourceMX         Source = iota // SMTP from the internet
	SourceLMTP                     // an MTA handing mail over (trusted for relaying nothing)
	SourceSubmission               // an authenticated user's client
	SourceWebmail                  // the webmail's send
	SourceInternal                 // Basalt itself: bounces, vacation replies, bulletins
)

// sourceProto names each source in Received headers (RFC 3848).
var sourceProto = map[Source]string{SourceMX: "ESMTP", SourceLMTP: "LMTP", SourceSubmission: "ESMTPA", SourceWebmail: "HTTP", SourceInternal: "local"}

// Envelope is what is known about a message besides its content.
type Envelope struct {
	Source   Source
	From     string // the reverse-path; "" is the null sender
	RemoteIP netip.Addr
	Helo     string
	TLS      bool
	// Auth is the authenticated user (submission, webmail).
	Auth *session.Auth
	// ID names the transaction in logs and in the Received header.
	ID string
}

// Recipient is an accepted RCPT TO and where it resolved to.
type Recipient struct {
	Address string
	Users   []int64  // local users to store for
	Remote  []string // addresses elsewhere: the recipient itself, or alias forwards
	// ruled are the users among Users with vacation or forwarding rules.
	ruled map[int64]bool
}

// Relay is the outbound queue, as the agent needs it.
type Relay interface {
	// Enqueue stores a message for relaying to the given addresses and
	// returns once it is durable.
	Enqueue(ctx context.Context, from string, to []string, raw []byte) error
	// EnqueueSent is Enqueue for a message a user sends: it is charged
	// to the user's daily send limit in the same step, so that it is
	// counted exactly when it is queued.
	EnqueueSent(ctx context.Context, userID int64, from string, to []string, raw []byte) error
	// Relays reports whether mail for other domains can be sent; without
	// it the queue only holds local deliveries to be retried, and bounces.
	Relays() bool
}

// Config tunes the agent.
type Config struct {
	Hostname      string // the name in Received headers and bounces
	MaxRecipients int    // per message; default 100
	MaxSize       int64  // bytes; default 50 MiB
	// QuotaPermanent answers a full mailbox with 552 5.2.2 instead of
	// 452 4.2.2 (RFC 5321 4.5.3.1.10 leaves it to the site).
	QuotaPermanent bool
	// MaxConcurrent bounds the messages being read and delivered at once;
	// each is held in memory, so this times MaxSize bounds that memory.
	// Others wait their turn. Default 64.
	MaxConcurrent int
}

// Agent delivers messages. It is safe for concurrent use.
type Agent struct {
	cfg     Config
	store   *store.Store
	relayQ  Relay
	filters []Filter
	log     *slog.Logger
	now     func() time.Time
	slots   chan struct{} // MaxConcurrent messages in memory at once
}

// New returns an agent storing into st and relaying through q (nil: mail
// for other domains is refused).
func New(cfg Config, st *store.Store, q Relay, log *slog.Logger, filters ...Filter) *Agent {
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 50 << 20
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 64
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{cfg: cfg, store: st, relayQ: q, filters: filters, log: log, now: time.Now, slots: make(chan struct{}, cfg.MaxConcurrent)}
	if dq, ok := q.(*Queue); ok && dq != nil {
		// The queue hands due submissions (delayed sends) back to the
		// agent that queued them (submit.go).
		dq.agent = a
	}
	return a
}

// MaxSize is the largest message the agent takes (SMTP SIZE, RFC 1870).
func (a *Agent) MaxSize() int64 { return a.cfg.MaxSize }

// MaxRecipients is the most recipients one message may have.
func (a *Agent) MaxRecipients() int { return a.cfg.MaxRecipients }

// CheckSender is called at MAIL FROM (RFC 5321 3.3). The null sender is
// taken only from hosts in the null-sender table (mmmail's nofrom), and
// only on inbound paths; an authenticated user may send only as one of
// their own addresses (magma enforced this).
func (a *Agent) CheckSender(ctx context.Context, env *Envelope) error {
	if env.From != "" {
		if _, err := store.NormalizeAddress(env.From); err != nil {
			return ErrBadAddress.with(err)
		}
	}
	switch env.Source {
	case SourceSubmission, SourceWebmail:
		if env.Auth == nil {
			return ErrNeedsAuth
		}
		if env.From == "" {
			return ErrForbiddenFrom
		}
		if ok, err := a.ownsAddress(ctx, env.Auth.User, env.From); err != nil {
			return a.storeError(err)
		} else if !ok {
			return ErrForbiddenFrom
		}
	case SourceMX:
		if env.From == "" {
			ok, err := a.store.NullSenderAllowed(ctx, env.Helo, env.RemoteIP.String())
			if err != nil {
				return a.storeError(err)
			}
			if !ok {
				return ErrNullSender
			}
		}
	}
	if v := runChain(a.filters, func(f Filter) Verdict { return f.Mail(ctx, env) }); v.Action == Reject {
		return v.Reply
	}
	return nil
}

// ownsAddress reports whether addr is one of u's addresses: the primary
// one, or one that resolves to u alone (an alias of theirs).
func (a *Agent) ownsAddress(ctx context.Context, u store.User, addr string) (bool, error) {
	n, err := store.NormalizeAddress(addr)
	if err != nil {
		return false, nil
	}
	if n == u.Address {
		return true, nil
	}
	res, err := a.store.Resolve(ctx, n)
	if errors.Is(err, store.ErrUnknownLocal) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return res.Local && len(res.Users) == 1 && res.Users[0] == u.ID && len(res.External) == 0, nil
}

// CheckRecipient is called at each RCPT TO. Local recipients must exist
// (550 5.1.1); mail for other domains is taken only from authenticated
// users (554 5.7.1: no open relay). A local user over quota is refused now
// rather than bounced later.
func (a *Agent) CheckRecipient(ctx context.Context, env *Envelope, addr string) (Recipient, error) {
	n, err := store.NormalizeAddress(addr)
	if err != nil {
		return Recipient{}, ErrBadAddress.with(err)
	}
	res, err := a.store.Resolve(ctx, n)
	if err != nil {
		return Recipient{}, a.storeError(err)
	}
	r := Recipient{Address: n, Users: res.Users, Remote: res.External}
	if !res.Local {
		if env.Source != SourceSubmission && env.Source != SourceWebmail && env.Source != SourceInternal {
			return Recipient{}, ErrNoRelay
		}
		if !a.relays() {
			return Recipient{}, ErrNoRelay.with(errors.New("no smarthost configured"))
		}
		r.Remote = []string{n}
	}
	for _, id := range r.Users {
		u, err := a.store.UserByID(ctx, id)
		if err != nil {
			return Recipient{}, a.storeError(err)
		}
		if u.Locked(a.now()) {
			return Recipient{}, ErrMailboxLocked
		}
		lim, err := a.store.Limits(ctx, u)
		if err != nil {
			return Recipient{}, a.storeError(err)
		}
		if lim.QuotaBytes > 0 && u.UsedBytes >= lim.QuotaBytes {
			return Recipient{}, a.storeError(store.ErrOverQuota)
		}
		if u.DeliveryRules {
			if r.ruled == nil {
				r.ruled = map[int64]bool{}
			}
			r.ruled[id] = true
		}
	}
	if v := runChain(a.filters, func(f Filter) Verdict { return f.Rcpt(ctx, env, n) }); v.Action == Reject {
		return Recipient{}, v.Reply
	}
	return r, nil
}

// Deliver reads the message from r and delivers it to every recipient,
// returning once each result is final: nil where the message is durable
// (stored, or queued for relay), else the refusal for that recipient, in
// the order of rcpts (LMTP answers each, RFC 2033 4.2). The error is for
// the message as a whole: too big, unreadable, or refused by a filter.
func (a *Agent) Deliver(ctx context.Context, env *Envelope, rcpts []Recipient, r io.Reader) ([]error, error) {
	if len(rcpts) == 0 {
		return nil, ErrNoValidRcpts
	}
	// Work that sends mail of Basalt's own (auto-replies, reports of
	// partial failures) runs after this delivery has given back its slot:
	// sending it delivers too, and must never wait for a slot this
	// delivery holds.
	var after []func()
	defer func() {
		for _, f := range after {
			f()
		}
	}()
	// Mail Basalt makes itself is small and must not wait behind clients
	// for a slot; everything else holds one while its body is in memory.
	if env.Source != SourceInternal {
		select {
		case a.slots <- struct{}{}:
			defer func() { <-a.slots }()
		case <-ctx.Done():
			return nil, ErrTemporary.with(ctx.Err())
		}
		r = &deadlineReader{r: r, deadline: a.now().Add(maxDataTime), now: a.now}
	}
	body, err := io.ReadAll(io.LimitReader(r, a.cfg.MaxSize+1))
	if err != nil {
		return nil, ErrTemporary.with(fmt.Errorf("read message: %w", err))
	}
	if int64(len(body)) > a.cfg.MaxSize {
		return nil, ErrTooLarge
	}
	// The header's size is bounded before anything parses it: parsing
	// costs memory in proportion to its fields. Basalt's own mail (a
	// retry from the queue carries the trace fields added the first time)
	// was checked when it came in.
	if env.Source != SourceInternal {
		if err := a.store.CheckHeader(body); err != nil {
			return nil, ErrHeaderTooLarge.with(err)
		}
	}
	header, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		header = textproto.Header{} // mail without a parsable header is still mail
	}
	// RFC 5321 6.3: a message that has passed through too many hosts is
	// in a loop (two forwards pointing at each other); refuse it rather
	// than pass it round for ever.
	if n := len(header.Values("Received")); n > maxHops {
		return nil, ErrTooManyHops
	}
	if env.Source == SourceSubmission || env.Source == SourceWebmail {
		if err := a.checkHeaderFrom(ctx, env, header); err != nil {
			return nil, err
		}
	}
	v := runChain(a.filters, func(f Filter) Verdict { return f.Data(ctx, env, rcpts, header, body) })
	if v.Action == Reject {
		return nil, v.Reply
	}
	trace := a.traceHeaders(env, v.Headers)

	// Each recipient may stand for several targets: local users and
	// remote addresses of an alias. Once any of them has the message the
	// recipient is answered as delivered, or the client's retry would
	// deliver it again to the targets that did get it; the targets that
	// failed are reported to the sender in a DSN instead.
	type part struct {
		target string
		user   int64 // the local user the target is; 0 for a remote one
		err    error
	}
	parts := make([][]part, len(rcpts))
	var remote []string
	remoteAt := map[string][]int{}
	for i, rc := range rcpts {
		for _, addr := range rc.Remote {
			if _, seen := remoteAt[addr]; !seen {
				remote = append(remote, addr)
			}
			remoteAt[addr] = append(remoteAt[addr], i)
		}
	}
	if len(remote) > 0 {
		err := a.relay(ctx, env, remote, append(trace, body...))
		for _, addr := range remote {
			for _, i := range remoteAt[addr] {
				parts[i] = append(parts[i], part{addr, 0, err})
			}
		}
	}
	for i, rc := range rcpts {
		for _, id := range rc.Users {
			keep := true
			if rc.ruled[id] && v.Action != Junk {
				var reply func()
				keep, reply = a.applyRules(ctx, env, id, rc.Address, header, append(trace, body...))
				if reply != nil {
					after = append(after, reply)
				}
			}
			if !keep {
				parts[i] = append(parts[i], part{rc.Address, id, nil})
				continue
			}
			parts[i] = append(parts[i], part{rc.Address, id, a.store1(ctx, env, id, rc.Address, trace, body, v)})
		}
	}
	results := make([]error, len(rcpts))
	var late []DSNRecipient
	for i, ps := range parts {
		var firstErr error
		delivered := false
		for _, p := range ps {
			if p.err == nil {
				delivered = true
			} else if firstErr == nil {
				firstErr = p.err
			}
		}
		if !delivered {
			results[i] = firstErr
			continue
		}
		for _, p := range ps {
			if p.err == nil {
				continue
			}
			a.log.Warn("part of a recipient failed", "id", env.ID, "rcpt", rcpts[i].Address, "target", p.target, "err", p.err)
			// A user with rules is not retried: the retry would run them
			// again, forwarding a second copy.
			if p.user != 0 && !rcpts[i].ruled[p.user] && !permanent(p.err) && a.retryLater(ctx, env, p.user, append(trace, body...)) {
				continue
			}
			late = append(late, FailedRecipient(rcpts[i].Address, p.err, a.now()))
		}
	}
	if len(late) > 0 && env.From != "" {
		after = append(after, func() { a.reportLate(context.WithoutCancel(ctx), env, late, body) })
	}
	return results, nil
}

// maxDataTime bounds how long one message's body may take to arrive, so
// a client trickling bytes cannot hold a delivery slot indefinitely.
const maxDataTime = 15 * time.Minute

// deadlineReader fails reads once its deadline has passed.
type deadlineReader struct {
	r        io.Reader
	deadline time.Time
	now      func() time.Time
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.now().After(d.deadline) {
		return 0, ErrTemporary.with(errors.New("message took too long to arrive"))
	}
	return d.r.Read(p)
}

// retryLater queues the message for a local user whose copy could not be
// stored for now (the mailbox was full) after the recipient had been
// answered as delivered: the queue tries again on its schedule, and
// bounces it when it gives up. It reports whether the message was queued.
func (a *Agent) retryLater(ctx context.Context, env *Envelope, userID int64, raw []byte) bool {
	if a.relayQ == nil {
		return false
	}
	u, err := a.store.UserByID(ctx, userID)
	if err == nil {
		err = a.relayQ.Enqueue(ctx, env.From, []string{u.Address}, raw)
	}
	if err != nil {
		a.log.Error("delivery not queued for a retry", "id", env.ID, "user", userID, "err", err)
		return false
	}
	a.log.Info("delivery queued for a retry", "id", env.ID, "user", userID)
	return true
}

// reportLate sends the sender a DSN for targets that failed after the
// recipient they stood for was answered as delivered: through the queue,
// which retries it, when there is one.
func (a *Agent) reportLate(ctx context.Context, env *Envelope, failed []DSNRecipient, original []byte) {
	dsn, err := BuildDSN(DSN{ReportingMTA: a.cfg.Hostname, To: env.From, Arrival: a.now(), Recipients: failed, Original: original})
	if err == nil {
		if a.relayQ != nil {
			err = a.relayQ.Enqueue(ctx, "", []string{env.From}, dsn)
		} else {
			err = a.DeliverLocal(ctx, "", env.From, dsn)
		}
	}
	if err != nil {
		a.log.Error("report of failed targets not sent", "id", env.ID, "to", env.From, "err", err)
	}
}

// relays reports whether mail for other domains can be sent.
func (a *Agent) relays() bool { return a.relayQ != nil && a.relayQ.Relays() }

// relay queues a message for addresses elsewhere; a submitting user's
// daily send limit and send size apply.
func (a *Agent) relay(ctx context.Context, env *Envelope, to []string, raw []byte) error {
	if !a.relays() {
		return ErrNoRelay.with(errors.New("no outbound queue configured"))
	}
	if env.Auth != nil {
		u, err := a.store.UserByID(ctx, env.Auth.User.ID)
		if err != nil {
			return a.storeError(err)
		}
		lim, err := a.store.Limits(ctx, u)
		if err != nil {
			return a.storeError(err)
		}
		if lim.MaxSendSize > 0 && int64(len(raw)) > lim.MaxSendSize {
			return ErrTooLarge
		}
		if err := a.relayQ.EnqueueSent(ctx, u.ID, env.From, to, raw); err != nil {
			return a.storeError(err)
		}
		return nil
	}
	if err := a.relayQ.Enqueue(ctx, env.From, to, raw); err != nil {
		return a.storeError(err)
	}
	return nil
}

// store1 stores the message for one local user: Return-Path first (RFC
// 5321 4.4), then the trace headers, then the message. It goes through
// the store's group commit, so deliveries from many connections share
// their fsyncs and transaction.
func (a *Agent) store1(ctx context.Context, env *Envelope, userID int64, rcpt string, trace, body []byte, v Verdict) error {
	var msg bytes.Buffer
	msg.Grow(len(trace) + len(body) + 64)
	fmt.Fprintf(&msg, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", env.From, rcpt)
	msg.Write(trace)
	msg.Write(body)
	d := store.Delivery{UserID: userID, Raw: msg.Bytes(), Opts: store.AppendOptions{SystemFlags: v.Flags, Inbound: env.Source != SourceInternal}}
	if v.Action == Junk {
		d.Mailbox = "Junk"
	}
	if env.RemoteIP.IsValid() {
		d.Opts.RemoteIP = env.RemoteIP.String()
	}
	if _, err := a.store.Deliver(ctx, d); err != nil {
		a.log.Info("delivery refused", "id", env.ID, "user", userID, "err", err)
		return a.storeError(err)
	}
	return nil
}

// DeliverLocal delivers a message Basalt itself made (a bounce, an
// auto-reply) to a local address, from the given reverse-path.
func (a *Agent) DeliverLocal(ctx context.Context, from, to string, raw []byte) error {
	env := &Envelope{Source: SourceInternal, From: from, Helo: a.cfg.Hostname}
	rc, err := a.CheckRecipient(ctx, env, to)
	if err != nil {
		return err
	}
	results, err := a.Deliver(ctx, env, []Recipient{rc}, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return results[0]
}

// traceHeaders returns the Received header (RFC 5321 4.4) and any headers
// the filters added, each line ending in CRLF.
func (a *Agent) traceHeaders(env *Envelope, extra []HeaderField) []byte {
	var b strings.Builder
	for _, h := range extra {
		fmt.Fprintf(&b, "%s: %s\r\n", h.Key, h.Value)
	}
	from := env.Helo
	if from == "" {
		from = "unknown"
	}
	ip := "local"
	if env.RemoteIP.IsValid() {
		ip = env.RemoteIP.String()
		if env.RemoteIP.Is6() {
			ip = "IPv6:" + ip
		}
	}
	proto := sourceProto[env.Source]
	if env.TLS && strings.HasPrefix(proto, "ESMTP") {
		proto = "ESMTPS" + strings.TrimPrefix(proto, "ESMTP") // ESMTPS, ESMTPSA
	}
	id := ""
	if env.ID != "" {
		id = " id " + env.ID
	}
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (Basalt) with %s%s;\r\n\t%s\r\n",
		sanitizeHelo(from), ip, a.cfg.Hostname, proto, id, a.now().Format(time.RFC1123Z))
	return []byte(b.String())
}

// sanitizeHelo keeps a client-supplied name from breaking the header.
func sanitizeHelo(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '(' || r == ')' || r == ';' {
			return -1
		}
		return r
	}, s)
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// checkHeaderFrom makes a submitted message's originator fields name the
// user (magma refused mail whose From was not the sender's own). RFC
// 5322 3.6 allows exactly one From and at most one Sender; a second From
// or a Sender, Resent-From or Resent-Sender (3.6.6) naming someone else
// is shown as the author by some clients, so each is held to the rule
// From is held to.
func (a *Agent) checkHeaderFrom(ctx context.Context, env *Envelope, h textproto.Header) error {
	if n := len(h.Values("From")); n != 1 {
		return ErrOneFrom.with(fmt.Errorf("%d From fields", n))
	}
	if n := len(h.Values("Sender")); n > 1 {
		return ErrBadHeaderSender.with(fmt.Errorf("%d Sender fields", n))
	}
	for _, f := range []struct {
		name    string
		refusal *Error
	}{{"From", ErrBadHeaderFrom}, {"Sender", ErrBadHeaderSender}, {"Resent-From", ErrBadHeaderSender}, {"Resent-Sender", ErrBadHeaderSender}} {
		for _, v := range h.Values(f.name) {
			// Each occurrence on its own: AddressList would read only the
			// first of a repeated field.
			var one textproto.Header
			one.Add(f.name, v)
			addrs, err := (&mail.Header{Header: message.Header{Header: one}}).AddressList(f.name)
			if err != nil || len(addrs) == 0 {
				return f.refusal.with(fmt.Errorf("%s: %v", f.name, err))
			}
			for _, ad := range addrs {
				ok, err := a.ownsAddress(ctx, env.Auth.User, ad.Address)
				if err != nil {
					return a.storeError(err)
				}
				if !ok {
					return f.refusal
				}
			}
		}
	}
	return nil
}
