package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-message/mail"

	"basalt/delivery"
	"basalt/message"
	"basalt/session"
	"basalt/store"
	"basalt/store/webmail"
)

// Composing: messages.compose opens a server-side compose, files are
// uploaded to it over plain HTTP (POST /rpc/upload?composeID=N,
// multipart/form-data), messages.save writes the draft into Drafts
// (replacing the compose's previous draft), and messages.send builds the
// message with message.Build, hands it to the delivery agent exactly as SMTP
// submission does (sender and recipients checked, local recipients
// stored, remote ones queued), keeps a copy in Sent and closes the
// compose.

type composeParams struct {
	// DraftID continues a saved draft: saving replaces it, sending
	// removes it.
	DraftID MessageID `json:"draftID,omitempty"`
}

type attachmentInfo struct {
	AttachmentID int64  `json:"attachmentID"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	Size         int64  `json:"size"`
}

type composeResult struct {
	ComposeID   int64            `json:"composeID"`
	Attachments []attachmentInfo `json:"attachments"`
}

type composeIDParams struct {
	ComposeID int64 `json:"composeID" jsonschema:"minimum=1"`
}

type attachmentIDParams struct {
	AttachmentID int64 `json:"attachmentID" jsonschema:"minimum=1"`
}

// partRef attaches a part of a stored message (forwarding, or a draft's
// attachments when it is edited again).
type partRef struct {
	MessageID MessageID `json:"messageID"`
	Part      string    `json:"part" jsonschema:"pattern=^[1-9][0-9]*(\\.[1-9][0-9]*)*$"`
}

type bodyParams struct {
	Text string `json:"text,omitempty"`
	HTML string `json:"html,omitempty"`
}

type messageParams struct {
	ComposeID int64 `json:"composeID" jsonschema:"minimum=1"`
	// From is one of the user's addresses (aliases), "Name <a@b>" or
	// "a@b"; absent: the primary one. The display name defaults to the
	// identity's.
	From    string     `json:"from,omitempty" jsonschema:"maxLength=500"`
	To      []string   `json:"to,omitempty" jsonschema:"maxItems=1000"`
	Cc      []string   `json:"cc,omitempty" jsonschema:"maxItems=1000"`
	Bcc     []string   `json:"bcc,omitempty" jsonschema:"maxItems=1000"`
	Subject string     `json:"subject,omitempty" jsonschema:"maxLength=998"`
	Body    bodyParams `json:"body,omitempty"`
	// InReplyTo is the message answered: threading headers come from it,
	// and it is flagged answered once this is sent.
	InReplyTo MessageID `json:"inReplyTo,omitempty"`
	// Attachments are uploaded files of this compose, by id.
	Attachments []int64   `json:"attachments,omitempty" jsonschema:"maxItems=100"`
	AttachParts []partRef `json:"attachParts,omitempty" jsonschema:"maxItems=100"`
}

type saveResult struct {
	MessageID string `json:"messageID"`
}

type sendResult struct {
	// MessageID is the copy kept in Sent; empty if it could not be kept
	// (the message went all the same).
	MessageID string `json:"messageID"`
	// Delivered lists the recipients the message was stored or queued
	// for; Failed those it was not, with why.
	Delivered []string         `json:"delivered"`
	Failed    []RecipientError `json:"failed"`
	// SendID, for a message that waits before it leaves (delay, sendAt),
	// takes it back with messages.unsend until SendAt (Unix seconds);
	// Delivered is empty then, and MessageID too: the Sent copy is filed
	// when it leaves.
	SendID int64 `json:"sendID,omitempty"`
	SendAt int64 `json:"sendAt,omitempty"`
}

func (h *Handler) registerCompose() {
	Register(h.engine, Spec{Name: "messages.compose", Summary: "Open a compose: a server-side draft that files are uploaded to (POST /rpc/upload?composeID=N)."}, h.messagesCompose)
	Register(h.engine, Spec{Name: "attachments.list", Summary: "The files uploaded to a compose."}, h.attachmentsList)
	Register(h.engine, Spec{Name: "attachments.remove", Summary: "Remove an uploaded file."}, h.attachmentsRemove)
	Register(h.engine, Spec{Name: "messages.save", Summary: "Save the compose as a draft in Drafts, replacing its previous draft."}, h.messagesSave)
	Register(h.engine, Spec{Name: "messages.send", Summary: "Send the compose: delivered like SMTP submission, a copy kept in Sent.",
		Description: "Everything is checked when called: data.type forbiddenFrom (the sender is not one of yours), recipientRefused (data.recipients says which, and why), " +
			"tooLarge, dailyLimit, overQuota (the messages still waiting count toward the room their Sent copies need), invalid (field sendAt) when 100 already wait. With a delay (default: the server's undo_send_seconds) or sendAt the message then waits in the outbound queue, " +
			"local and remote recipients alike, and the result's sendID takes it back (messages.unsend) until sendAt."}, h.messagesSend)
}

func (h *Handler) messagesCompose(ctx context.Context, c *Call, p composeParams) (composeResult, error) {
	a := c.account()
	var draft store.Message
	if p.DraftID != "" {
		var err error
		if draft, err = loadMessage(ctx, a, p.DraftID); err != nil {
			return composeResult{}, err
		}
		// Saving or sending removes the draft a compose continues: it
		// must be one, not any message of the user's.
		if !draft.Flags.Has(store.FlagDraft) {
			return composeResult{}, invalid("draftID", "the message is not a draft")
		}
	}
	cp, err := webmail.Of(a).CreateCompose(ctx)
	if err != nil {
		return composeResult{}, err
	}
	if p.DraftID != "" {
		if err := webmail.Of(a).SetComposeDraft(ctx, cp.ID, draft.MailboxID, draft.UID); err != nil {
			return composeResult{}, err
		}
	}
	return composeResult{ComposeID: cp.ID, Attachments: []attachmentInfo{}}, nil
}

func (h *Handler) attachmentsList(ctx context.Context, c *Call, p composeIDParams) (composeResult, error) {
	ups, err := webmail.Of(c.account()).Uploads(ctx, p.ComposeID)
	if err != nil {
		return composeResult{}, err
	}
	out := composeResult{ComposeID: p.ComposeID, Attachments: []attachmentInfo{}}
	for _, u := range ups {
		out.Attachments = append(out.Attachments, attachmentInfo{AttachmentID: u.ID, Name: u.Name, Type: u.Type, Size: u.Size})
	}
	return out, nil
}

func (h *Handler) attachmentsRemove(ctx context.Context, c *Call, p attachmentIDParams) (okResult, error) {
	return okResult{OK: true}, webmail.Of(c.account()).DeleteUpload(ctx, p.AttachmentID)
}

// serveUpload is POST /rpc/upload?composeID=N: each file part of a
// multipart/form-data body becomes an upload of the compose, streamed to
// the store. It changes state, so it is guarded as calls are: Origin,
// session, CSRF token, rate.
func (h *Handler) serveUpload(w http.ResponseWriter, r *http.Request) {
	if !h.originOK(r) {
		writeRPCError(w, http.StatusForbidden, serverErr(CodeForbidden, "foreign origin"))
		return
	}
	c := &Call{h: h, r: r, w: w}
	if err := h.guard(r.Context(), c); err != nil {
		e := asError(err)
		status := http.StatusUnauthorized
		switch e.Code {
		case CodeForbidden:
			status = http.StatusForbidden
		case CodeRateLimited:
			status = http.StatusTooManyRequests
		}
		writeRPCError(w, status, e)
		return
	}
	composeID, err := strconv.ParseInt(r.URL.Query().Get("composeID"), 10, 64)
	if err != nil || composeID <= 0 {
		writeRPCError(w, http.StatusBadRequest, invalid("composeID", "composeID must be a compose's id"))
		return
	}
	// Several files may come in one body; the store bounds each.
	maxBody := h.cfg.MaxUploadBytes*4 + (1 << 20)
	if r.ContentLength > maxBody {
		tooLarge(w, maxBody)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, invalid("", "the body must be multipart/form-data"))
		return
	}
	a := c.account()
	out := composeResult{ComposeID: composeID, Attachments: []attachmentInfo{}}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			tooLarge(w, maxBody)
			return
		}
		if err != nil {
			writeRPCError(w, http.StatusBadRequest, invalid("", "unreadable multipart body"))
			return
		}
		if part.FileName() == "" {
			part.Close()
			continue
		}
		ctype := part.Header.Get("Content-Type")
		if mt, params, err := mime.ParseMediaType(ctype); err == nil {
			ctype = mime.FormatMediaType(mt, params)
		} else {
			ctype = "application/octet-stream"
		}
		up, err := webmail.Of(a).AddUpload(r.Context(), composeID, part.FileName(), ctype, part, h.cfg.MaxUploadBytes)
		part.Close()
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			tooLarge(w, maxBody)
			return
		}
		if err != nil {
			e := asError(err)
			status := http.StatusBadRequest
			switch {
			case e.Code == CodeNotFound:
				status = http.StatusNotFound
			case e.Code == CodeDomainTooBig:
				status = http.StatusRequestEntityTooLarge
			case e.Code == CodeOverQuota:
				status = http.StatusInsufficientStorage // RFC 4918 11.5
			case e.Code == CodeInternal:
				h.log.Error("upload", "err", err)
				status = http.StatusInternalServerError
			}
			writeRPCError(w, status, e)
			return
		}
		out.Attachments = append(out.Attachments, attachmentInfo{AttachmentID: up.ID, Name: up.Name, Type: up.Type, Size: up.Size})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

// built is a message made from a compose.
type built struct {
	raw     []byte // as sent: no Bcc
	withBcc []byte // the copy kept (Sent, Drafts)
	from    *mail.Address
	rcpts   []string
	// bcc is the Bcc field of the kept copy, "" without one.
	bcc string
	// named are the recipients as written (with their names).
	named     []*mail.Address
	inReplyTo *store.Message
}

func parseAddrs(field string, list []string) ([]*mail.Address, error) {
	var out []*mail.Address
	for i, s := range list {
		ad, err := mail.ParseAddress(s)
		if err != nil {
			return nil, invalid(fmt.Sprintf("%s.%d", field, i), fmt.Sprintf("%q is not an address", s))
		}
		out = append(out, ad)
	}
	return out, nil
}

// build makes the message of p with message.Build.
func (h *Handler) build(ctx context.Context, c *Call, p messageParams, requireRcpts bool) (*built, error) {
	a := c.account()
	if _, err := webmail.Of(a).Compose(ctx, p.ComposeID); err != nil {
		return nil, err
	}
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return nil, err
	}
	b := &built{}
	if p.From == "" {
		b.from = &mail.Address{Address: u.Address}
	} else if b.from, err = mail.ParseAddress(p.From); err != nil {
		return nil, invalid("from", fmt.Sprintf("%q is not an address", p.From))
	}
	if b.from.Name == "" {
		id, err := identity(ctx, a)
		if err != nil {
			return nil, err
		}
		b.from.Name = id.DisplayName
	}
	to, err := parseAddrs("to", p.To)
	if err != nil {
		return nil, err
	}
	cc, err := parseAddrs("cc", p.Cc)
	if err != nil {
		return nil, err
	}
	bcc, err := parseAddrs("bcc", p.Bcc)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, l := range [][]*mail.Address{to, cc, bcc} {
		for _, ad := range l {
			if k := strings.ToLower(ad.Address); !seen[k] {
				seen[k] = true
				b.rcpts = append(b.rcpts, ad.Address)
				b.named = append(b.named, ad)
			}
		}
	}
	if requireRcpts && len(b.rcpts) == 0 {
		return nil, invalid("to", "no recipients")
	}
	msgID, err := message.NewMessageID(h.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	spec := message.Spec{
		Date: h.now(), From: []*mail.Address{b.from}, To: to, Cc: cc, Subject: p.Subject,
		MessageID: msgID, Extra: []message.Field{{Key: "User-Agent", Value: "Basalt webmail"}},
		Text: p.Body.Text, HTML: p.Body.HTML,
	}
	if p.InReplyTo != "" {
		orig, err := loadMessage(ctx, a, p.InReplyTo)
		if err != nil {
			return nil, err
		}
		b.inReplyTo = &orig
		// RFC 5322 3.6.4: In-Reply-To names the parent, References its
		// references and then the parent.
		if id := orig.Info.Envelope.MessageID; strings.Trim(id, "<>") != "" {
			spec.InReplyTo = []string{id}
			spec.References = append(slices.Clone(orig.Info.References), id)
		}
	}
	if len(p.Attachments) > 0 {
		ups, err := webmail.Of(a).Uploads(ctx, p.ComposeID)
		if err != nil {
			return nil, err
		}
		for i, id := range p.Attachments {
			k := slices.IndexFunc(ups, func(u webmail.Upload) bool { return u.ID == id })
			if k < 0 {
				return nil, &Error{Code: CodeNotFound, Message: "no such attachment in this compose", Data: ErrorData{Type: "notFound", Field: fmt.Sprintf("attachments.%d", i)}}
			}
			up := ups[k]
			spec.Files = append(spec.Files, message.File{Name: up.Name, Type: up.Type, Open: func() (io.ReadCloser, error) {
				_, rc, err := webmail.Of(a).OpenUpload(ctx, up.ID)
				return rc, err
			}})
		}
	}
	for _, pr := range p.AttachParts {
		m, err := loadMessage(ctx, a, pr.MessageID)
		if err != nil {
			return nil, err
		}
		part, err := m.Info.Body.Find(pr.Part)
		if err != nil {
			return nil, errNotFound
		}
		name := part.DispositionParams["filename"]
		if name == "" {
			name = part.Params["name"]
		}
		if name == "" {
			name = "attachment"
		}
		// The part's type with its parameters: a text's charset above all,
		// without which its octets cannot be read.
		ctype := mime.FormatMediaType(part.Type+"/"+part.Subtype, part.Params)
		if ctype == "" {
			ctype = part.Type + "/" + part.Subtype
		}
		spec.Files = append(spec.Files, message.File{Name: name, Type: ctype, Open: func() (io.ReadCloser, error) {
			raw, err := readRaw(ctx, a, m)
			if err != nil {
				return nil, err
			}
			// As IMAP BINARY and the download decode it; a part in an
			// unknown encoding goes as it is stored.
			body, _ := part.Decode(raw)
			return io.NopCloser(bytes.NewReader(body)), nil
		}})
	}
	if b.raw, err = message.Build(spec); err != nil {
		return nil, err
	}
	if len(bcc) == 0 {
		b.withBcc = b.raw
		return b, nil
	}
	// The kept copy says who was in Bcc; the one sent does not (RFC 5322
	// 3.6.3). It is the same message, written again with the one field
	// more.
	spec.Bcc = bcc
	var list []string
	for _, ad := range bcc {
		list = append(list, ad.String())
	}
	b.bcc = strings.Join(list, ", ")
	if b.withBcc, err = message.Build(spec); err != nil {
		return nil, err
	}
	return b, nil
}

func (h *Handler) messagesSave(ctx context.Context, c *Call, p messageParams) (saveResult, error) {
	a := c.account()
	b, err := h.build(ctx, c, p, false)
	if err != nil {
		return saveResult{}, err
	}
	drafts, err := a.SpecialMailbox(ctx, `\Drafts`, "Drafts")
	if err != nil {
		return saveResult{}, err
	}
	res, err := a.Append(ctx, drafts, b.withBcc, store.AppendOptions{Flags: store.FlagDraft | store.FlagSeen})
	if err != nil {
		return saveResult{}, err
	}
	h.dropDraft(ctx, a, p.ComposeID)
	if err := webmail.Of(a).SetComposeDraft(ctx, p.ComposeID, res.MailboxID, res.UID); err != nil {
		return saveResult{}, err
	}
	return saveResult{MessageID: msgRef{res.MailboxID, res.UID}.id()}, nil
}

// dropDraft removes the compose's saved draft, if it has one still and
// it is still a draft.
func (h *Handler) dropDraft(ctx context.Context, a *store.Account, composeID int64) {
	cp, err := webmail.Of(a).Compose(ctx, composeID)
	if err != nil || cp.DraftUID == 0 {
		return
	}
	set := store.UIDSet{{Start: cp.DraftUID, Stop: cp.DraftUID}}
	if ms, err := a.List(ctx, cp.DraftMailboxID, store.ListQuery{UIDs: set}); err != nil || len(ms) != 1 || !ms[0].Flags.Has(store.FlagDraft) {
		return
	}
	if _, err := a.Remove(ctx, cp.DraftMailboxID, set); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Warn("remove replaced draft", "user", a.UserID(), "err", err)
	}
}

func newEnvelopeID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "W" + strings.ToUpper(hex.EncodeToString(b))
}

func (h *Handler) messagesSend(ctx context.Context, c *Call, p sendParams) (sendResult, error) {
	if h.agent == nil {
		return sendResult{}, serverErr(CodeUnavailable, "sending is not configured")
	}
	due, err := h.sendTime(p)
	if err != nil {
		return sendResult{}, err
	}
	mp, err := h.withIdentity(ctx, c, p)
	if err != nil {
		return sendResult{}, err
	}
	a := c.account()
	b, err := h.build(ctx, c, mp, true)
	if err != nil {
		return sendResult{}, err
	}
	chk, err := h.checkSend(ctx, c, b)
	if err != nil {
		return sendResult{}, err
	}
	if !due.IsZero() {
		return h.sendLater(ctx, c, p.messageParams, b, chk, due)
	}
	results, err := h.agent.Deliver(ctx, chk.env, chk.rcpts, bytes.NewReader(b.raw))
	if err != nil {
		return sendResult{}, err
	}
	rcpts := chk.rcpts
	out := sendResult{Delivered: []string{}, Failed: []RecipientError{}}
	for i, rerr := range results {
		if rerr != nil {
			out.Failed = append(out.Failed, RecipientError{Address: rcpts[i].Address, Reason: reason(rerr)})
		} else {
			out.Delivered = append(out.Delivered, rcpts[i].Address)
		}
	}
	if len(out.Delivered) == 0 {
		// Refused only for now (a full disk, the database away): the
		// unavailable code tells the client to send again later, as a
		// 4xx tells an SMTP client.
		if allTemporary(results) {
			return sendResult{}, &Error{Code: CodeUnavailable, Message: "the message could not be sent now; try again later", Data: ErrorData{Type: "sendFailed", Recipients: out.Failed}}
		}
		return sendResult{}, &Error{Code: CodeRefused, Message: "the message could not be sent", Data: ErrorData{Type: "sendFailed", Recipients: out.Failed}}
	}
	uid := c.userID()
	// From here the message is out: what follows must not fail the call.
	// The compose goes first: its uploads, charged to the quota while they
	// waited, are given back before the sent copy (which holds them) is.
	h.closeCompose(ctx, a, p.ComposeID)
	h.noteRecipients(ctx, a, b)
	if sent, err := a.SpecialMailbox(ctx, `\Sent`, "Sent"); err != nil {
		h.log.Warn("sent copy", "user", uid, "err", err)
	} else if res, err := a.Append(ctx, sent, b.withBcc, store.AppendOptions{Flags: store.FlagSeen}); err != nil {
		h.log.Warn("sent copy not kept", "user", uid, "err", err)
	} else {
		out.MessageID = msgRef{res.MailboxID, res.UID}.id()
	}
	if b.inReplyTo != nil {
		if _, err := a.SetFlags(ctx, b.inReplyTo.MailboxID, store.UIDSet{{Start: b.inReplyTo.UID, Stop: b.inReplyTo.UID}}, store.FlagAdd, store.FlagAnswered, nil); err != nil {
			h.log.Warn("flag answered", "user", uid, "err", err)
		}
	}
	return out, nil
}

// closeCompose removes a sent compose and the draft it continued.
func (h *Handler) closeCompose(ctx context.Context, a *store.Account, composeID int64) {
	h.dropDraft(ctx, a, composeID)
	if err := webmail.Of(a).DeleteCompose(ctx, composeID); err != nil {
		h.log.Warn("close compose", "user", a.UserID(), "err", err)
	}
}

// sendCheck is a message that passed the checks of a send.
type sendCheck struct {
	env   *delivery.Envelope
	rcpts []delivery.Recipient
	user  store.User
}

// checkSend makes the SMTP dialogue's checks, in its order (RFC 5321 3.3):
// the sender, then each recipient. One refused recipient sends nothing,
// so the user can correct it and send again without duplicates.
func (h *Handler) checkSend(ctx context.Context, c *Call, b *built) (*sendCheck, error) {
	if len(b.rcpts) > h.agent.MaxRecipients() {
		return nil, invalid("to", fmt.Sprintf("at most %d recipients", h.agent.MaxRecipients()))
	}
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return nil, err
	}
	ip, _ := session.ParseClientIP(c.r.RemoteAddr)
	env := &delivery.Envelope{
		Source: delivery.SourceWebmail, From: b.from.Address, RemoteIP: ip, Helo: "webmail",
		TLS: c.r.TLS != nil, Auth: &session.Auth{User: u, Key: c.web.Key}, ID: newEnvelopeID(),
	}
	if err := h.agent.CheckSender(ctx, env); err != nil {
		return nil, err
	}
	var (
		rcpts   []delivery.Recipient
		refused []RecipientError
	)
	for _, addr := range b.rcpts {
		rc, err := h.agent.CheckRecipient(ctx, env, addr)
		if err != nil {
			refused = append(refused, RecipientError{Address: addr, Reason: reason(err)})
			continue
		}
		rcpts = append(rcpts, rc)
	}
	if len(refused) > 0 {
		msg := "recipients refused; nothing was sent: "
		for i, r := range refused {
			if i > 0 {
				msg += ", "
			}
			msg += r.Address
		}
		return nil, &Error{Code: CodeRefused, Message: msg, Data: ErrorData{Type: "recipientRefused", Recipients: refused}}
	}
	return &sendCheck{env: env, rcpts: rcpts, user: u}, nil
}

// allTemporary reports whether every one of errs is a temporary refusal
// (a 4xx reply, or a store that cannot be reached or written now).
func allTemporary(errs []error) bool {
	for _, err := range errs {
		if de, ok := errors.AsType[*delivery.Error](err); ok {
			if !de.Temporary() {
				return false
			}
		} else if err != nil && asError(err).Code != CodeUnavailable {
			return false
		}
	}
	return true
}

// reason is what a user is told about a refused recipient: the agent's
// reply text, which is written for people.
func reason(err error) string {
	if de, ok := errors.AsType[*delivery.Error](err); ok {
		return fmt.Sprintf("%d %d.%d.%d %s", de.Code, de.Enhanced[0], de.Enhanced[1], de.Enhanced[2], de.Message)
	}
	if e := asError(err); e.Code != CodeInternal {
		return e.Message
	}
	return "temporary failure"
}
