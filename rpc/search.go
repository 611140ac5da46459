package rpc

import (
	"context"
	"slices"
	"strings"
	"time"

	"basalt/message"
	"basalt/store"
)

// Search works as IMAP SEARCH does (protocols/imap/search.go): what the
// metadata rows hold (flags, dates) is asked of the store's Search; the
// rest is matched here on the parse stored with each message (from, to,
// subject, attachments) and, for free text not found there, on the
// message's text parts. Matches are substrings, ignoring case.

type searchParams struct {
	// FolderID limits the search to one folder; absent: every folder.
	FolderID int64 `json:"folderID,omitempty" jsonschema:"minimum=1"`
	// Query is free text: subject, addresses, and the message text.
	Query   string     `json:"query,omitempty" jsonschema:"maxLength=500"`
	From    string     `json:"from,omitempty" jsonschema:"maxLength=500"`
	To      string     `json:"to,omitempty" jsonschema:"maxLength=500"`
	Subject string     `json:"subject,omitempty" jsonschema:"maxLength=500"`
	Since   *time.Time `json:"since,omitempty"`
	Before  *time.Time `json:"before,omitempty"`
	// Flags must all be set; NotFlags all clear.
	Flags         []Flag `json:"flags,omitempty" jsonschema:"maxItems=7"`
	NotFlags      []Flag `json:"notFlags,omitempty" jsonschema:"maxItems=7"`
	HasAttachment *bool  `json:"hasAttachment,omitempty"`
	Start         int    `json:"start,omitempty" jsonschema:"minimum=0"`
	Limit         int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500,description=default 50"`
}

type searchResult struct {
	// Messages are the page of matches, newest first; Total counts all.
	Messages []messageItem `json:"messages"`
	Total    int           `json:"total"`
	// Partial says the search stopped at maxSearchScan messages.
	Partial bool `json:"partial,omitempty"`
}

// maxSearchScan bounds the messages one search reads the parse of.
const maxSearchScan = 50000

// searchChunk is how many candidates have their parse read at once.
const searchChunk = 256

func (h *Handler) messagesSearch(ctx context.Context, c *Call, p searchParams) (searchResult, error) {
	a := c.account()
	var folders []int64
	if p.FolderID != 0 {
		if _, err := a.Mailbox(ctx, p.FolderID); err != nil {
			return searchResult{}, err
		}
		folders = []int64{p.FolderID}
	} else {
		ms, err := a.Mailboxes(ctx)
		if err != nil {
			return searchResult{}, err
		}
		for _, m := range ms {
			folders = append(folders, m.ID)
		}
	}
	q := store.SearchQuery{FlagsSet: flagBits(p.Flags), FlagsClear: flagBits(p.NotFlags)}
	if p.Since != nil {
		q.Since = *p.Since
	}
	if p.Before != nil {
		q.Before = *p.Before
	}
	m := matcher{query: strings.ToLower(p.Query), from: strings.ToLower(p.From), to: strings.ToLower(p.To),
		subject: strings.ToLower(p.Subject), attach: p.HasAttachment}
	var (
		hits    []store.Message
		scanned int
		partial bool
	)
	for _, f := range folders {
		cands, err := a.Search(ctx, f, q)
		if err != nil {
			return searchResult{}, err
		}
		for start := 0; start < len(cands); start += searchChunk {
			if scanned >= maxSearchScan {
				partial = true
				break
			}
			chunk := cands[start:min(start+searchChunk, len(cands))]
			scanned += len(chunk)
			if !m.needsInfo() {
				hits = append(hits, chunk...)
				continue
			}
			uids := make([]uint32, len(chunk))
			for i, cm := range chunk {
				uids[i] = cm.UID
			}
			msgs, err := a.List(ctx, f, store.ListQuery{UIDs: uidSet(uids), WithInfo: true})
			if err != nil {
				return searchResult{}, err
			}
			for _, msg := range msgs {
				ok, err := m.match(ctx, a, msg)
				if err != nil {
					return searchResult{}, err
				}
				if ok {
					hits = append(hits, msg)
				}
			}
		}
	}
	slices.SortFunc(hits, func(x, y store.Message) int {
		if c := y.InternalDate.Compare(x.InternalDate); c != 0 {
			return c
		}
		if x.MailboxID != y.MailboxID {
			return int(y.MailboxID - x.MailboxID)
		}
		return int(y.UID) - int(x.UID)
	})
	out := searchResult{Messages: []messageItem{}, Total: len(hits), Partial: partial}
	limit := p.Limit
	if limit == 0 {
		limit = 50
	}
	page := hits[min(p.Start, len(hits)):min(p.Start+limit, len(hits))]
	if !m.needsInfo() && len(page) > 0 {
		// The rows found without a parse are read again with it, for
		// the page only.
		var err error
		if page, err = withInfo(ctx, a, page); err != nil {
			return searchResult{}, err
		}
	}
	for _, msg := range page {
		out.Messages = append(out.Messages, item(msg))
	}
	return out, nil
}

// withInfo reads msgs again with their parse, keeping their order.
func withInfo(ctx context.Context, a *store.Account, msgs []store.Message) ([]store.Message, error) {
	byFolder := map[int64][]uint32{}
	for _, m := range msgs {
		byFolder[m.MailboxID] = append(byFolder[m.MailboxID], m.UID)
	}
	full := map[msgRef]store.Message{}
	for f, uids := range byFolder {
		slices.Sort(uids)
		got, err := a.List(ctx, f, store.ListQuery{UIDs: uidSet(uids), WithInfo: true})
		if err != nil {
			return nil, err
		}
		for _, m := range got {
			full[msgRef{f, m.UID}] = m
		}
	}
	out := make([]store.Message, 0, len(msgs))
	for _, m := range msgs {
		if fm, ok := full[msgRef{m.MailboxID, m.UID}]; ok {
			out = append(out, fm)
		}
	}
	return out, nil
}

type matcher struct {
	query, from, to, subject string
	attach                   *bool
}

func (m matcher) needsInfo() bool {
	return m.query != "" || m.from != "" || m.to != "" || m.subject != "" || m.attach != nil
}

func (m matcher) match(ctx context.Context, a *store.Account, msg store.Message) (bool, error) {
	info := msg.Info
	if info == nil {
		return false, nil
	}
	if m.attach != nil && msg.HasAttachments != *m.attach {
		return false, nil
	}
	if m.from != "" && !strings.Contains(info.SearchFrom, m.from) {
		return false, nil
	}
	if m.to != "" && !strings.Contains(info.SearchTo, m.to) && !strings.Contains(lowerAddrs(info.Envelope.Cc), m.to) {
		return false, nil
	}
	if m.subject != "" && !strings.Contains(info.SearchSubject, m.subject) {
		return false, nil
	}
	if m.query == "" {
		return true, nil
	}
	for _, s := range []string{info.SearchSubject, info.SearchFrom, info.SearchTo, lowerAddrs(info.Envelope.Cc), strings.ToLower(info.Snippet)} {
		if strings.Contains(s, m.query) {
			return true, nil
		}
	}
	raw, err := readRaw(ctx, a, msg)
	if err != nil {
		return false, err
	}
	plain, html := textParts(&info.Body)
	for _, p := range []*message.Part{plain, html} {
		if p == nil {
			continue
		}
		text, _ := p.Text(raw, maxBodyBytes)
		if strings.Contains(strings.ToLower(text), m.query) {
			return true, nil
		}
	}
	return false, nil
}

func lowerAddrs(as []message.Address) string {
	var b strings.Builder
	for _, a := range addresses(as) {
		b.WriteString(strings.ToLower(a.Name + " " + a.Address + ", "))
	}
	return b.String()
}
