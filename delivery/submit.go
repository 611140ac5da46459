package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"basalt/session"
	"basalt/store"
	"basalt/store/outbound"
)

// Delayed sending (the webmail's undo send and send later). The front end
// checks everything SMTP submission checks at the moment the user sends
// (sender, each recipient, size, limits), then hands the message to
// Submit: it waits in the outbound queue, durable, until it is due, for
// local and remote recipients alike. When it is due the queue hands it
// back to the agent, which delivers it exactly as an immediate send
// (local recipients stored, remote ones queued for the smarthost), files
// its copy in the sender's Sent folder and marks the message it answers.
// Until the queue has started it, Unsend takes it back.

// ErrNoDelayedSend means the agent has no queue to hold delayed mail.
var ErrNoDelayedSend = errors.New("delayed sending needs the outbound queue")

// ErrSendStarted means the message is already on its way: too late to
// take it back.
var ErrSendStarted = outbound.ErrStarted

// Submission is what the front end notes with a delayed message.
type Submission struct {
	// EnvelopeID names the transaction in logs and the Received header.
	EnvelopeID string `json:"id,omitempty"`
	// RemoteIP is the sender's address when it sent (the Received header).
	RemoteIP string `json:"ip,omitempty"`
	TLS      bool   `json:"tls,omitempty"`
	// Bcc is the Bcc field of the kept copy (RFC 5322 3.6.3): the message
	// sent has none, its copy in Sent (and a draft made of it again)
	// does.
	Bcc string `json:"bcc,omitempty"`
	// Subject and To are for listing what waits.
	Subject string   `json:"subject,omitempty"`
	To      []string `json:"to,omitempty"`
	// ReplyTo is the message answered (mailbox id and uid), flagged
	// \Answered once this is sent.
	ReplyMailbox int64  `json:"rm,omitempty"`
	ReplyUID     uint32 `json:"ru,omitempty"`
}

// Scheduled is a delayed message waiting in the queue.
type Scheduled struct {
	ID    int64
	Due   time.Time
	From  string
	Rcpts []string
	Size  int64
	Note  Submission
}

// queueRows returns the queue's rows when the agent relays through a
// Queue.
func (a *Agent) queueRows() (*outbound.Queue, error) {
	q, ok := a.relayQ.(*Queue)
	if !ok || q == nil {
		return nil, ErrNoDelayedSend
	}
	return q.rows, nil
}

// Submit queues a message a user sends, to be delivered at due. The
// caller has checked it as it checks an immediate send.
func (a *Agent) Submit(ctx context.Context, userID int64, from string, to []string, raw []byte, due time.Time, note Submission) (int64, error) {
	rows, err := a.queueRows()
	if err != nil {
		return 0, err
	}
	meta, err := json.Marshal(note)
	if err != nil {
		return 0, fmt.Errorf("submit: %w", err)
	}
	id, err := rows.Submit(ctx, a.store.Account(userID, nil), from, to, raw, due, string(meta))
	if err != nil {
		return 0, err
	}
	a.log.Info("submission queued", "queue_id", id, "user", userID, "due", due, "rcpts", len(to), "size", len(raw))
	if q, ok := a.relayQ.(*Queue); ok {
		q.poke() // its runner sleeps until the soonest entry is due
	}
	return id, nil
}

// Scheduled lists the user's delayed messages still waiting.
func (a *Agent) Scheduled(ctx context.Context, userID int64) ([]Scheduled, error) {
	rows, err := a.queueRows()
	if err != nil {
		return nil, err
	}
	es, err := rows.Submissions(ctx, a.store.Account(userID, nil))
	if err != nil {
		return nil, err
	}
	out := make([]Scheduled, 0, len(es))
	for _, e := range es {
		out = append(out, scheduled(e))
	}
	return out, nil
}

func scheduled(e outbound.Entry) Scheduled {
	s := Scheduled{ID: e.ID, Due: e.NextAttempt, From: e.From, Size: e.Size}
	for _, r := range e.Rcpts {
		s.Rcpts = append(s.Rcpts, r.Address)
	}
	json.Unmarshal([]byte(e.SubmitMeta), &s.Note) // a note that does not parse lists as empty
	return s
}

// Unsend takes back a delayed message that has not started on its way
// and returns it as it would have been kept (with its Bcc): store.ErrNotFound
// when the user has no such message waiting, ErrSendStarted when it is
// too late.
func (a *Agent) Unsend(ctx context.Context, userID, id int64) (Scheduled, []byte, error) {
	rows, err := a.queueRows()
	if err != nil {
		return Scheduled{}, nil, err
	}
	e, raw, err := rows.Cancel(ctx, a.store.Account(userID, nil), id)
	if err != nil {
		return Scheduled{}, nil, err
	}
	s := scheduled(e)
	a.log.Info("submission taken back", "queue_id", id, "user", userID)
	return s, withBcc(raw, s.Note.Bcc), nil
}

// Resubmit queues again, due at s.Due, a message Unsend took back that
// could not be kept (its Drafts full): kept is what Unsend returned. The
// new id replaces the old.
func (a *Agent) Resubmit(ctx context.Context, userID int64, s Scheduled, kept []byte) (int64, error) {
	raw := kept
	if s.Note.Bcc != "" {
		raw = bytes.TrimPrefix(kept, []byte("Bcc: "+s.Note.Bcc+"\r\n"))
	}
	return a.Submit(ctx, userID, s.From, s.Rcpts, raw, s.Due, s.Note)
}

// withBcc returns raw with a Bcc field at the top of its header, when
// there is one to add.
func withBcc(raw []byte, bcc string) []byte {
	if bcc == "" {
		return raw
	}
	out := make([]byte, 0, len(raw)+len(bcc)+8)
	out = append(out, "Bcc: "...)
	out = append(out, bcc...)
	out = append(out, "\r\n"...)
	return append(out, raw...)
}

// errRetry says a submission could not be delivered now and waits for the
// queue's next attempt.
var errRetry = errors.New("submission deferred")

// deliverSubmission delivers a due submission as its user's send. It
// returns errRetry (wrapped) when nothing could be delivered now, for a
// temporary reason; permanent failures are reported to the sender in a
// DSN, as a submission's late failures are.
func (a *Agent) deliverSubmission(ctx context.Context, log *slog.Logger, e *outbound.Entry, raw []byte) error {
	var note Submission
	json.Unmarshal([]byte(e.SubmitMeta), &note)
	u, err := a.store.UserByID(ctx, e.SubmitUser)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("submission dropped: its user is gone")
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	env := &Envelope{Source: SourceWebmail, From: e.From, Helo: "webmail", TLS: note.TLS, Auth: &session.Auth{User: u}, ID: note.EnvelopeID}
	if ip, err := netip.ParseAddr(note.RemoteIP); err == nil {
		env.RemoteIP = ip
	}
	now := a.now()
	temp := func(err error) bool {
		de, ok := errors.AsType[*Error](err)
		return ok && de.Temporary()
	}
	var failed []DSNRecipient
	if err := a.CheckSender(ctx, env); err != nil {
		if temp(err) {
			return fmt.Errorf("%w: %v", errRetry, err)
		}
		// The address stopped being the user's since it was sent.
		for _, r := range e.Rcpts {
			failed = append(failed, FailedRecipient(r.Address, err, now))
		}
		a.reportLate(ctx, env, failed, raw)
		return nil
	}
	var rcpts []Recipient
	temporary, delivered := 0, 0
	for _, r := range e.Rcpts {
		rc, err := a.CheckRecipient(ctx, env, r.Address)
		if err != nil {
			if temp(err) {
				temporary++
			}
			failed = append(failed, FailedRecipient(r.Address, err, now))
			continue
		}
		rcpts = append(rcpts, rc)
	}
	if len(rcpts) > 0 {
		results, err := a.Deliver(ctx, env, rcpts, bytes.NewReader(raw))
		if err != nil {
			if temp(err) {
				temporary += len(rcpts)
			}
			for _, rc := range rcpts {
				failed = append(failed, FailedRecipient(rc.Address, err, now))
			}
		}
		for i, rerr := range results {
			if rerr == nil {
				delivered++
				continue
			}
			if temp(rerr) {
				temporary++
			}
			failed = append(failed, FailedRecipient(rcpts[i].Address, rerr, now))
		}
	}
	if delivered == 0 && temporary == len(e.Rcpts) {
		// Nothing went, and all of it only for now (the database away, a
		// full disk): the whole message waits for the next attempt.
		return fmt.Errorf("%w: every recipient deferred", errRetry)
	}
	if len(failed) > 0 {
		a.reportLate(ctx, env, failed, raw)
	}
	if delivered > 0 {
		// The message is out: its copy is filed even if the queue is
		// shutting down meanwhile.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		a.fileSent(fctx, log, u.ID, withBcc(raw, note.Bcc), note)
		cancel()
	}
	log.Info("submission delivered", "delivered", delivered, "failed", len(failed))
	return nil
}

// giveUp reports to the sender a submission that could not be delivered
// before the queue's give-up time.
func (a *Agent) giveUp(ctx context.Context, e *outbound.Entry, raw []byte, cause error) {
	env := &Envelope{Source: SourceWebmail, From: e.From, Helo: "webmail"}
	var failed []DSNRecipient
	for _, r := range e.Rcpts {
		failed = append(failed, FailedRecipient(r.Address, ErrTemporary.with(cause), a.now()))
	}
	a.reportLate(ctx, env, failed, raw)
}

// fileSent keeps the copy of a delivered submission in the user's Sent
// folder and flags the message it answers. The message is out: a failure
// here is logged, not retried.
func (a *Agent) fileSent(ctx context.Context, log *slog.Logger, userID int64, raw []byte, note Submission) {
	acc := a.store.Account(userID, nil)
	sent, err := acc.SpecialMailbox(ctx, `\Sent`, "Sent")
	if err == nil {
		_, err = acc.Append(ctx, sent, raw, store.AppendOptions{Flags: store.FlagSeen})
	}
	if err != nil {
		log.Warn("submission's sent copy not kept", "err", err)
	}
	if note.ReplyMailbox != 0 && note.ReplyUID != 0 {
		set := store.UIDSet{{Start: note.ReplyUID, Stop: note.ReplyUID}}
		if _, err := acc.SetFlags(ctx, note.ReplyMailbox, set, store.FlagAdd, store.FlagAnswered, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Warn("flag answered", "err", err)
		}
	}
}

// processSubmission is the queue's round on a due submission: started (no
// longer cancellable), delivered by the agent, and then gone from the
// queue; or, when nothing could go now, tried again after the backoff.
func (q *Queue) processSubmission(ctx context.Context, log *slog.Logger, e outbound.Entry) {
	if q.agent == nil {
		log.Warn("queue: a submission waits for a delivery agent")
		q.record(ctx, log, &e, outbound.Update{Next: q.now().Add(q.cfg.PollInterval)})
		return
	}
	if err := q.rows.StartSubmission(ctx, &e); err != nil {
		if !errors.Is(err, outbound.ErrLeaseLost) {
			log.Warn("queue: start submission", "err", err)
		}
		return // taken back by its user (or by another worker)
	}
	rc, err := q.rows.Open(ctx, &e)
	var raw bytes.Buffer
	if err == nil {
		_, err = raw.ReadFrom(rc)
		rc.Close()
	}
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, q.cfg.Timeout)
		err = q.agent.deliverSubmission(actx, log, &e, raw.Bytes())
		cancel()
	}
	if err != nil {
		log.Warn("queue: submission deferred", "err", err)
		expired := q.now().Sub(e.CreatedAt) >= q.cfg.MaxAge
		if !expired {
			q.record(ctx, log, &e, outbound.Update{LastError: err.Error(), Next: q.nextAttempt(&e, false)})
			return
		}
		log.Warn("queue: submission expired undelivered")
		q.agent.giveUp(ctx, &e, raw.Bytes(), err)
	}
	// Delivered (or given up): every recipient is done with here; the
	// agent reported what failed.
	u := outbound.Update{Next: q.now()}
	for _, r := range e.Rcpts {
		u.Results = append(u.Results, outbound.Result{Address: r.Address, Status: outbound.RcptSent, Reply: "submitted"})
	}
	q.record(ctx, log, &e, u)
}
