package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"basalt/store"
)

// The webmail pages by index (messages.list's start), and an index is
// what SQL's OFFSET takes, which reads every row it skips. listAt makes
// the common case cost the page alone: it remembers, per web session,
// mailbox and listing (order, direction, filter, threads), where each page
// it served ended, as the key of the page's last message. A page that
// starts at such a place (the next one, or one served before) is read
// from that key on; any other start is read from the nearest remembered
// place before it, skipping only what lies between. The places are kept
// as values of the session (session.Service.Value), in the shared cache,
// so every node knows them. A page reached by skipping also leaves the
// place of its own start.
//
// The places are kept with the mailbox's content they were learnt at
// (UIDNEXT, message count, highest modseq). Messages that arrived since
// (UIDNEXT moved as far as the count, no message went) do not cost the
// places: the arrivals are read by UID (what arrived, not the mailbox),
// and each place moves down by the arrivals that sort before its key.
// Any other change (a message gone; for the listings by flag, a flag
// changed; for threads, anything) starts the places afresh.

// pagePlacesTTL is how long unused places are kept: about as long as a
// web session idles.
const pagePlacesTTL = 30 * time.Minute

// maxPagePlaces bounds the places kept for one listing; past it the
// oldest go first.
const maxPagePlaces = 256

// maxArrivals bounds the arrivals read to move places: past it, they
// start afresh.
const maxArrivals = 500

// pagePlace says that the message at index Pos comes just past Key.
type pagePlace struct {
	Pos int           `json:"p"`
	Key store.PageKey `json:"k"`
}

// pagePlaces are a listing's places and the content they are of.
type pagePlaces struct {
	UIDNext  uint32      `json:"u"`
	Messages int64       `json:"n"`
	ModSeq   uint64      `json:"m"`
	Places   []pagePlace `json:"p"`
	// Total is the listing's length, when it is not the mailbox's count
	// (a filter, threads), counted at this content; -1 when not yet.
	Total int64 `json:"t"`
}

// placeKeeper keeps the places for a session: session.Service.
type placeKeeper interface {
	Value(ctx context.Context, id, name string) ([]byte, bool, error)
	KeepValue(ctx context.Context, id, name string, v []byte, ttl time.Duration) error
}

// listing names a listing of a mailbox: its order and what it shows.
func listing(q store.PageQuery) string {
	return fmt.Sprintf("%d.%t.%t%t%t.%t", q.Sort, q.Desc, q.Filter.Unread, q.Filter.Flagged, q.Filter.Attachments, q.Threads)
}

// flagBound reports whether a message's place in the listing depends on
// its flags.
func flagBound(q store.PageQuery) bool {
	return q.Sort == store.SortFlagged || q.Sort == store.SortUnread || q.Filter.Unread || q.Filter.Flagged
}

// shows reports whether the listing's filter shows m.
func shows(q store.PageQuery, m store.Message) bool {
	f := q.Filter
	return (!f.Unread || !m.Flags.Has(store.FlagSeen)) && (!f.Flagged || m.Flags.Has(store.FlagFlagged)) && (!f.Attachments || m.HasAttachments)
}

// pageState reads the listing's places for mb's current content: kept as
// they were, moved past what arrived, or none.
func pageState(ctx context.Context, kv placeKeeper, log *slog.Logger, a *store.Account, mb store.Mailbox, scope string, q store.PageQuery) (pagePlaces, bool) {
	fresh := pagePlaces{UIDNext: mb.UIDNext, Messages: mb.Messages, ModSeq: mb.HighestModSeq, Total: -1}
	var st pagePlaces
	if v, ok, err := kv.Value(ctx, scope, pagesName(mb.ID, q)); err != nil {
		// Without the places the page is still right, only slower.
		log.Warn("page places", "err", err)
		return fresh, false
	} else if !ok || json.Unmarshal(v, &st) != nil {
		return fresh, false
	}
	same := st.UIDNext == mb.UIDNext && st.Messages == mb.Messages
	if same && (!flagBound(q) || st.ModSeq == mb.HighestModSeq) {
		return st, false
	}
	came := int64(mb.UIDNext) - int64(st.UIDNext)
	if q.Threads || came <= 0 || came > maxArrivals || mb.Messages-st.Messages != came ||
		(flagBound(q) && mb.HighestModSeq-st.ModSeq != uint64(came)) {
		return fresh, false
	}
	// Only arrivals (each append takes one UID and one modseq): they
	// are read, and each place moves down past those before it.
	arr, err := a.Arrivals(ctx, mb.ID, st.UIDNext, int(came)+1)
	if err != nil || int64(len(arr)) != came {
		if err != nil {
			log.Warn("page places: arrivals", "err", err)
		}
		return fresh, false
	}
	for i := range st.Places {
		for _, m := range arr {
			if shows(q, m) && store.Compare(q.Sort, q.Desc, store.KeyOf(m, q.Sort), st.Places[i].Key) < 0 {
				st.Places[i].Pos++
			}
		}
	}
	if st.Total >= 0 {
		for _, m := range arr {
			if shows(q, m) {
				st.Total++
			}
		}
	}
	st.UIDNext, st.Messages, st.ModSeq = mb.UIDNext, mb.Messages, mb.HighestModSeq
	return st, true
}

func pagesName(mailbox int64, q store.PageQuery) string {
	return fmt.Sprintf("pages:%d:%s", mailbox, listing(q))
}

// keepPlaces stores the listing's places.
func keepPlaces(ctx context.Context, kv placeKeeper, log *slog.Logger, mailbox int64, scope string, q store.PageQuery, st pagePlaces) {
	st.Places = st.Places[max(0, len(st.Places)-maxPagePlaces):]
	b, err := json.Marshal(st)
	if err == nil {
		err = kv.KeepValue(ctx, scope, pagesName(mailbox, q), b, pagePlacesTTL)
	}
	if err != nil {
		log.Warn("page places", "err", err)
	}
}

// listAt returns the page of q.Limit messages at index start of mailbox
// mb in q's listing (q.After and q.Skip are its own to set), for the web
// session scope, and how many rows it read (the page and what it
// skipped). mb is the mailbox as the caller just read it.
func listAt(ctx context.Context, kv placeKeeper, log *slog.Logger, a *store.Account, mb store.Mailbox, scope string, start int, q store.PageQuery) ([]store.Message, int, error) {
	if start < 0 {
		return nil, 0, fmt.Errorf("list mailbox %d: %w: negative start", mb.ID, store.ErrInvalid)
	}
	st, changed := pageState(ctx, kv, log, a, mb, scope, q)
	q.After, q.Skip = nil, start
	for i, p := range st.Places {
		if p.Pos <= start && start-p.Pos < q.Skip {
			q.After, q.Skip = &st.Places[i].Key, start-p.Pos
		}
	}
	// A page reached by skipping has no place for its own start yet: the
	// message before it is read too, and gives one, so that the same
	// start asked again (a reload, a page back) costs the page alone.
	var learnt []pagePlace
	lead := q.Skip > 0
	if lead {
		q.Skip--
		q.Limit++
	}
	skipped := q.Skip
	msgs, err := a.ListPage(ctx, mb.ID, q)
	if err != nil {
		return nil, 0, err
	}
	read := skipped + len(msgs)
	if lead && len(msgs) > 0 {
		learnt = append(learnt, pagePlace{Pos: start, Key: store.KeyOf(msgs[0], q.Sort)})
		msgs = msgs[1:]
	}
	if len(msgs) > 0 {
		learnt = append(learnt, pagePlace{Pos: start + len(msgs), Key: store.KeyOf(msgs[len(msgs)-1], q.Sort)})
	}
	for _, l := range learnt {
		if !slices.ContainsFunc(st.Places, func(p pagePlace) bool { return p.Pos == l.Pos }) {
			st.Places, changed = append(st.Places, l), true
		}
	}
	if changed {
		keepPlaces(ctx, kv, log, mb.ID, scope, q, st)
	}
	return msgs, read, nil
}

// listTotal returns how many entries the listing q of mb has: the
// mailbox's count, its unseen count, or for the other filters and threads
// a count kept with the places while the content stays.
func listTotal(ctx context.Context, kv placeKeeper, log *slog.Logger, a *store.Account, mb store.Mailbox, scope string, q store.PageQuery) (int64, error) {
	f := q.Filter
	switch {
	case !f.Unread && !f.Flagged && !f.Attachments && !q.Threads:
		return mb.Messages, nil
	case f.Unread && !f.Flagged && !f.Attachments && !q.Threads:
		return mb.Unseen, nil
	}
	st, changed := pageState(ctx, kv, log, a, mb, scope, q)
	if st.Total >= 0 && !changed {
		return st.Total, nil
	}
	if st.Total < 0 {
		n, err := a.CountPage(ctx, mb.ID, q)
		if err != nil {
			return 0, err
		}
		st.Total = n
	}
	keepPlaces(ctx, kv, log, mb.ID, scope, q, st)
	return st.Total, nil
}
