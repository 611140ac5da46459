package rpc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"basalt/message"
	"basalt/store"
	"basalt/store/webmail"
)

// messages.search finds messages in the whole mailbox (or a folder) with
// the query language of query.go, through the store's FindMessages: the
// full-text index for a user whose mail is not sealed, a scan with the
// unlocked key for a secure user. The matches are newest first (as they
// came in) and total counts them all. With the index, a page costs the
// page and the count (FindPage), and the count is kept in the session's
// cache under the mailbox's state, so that the next pages (start or
// after) cost the page alone until something changes; a scan's whole list
// of matches is kept so.

type searchParams struct {
	searchFilter
	Start int    `json:"start,omitempty" jsonschema:"minimum=0,maximum=10000000"`
	Limit int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500,description=default 50"`
	After Cursor `json:"after,omitempty"`
}

// searchFilter is what messages.search and messages.searchCount look for.
type searchFilter struct {
	// Query is in the search language (the method's description).
	Query string `json:"query,omitempty" jsonschema:"maxLength=1000"`
	// FolderID limits the search to one folder; omitted: every folder
	// but Trash and Junk, unless the query says in:.
	FolderID int64 `json:"folderID,omitempty" jsonschema:"minimum=1"`
	// The older form, still taken: each adds its condition to the query.
	From          string     `json:"from,omitempty" jsonschema:"maxLength=500,description=deprecated: from: in query"`
	To            string     `json:"to,omitempty" jsonschema:"maxLength=500,description=deprecated: to: in query"`
	Subject       string     `json:"subject,omitempty" jsonschema:"maxLength=500,description=deprecated: subject: in query"`
	Since         *time.Time `json:"since,omitempty" jsonschema:"description=deprecated: after: in query"`
	Before        *time.Time `json:"before,omitempty" jsonschema:"description=deprecated: before: in query"`
	Flags         []Flag     `json:"flags,omitempty" jsonschema:"maxItems=7,description=deprecated: is: in query"`
	NotFlags      []Flag     `json:"notFlags,omitempty" jsonschema:"maxItems=7,description=deprecated: -is: in query"`
	HasAttachment *bool      `json:"hasAttachment,omitempty" jsonschema:"description=deprecated: has:attachment in query"`
}

// searchDescription is messages.search's description in the OpenRPC
// document.
const searchDescription = "query: words (all must appear; whole words, in the subject, senders, recipients or text), \"a phrase\", " +
	"from:, to: (To and Cc), subject: (a word or a \"phrase\"), has:attachment, is:unread, is:read, is:flagged, " +
	"before:YYYY-MM-DD, after:YYYY-MM-DD (arrival, UTC; after includes the day), larger:10M, smaller:500K (K, M, G), " +
	"in:<folder name> (or in:anywhere, which includes Trash and Junk), -term negates any term, a OR b. A term the language " +
	"cannot use is an invalid error naming it. Without folderID or in: the search covers every folder but Trash and Junk. " +
	"Results are newest first (as they arrived); total counts every match. In a large mailbox (10,000 messages or more) a count that " +
	"would cost more than the page (words in most messages: InnoDB's index reads every match, some 4 to 16 µs each) is not waited " +
	"for: total is then an estimate, totalEstimated is true, and messages.searchCount gives the count. The count is kept with the " +
	"mailbox's state (returned as state): a next page (start, or after = next) costs the page alone until the mailbox changes, and " +
	"carries the count once messages.searchCount has made it. For a user whose mail is sealed " +
	"there is no index: the search decrypts each message's metadata (about 0.25 s a 1,000 messages) and, for words the " +
	"headers do not hold, its text (about 0.8 s a 1,000), on the first page only. The older params (from, to, " +
	"subject, since, before, flags, notFlags, hasAttachment) still work and add to the query."

type searchResult struct {
	// Messages are the page of matches, newest first; Total counts all.
	Messages []messageItem `json:"messages"`
	Total    int           `json:"total"`
	// TotalEstimated says that Total is an estimate (the count was
	// left for messages.searchCount).
	TotalEstimated bool   `json:"totalEstimated,omitempty"`
	State          string `json:"state"`
	// Next continues after the page's last match (as after).
	Next string `json:"next,omitempty"`
}

// searchHitsTTL is how long a search's matches are kept.
const searchHitsTTL = 10 * time.Minute

// search is a search made ready: the account whose folders it covers,
// the query, the state of the mailbox and the name its kept count or
// matches go by in the session's cache.
type search struct {
	a     *store.Account
	q     store.MailQuery
	state string
	key   string
}

// prepare parses a search and works out the folders it covers.
func (h *Handler) prepare(ctx context.Context, c *Call, p searchFilter) (search, error) {
	own := c.account()
	pq, err := parseQuery(p.Query)
	if err != nil {
		return search{}, badParam("query", err.Error())
	}
	if err := addLegacy(&pq, p); err != nil {
		return search{}, err
	}
	state, err := webmail.Of(own).State(ctx)
	if err != nil {
		return search{}, err
	}
	// One folder may be one shared with the user (shares.go); a search
	// of several covers the user's own.
	a := own
	if p.FolderID != 0 {
		if a, err = folderAccount(ctx, own, p.FolderID); err != nil {
			return search{}, err
		}
	}
	boxes, err := searchScope(ctx, a, p.FolderID, pq)
	if err != nil {
		return search{}, err
	}
	// The kept matches are keyed by the user's state, which another
	// user's folder does not move: there its own modseq keys them too.
	keyState := state
	if a.IsShared() {
		mb, err := a.Mailbox(ctx, p.FolderID)
		if err != nil {
			return search{}, err
		}
		keyState = fmt.Sprintf("%s/%d:%d", state, mb.ID, mb.HighestModSeq)
	}
	q := store.MailQuery{Mailboxes: boxes, Groups: pq.groups}
	key, _ := json.Marshal(struct {
		Q     store.MailQuery
		State string
	}{q, keyState})
	sum := sha256.Sum256(key)
	// The name is a hash: the query's words are not kept readable.
	return search{a: a, q: q, state: state, key: "search:" + hex.EncodeToString(sum[:16])}, nil
}

func (h *Handler) messagesSearch(ctx context.Context, c *Call, p searchParams) (searchResult, error) {
	if p.After != "" && p.Start != 0 {
		return searchResult{}, invalid("start", "start and after cannot go together")
	}
	s, err := h.prepare(ctx, c, p.searchFilter)
	if err != nil {
		return searchResult{}, err
	}
	a := s.a
	fq := store.FindQuery{Skip: p.Start, Limit: p.Limit, CountLater: true}
	if fq.Limit == 0 {
		fq.Limit = 50
	}
	if p.After != "" {
		if fq.After, err = hitAfter(ctx, a, string(p.After)); err != nil {
			return searchResult{}, err
		}
	}
	found, err := h.searchPage(ctx, c, s, fq)
	if err != nil {
		return searchResult{}, err
	}
	page := found.Hits
	out := searchResult{Messages: []messageItem{}, Total: found.Total, State: s.state}
	if found.Total < 0 {
		out.Total, out.TotalEstimated = found.Estimate, true
	}
	if len(page) == 0 {
		return out, nil
	}
	msgs := make([]store.Message, len(page))
	for i, hit := range page {
		msgs[i] = store.Message{MailboxID: hit.MailboxID, UID: hit.UID}
	}
	full, err := withInfo(ctx, a, msgs)
	if err != nil {
		return searchResult{}, err
	}
	for _, m := range full {
		out.Messages = append(out.Messages, item(m))
	}
	last := page[len(page)-1]
	out.Next = hitCursor(last)
	return out, nil
}

// badParam is an invalid params error (JSON-RPC 2.0 section 5.1) about
// the value of a field the schema could not check: a query's term.
func badParam(field, msg string) *Error {
	return &Error{Code: CodeInvalidParams, Message: "invalid params: " + msg, Data: ErrorData{Type: "invalidParams", Field: field}}
}

// searchScope returns the folders a search covers: the one given, those
// the query names with in:, or every one but Trash and Junk (all with
// in:anywhere), less those it names with -in:.
func searchScope(ctx context.Context, a *store.Account, folderID int64, pq parsedQuery) ([]int64, error) {
	if folderID != 0 {
		if len(pq.in) > 0 || pq.anywhere {
			return nil, badParam("query", "in: and folderID cannot go together")
		}
		if _, err := a.Mailbox(ctx, folderID); err != nil {
			return nil, err
		}
		return []int64{folderID}, nil
	}
	all, err := a.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	byName := func(name string) (store.Mailbox, error) {
		for _, m := range all {
			if strings.EqualFold(m.Name, name) {
				return m, nil
			}
		}
		return store.Mailbox{}, badParam("query", fmt.Sprintf("search term %q: no such folder", "in:"+name))
	}
	var out []int64
	switch {
	case len(pq.in) > 0:
		for _, n := range pq.in {
			m, err := byName(n)
			if err != nil {
				return nil, err
			}
			out = append(out, m.ID)
		}
	default:
		for _, m := range all {
			if pq.anywhere || (m.SpecialUse != `\Trash` && m.SpecialUse != `\Junk`) {
				out = append(out, m.ID)
			}
		}
	}
	for _, n := range pq.notIn {
		m, err := byName(n)
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(out, func(id int64) bool { return id == m.ID })
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// addLegacy adds the older params' conditions to a parsed query. They
// are words now, as the query's are (they were substrings).
func addLegacy(pq *parsedQuery, p searchFilter) error {
	add := func(t store.SearchTerm) { pq.groups = append(pq.groups, []store.SearchTerm{t}) }
	for _, f := range []struct {
		kind  store.TermKind
		value string
		field string
	}{{store.TermFrom, p.From, "from"}, {store.TermTo, p.To, "to"}, {store.TermSubject, p.Subject, "subject"}} {
		if f.value == "" {
			continue
		}
		w := message.Words(f.value)
		if len(w) == 0 {
			return badParam(f.field, "no word to look for")
		}
		add(store.SearchTerm{Kind: f.kind, Words: w})
	}
	if p.Since != nil {
		add(store.SearchTerm{Kind: store.TermAfter, Time: *p.Since})
	}
	if p.Before != nil {
		add(store.SearchTerm{Kind: store.TermBefore, Time: *p.Before})
	}
	for _, f := range p.Flags {
		add(store.SearchTerm{Kind: store.TermFlags, Flags: flagBits([]Flag{f})})
	}
	for _, f := range p.NotFlags {
		add(store.SearchTerm{Kind: store.TermFlags, Flags: flagBits([]Flag{f}), Not: true})
	}
	if p.HasAttachment != nil {
		add(store.SearchTerm{Kind: store.TermAttachment, Not: !*p.HasAttachment})
	}
	return nil
}

// searchPage returns the page fq of q's matches. What a former page of
// the same search at the same state found is in the session's cache: the
// count, or a scan's every match.
func (h *Handler) searchPage(ctx context.Context, c *Call, s search, fq store.FindQuery) (store.FoundPage, error) {
	a, q, name := s.a, s.q, s.key
	if v, ok, err := h.sess.Value(ctx, c.web.ID, name); err != nil {
		h.log.Warn("search cache", "err", err)
	} else if ok {
		if all, total, ok := decodeFound(v); ok && all != nil {
			return store.FoundPage{Hits: q.PageOf(all, fq), Total: len(all)}, nil
		} else if ok {
			fq.Total = total
		}
	}
	found, err := a.FindPage(ctx, q, fq)
	if errors.Is(err, store.ErrInvalid) {
		return store.FoundPage{}, invalid("query", "the query cannot be searched: "+err.Error())
	}
	if err != nil {
		return store.FoundPage{}, err
	}
	if fq.Total == 0 && found.Total >= 0 {
		if err := h.sess.KeepValue(ctx, c.web.ID, name, encodeFound(found), searchHitsTTL); err != nil {
			h.log.Warn("search cache", "err", err)
		}
	}
	return found, nil
}

type searchCountResult struct {
	// Total counts every match.
	Total int    `json:"total"`
	State string `json:"state"`
}

// searchCountDescription is messages.searchCount's description.
const searchCountDescription = "The count of messages.search's matches (its query, folderID and the older params), when its total " +
	"was an estimate (totalEstimated). The count is exact and kept with the mailbox's state, so that the search's next pages carry " +
	"it: in a mailbox of 100,000 messages, a word in most of them is counted in some 0.1 s on SQLite and 0.4 to 2 s on MariaDB."

func (h *Handler) messagesSearchCount(ctx context.Context, c *Call, p searchFilter) (searchCountResult, error) {
	s, err := h.prepare(ctx, c, p)
	if err != nil {
		return searchCountResult{}, err
	}
	if v, ok, err := h.sess.Value(ctx, c.web.ID, s.key); err != nil {
		h.log.Warn("search cache", "err", err)
	} else if ok {
		if _, total, ok := decodeFound(v); ok {
			return searchCountResult{Total: total, State: s.state}, nil
		}
	}
	n, err := s.a.CountFound(ctx, s.q)
	if errors.Is(err, store.ErrInvalid) {
		return searchCountResult{}, invalid("query", "the query cannot be searched: "+err.Error())
	}
	if err != nil {
		return searchCountResult{}, err
	}
	if err := h.sess.KeepValue(ctx, c.web.ID, s.key, encodeFound(store.FoundPage{Total: n}), searchHitsTTL); err != nil {
		h.log.Warn("search cache", "err", err)
	}
	return searchCountResult{Total: n, State: s.state}, nil
}

// encodeFound packs what a search keeps: 't' and the count, or 'a' and
// every match as varints (id, text id, folder, UID and arrival of each,
// some 20 octets a match).
func encodeFound(f store.FoundPage) []byte {
	if f.All == nil {
		return binary.AppendUvarint([]byte{'t'}, uint64(f.Total))
	}
	b := make([]byte, 0, 20*len(f.All)+8)
	b = append(b, 'a')
	b = binary.AppendUvarint(b, uint64(len(f.All)))
	for _, h := range f.All {
		b = binary.AppendVarint(b, h.ID)
		b = binary.AppendVarint(b, h.TextID)
		b = binary.AppendVarint(b, h.MailboxID)
		b = binary.AppendUvarint(b, uint64(h.UID))
		b = binary.AppendVarint(b, h.Date)
	}
	return b
}

// decodeFound reads what encodeFound wrote: every match, or (all nil)
// the count.
func decodeFound(b []byte) (all []store.Hit, total int, ok bool) {
	if len(b) == 0 {
		return nil, 0, false
	}
	kind := b[0]
	n, k := binary.Uvarint(b[1:])
	if k <= 0 {
		return nil, 0, false
	}
	b = b[1+k:]
	switch {
	case kind == 't' && n <= 1<<40:
		return nil, int(n), true
	case kind != 'a' || n > uint64(len(b)):
		return nil, 0, false
	}
	all = make([]store.Hit, 0, n)
	for range n {
		var h store.Hit
		var u uint64
		if h.ID, k = binary.Varint(b); k <= 0 {
			return nil, 0, false
		}
		b = b[k:]
		if h.TextID, k = binary.Varint(b); k <= 0 {
			return nil, 0, false
		}
		b = b[k:]
		if h.MailboxID, k = binary.Varint(b); k <= 0 {
			return nil, 0, false
		}
		b = b[k:]
		if u, k = binary.Uvarint(b); k <= 0 {
			return nil, 0, false
		}
		h.UID, b = uint32(u), b[k:]
		if h.Date, k = binary.Varint(b); k <= 0 {
			return nil, 0, false
		}
		b = b[k:]
		all = append(all, h)
	}
	return all, len(all), true
}

// hitKey is a match's place in the order of results (store.MailQuery's
// Compare): its text id, arrival, folder and UID.
type hitKey struct {
	Text   int64  `json:"t,omitempty"`
	Date   int64  `json:"d"`
	Folder int64  `json:"f"`
	UID    uint32 `json:"u"`
}

func hitCursor(h store.Hit) string {
	b, _ := json.Marshal(hitKey{h.TextID, h.Date, h.MailboxID, h.UID})
	return "c" + base64.RawURLEncoding.EncodeToString(b)
}

// hitAfter returns the match the results continue after: a place in the
// order, so that it holds when its message is gone. A message id (the
// older form) names a message that must still be there.
func hitAfter(ctx context.Context, a *store.Account, after string) (*store.Hit, error) {
	if strings.HasPrefix(after, "c") {
		var k hitKey
		b, err := base64.RawURLEncoding.DecodeString(after[1:])
		if err != nil || json.Unmarshal(b, &k) != nil {
			return nil, invalid("after", "not a cursor this method gave")
		}
		return &store.Hit{TextID: k.Text, Date: k.Date, MailboxID: k.Folder, UID: k.UID}, nil
	}
	r, err := MessageID(after).parse()
	if err != nil {
		return nil, err
	}
	h, err := a.HitOf(ctx, r.folder, r.uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{Code: CodeNotFound, Message: "no such message (use the next cursor)", Data: ErrorData{Type: "notFound", Field: "after"}}
	}
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// withInfo reads msgs again with their parse, keeping their order; those
// gone since are left out.
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
