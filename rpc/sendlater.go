package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"basalt/delivery"
	"basalt/store"
)

// Undo send and send later. messages.send waits delay seconds (the
// config's undo_send_seconds unless the call says) or until sendAt before
// the message leaves: it is checked now as an immediate send is (sender,
// each recipient, size, daily limit, room for the Sent copy), then waits
// in the outbound queue, durable across restarts, for local and remote
// recipients alike (delivery.Agent.Submit). Until the queue starts it,
// messages.unsend takes it back into Drafts.

type sendParams struct {
	messageParams
	// Delay holds the message this many seconds before it leaves, so it
	// can be taken back (messages.unsend); absent: the server's
	// undo_send_seconds; 0: at once.
	Delay *int `json:"delay,omitempty" jsonschema:"minimum=0,maximum=86400"`
	// SendAt sends the message then (Unix seconds), within the server's
	// send_later_horizon; not with delay.
	SendAt int64 `json:"sendAt,omitempty" jsonschema:"minimum=0"`
	// Identity sends as one of identities.list's identities: its name and
	// address make the From (unless from is given).
	Identity string `json:"identity,omitempty" jsonschema:"maxLength=64"`
}

type unsendParams struct {
	SendID int64 `json:"sendID" jsonschema:"minimum=1"`
}

type unsendResult struct {
	// DraftID is the message back in Drafts: open it with
	// messages.compose {draftID}.
	DraftID string `json:"draftID"`
}

type scheduledItem struct {
	SendID  int64    `json:"sendID"`
	SendAt  int64    `json:"sendAt"`
	From    string   `json:"from"`
	To      []string `json:"to"`
	Rcpts   []string `json:"rcpts"`
	Subject string   `json:"subject"`
	Size    int64    `json:"size"`
}

type scheduledResult struct {
	Scheduled []scheduledItem `json:"scheduled"`
}

func (h *Handler) registerSendLater() {
	Register(h.engine, Spec{Name: "messages.unsend", Summary: "Take back a message that is still waiting to leave (undo send, send later); it goes back to Drafts.",
		Description: "Refused with data.type alreadySent (409) once the message is on its way, notFound when there is no such waiting message."}, h.messagesUnsend)
	Register(h.engine, Spec{Name: "messages.scheduled", Summary: "The messages waiting to leave (undo send, send later), soonest first."}, h.messagesScheduled)
}

// maxWaitingSends bounds a user's messages waiting in the queue (undo
// send, send later).
const maxWaitingSends = 100

// errAlreadySent refuses an unsend that came too late.
var errAlreadySent = domainErr(CodeConflict, "alreadySent", "the message has already left")

// sendTime returns when a send is to leave; zero: now.
func (h *Handler) sendTime(p sendParams) (time.Time, error) {
	now := h.now()
	if p.SendAt != 0 {
		if p.Delay != nil {
			return time.Time{}, invalid("sendAt", "give delay or sendAt, not both")
		}
		at := time.Unix(p.SendAt, 0)
		if at.After(now.Add(h.cfg.SendLaterHorizon)) {
			return time.Time{}, invalid("sendAt", fmt.Sprintf("at most %s ahead", h.cfg.SendLaterHorizon))
		}
		if at.Before(now) {
			return now, nil // a moment in the past (a slow click): leave now, through the queue
		}
		return at, nil
	}
	// The bound is on what a call asks: the server's own default is the
	// administrator's to choose, and a user could do nothing about it.
	delay := h.cfg.UndoSendSeconds
	if p.Delay != nil {
		delay = *p.Delay
		if delay > h.cfg.UndoSendMaxSeconds {
			return time.Time{}, invalid("delay", fmt.Sprintf("at most %d seconds", h.cfg.UndoSendMaxSeconds))
		}
	}
	if delay <= 0 {
		return time.Time{}, nil
	}
	return now.Add(time.Duration(delay) * time.Second), nil
}

// sendLater checks what only the delivery would otherwise find out (size,
// daily limit, room for the Sent copy) and queues the message until due.
func (h *Handler) sendLater(ctx context.Context, c *Call, p messageParams, b *built, chk *sendCheck, due time.Time) (sendResult, error) {
	a := c.account()
	size := int64(len(b.raw))
	if size > h.agent.MaxSize() {
		return sendResult{}, errTooLarge
	}
	lim, err := h.st.Limits(ctx, chk.user)
	if err != nil {
		return sendResult{}, err
	}
	remote := 0
	for _, rc := range chk.rcpts {
		remote += len(rc.Remote)
	}
	if remote > 0 && lim.MaxSendSize > 0 && size > lim.MaxSendSize {
		return sendResult{}, errTooLarge
	}
	if remote > 0 && lim.DailySendBytes > 0 {
		sent, err := a.SentToday(ctx)
		if err != nil {
			return sendResult{}, err
		}
		if sent+size*int64(remote) > lim.DailySendBytes {
			return sendResult{}, errDailyLimit
		}
	}
	// What waits is on no one's quota yet, but each will be filed in Sent:
	// the messages waiting count toward the room needed, and their number
	// is bounded, or a user could park any amount of mail in the queue.
	waiting, err := h.agent.Scheduled(ctx, c.userID())
	if err != nil && !errors.Is(err, delivery.ErrNoDelayedSend) {
		return sendResult{}, err
	}
	if len(waiting) >= maxWaitingSends {
		return sendResult{}, invalid("sendAt", fmt.Sprintf("at most %d messages can wait to be sent at once", maxWaitingSends))
	}
	var pending int64
	for _, w := range waiting {
		pending += w.Size + int64(len(w.Note.Bcc))
	}
	if lim.QuotaBytes > 0 && chk.user.UsedBytes+pending+int64(len(b.withBcc)) > lim.QuotaBytes {
		return sendResult{}, &Error{Code: CodeOverQuota, Message: "the mailbox is over its quota: there is no room for the sent copy", Data: ErrorData{Type: "overQuota"}}
	}
	note := delivery.Submission{EnvelopeID: chk.env.ID, TLS: chk.env.TLS, Bcc: b.bcc, Subject: p.Subject, To: append(append([]string{}, p.To...), p.Cc...)}
	if chk.env.RemoteIP.IsValid() {
		note.RemoteIP = chk.env.RemoteIP.String()
	}
	if b.inReplyTo != nil {
		note.ReplyMailbox, note.ReplyUID = b.inReplyTo.MailboxID, b.inReplyTo.UID
	}
	id, err := h.agent.Submit(ctx, c.userID(), chk.env.From, b.rcpts, b.raw, due, note)
	if errors.Is(err, delivery.ErrNoDelayedSend) {
		return sendResult{}, serverErr(CodeUnavailable, "delayed sending is not configured")
	}
	if err != nil {
		return sendResult{}, err
	}
	h.closeCompose(ctx, a, p.ComposeID)
	h.noteRecipients(ctx, a, b)
	return sendResult{Delivered: []string{}, Failed: []RecipientError{}, SendID: id, SendAt: due.Unix()}, nil
}

func (h *Handler) messagesUnsend(ctx context.Context, c *Call, p unsendParams) (unsendResult, error) {
	if h.agent == nil {
		return unsendResult{}, serverErr(CodeUnavailable, "sending is not configured")
	}
	s, raw, err := h.agent.Unsend(ctx, c.userID(), p.SendID)
	switch {
	case errors.Is(err, delivery.ErrSendStarted):
		return unsendResult{}, errAlreadySent
	case errors.Is(err, delivery.ErrNoDelayedSend):
		return unsendResult{}, errNotFound
	case err != nil:
		return unsendResult{}, err
	}
	a := c.account()
	drafts, err := a.SpecialMailbox(ctx, `\Drafts`, "Drafts")
	if err != nil {
		return unsendResult{}, err
	}
	// The message is out of the queue now: if Drafts cannot take it (over
	// quota since it was sent), it waits again, under a new
	// sendID (messages.scheduled), rather than be lost; the error says why.
	res, err := a.Append(ctx, drafts, raw, store.AppendOptions{Flags: store.FlagDraft | store.FlagSeen})
	if err != nil {
		// Not at once, though it was due: the user asked for it back, and
		// gets the longest undo to make room and ask again.
		if soonest := h.now().Add(time.Duration(h.cfg.UndoSendMaxSeconds) * time.Second); s.Due.Before(soonest) {
			s.Due = soonest
		}
		if _, rerr := h.agent.Resubmit(ctx, c.userID(), s, raw); rerr != nil {
			h.log.Error("unsent message lost: not kept in Drafts nor queued again", "user", c.userID(), "err", err, "queue_err", rerr)
		}
		return unsendResult{}, err
	}
	return unsendResult{DraftID: msgRef{res.MailboxID, res.UID}.id()}, nil
}

func (h *Handler) messagesScheduled(ctx context.Context, c *Call, _ empty) (scheduledResult, error) {
	out := scheduledResult{Scheduled: []scheduledItem{}}
	if h.agent == nil {
		return out, nil
	}
	ss, err := h.agent.Scheduled(ctx, c.userID())
	if errors.Is(err, delivery.ErrNoDelayedSend) {
		return out, nil
	}
	if err != nil {
		return scheduledResult{}, err
	}
	for _, s := range ss {
		it := scheduledItem{SendID: s.ID, SendAt: s.Due.Unix(), From: s.From, To: s.Note.To, Rcpts: s.Rcpts, Subject: s.Note.Subject, Size: s.Size}
		if it.To == nil {
			it.To = []string{}
		}
		if it.Rcpts == nil {
			it.Rcpts = []string{}
		}
		out.Scheduled = append(out.Scheduled, it)
	}
	return out, nil
}
