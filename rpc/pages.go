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
// mailbox, order and mailbox content, where each page it served ended, as
// the key of the page's last message. A page that starts at such a place
// (the next one, or one served before) is read from that key on; any
// other start is read from the nearest remembered place before it,
// skipping only what lies between. The places are kept as values of the
// session (session.Service.Value), in the shared cache, so every node
// knows them. A page reached by skipping also leaves the place of its own
// start.

// pagePlacesTTL is how long unused places are kept: about as long as a
// web session idles.
const pagePlacesTTL = 30 * time.Minute

// maxPagePlaces bounds the places kept for one listing; past it the
// oldest go first.
const maxPagePlaces = 256

// pagePlace says that the message at index Pos comes just past Key.
type pagePlace struct {
	Pos int           `json:"p"`
	Key store.PageKey `json:"k"`
}

// placeKeeper keeps the places for a session: session.Service.
type placeKeeper interface {
	Value(ctx context.Context, id, name string) ([]byte, bool, error)
	KeepValue(ctx context.Context, id, name string, v []byte, ttl time.Duration) error
}

// listAt returns the page of q.Limit messages at index start of mailbox
// mb in q.Sort order (q.After and q.Skip are its own to set), for the web
// session scope. mb is the mailbox as the caller just read it: its
// UIDNEXT and message count are part of the places' key, and any message
// that arrives or goes changes one of them (UIDs are never reused), so
// places remembered of other content are never used. A message's place
// itself never changes: its arrival time and UID are fixed.
func listAt(ctx context.Context, kv placeKeeper, log *slog.Logger, a *store.Account, mb store.Mailbox, scope string, start int, q store.PageQuery) ([]store.Message, error) {
	if start < 0 {
		return nil, fmt.Errorf("list mailbox %d: %w: negative start", mb.ID, store.ErrInvalid)
	}
	name := fmt.Sprintf("pages:%d:%d:%d:%d", mb.ID, q.Sort, mb.UIDNext, mb.Messages)
	var places []pagePlace
	if v, ok, err := kv.Value(ctx, scope, name); err != nil {
		// Without the places the page is still right, only slower.
		log.Warn("page places", "err", err)
	} else if ok && json.Unmarshal(v, &places) != nil {
		places = nil
	}
	q.After, q.Skip = nil, start
	for i, p := range places {
		if p.Pos <= start && start-p.Pos < q.Skip {
			q.After, q.Skip = &places[i].Key, start-p.Pos
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
	msgs, err := a.ListPage(ctx, mb.ID, q)
	if err != nil {
		return nil, err
	}
	if lead && len(msgs) > 0 {
		learnt = append(learnt, pagePlace{Pos: start, Key: store.KeyOf(msgs[0], q.Sort)})
		msgs = msgs[1:]
	}
	if len(msgs) > 0 {
		learnt = append(learnt, pagePlace{Pos: start + len(msgs), Key: store.KeyOf(msgs[len(msgs)-1], q.Sort)})
	}
	added := false
	for _, l := range learnt {
		if !slices.ContainsFunc(places, func(p pagePlace) bool { return p.Pos == l.Pos }) {
			places, added = append(places, l), true
		}
	}
	if !added {
		return msgs, nil
	}
	places = places[max(0, len(places)-maxPagePlaces):]
	b, err := json.Marshal(places)
	if err == nil {
		err = kv.KeepValue(ctx, scope, name, b, pagePlacesTTL)
	}
	if err != nil {
		log.Warn("page places", "err", err)
	}
	return msgs, nil
}
