package rpc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	invopop "github.com/invopop/jsonschema"

	"basalt/message"
	"basalt/store"
	"basalt/store/webmail"
)

// MessageID names a message as "<folderID>-<uid>". A folder id is never
// reused and neither is a UID within a folder (RFC 9051 2.3.1.1), so the
// pair names one message for ever, and it maps straight onto the store's
// per-mailbox operations; a message destroyed since a state is reported
// by the same id (changes).
type MessageID string

// JSONSchema gives the id's form to the params checks and the OpenRPC
// document.
func (MessageID) JSONSchema() *invopop.Schema {
	return &invopop.Schema{Type: "string", Pattern: `^[1-9][0-9]{0,18}-[1-9][0-9]{0,9}$`, Description: "folderID-uid"}
}

type msgRef struct {
	folder int64
	uid    uint32
}

func (m msgRef) id() string {
	return strconv.FormatInt(m.folder, 10) + "-" + strconv.FormatUint(uint64(m.uid), 10)
}

// parse reads an id; the schema has checked its form, so only values out
// of range fail here.
func (id MessageID) parse() (msgRef, error) {
	f, u, _ := strings.Cut(string(id), "-")
	folder, err1 := strconv.ParseInt(f, 10, 64)
	uid, err2 := strconv.ParseUint(u, 10, 32)
	if err1 != nil || err2 != nil || folder <= 0 || uid == 0 {
		return msgRef{}, errNotFound
	}
	return msgRef{folder, uint32(uid)}, nil
}

// byFolder groups ids by folder, in the order folders first appear, each
// as a UID set.
func byFolder(ids []MessageID) ([]int64, map[int64][]uint32, error) {
	var order []int64
	m := map[int64][]uint32{}
	for _, id := range ids {
		r, err := id.parse()
		if err != nil {
			return nil, nil, err
		}
		if _, ok := m[r.folder]; !ok {
			order = append(order, r.folder)
		}
		m[r.folder] = append(m[r.folder], r.uid)
	}
	for f, uids := range m {
		slices.Sort(uids)
		m[f] = slices.Compact(uids)
	}
	return order, m, nil
}

// uidSet turns sorted UIDs into ranges.
func uidSet(uids []uint32) store.UIDSet {
	set := store.UIDSet{}
	for _, u := range uids {
		if n := len(set); n > 0 && set[n-1].Stop+1 == u {
			set[n-1].Stop = u
			continue
		}
		set = append(set, store.UIDRange{Start: u, Stop: u})
	}
	return set
}

// The flags a client names, and the server's verdicts it may read.
var flagNames = []struct {
	name string
	flag store.Flags
}{
	{"seen", store.FlagSeen}, {"answered", store.FlagAnswered}, {"flagged", store.FlagFlagged},
	{"deleted", store.FlagDeleted}, {"draft", store.FlagDraft}, {"junk", store.FlagJunk}, {"hidden", store.FlagHidden},
	// Set by the server only.
	{"secure", store.FlagSecure}, {"encrypted", store.FlagEncrypted}, {"infected", store.FlagInfected},
	{"spoofed", store.FlagSpoofed}, {"phishing", store.FlagPhishing},
}

// Flag is a flag a client may set.
type Flag string

// JSONSchema lists the flags.
func (Flag) JSONSchema() *invopop.Schema {
	return &invopop.Schema{Type: "string", Enum: []any{"seen", "answered", "flagged", "deleted", "draft", "junk", "hidden"}}
}

func flagsOf(f store.Flags) []string {
	out := []string{}
	for _, n := range flagNames {
		if f.Has(n.flag) {
			out = append(out, n.name)
		}
	}
	return out
}

func flagBits(names []Flag) store.Flags {
	var f store.Flags
	for _, n := range names {
		for _, fn := range flagNames {
			if fn.name == string(n) {
				f |= fn.flag
			}
		}
	}
	return f & store.ClientFlags
}

type address struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

func addresses(as []message.Address) []address {
	out := []address{}
	for _, a := range as {
		if a.IsGroupStart() || a.IsGroupEnd() {
			continue
		}
		addr := a.Mailbox
		if a.Host != message.MissingHost {
			addr += "@" + a.Host
		}
		out = append(out, address{Name: a.Name, Address: addr})
	}
	return out
}

type messageItem struct {
	MessageID string    `json:"messageID"`
	FolderID  int64     `json:"folderID"`
	UID       uint32    `json:"uid"`
	ThreadID  int64     `json:"threadID"`
	Flags     []string  `json:"flags"`
	Tags      []string  `json:"tags"`
	From      []address `json:"from"`
	To        []address `json:"to"`
	Cc        []address `json:"cc"`
	Subject   string    `json:"subject"`
	// UTC is when the message arrived (unix seconds); Sent is its Date
	// header, 0 when it has none.
	UTC            int64  `json:"utc"`
	Sent           int64  `json:"sent,omitempty"`
	Snippet        string `json:"snippet"`
	Bytes          int64  `json:"bytes"`
	HasAttachments bool   `json:"hasAttachments"`
	// ThreadCount is, with threads, how many of the thread's messages
	// the folder holds; UnreadCount how many of those are unread.
	ThreadCount int `json:"threadCount,omitempty"`
	UnreadCount int `json:"unreadCount,omitempty"`
}

func item(m store.Message) messageItem {
	it := messageItem{
		MessageID: msgRef{m.MailboxID, m.UID}.id(), FolderID: m.MailboxID, UID: m.UID, ThreadID: m.ThreadID,
		Flags: flagsOf(m.Flags), Tags: m.Keywords, UTC: m.InternalDate.Unix(), Bytes: m.Size, HasAttachments: m.HasAttachments,
		From: []address{}, To: []address{}, Cc: []address{},
	}
	if it.Tags == nil {
		it.Tags = []string{}
	}
	if m.Info != nil {
		e := &m.Info.Envelope
		it.From, it.To, it.Cc, it.Subject, it.Snippet = addresses(e.From), addresses(e.To), addresses(e.Cc), e.Subject, m.Info.Snippet
		if !e.Date.IsZero() {
			it.Sent = e.Date.Unix()
		}
	}
	return it
}

type listParams struct {
	FolderID int64 `json:"folderID" jsonschema:"minimum=1"`
	// Start is the index of the page's first message in the order asked.
	Start int `json:"start,omitempty" jsonschema:"minimum=0,maximum=10000000,description=index of the page's first message (the method's description says what it costs)"`
	Limit int `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500,description=default 50"`
	// Sort: date-desc (the default) and date-asc are by arrival, as is
	// arrival with desc; sent is the Date header, from the first sender's
	// name or address, subject the subject without Re:/Fwd:/[list]
	// prefixes, size the size; flagged and unread put those first (with
	// desc, the default), then by arrival; uid is the IMAP order.
	Sort string `json:"sort,omitempty" jsonschema:"enum=date-desc,enum=date-asc,enum=uid,enum=arrival,enum=sent,enum=from,enum=subject,enum=size,enum=flagged,enum=unread"`
	// Desc sorts descending on the sort key; omitted, it is true for
	// arrival, sent, size, flagged and unread, false for from and subject.
	// Not with date-desc, date-asc or uid, which say their direction.
	Desc *bool `json:"desc,omitempty" jsonschema:"description=descending on the sort key; default true except for from and subject; not with date-desc/date-asc/uid"`
	// Filter shows only the messages that are all of what it sets.
	Filter *listFilter `json:"filter,omitempty"`
	// Threads lists each thread once, by its newest message in the folder
	// that the filter shows, in the sort's order, with threadCount and
	// unreadCount (of the whole thread in the folder); total counts threads.
	Threads bool `json:"threads,omitempty" jsonschema:"description=one entry per thread: its newest message in the folder that the filter shows, placed by the sort; threadCount and unreadCount count the thread's messages in the folder"`
	// After continues just past an entry of the previous page: its next
	// cursor, or the messageID of its last message.
	After Cursor `json:"after,omitempty"`
}

// Cursor is where a listing or a search goes on: the next of a previous
// page, or (the older form) a messageID, whose message must still exist.
type Cursor string

// JSONSchema gives the cursor's forms to the params checks and the
// OpenRPC document.
func (Cursor) JSONSchema() *invopop.Schema {
	return &invopop.Schema{Type: "string", MaxLength: ptr(uint64(2000)), Pattern: `^([1-9][0-9]{0,18}-[1-9][0-9]{0,9}|c[A-Za-z0-9_-]+)$`,
		Description: "the next cursor of the previous page, or its last messageID (that message must still exist); not with start"}
}

func ptr[T any](v T) *T { return &v }

// listFilter is messages.list's quick filters.
type listFilter struct {
	Unread      bool `json:"unread,omitempty"`
	Flagged     bool `json:"flagged,omitempty"`
	Attachments bool `json:"attachments,omitempty"`
}

// listDescription is messages.list's description in the OpenRPC
// document: what a page costs.
const listDescription = "Every sort, filter and the threaded listing are served by an index: a page costs what its messages cost, " +
	"however deep it is, when it starts where a page this session was served ended (start = a previous start + the number " +
	"of messages it returned: paging on) or at a start served before; messages that arrived since (and nothing else) move " +
	"those places rather than drop them. A jump to any other start reads from the nearest such place before it and skips the " +
	"entries in between (SQL OFFSET), so the first jump deep into a large folder costs what it skips. after (the next cursor of the previous " +
	"page) always costs the page alone, also after the folder changed and when the message it ended on is gone. total is the " +
	"number of entries of the listing: messages, those the filter shows, or threads. A folder another user shares with the " +
	"caller (folders.list's owner) lists as the caller's own; its changes are announced on the event stream (as they happen, with no serial) but do not move state, and the unread filter is refused there."

type listResult struct {
	Messages []messageItem `json:"messages"`
	Total    int64         `json:"total"`
	State    string        `json:"state"`
	// Next continues the listing after the page's last entry (as after);
	// absent when the page is empty.
	Next string `json:"next,omitempty"`
}

type idsParams struct {
	MessageIDs []MessageID `json:"messageIDs" jsonschema:"minItems=1,maxItems=1000"`
}

type flagParams struct {
	idsParams
	Action string `json:"action" jsonschema:"enum=add,enum=remove,enum=replace,enum=list"`
	Flags  []Flag `json:"flags,omitempty" jsonschema:"maxItems=7"`
}

type tagParams struct {
	idsParams
	Action string   `json:"action" jsonschema:"enum=add,enum=remove,enum=replace,enum=list"`
	Tags   []string `json:"tags,omitempty" jsonschema:"maxItems=64"`
}

type flagState struct {
	MessageID string   `json:"messageID"`
	Flags     []string `json:"flags"`
	Tags      []string `json:"tags"`
}

type flagResult struct {
	Messages []flagState `json:"messages"`
}

type copyParams struct {
	idsParams
	FolderID int64 `json:"folderID" jsonschema:"minimum=1"`
}

type copyResult struct {
	// MessageIDs are the copies' ids, in the order of the ids given.
	MessageIDs []string `json:"messageIDs"`
}

func (h *Handler) registerMessages() {
	Register(h.engine, Spec{Name: "messages.list", Summary: "A page of a folder's messages, newest first by default.", Description: listDescription}, h.messagesList)
	Register(h.engine, Spec{Name: "messages.load", Summary: "One message: meta, header, body (HTML sanitized), attachments, source, security."}, h.messagesLoad)
	Register(h.engine, Spec{Name: "messages.flag", Summary: "Add, remove, replace or list flags."}, h.messagesFlag)
	Register(h.engine, Spec{Name: "messages.tag", Summary: "Add, remove, replace or list tags (IMAP keywords)."}, h.messagesTag)
	Register(h.engine, Spec{Name: "messages.copy", Summary: "Copy messages to a folder.",
		Description: "Between the caller's folders and folders shared with the caller: the source needs the read right (r), the target insert (i); " +
			"a folder without them is notFound and nothing is copied (RFC 4314 4)."}, h.messagesCopy)
	Register(h.engine, Spec{Name: "messages.move", Summary: "Move messages to a folder.",
		Description: "As messages.copy, and the source needs the rights to delete and expunge (t, e) too (RFC 4314 4)."}, h.messagesMove)
	Register(h.engine, Spec{Name: "messages.remove", Summary: "Delete messages for good (move them to Trash with messages.move to keep them)."}, h.messagesRemove)
	Register(h.engine, Spec{Name: "messages.search", Summary: "Find messages in the whole mailbox, or a folder, newest first.", Description: searchDescription}, h.messagesSearch)
	Register(h.engine, Spec{Name: "messages.searchCount", Summary: "Count messages.search's matches, when its total was an estimate.", Description: searchCountDescription}, h.messagesSearchCount)
	Register(h.engine, Spec{Name: "messages.thread", Summary: "A thread's messages, oldest first: in a folder, or in every folder."}, h.messagesThread)
}

// pageQuery turns messages.list's order and filters into the store's.
func pageQuery(p listParams) (store.PageQuery, error) {
	q := store.PageQuery{Limit: p.Limit, WithInfo: true, Threads: p.Threads}
	if q.Limit == 0 {
		q.Limit = 50
	}
	sorts := map[string]store.Sort{"": store.SortDateDesc, "date-desc": store.SortDateDesc, "date-asc": store.SortDateAsc,
		"uid": store.SortUID, "arrival": store.SortDateDesc, "sent": store.SortSent, "from": store.SortFrom,
		"subject": store.SortSubject, "size": store.SortSize, "flagged": store.SortFlagged, "unread": store.SortUnread}
	q.Sort = sorts[p.Sort]
	switch p.Sort {
	case "", "date-desc", "date-asc", "uid":
		if p.Desc != nil {
			return q, invalid("desc", "sort "+p.Sort+" says its direction; desc goes with the other sorts")
		}
	case "arrival":
		if p.Desc != nil && !*p.Desc {
			q.Sort = store.SortDateAsc
		}
	default:
		q.Desc = p.Sort != "from" && p.Sort != "subject"
		if p.Desc != nil {
			q.Desc = *p.Desc
		}
	}
	if p.Filter != nil {
		q.Filter = store.PageFilter{Unread: p.Filter.Unread, Flagged: p.Filter.Flagged, Attachments: p.Filter.Attachments}
	}
	return q, nil
}

func (h *Handler) messagesList(ctx context.Context, c *Call, p listParams) (listResult, error) {
	own := c.account()
	q, err := pageQuery(p)
	if err != nil {
		return listResult{}, err
	}
	// The state is the user's own account's, whatever folder is listed.
	state, err := webmail.Of(own).State(ctx)
	if err != nil {
		return listResult{}, err
	}
	// The folder is the user's or shared with the user (shares.go),
	// read through the account that reaches it.
	a, err := folderAccount(ctx, own, p.FolderID)
	if err != nil {
		return listResult{}, err
	}
	// The folder is read first: it must be the user's or shared with the
	// user (another user's id is notFound, not an empty page), and it
	// holds the total.
	mb, err := a.Mailbox(ctx, p.FolderID)
	if err != nil {
		return listResult{}, err
	}
	var msgs []store.Message
	if p.After != "" {
		msgs, err = listAfter(ctx, a, p, q)
	} else {
		msgs, _, err = listAt(ctx, h.sess, h.log, a, mb, c.web.ID, p.Start, q)
	}
	if err != nil {
		return listResult{}, err
	}
	total, err := listTotal(ctx, h.sess, h.log, a, mb, c.web.ID, q)
	if err != nil {
		return listResult{}, err
	}
	out := listResult{Messages: make([]messageItem, 0, len(msgs)), Total: total, State: state}
	var stats map[int64]store.ThreadStat
	if q.Threads && len(msgs) > 0 {
		ids := make([]int64, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ThreadID
		}
		if stats, err = a.ThreadStats(ctx, p.FolderID, ids); err != nil {
			return listResult{}, err
		}
	}
	for _, m := range msgs {
		it := item(m)
		if q.Threads {
			st := stats[m.ThreadID]
			it.ThreadCount, it.UnreadCount = max(st.Messages, 1), st.Unread
		}
		out.Messages = append(out.Messages, it)
	}
	if n := len(msgs); n > 0 {
		out.Next = listCursor{Folder: p.FolderID, Listing: listing(q), Key: store.KeyOf(msgs[n-1], q.Sort)}.String()
	}
	return out, nil
}

// listCursor is messages.list's next: the place of a page's last entry in
// its listing, which stays a place whatever happens to that message.
type listCursor struct {
	Folder  int64         `json:"f"`
	Listing string        `json:"l"`
	Key     store.PageKey `json:"k"`
}

func (c listCursor) String() string {
	b, _ := json.Marshal(c)
	return "c" + base64.RawURLEncoding.EncodeToString(b)
}

// parseListCursor reads a cursor; ok is false when s is not one.
func parseListCursor(s string) (listCursor, bool) {
	var c listCursor
	if !strings.HasPrefix(s, "c") {
		return c, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[1:])
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, false
	}
	return c, true
}

// listAfter reads the page just past p.After, in q's order.
func listAfter(ctx context.Context, a *store.Account, p listParams, q store.PageQuery) ([]store.Message, error) {
	if p.Start != 0 {
		return nil, invalid("start", "start and after cannot go together")
	}
	if cur, ok := parseListCursor(string(p.After)); ok {
		if cur.Folder != p.FolderID || cur.Listing != listing(q) {
			return nil, invalid("after", "the cursor is of another folder or listing (sort, desc, filter, threads)")
		}
		q.After = &cur.Key
		return a.ListPage(ctx, p.FolderID, q)
	}
	if strings.HasPrefix(string(p.After), "c") {
		return nil, invalid("after", "not a cursor this method gave")
	}
	r, err := MessageID(p.After).parse()
	if err != nil {
		return nil, err
	}
	if r.folder != p.FolderID {
		// Not a message of this folder: as good as none, whoever's
		// folder it is in.
		return nil, &Error{Code: CodeNotFound, Message: "no such message in the folder", Data: ErrorData{Type: "notFound", Field: "after"}}
	}
	// A messageID's place is its message's keys: the message is read.
	cur, err := a.Arrivals(ctx, p.FolderID, r.uid, 1)
	if err != nil {
		return nil, err
	}
	if len(cur) == 0 || cur[0].UID != r.uid {
		// The message is gone: next cursors do not have this problem.
		return nil, &Error{Code: CodeNotFound, Message: "no such message in the folder (use the next cursor)", Data: ErrorData{Type: "notFound", Field: "after"}}
	}
	key := store.KeyOf(cur[0], q.Sort)
	q.After = &key
	return a.ListPage(ctx, p.FolderID, q)
}

type threadParams struct {
	ThreadID int64 `json:"threadID" jsonschema:"minimum=1"`
	// FolderID limits the thread to one folder; omitted: every folder.
	FolderID int64 `json:"folderID,omitempty" jsonschema:"minimum=1"`
}

type threadResult struct {
	Messages []messageItem `json:"messages"`
}

func (h *Handler) messagesThread(ctx context.Context, c *Call, p threadParams) (threadResult, error) {
	a := c.account()
	if p.FolderID != 0 {
		// One folder: the user's or one shared with the user. Without
		// one, the thread is looked for in the user's own folders only.
		var err error
		if a, err = folderAccount(ctx, a, p.FolderID); err != nil {
			return threadResult{}, err
		}
		if _, err := a.Mailbox(ctx, p.FolderID); err != nil {
			return threadResult{}, err
		}
	}
	msgs, err := a.Thread(ctx, p.ThreadID, p.FolderID)
	if err != nil {
		return threadResult{}, err
	}
	if len(msgs) == 0 {
		// No thread of the user's by that id (in that folder): another
		// user's ids name nothing here.
		return threadResult{}, &Error{Code: CodeNotFound, Message: "no such thread", Data: ErrorData{Type: "notFound", Field: "threadID"}}
	}
	out := threadResult{Messages: make([]messageItem, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, item(m))
	}
	return out, nil
}

// present checks that every UID is a message of the folder, reading
// their current state; another user's folder is notFound.
func present(ctx context.Context, a *store.Account, folder int64, uids []uint32) ([]store.Message, error) {
	if _, err := a.Mailbox(ctx, folder); err != nil {
		return nil, err
	}
	msgs, err := a.List(ctx, folder, store.ListQuery{UIDs: uidSet(uids)})
	if err != nil {
		return nil, err
	}
	if len(msgs) != len(uids) {
		return nil, errNotFound
	}
	return msgs, nil
}

// setFlags applies one flag or tag change to ids, folder by folder. All
// ids are checked before anything changes.
func (h *Handler) setFlags(ctx context.Context, c *Call, ids []MessageID, action string, flags store.Flags, tags []string) (flagResult, error) {
	a := c.account()
	order, groups, err := byFolder(ids)
	if err != nil {
		return flagResult{}, err
	}
	current := map[int64][]store.Message{}
	// Each folder through its account: the user's own, or its owner's
	// for a folder shared with the user (shares.go).
	accs := map[int64]*store.Account{}
	for _, f := range order {
		if accs[f], err = folderAccount(ctx, a, f); err != nil {
			return flagResult{}, err
		}
		if current[f], err = present(ctx, accs[f], f, groups[f]); err != nil {
			return flagResult{}, err
		}
	}
	states := map[string]flagState{}
	for _, f := range order {
		set := uidSet(groups[f])
		var ops []struct {
			op    store.FlagOp
			flags store.Flags
			tags  []string
		}
		add := func(op store.FlagOp, fl store.Flags, tg []string) {
			if fl != 0 || len(tg) > 0 {
				ops = append(ops, struct {
					op    store.FlagOp
					flags store.Flags
					tags  []string
				}{op, fl, tg})
			}
		}
		switch action {
		case "add":
			add(store.FlagAdd, flags, tags)
		case "remove":
			add(store.FlagRemove, flags, tags)
		case "replace":
			// The store's replace sets flags and keywords together; the
			// API replaces one kind and keeps the other, so it is an add
			// of the wanted and a remove of the rest.
			if tags == nil {
				add(store.FlagAdd, flags, nil)
				add(store.FlagRemove, store.ClientFlags&^flags, nil)
			} else {
				want := map[string]bool{}
				for _, t := range tags {
					want[strings.ToLower(t)] = true
				}
				var drop []string
				for _, m := range current[f] {
					for _, k := range m.Keywords {
						if !want[strings.ToLower(k)] && !slices.Contains(drop, k) {
							drop = append(drop, k)
						}
					}
				}
				add(store.FlagAdd, 0, tags)
				add(store.FlagRemove, 0, drop)
			}
		}
		for _, op := range ops {
			if _, err := accs[f].SetFlags(ctx, f, set, op.op, op.flags, op.tags); err != nil {
				return flagResult{}, err
			}
		}
		msgs := current[f]
		if len(ops) > 0 {
			if msgs, err = accs[f].List(ctx, f, store.ListQuery{UIDs: set}); err != nil {
				return flagResult{}, err
			}
		}
		for _, m := range msgs {
			kw := m.Keywords
			if kw == nil {
				kw = []string{}
			}
			id := msgRef{f, m.UID}.id()
			states[id] = flagState{MessageID: id, Flags: flagsOf(m.Flags), Tags: kw}
		}
	}
	// In the order asked, each once.
	out := flagResult{Messages: []flagState{}}
	for _, id := range ids {
		r, _ := id.parse()
		if st, ok := states[r.id()]; ok {
			out.Messages = append(out.Messages, st)
			delete(states, r.id())
		}
	}
	return out, nil
}

func (h *Handler) messagesFlag(ctx context.Context, c *Call, p flagParams) (flagResult, error) {
	if p.Action != "list" && len(p.Flags) == 0 && p.Action != "replace" {
		return flagResult{}, invalid("flags", "no flags given")
	}
	return h.setFlags(ctx, c, p.MessageIDs, p.Action, flagBits(p.Flags), nil)
}

func (h *Handler) messagesTag(ctx context.Context, c *Call, p tagParams) (flagResult, error) {
	if p.Action != "list" && len(p.Tags) == 0 && p.Action != "replace" {
		return flagResult{}, invalid("tags", "no tags given")
	}
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return h.setFlags(ctx, c, p.MessageIDs, p.Action, 0, tags)
}

func (h *Handler) messagesCopy(ctx context.Context, c *Call, p copyParams) (copyResult, error) {
	return h.transfer(ctx, c, p, false)
}

func (h *Handler) messagesMove(ctx context.Context, c *Call, p copyParams) (copyResult, error) {
	return h.transfer(ctx, c, p, true)
}

// transfer copies or moves messages between folders of the user's own
// and folders shared with the user, within the rights granted (RFC 4314
// 4: "r" to read the source, "i" to copy into the target, and "t" and "e"
// on the source to move out of it). Every right is checked before
// anything changes; a folder without them is notFound, as elsewhere.
func (h *Handler) transfer(ctx context.Context, c *Call, p copyParams, move bool) (copyResult, error) {
	own := c.account()
	order, groups, err := byFolder(p.MessageIDs)
	if err != nil {
		return copyResult{}, err
	}
	to, err := folderAccount(ctx, own, p.FolderID)
	if err != nil {
		return copyResult{}, err
	}
	if err := hasRights(ctx, to, p.FolderID, store.RightInsert); err != nil {
		return copyResult{}, err
	}
	want := store.RightRead
	if move {
		want |= store.RightDeleteMessages | store.RightExpunge
	}
	accs := map[int64]*store.Account{}
	for _, f := range order {
		if accs[f], err = folderAccount(ctx, own, f); err != nil {
			return copyResult{}, err
		}
		if _, err := present(ctx, accs[f], f, groups[f]); err != nil {
			return copyResult{}, err
		}
		if err := hasRights(ctx, accs[f], f, want); err != nil {
			return copyResult{}, err
		}
		if move && f == p.FolderID {
			return copyResult{}, invalid("folderID", "the messages are in that folder already")
		}
	}
	dst := map[msgRef]string{}
	for _, f := range order {
		var res store.CopyResult
		if move {
			res, err = accs[f].MoveTo(ctx, f, uidSet(groups[f]), to, p.FolderID)
		} else {
			res, err = accs[f].CopyTo(ctx, f, uidSet(groups[f]), to, p.FolderID)
		}
		if err != nil {
			return copyResult{}, err
		}
		for _, pr := range res.Pairs {
			dst[msgRef{f, pr.Src}] = msgRef{p.FolderID, pr.Dst}.id()
		}
	}
	out := copyResult{MessageIDs: make([]string, 0, len(p.MessageIDs))}
	for _, id := range p.MessageIDs {
		r, _ := id.parse()
		out.MessageIDs = append(out.MessageIDs, dst[r])
	}
	return out, nil
}

// hasRights checks that the account's user holds want on the folder;
// missing rights are notFound, as a folder the user cannot see.
func hasRights(ctx context.Context, a *store.Account, folderID int64, want store.Rights) error {
	have, err := a.MyRights(ctx, folderID)
	if err != nil {
		return err
	}
	if want&^have != 0 {
		return fmt.Errorf("folder %d: %w: the %q right is needed (RFC 4314 4)", folderID, store.ErrForbidden, (want &^ have).String())
	}
	return nil
}

func (h *Handler) messagesRemove(ctx context.Context, c *Call, p idsParams) (okResult, error) {
	a := c.account()
	order, groups, err := byFolder(p.MessageIDs)
	if err != nil {
		return okResult{}, err
	}
	accs := map[int64]*store.Account{}
	for _, f := range order {
		if accs[f], err = folderAccount(ctx, a, f); err != nil {
			return okResult{}, err
		}
		if _, err := present(ctx, accs[f], f, groups[f]); err != nil {
			return okResult{}, err
		}
	}
	for _, f := range order {
		if _, err := accs[f].Remove(ctx, f, uidSet(groups[f])); err != nil {
			return okResult{}, fmt.Errorf("remove: %w", err)
		}
	}
	return okResult{OK: true}, nil
}
