package delivery

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-milter"
)

// MilterConfig points at a milter (Sendmail's mail filter protocol, which
// rspamd, ClamAV's clamav-milter, OpenDKIM and others speak).
type MilterConfig struct {
	Network string        // "tcp" or "unix"
	Address string        // host:port or a socket path
	Timeout time.Duration // per exchange; default 30s
	// FailOpen accepts mail when the milter cannot be reached; by default
	// such mail is refused with 451 so the sender retries, as Postfix's
	// milter_default_action = tempfail does.
	FailOpen bool
}

// Milter is a Filter that runs each message past a milter. The whole
// milter exchange (connect, HELO, MAIL, RCPT, headers, body) happens once
// the message is in, so a milter's verdict at any step is given at DATA:
// that loses nothing but the chance to refuse before the body is sent.
type Milter struct {
	NopFilter
	cfg    MilterConfig
	client *milter.Client
	log    *slog.Logger
}

// NewMilter returns a milter filter.
func NewMilter(cfg MilterConfig, log *slog.Logger) *Milter {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	c := milter.NewClientWithOptions(cfg.Network, cfg.Address, milter.ClientOptions{
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		// Basalt acts on added and changed headers and on quarantine;
		// it does not let a filter rewrite the body or the envelope.
		ActionMask: milter.OptAddHeader | milter.OptChangeHeader | milter.OptQuarantine,
	})
	return &Milter{cfg: cfg, client: c, log: log}
}

// Data runs the milter exchange for one message.
func (m *Milter) Data(ctx context.Context, env *Envelope, rcpts []Recipient, h textproto.Header, raw []byte) Verdict {
	v, err := m.exchange(env, rcpts, h, raw)
	if err != nil {
		m.log.Warn("milter", "id", env.ID, "addr", m.cfg.Address, "err", err)
		if m.cfg.FailOpen {
			return Verdict{}
		}
		return Verdict{Action: Reject, Reply: reply(451, 4, 7, 1, "Content filter unavailable, try again later", err)}
	}
	return v
}

func (m *Milter) exchange(env *Envelope, rcpts []Recipient, h textproto.Header, raw []byte) (Verdict, error) {
	s, err := m.client.Session()
	if err != nil {
		return Verdict{}, fmt.Errorf("open milter session: %w", err)
	}
	defer s.Close()
	family, addr := milter.FamilyUnknown, ""
	if env.RemoteIP.IsValid() {
		family, addr = milter.FamilyInet, env.RemoteIP.String()
		if env.RemoteIP.Is6() {
			family = milter.FamilyInet6
		}
	}
	steps := []func() (*milter.Action, error){
		func() (*milter.Action, error) { return s.Conn(env.Helo, family, 0, addr) },
		func() (*milter.Action, error) { return s.Helo(env.Helo) },
		func() (*milter.Action, error) { return s.Mail("<"+env.From+">", nil) },
	}
	for _, rc := range rcpts {
		steps = append(steps, func() (*milter.Action, error) { return s.Rcpt("<"+rc.Address+">", nil) })
	}
	steps = append(steps, func() (*milter.Action, error) { return s.Header(h) })
	for _, step := range steps {
		act, err := step()
		if err != nil {
			return Verdict{}, err
		}
		if v, done := verdictOf(act); done {
			return v, nil
		}
	}
	mods, act, err := s.BodyReadFrom(bytes.NewReader(bodyOf(raw)))
	if err != nil {
		return Verdict{}, err
	}
	v, _ := verdictOf(act)
	for _, mod := range mods {
		switch mod.Code {
		case milter.ActAddHeader, milter.ActInsertHeader, milter.ActChangeHeader:
			if mod.HeaderValue != "" {
				v.Headers = append(v.Headers, HeaderField{Key: mod.HeaderName, Value: mod.HeaderValue})
			}
			// rspamd and SpamAssassin's milters mark spam with a header.
			if isSpamHeader(mod.HeaderName, mod.HeaderValue) && v.Action == Accept {
				v.Action = Junk
			}
		case milter.ActQuarantine:
			if v.Action == Accept {
				v.Action = Junk
			}
		}
	}
	return v, nil
}

// verdictOf maps a milter action to a verdict, and says whether the
// exchange ends there.
func verdictOf(act *milter.Action) (Verdict, bool) {
	switch act.Code {
	case milter.ActReject:
		return Verdict{Action: Reject, Reply: reply(550, 5, 7, 1, "Message rejected by content filter", nil)}, true
	case milter.ActTempFail:
		return Verdict{Action: Reject, Reply: reply(451, 4, 7, 1, "Message deferred by content filter", nil)}, true
	case milter.ActReplyCode:
		code := act.SMTPCode
		enh := [3]int{5, 7, 1}
		if code >= 400 && code < 500 {
			enh = [3]int{4, 7, 1}
		}
		return Verdict{Action: Reject, Reply: &Error{Code: code, Enhanced: enh, Message: strings.TrimSpace(act.SMTPText)}}, true
	case milter.ActDiscard:
		// A milter's "discard" drops mail silently; Basalt files it as
		// junk instead, so a filter's mistake never loses a message.
		return Verdict{Action: Junk}, true
	case milter.ActAccept:
		return Verdict{}, true
	}
	return Verdict{}, false // continue
}

func isSpamHeader(name, value string) bool {
	v := strings.ToLower(strings.TrimSpace(value))
	switch strings.ToLower(name) {
	case "x-spam", "x-spam-flag":
		return v == "yes" || v == "true"
	case "x-spam-status":
		return strings.HasPrefix(v, "yes")
	}
	return false
}

// bodyOf returns what follows the header of a message.
func bodyOf(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[i+4:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[i+2:]
	}
	return nil
}
