package delivery

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

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
	mh := mail.Header{Header: message.Header{Header: h}}
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
	var h mail.Header
	h.SetDate(a.now())
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	subject := vac.Subject
	if subject == "" {
		origSubject, _ := (&mail.Header{Header: message.Header{Header: orig}}).Subject()
		subject = "Auto: " + origSubject
	}
	h.SetSubject(subject)
	if err := h.GenerateMessageIDWithHostname(a.cfg.Hostname); err != nil {
		return nil, err
	}
	if id := orig.Get("Message-Id"); id != "" {
		h.Set("In-Reply-To", id)
		refs := strings.TrimSpace(orig.Get("References") + " " + id)
		h.Set("References", refs)
	}
	h.Set("Auto-Submitted", "auto-replied")
	h.Set("Precedence", "bulk")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	body := strings.ReplaceAll(strings.ReplaceAll(vac.Body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := w.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
