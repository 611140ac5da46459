package delivery

import (
	"context"
	"fmt"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"basalt/message"
	"basalt/store"
)

// applyRules runs a user's forwarding and vacation rules for one incoming
// message. It reports whether a copy is to be kept in the mailbox, and
// returns the vacation reply, if one is due, for the caller to send once
// the delivery is done. A rule that fails is logged and the message kept:
// losing mail is worse than a missing auto-reply or forward.
func (a *Agent) applyRules(ctx context.Context, env *Envelope, userID int64, rcpt string, h textproto.Header, raw []byte) (bool, func()) {
	acct := a.store.Account(userID, nil)
	vac, fwd, err := acct.Rules(ctx)
	if err != nil {
		a.log.Warn("delivery rules", "id", env.ID, "user", userID, "err", err)
		return true, nil
	}
	keep := true
	if len(fwd.To) > 0 {
		if !a.relays() {
			a.log.Warn("forwarding without an outbound queue", "id", env.ID, "user", userID)
		} else if err := a.relayQ.Enqueue(ctx, env.From, fwd.To, raw); err != nil {
			a.log.Warn("forward", "id", env.ID, "user", userID, "err", err)
		} else {
			keep = fwd.KeepCopy
		}
	}
	if !vac.Active(a.now()) {
		return keep, nil
	}
	return keep, func() {
		if err := a.vacationReply(context.WithoutCancel(ctx), env, acct, rcpt, vac, h); err != nil {
			a.log.Warn("vacation reply", "id", env.ID, "user", userID, "err", err)
		}
	}
}

// vacationReply answers a message with the user's vacation text, within
// RFC 3834's rules: never to the null sender or to automatic, bulk or list
// mail, only to mail addressed to the user, and at most once per sender
// per interval. The reply goes out from the null sender (RFC 3834 3.3),
// so nothing ever answers it in turn.
func (a *Agent) vacationReply(ctx context.Context, env *Envelope, acct *store.Account, rcpt string, vac store.Vacation, h textproto.Header) error {
	if !shouldAutoReply(env.From, h) {
		return nil
	}
	u, err := a.store.UserByID(ctx, acct.UserID())
	if err != nil {
		return err
	}
	sender, _ := store.NormalizeAddress(env.From)
	if sender == u.Address || !addressedTo(h, rcpt, u.Address) {
		return nil
	}
	interval := vac.Interval
	if interval == 0 {
		interval = 7 * 24 * time.Hour
	}
	due, err := acct.VacationReplyDue(ctx, sender, interval)
	if err != nil || !due {
		return err
	}
	raw, err := a.buildAutoReply(u.Address, sender, vac, h)
	if err != nil {
		return err
	}
	res, err := a.store.Resolve(ctx, sender)
	local := err == nil && res.Local
	switch {
	case a.relayQ != nil && (local || a.relayQ.Relays()):
		// Queued even for a local sender, so that a full mailbox there
		// delays the reply rather than losing it.
		return a.relayQ.Enqueue(ctx, "", []string{sender}, raw)
	case local:
		return a.DeliverLocal(ctx, "", sender, raw)
	}
	return fmt.Errorf("no outbound queue for a reply to %s", sender)
}

// shouldAutoReply applies RFC 3834 2 and 5 to the incoming message.
func shouldAutoReply(from string, h textproto.Header) bool {
	if from == "" {
		return false
	}
	local, _, _ := strings.Cut(strings.ToLower(from), "@")
	if local == "mailer-daemon" || local == "postmaster" || strings.HasPrefix(local, "owner-") ||
		strings.HasSuffix(local, "-request") || strings.HasPrefix(local, "bounce") || local == "noreply" || local == "no-reply" {
		return false
	}
	if as := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); as != "" && as != "no" {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "list", "junk":
		return false
	}
	for _, k := range []string{"List-Id", "List-Unsubscribe", "List-Post", "X-Auto-Response-Suppress"} {
		if h.Has(k) {
			return false
		}
	}
	return true
}

// addressedTo reports whether the message names the user in To or Cc
// (RFC 3834 2: a personal responder answers only mail sent to the person).
func addressedTo(h textproto.Header, addrs ...string) bool {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	for _, k := range []string{"To", "Cc"} {
		list, _ := mh.AddressList(k)
		for _, ad := range list {
			for _, want := range addrs {
				if strings.EqualFold(ad.Address, want) {
					return true
				}
			}
		}
	}
	return false
}

// buildAutoReply makes the reply (RFC 3834 3.1): Auto-Submitted:
// auto-replied, In-Reply-To and References to the original, a subject
// the user chose or "Auto: " and the original's.
func (a *Agent) buildAutoReply(from, to string, vac store.Vacation, orig textproto.Header) ([]byte, error) {
	subject := vac.Subject
	if subject == "" {
		origSubject, _ := (&mail.Header{Header: gomessage.Header{Header: orig}}).Subject()
		subject = "Auto: " + origSubject
	}
	spec := message.Spec{
		Date:          a.now(),
		From:          []*mail.Address{{Address: from}},
		To:            []*mail.Address{{Address: to}},
		Subject:       subject,
		Hostname:      a.cfg.Hostname,
		AutoSubmitted: "auto-replied",
		Extra:         []message.Field{{Key: "Precedence", Value: "bulk"}},
		Text:          strings.ReplaceAll(strings.ReplaceAll(vac.Body, "\r\n", "\n"), "\n", "\r\n"),
	}
	if ids := message.MsgIDs(orig.Get("Message-Id")); len(ids) > 0 {
		spec.InReplyTo = ids[:1]
		spec.References = append(message.MsgIDs(orig.Get("References")), ids[0])
	}
	return message.Build(spec)
}
