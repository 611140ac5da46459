package delivery

import (
	"context"

	"github.com/emersion/go-message/textproto"

	"basalt/store"
)

// Action is what a filter decides about a message.
type Action int

// Filter actions.
const (
	Accept Action = iota // go on to the next filter
	Reject               // refuse with Verdict.Reply
	Junk                 // deliver to the recipient's Junk mailbox
)

// Verdict is a filter's decision. Flags (store's server-owned verdict
// flags: junk, infected, spoofed, phishing) and Headers are added to what
// earlier filters decided; a Reject or Junk ends the chain.
type Verdict struct {
	Action  Action
	Reply   *Error
	Flags   store.Flags
	Headers []HeaderField
}

// HeaderField is a header line a filter adds (X-Spam-Status, say).
type HeaderField struct{ Key, Value string }

// Filter is one stage of the hook chain, called as the SMTP dialogue goes:
// at MAIL, at each RCPT, and once the message is in, as IndiMail's plugins
// were. Embed NopFilter to implement only some of them.
type Filter interface {
	Mail(ctx context.Context, env *Envelope) Verdict
	Rcpt(ctx context.Context, env *Envelope, rcpt string) Verdict
	Data(ctx context.Context, env *Envelope, rcpts []Recipient, header textproto.Header, raw []byte) Verdict
}

// NopFilter accepts everything.
type NopFilter struct{}

func (NopFilter) Mail(context.Context, *Envelope) Verdict         { return Verdict{} }
func (NopFilter) Rcpt(context.Context, *Envelope, string) Verdict { return Verdict{} }
func (NopFilter) Data(context.Context, *Envelope, []Recipient, textproto.Header, []byte) Verdict {
	return Verdict{}
}

// runChain calls stage on each filter in turn and merges the verdicts.
func runChain(filters []Filter, stage func(Filter) Verdict) Verdict {
	var out Verdict
	for _, f := range filters {
		v := stage(f)
		out.Flags |= v.Flags
		out.Headers = append(out.Headers, v.Headers...)
		switch v.Action {
		case Reject:
			out.Action, out.Reply = Reject, v.Reply
			if out.Reply == nil {
				out.Reply = reply(550, 5, 7, 1, "Message rejected by policy", nil)
			}
			return out
		case Junk:
			out.Action = Junk
			out.Flags |= store.FlagJunk
			return out
		}
	}
	return out
}
