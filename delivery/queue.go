package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"

	"basalt/store"
	"basalt/store/outbound"
)

// LocalDelivery takes a message Basalt itself generated (a DSN) for a
// local address. The Agent implements it; the queue uses it for bounces to
// local senders, and relays the rest.
type LocalDelivery interface {
	DeliverLocal(ctx context.Context, from, to string, raw []byte) error
}

// LocalDeliveryFunc makes a function a LocalDelivery. The queue and the
// Agent each need the other, so one of them is built first with a function
// that calls the other once it exists.
type LocalDeliveryFunc func(ctx context.Context, from, to string, raw []byte) error

// DeliverLocal calls f.
func (f LocalDeliveryFunc) DeliverLocal(ctx context.Context, from, to string, raw []byte) error {
	return f(ctx, from, to, raw)
}

// QueueConfig tunes the outbound queue.
type QueueConfig struct {
	// Smarthost is the relay all outbound mail goes through, host:port.
	Smarthost string
	// StartTLS upgrades the connection with STARTTLS (RFC 3207) and
	// refuses to go on without it; ImplicitTLS speaks TLS from the first
	// byte (RFC 8314, port 465). TLSInsecure skips certificate checks,
	// for tests.
	StartTLS, ImplicitTLS, TLSInsecure bool
	// Username and Password, when set, log in with AUTH PLAIN (RFC 4616);
	// only over TLS, unless the smarthost is on a loopback address.
	Username, Password string
	// Hostname is the name given in EHLO and in bounces; default "localhost".
	Hostname string
	// Concurrency bounds the transactions in flight; default 4.
	Concurrency int
	// Backoff is the wait after each failed attempt; the last step repeats.
	// The default follows RFC 5321 4.5.4.1 (retry no sooner than 30
	// minutes, after a few quicker early tries): 1m, 5m, 15m, 30m, 1h, 2h, 4h.
	Backoff []time.Duration
	// MaxAge is how long a message may wait before it is bounced; default
	// 5 days, the give-up time of RFC 5321 4.5.4.1.
	MaxAge time.Duration
	// PollInterval bounds how long the queue sleeps between looks at the
	// database, for entries queued or released by other nodes; default 1m.
	// Entries queued here wake it at once.
	PollInterval time.Duration
	// Timeout bounds one attempt, connection to QUIT; default 10m (RFC
	// 5321 4.5.3.2's longest wait, for the reply to the final dot). An
	// entry is claimed for Timeout plus a minute, so no other node takes it
	// while it may still be in flight.
	Timeout time.Duration
}

func (c *QueueConfig) defaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 5 * 24 * time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
}

func (c *QueueConfig) check() error {
	if c.Smarthost == "" {
		return nil // local deliveries and bounces only
	}
	host, _, err := net.SplitHostPort(c.Smarthost)
	if err != nil || host == "" {
		return fmt.Errorf("outbound queue: smarthost %q is not host:port", c.Smarthost)
	}
	if c.StartTLS && c.ImplicitTLS {
		return errors.New("outbound queue: STARTTLS and implicit TLS are exclusive")
	}
	if c.Username != "" && !c.StartTLS && !c.ImplicitTLS && !isLoopback(host) {
		return errors.New("outbound queue: a smarthost password is sent only over TLS: set STARTTLS or implicit TLS")
	}
	for _, b := range c.Backoff {
		if b <= 0 {
			return errors.New("outbound queue: backoff steps must be positive")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Queue is the durable outbound queue: each message is a row and a file in
// the store, written before Enqueue returns, and sent through the
// smarthost by Run with retries, expiry and bounces. Everything it knows is
// in the store, so it survives restarts, and several nodes sharing one
// database may run it at once: a claim (outbound.Queue.Claim) gives each
// entry to one of them at a time.
type Queue struct {
	cfg   QueueConfig
	st    *store.Store
	rows  *outbound.Queue // the queue's rows and files
	local LocalDelivery
	log   *slog.Logger
	now   func() time.Time
	// wake is poked by Enqueue so Run looks at the queue at once.
	wake chan struct{}
	// agent delivers submissions (submit.go); New sets it.
	agent *Agent
}

var _ Relay = (*Queue)(nil)

// NewQueue returns a queue over st that bounces to local senders through
// local. Run starts sending.
func NewQueue(cfg QueueConfig, st *store.Store, local LocalDelivery, log *slog.Logger) *Queue {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Queue{cfg: cfg, st: st, rows: outbound.New(st), local: local, log: log, now: time.Now, wake: make(chan struct{}, 1)}
}

// Enqueue stores a message for relaying to the given addresses and
// returns once it is durable (Queue, as the Agent needs it).
func (q *Queue) Enqueue(ctx context.Context, from string, to []string, raw []byte) error {
	id, err := q.rows.Enqueue(ctx, from, to, raw)
	return q.enqueued(id, err, from, len(to), len(raw))
}

// EnqueueSent queues a message userID sends, charged to the user's daily
// send limit (Queue, as the Agent needs it).
func (q *Queue) EnqueueSent(ctx context.Context, userID int64, from string, to []string, raw []byte) error {
	id, err := q.rows.EnqueueFor(ctx, q.st.Account(userID, nil), from, to, raw)
	return q.enqueued(id, err, from, len(to), len(raw))
}

// enqueued logs a message queued and wakes the queue's runner.
func (q *Queue) enqueued(id int64, err error, from string, rcpts, size int) error {
	if err != nil {
		return fmt.Errorf("queue message for relay: %w", err)
	}
	q.log.Info("queue: queued", "queue_id", id, "from", from, "rcpts", rcpts, "size", size)
	q.poke()
	return nil
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run sends queued mail until ctx ends, with at most Concurrency
// transactions at a time. It returns once the transactions in flight have
// stopped and given their entries back, so the store must stay open until
// then. The error is for a configuration it cannot run with.
func (q *Queue) Run(ctx context.Context) error {
	if err := q.cfg.check(); err != nil {
		return err
	}
	q.log.Info("queue: running", "smarthost", q.cfg.Smarthost, "concurrency", q.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	// finished has room for every worker, so none blocks on it after Run
	// has stopped reading.
	finished := make(chan struct{}, q.cfg.Concurrency)
	inflight := 0
	for {
		for reaped := false; !reaped; {
			select {
			case <-finished:
				inflight--
			default:
				reaped = true
			}
		}
		free := q.cfg.Concurrency - inflight
		claimed := 0
		if free > 0 {
			entries, err := q.rows.Claim(ctx, free, q.cfg.Timeout+time.Minute)
			if err != nil && ctx.Err() == nil {
				q.log.Warn("queue: claim entries", "err", err)
			}
			for _, e := range entries {
				inflight++
				wg.Add(1)
				go func() {
					defer wg.Done()
					q.process(ctx, e)
					finished <- struct{}{}
				}()
			}
			claimed = len(entries)
		}
		if ctx.Err() != nil {
			return nil
		}
		if free > 0 && claimed == free {
			continue // there may be more due
		}
		wait := q.cfg.PollInterval
		if free > claimed {
			// Sleep until the next entry is due, if that is sooner; not
			// less than a moment, so an entry another node just claimed
			// (due, as far as this look can tell) does not make this spin.
			if at, ok, err := q.rows.Next(ctx); err == nil && ok {
				wait = min(wait, max(at.Sub(q.now()), 10*time.Millisecond))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-finished:
			inflight--
		case <-t.C:
		}
		t.Stop()
	}
}

// process makes one round of work on a claimed entry: an attempt at its
// pending recipients, bounces for the ones that failed, and the record of
// it all, which releases the claim.
func (q *Queue) process(ctx context.Context, e outbound.Entry) {
	log := q.log.With("queue_id", e.ID)
	if e.SubmitUser != 0 {
		q.processSubmission(ctx, log, e)
		return
	}
	actx, cancel := context.WithTimeout(ctx, q.cfg.Timeout)
	defer cancel()
	var u outbound.Update
	if pending := e.Pending(); len(pending) > 0 {
		outs := q.deliver(actx, &e, pending)
		if ctx.Err() != nil {
			// Shutting down: the attempt was cut short, so it does not count;
			// give the entry back to be tried at once by whoever runs next.
			// Recipients the smarthost already took (the 250 can come just
			// before QUIT is cut off) are recorded as sent, or they would
			// be sent again.
			back := outbound.Update{Next: q.now()}
			for i, o := range outs {
				if o.class == 2 {
					back.Results = append(back.Results, outbound.Result{Address: pending[i], Reply: o.reply, Status: outbound.RcptSent})
				}
			}
			q.record(ctx, log, &e, back)
			return
		}
		now := q.now()
		expired := now.Sub(e.CreatedAt) >= q.cfg.MaxAge
		u.Attempted = true
		for i, o := range outs {
			r := outbound.Result{Address: pending[i], Reply: o.reply}
			switch {
			case o.class == 2:
				r.Status = outbound.RcptSent
				log.Info("queue: relayed", "rcpt", r.Address, "reply", o.reply)
			case o.class == 5:
				r.Status = outbound.RcptFailed
				log.Info("queue: failed", "rcpt", r.Address, "reply", o.reply)
			case expired:
				// RFC 5321 4.5.4.1: past the give-up time a deferral is a failure.
				r.Status = outbound.RcptFailed
				log.Info("queue: expired", "rcpt", r.Address, "age", now.Sub(e.CreatedAt).Round(time.Second), "reply", o.reply)
			default:
				r.Status = outbound.RcptPending
				if u.LastError == "" {
					u.LastError = o.reply
				}
				log.Info("queue: deferred", "rcpt", r.Address, "reply", o.reply)
			}
			u.Results = append(u.Results, r)
		}
	}
	// Report the failures: this round's, and any earlier ones whose report
	// could not be made then.
	var owed []outbound.Rcpt
	for _, r := range e.Unreported() {
		owed = append(owed, r)
		u.Results = append(u.Results, outbound.Result{Address: r.Address, Status: r.Status, Reply: r.Reply})
	}
	for _, r := range u.Results {
		if r.Status == outbound.RcptFailed && !isIn(owed, r.Address) {
			owed = append(owed, outbound.Rcpt{Address: r.Address, Status: r.Status, Reply: r.Reply})
		}
	}
	if len(owed) > 0 {
		// Bounded, so the round ends within the entry's lease (Timeout
		// for the attempt, and a minute for the rest).
		bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := q.bounce(bctx, &e, owed)
		cancel()
		if err != nil {
			log.Warn("queue: bounce not sent, will try again", "to", e.From, "err", err)
		} else {
			for i := range u.Results {
				if u.Results[i].Status == outbound.RcptFailed {
					u.Results[i].Notified = true
				}
			}
		}
	}
	u.Next = q.nextAttempt(&e, u.Attempted)
	q.record(ctx, log, &e, u)
}

// record writes a round's results even when ctx has ended: what was sent
// must not be sent again after a restart.
func (q *Queue) record(ctx context.Context, log *slog.Logger, e *outbound.Entry, u outbound.Update) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	done, err := q.rows.Update(wctx, e, u)
	switch {
	case errors.Is(err, outbound.ErrLeaseLost):
		log.Warn("queue: entry taken over by another worker; its results are dropped", "err", err)
	case err != nil:
		log.Error("queue: record attempt", "err", err)
	case done:
		log.Info("queue: done", "attempts", e.Attempts)
	}
}

// nextAttempt is when e is due again: the backoff step for the attempts
// made so far, but no later than the give-up time, so the last attempt
// happens then and a deferral there expires the message.
func (q *Queue) nextAttempt(e *outbound.Entry, attempted bool) time.Time {
	n := e.Attempts
	if attempted {
		n++
	}
	step := q.cfg.Backoff[min(max(n-1, 0), len(q.cfg.Backoff)-1)]
	now := q.now()
	next := now.Add(step)
	if deadline := e.CreatedAt.Add(q.cfg.MaxAge); next.After(deadline) && deadline.After(now) {
		next = deadline
	}
	return next
}

func isIn(rs []outbound.Rcpt, addr string) bool {
	for _, r := range rs {
		if r.Address == addr {
			return true
		}
	}
	return false
}

// bounce reports failed recipients to e's sender with a DSN from the null
// sender: to a local sender through LocalDelivery, to a remote one through
// the queue. A message from the null sender is never bounced (RFC 5321
// 4.5.5): that is what keeps bounces from looping. A nil error means the
// report is durable, or can never be made and was dropped.
func (q *Queue) bounce(ctx context.Context, e *outbound.Entry, failed []outbound.Rcpt) error {
	if e.From == "" {
		q.log.Info("queue: no bounce for a message from the null sender", "queue_id", e.ID)
		return nil
	}
	host, _, _ := net.SplitHostPort(q.cfg.Smarthost)
	d := DSN{ReportingMTA: q.cfg.Hostname, To: e.From, Arrival: e.CreatedAt, Date: q.now()}
	for _, r := range failed {
		d.Recipients = append(d.Recipients, dsnRecipient(r, host, q.now()))
	}
	hdr, err := q.originalHeader(ctx, e)
	if err != nil {
		// Better a report without the original's header than none.
		q.log.Warn("queue: bounce without the original header", "queue_id", e.ID, "err", err)
	}
	d.Original = hdr
	raw, err := BuildDSN(d)
	if err != nil {
		return err
	}
	// Queued like any message, so that a bounce that cannot be delivered
	// yet (the sender's mailbox is full) is retried on the same schedule,
	// and given up at the same age, with nothing to report then: it comes
	// from the null sender.
	if err := q.Enqueue(ctx, "", []string{e.From}, raw); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			q.log.Warn("queue: bounce dropped: the sender is not an address", "queue_id", e.ID, "to", e.From)
			return nil
		}
		return err
	}
	q.log.Info("queue: bounce queued", "queue_id", e.ID, "to", e.From)
	return nil
}

// Relays reports whether the queue sends mail elsewhere: whether it has a
// smarthost. Without one it delivers only locally.
func (q *Queue) Relays() bool { return q.cfg.Smarthost != "" }

// deliver makes one attempt at e's pending recipients: those of local
// domains through LocalDelivery, the rest in one transaction with the
// smarthost. It returns each one's outcome in the order of rcpts.
func (q *Queue) deliver(ctx context.Context, e *outbound.Entry, rcpts []string) []outcome {
	out := make([]outcome, len(rcpts))
	if e.SealedUser != 0 {
		// Sealed to its one recipient's key: stored as it is, for that
		// user, whatever address it was queued to.
		for i, r := range rcpts {
			out[i] = q.deliverSealed(ctx, e, r)
		}
		return out
	}
	var remote []string
	var remoteAt []int
	var raw []byte
	for i, r := range rcpts {
		local, err := q.isLocal(ctx, r)
		switch {
		case errors.Is(err, store.ErrInvalid):
			out[i] = outcome{class: 5, reply: "553 5.1.3 Not a valid address"}
		case err != nil:
			out[i] = outcome{class: 4, reply: "cannot resolve the recipient: " + err.Error()}
		case local:
			if raw == nil {
				if raw, err = q.read(ctx, e); err != nil {
					q.log.Error("queue: cannot read a queued message", "queue_id", e.ID, "err", err)
					out[i] = outcome{class: 4, reply: "cannot read the queued message"}
					continue
				}
			}
			out[i] = q.deliverLocal(ctx, e, r, raw)
		default:
			remote = append(remote, r)
			remoteAt = append(remoteAt, i)
		}
	}
	if len(remote) == 0 {
		return out
	}
	var ro []outcome
	if q.Relays() {
		ro = q.attempt(ctx, e, remote)
	} else {
		ro = make([]outcome, len(remote))
		for j := range ro {
			ro[j] = outcome{class: 5, reply: "550 5.7.1 Relaying is not configured on this server"}
		}
	}
	for j, i := range remoteAt {
		out[i] = ro[j]
	}
	return out
}

// read returns the whole queued message, for local delivery.
func (q *Queue) read(ctx context.Context, e *outbound.Entry) ([]byte, error) {
	body, err := q.rows.Open(ctx, e)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// deliverLocal hands a queued message to a local recipient: a bounce, or
// a delivery that failed for the time being after its sender was told it
// was taken (the mailbox was full).
func (q *Queue) deliverLocal(ctx context.Context, e *outbound.Entry, rcpt string, raw []byte) outcome {
	if q.local == nil {
		return outcome{class: 5, reply: "550 5.3.0 Local delivery is not configured"}
	}
	err := q.local.DeliverLocal(ctx, e.From, rcpt, raw)
	switch {
	case err == nil:
		q.log.Info("queue: delivered locally", "queue_id", e.ID, "rcpt", rcpt)
		return outcome{class: 2, reply: "250 2.0.0 Delivered"}
	case permanent(err):
		return outcome{class: 5, reply: localReply(err)}
	default:
		q.log.Warn("queue: local delivery deferred", "queue_id", e.ID, "rcpt", rcpt, "err", err)
		return outcome{class: 4, reply: localReply(err)}
	}
}

// deliverSealed stores a sealed entry (outbound.Entry.SealedUser) for
// its user: no filters or rules run again, as they ran, or were not due,
// when it came in.
func (q *Queue) deliverSealed(ctx context.Context, e *outbound.Entry, rcpt string) outcome {
	_, err := q.rows.DeliverSealed(ctx, e)
	switch {
	case err == nil:
		q.log.Info("queue: delivered locally, sealed", "queue_id", e.ID, "rcpt", rcpt)
		return outcome{class: 2, reply: "250 2.0.0 Delivered"}
	case errors.Is(err, store.ErrOverQuota):
		q.log.Warn("queue: sealed delivery deferred", "queue_id", e.ID, "rcpt", rcpt, "err", err)
		return outcome{class: 4, reply: "452 4.2.2 Mailbox full"}
	case errors.Is(err, store.ErrTooLarge):
		return outcome{class: 5, reply: "552 5.3.4 Message too big"}
	case permanent(err):
		q.log.Warn("queue: sealed delivery failed", "queue_id", e.ID, "rcpt", rcpt, "err", err)
		return outcome{class: 5, reply: "550 5.1.1 Recipient cannot take this message"}
	default:
		q.log.Warn("queue: sealed delivery deferred", "queue_id", e.ID, "rcpt", rcpt, "err", err)
		return outcome{class: 4, reply: "451 4.3.0 Local delivery failed for the time being"}
	}
}

// localReply is the reply line a local delivery's error stands for, as a
// DSN may tell the sender: the agent's own reply, or for anything else a
// generic one (the cause, a database error say, goes to the log only).
func localReply(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return fmt.Sprintf("%d %d.%d.%d %s", de.Code, de.Enhanced[0], de.Enhanced[1], de.Enhanced[2], de.Message)
	}
	if permanent(err) {
		return "550 5.1.1 No such local recipient"
	}
	return "451 4.3.0 Local delivery failed for the time being"
}

// dsnRecipient turns a failed recipient's stored state into its DSN
// fields. A failure whose last reply is not a 5xx can only be an expiry:
// Status 5.4.7 (RFC 3463 "delivery time expired"), with the last reply or
// error as the diagnostic.
func dsnRecipient(r outbound.Rcpt, smarthost string, at time.Time) DSNRecipient {
	d := DSNRecipient{Address: r.Address, Action: ActionFailed, Diagnostic: r.Reply, LastAttempt: at}
	class, status, ok := parseReply(r.Reply)
	switch {
	case ok && class == 5:
		d.Status = status
		d.RemoteMTA = smarthost
	case ok:
		d.Status = "5.4.7"
		d.RemoteMTA = smarthost
	default:
		d.Status = "5.4.7"
		d.DiagnosticType = "X-Basalt"
		if d.Diagnostic == "" {
			d.Diagnostic = "delivery time expired"
		}
	}
	if r.Reply == replyNoSMTPUTF8 { // our own refusal, not the smarthost's
		d.RemoteMTA = ""
	}
	return d
}

// originalHeader reads the header of the queued message.
func (q *Queue) originalHeader(ctx context.Context, e *outbound.Entry) ([]byte, error) {
	if e.SealedUser != 0 {
		return nil, nil // sealed to its recipient: not readable here
	}
	rc, err := q.rows.Open(ctx, e)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h, err := textproto.ReadHeader(bufio.NewReader(rc))
	if err != nil && h.Len() == 0 {
		return nil, nil // a message without a readable header is reported without one
	}
	var b strings.Builder
	if err := textproto.WriteHeader(&b, h); err != nil {
		return nil, nil
	}
	return []byte(b.String()), nil
}

// isLocal reports whether addr is in one of our domains, so that a bounce
// to it is delivered here rather than relayed.
func (q *Queue) isLocal(ctx context.Context, addr string) (bool, error) {
	res, err := q.st.Resolve(ctx, addr)
	switch {
	case errors.Is(err, store.ErrUnknownLocal):
		return true, nil // ours, though nobody has it: LocalDelivery refuses it
	case err != nil:
		return false, fmt.Errorf("resolve %s: %w", addr, err)
	}
	return res.Local, nil
}

// permanent reports whether a local delivery's refusal will not change by
// trying again.
func permanent(err error) bool {
	var de *Error
	if errors.As(err, &de) {
		return !de.Temporary()
	}
	return errors.Is(err, store.ErrUnknownLocal) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid)
}
