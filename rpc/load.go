package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/go-chi/chi/v5"
	invopop "github.com/invopop/jsonschema"

	"basalt/message"
	"basalt/store"
)

// Section is a part of messages.load's answer.
type Section string

// JSONSchema lists the sections.
func (Section) JSONSchema() *invopop.Schema {
	return &invopop.Schema{Type: "string", Enum: []any{"meta", "header", "body", "attachments", "source", "security"}}
}

type loadParams struct {
	MessageID MessageID `json:"messageID"`
	// Sections default to meta, header, body and attachments.
	Sections []Section `json:"sections,omitempty" jsonschema:"maxItems=6"`
	// AllowRemote keeps images and other resources from other servers in
	// the HTML body; by default they are removed, so that opening a
	// message tells its sender nothing.
	AllowRemote bool `json:"allowRemote,omitempty"`
	// Images decides the remote images of bodyURL's document for this
	// load: "show" (through the image proxy) or "block"; absent, the
	// user's remote-image policy and sender list decide (settings.images).
	Images string `json:"images,omitempty" jsonschema:"enum=show,enum=block"`
}

type headerField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type bodyResult struct {
	Text string `json:"text"`
	// HTML is the HTML part, sanitized; empty when the message has none.
	HTML string `json:"html"`
	// RemoteBlocked says remote resources were removed from HTML.
	RemoteBlocked bool `json:"remoteBlocked"`
	Truncated     bool `json:"truncated,omitempty"`
}

type attachmentItem struct {
	Part      string `json:"part"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`
	ContentID string `json:"contentID,omitempty"`
	Inline    bool   `json:"inline"`
	URL       string `json:"url"`
}

type securityResult struct {
	// Encrypted: stored encrypted to the user's key.
	Encrypted bool `json:"encrypted"`
	Junk      bool `json:"junk"`
	Spoofed   bool `json:"spoofed"`
	Phishing  bool `json:"phishing"`
	Infected  bool `json:"infected"`
	// Received are the Received headers, newest first: the path the
	// message took (RFC 5321 4.4).
	Received []string `json:"received"`
}

type loadResult struct {
	MessageID string        `json:"messageID"`
	Meta      *messageItem  `json:"meta,omitempty"`
	Header    []headerField `json:"header,omitempty"`
	// HeaderTruncated says the header was longer than what Header lists
	// (maxHeaderBytes, maxHeaderFields); the source has it whole.
	HeaderTruncated bool             `json:"headerTruncated,omitempty"`
	Body            *bodyResult      `json:"body,omitempty"`
	Attachments     []attachmentItem `json:"attachments,omitempty"`
	// Source is the message as stored; SourceURL downloads it.
	Source          string          `json:"source,omitempty"`
	SourceURL       string          `json:"sourceURL,omitempty"`
	SourceTruncated bool            `json:"sourceTruncated,omitempty"`
	Security        *securityResult `json:"security,omitempty"`
	// BodyURL (with the body section) is the reading pane's document:
	// the sanitized body as a whole HTML page with its own CSP, for an
	// <iframe sandbox> (GET /rpc/frame/{messageID}).
	BodyURL string `json:"bodyURL,omitempty"`
	// RemoteImages (with the body section) counts the remote images
	// BodyURL's document leaves out; 0 when they are shown.
	RemoteImages int `json:"remoteImages"`
	// ImagesShown says BodyURL's document shows remote images (asked for,
	// or by the user's policy or sender list).
	ImagesShown bool `json:"imagesShown"`
}

// Bounds on what one load returns inline.
const (
	maxBodyBytes   = 4 << 20
	maxSourceBytes = 1 << 20
	// A header is shown up to these: what is past them is not read by
	// people, and a hostile one (hundreds of thousands of fields) made
	// each load cost megabytes of JSON.
	maxHeaderBytes  = 64 << 10
	maxHeaderFields = 1000
)

// loadMessage reads a message's row (with its parse) by id.
func loadMessage(ctx context.Context, a *store.Account, id MessageID) (store.Message, error) {
	r, err := id.parse()
	if err != nil {
		return store.Message{}, err
	}
	msgs, err := a.List(ctx, r.folder, store.ListQuery{UIDs: store.UIDSet{{Start: r.uid, Stop: r.uid}}, WithInfo: true})
	if err != nil {
		return store.Message{}, err
	}
	if len(msgs) != 1 || msgs[0].Info == nil {
		return store.Message{}, errNotFound
	}
	return msgs[0], nil
}

func readRaw(ctx context.Context, a *store.Account, m store.Message) ([]byte, error) {
	rc, err := a.Open(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read message %d: %w", m.ID, err)
	}
	return raw, nil
}

func (h *Handler) messagesLoad(ctx context.Context, c *Call, p loadParams) (loadResult, error) {
	a := c.account()
	m, err := loadMessage(ctx, a, p.MessageID)
	if err != nil {
		return loadResult{}, err
	}
	want := map[Section]bool{}
	for _, s := range p.Sections {
		want[s] = true
	}
	if len(want) == 0 {
		want = map[Section]bool{"meta": true, "header": true, "body": true, "attachments": true}
	}
	id := msgRef{m.MailboxID, m.UID}.id()
	out := loadResult{MessageID: id}
	if want["meta"] {
		it := item(m)
		out.Meta = &it
	}
	var raw []byte
	if want["header"] || want["body"] || want["source"] || want["security"] {
		if raw, err = readRaw(ctx, a, m); err != nil {
			return loadResult{}, err
		}
	}
	info := m.Info
	if want["header"] || want["security"] {
		head, truncated := headerPrefix(cut(raw, 0, info.HeaderSize))
		hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			hdr = textproto.Header{}
		}
		if want["header"] {
			var more bool
			out.Header, more = headerFields(hdr, maxHeaderFields)
			out.HeaderTruncated = truncated || more
		}
		if want["security"] {
			out.Security = &securityResult{
				Encrypted: m.Flags.Has(store.FlagSecure) || m.Flags.Has(store.FlagEncrypted),
				Junk:      m.Flags.Has(store.FlagJunk), Spoofed: m.Flags.Has(store.FlagSpoofed),
				Phishing: m.Flags.Has(store.FlagPhishing), Infected: m.Flags.Has(store.FlagInfected),
				Received: []string{},
			}
			for _, v := range hdr.Values("Received") {
				out.Security.Received = append(out.Security.Received, unfold(v))
			}
		}
	}
	if want["attachments"] {
		out.Attachments = []attachmentItem{}
		for _, at := range info.Attachments {
			out.Attachments = append(out.Attachments, attachmentItem{
				Part: at.Path, Name: at.Name, Type: at.Type, Size: at.Size, ContentID: at.ContentID, Inline: at.Inline,
				URL: h.blobURL(id, at.Path),
			})
		}
	}
	if want["body"] {
		var blocked int
		out.Body, blocked = h.body(raw, id, info, p.AllowRemote)
		if p.AllowRemote {
			blocked = h.remoteCount(raw, info)
		}
		if out.ImagesShown, err = h.showImages(ctx, a, info, p.Images); err != nil {
			return loadResult{}, err
		}
		if !out.ImagesShown {
			out.RemoteImages = blocked
		}
		q := ""
		if p.Images != "" {
			q = "?images=" + p.Images
		}
		out.BodyURL = h.cfg.BasePath + "/frame/" + id + q
	}
	if want["source"] {
		out.SourceURL = h.blobURL(id, "source")
		src := raw
		if len(src) > maxSourceBytes {
			src, out.SourceTruncated = src[:maxSourceBytes], true
		}
		out.Source = strings.ToValidUTF8(string(src), "\uFFFD")
	}
	return out, nil
}

func (h *Handler) blobURL(messageID, part string) string {
	return h.cfg.BasePath + "/blob/" + messageID + "/" + part
}

func cut(raw []byte, a, b int64) []byte {
	if b > int64(len(raw)) {
		b = int64(len(raw))
	}
	if a > b {
		a = b
	}
	return raw[a:b]
}

func unfold(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// headerPrefix returns the header's first maxHeaderBytes, cut at the end
// of a line and ended by the empty line a header parser wants, and
// whether anything was left out.
func headerPrefix(h []byte) ([]byte, bool) {
	if len(h) <= maxHeaderBytes {
		return h, false
	}
	cut := bytes.LastIndexByte(h[:maxHeaderBytes], '\n')
	// A folded field continues on lines that start with white space;
	// cut before one that does not, so no field is cut in the middle.
	for cut > 0 && cut+1 < len(h) && (h[cut+1] == ' ' || h[cut+1] == '\t') {
		cut = bytes.LastIndexByte(h[:cut], '\n')
	}
	if cut < 0 {
		return []byte("\r\n"), true
	}
	out := make([]byte, 0, cut+3)
	return append(append(out, h[:cut+1]...), "\r\n"...), true
}

// headerFields lists the top-level header in order, each value's text
// as message.HeaderText decodes it (RFC 2047, word by word), as IMAP
// SEARCH and the ENVELOPE have it: at most max fields, and whether there
// were more.
func headerFields(h textproto.Header, max int) ([]headerField, bool) {
	out := []headerField{}
	for fields := h.Fields(); fields.Next(); {
		if len(out) == max {
			return out, true
		}
		out = append(out, headerField{Name: fields.Key(), Value: unfold(message.HeaderText(fields.Value()))})
	}
	return out, false
}

// textParts returns the first text/plain and text/html parts that are the
// message's text, not attachments, looking through multiparts but not into
// attached messages.
func textParts(p *message.Part) (plain, html *message.Part) {
	var walk func(p *message.Part)
	walk = func(p *message.Part) {
		if p.IsMultipart() {
			for i := range p.Parts {
				walk(&p.Parts[i])
			}
			return
		}
		if p.Type != "text" || p.Disposition == "attachment" || p.DispositionParams["filename"] != "" || p.Params["name"] != "" {
			return
		}
		switch {
		case p.Subtype == "plain" && plain == nil:
			plain = p
		case p.Subtype == "html" && html == nil:
			html = p
		}
	}
	walk(p)
	return plain, html
}

// remoteCount counts the remote images of a message's HTML body.
func (h *Handler) remoteCount(raw []byte, info *message.Info) int {
	_, html := textParts(&info.Body)
	if html == nil {
		return 0
	}
	src, _ := html.Text(raw, maxBodyBytes)
	_, n := h.sanitizers.sanitizeWith(src, srcRewrite{})
	return n
}

// body returns the body section and how many remote images were blocked
// from its HTML.
func (h *Handler) body(raw []byte, id string, info *message.Info, allowRemote bool) (*bodyResult, int) {
	out := &bodyResult{}
	blocked := 0
	plain, html := textParts(&info.Body)
	if plain != nil {
		var tr bool
		out.Text, tr = plain.Text(raw, maxBodyBytes)
		out.Truncated = out.Truncated || tr
	}
	if html != nil {
		src, tr := html.Text(raw, maxBodyBytes)
		out.Truncated = out.Truncated || tr
		cids := map[string]string{}
		for _, at := range info.Attachments {
			if at.ContentID != "" {
				cids[at.ContentID] = h.blobURL(id, at.Path)
			}
		}
		rw := srcRewrite{cid: func(id string) (string, bool) { t, ok := cids[id]; return t, ok }}
		if allowRemote {
			rw.remote = func(u *url.URL) string { return u.String() }
		}
		out.HTML, blocked = h.sanitizers.sanitizeWith(src, rw)
		out.RemoteBlocked = blocked > 0
	}
	return out, blocked
}

// serveBlob is GET /rpc/blob/{messageID}/{part}: one part of a message,
// transfer encoding undone ("source": the whole message), for the session
// whose message it is. What it sends is the sender's, so it is never
// rendered in the webmail's own origin: it comes as an attachment, with
// its type not to be sniffed and a sandboxing Content-Security-Policy.
func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request) {
	c := h.httpSession(w, r)
	if c == nil {
		return
	}
	ctx := r.Context()
	a := c.account()
	id := MessageID(chi.URLParam(r, "messageID"))
	part := chi.URLParam(r, "part")
	m, err := loadMessage(ctx, a, id)
	if err == nil && part != "source" {
		_, err = m.Info.Body.Find(part)
	}
	if err != nil {
		h.blobError(w, err)
		return
	}
	raw, err := readRaw(ctx, a, m)
	if err != nil {
		h.blobError(w, err)
		return
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'")
	hdr.Set("Cache-Control", "private, max-age=3600")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	if part == "source" {
		hdr.Set("Content-Type", "message/rfc822")
		hdr.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": id.String() + ".eml"}))
		w.Write(raw)
		return
	}
	p, _ := m.Info.Body.Find(part)
	ctype := p.Type + "/" + p.Subtype
	params := map[string]string{}
	if cs := p.Params["charset"]; cs != "" && p.Type == "text" {
		params["charset"] = cs
	}
	name := p.DispositionParams["filename"]
	if name == "" {
		name = p.Params["name"]
	}
	if name == "" {
		name = "part-" + part
	}
	hdr.Set("Content-Type", mime.FormatMediaType(ctype, params))
	hdr.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	// Only the transfer encoding is undone, as IMAP's BINARY undoes it:
	// the bytes stay in the charset the Content-Type above names. A part
	// in an encoding not known is sent as it is stored.
	body, _ := p.Decode(raw)
	w.Write(body)
}

func (h *Handler) blobError(w http.ResponseWriter, err error) {
	e := asError(err)
	switch {
	case e.Code == CodeNotFound, errors.Is(err, message.ErrNoPart), errors.Is(err, message.ErrBadPath):
		http.Error(w, "not found", http.StatusNotFound)
	default:
		h.log.Error("blob", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

func (id MessageID) String() string { return string(id) }
