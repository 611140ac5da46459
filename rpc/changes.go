package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"basalt/store"
	"basalt/store/webmail"
)

// Sync, JMAP's way (RFC 8620 5.2) on this API: every listing returns the
// account's state; changes {since} says what was created, updated and
// destroyed after it, and the state that brings the client up to date.
// Push: GET /rpc/events streams, as Server-Sent Events, that something
// changed, from the store's change fan-out (store.Watch); the client then
// asks changes. Changes to folders other users share with the user are
// announced there too (by their folderIDs, with no serial: they are the
// owner's and move no state of the user's); the client reloads those.

// maxChanges bounds the message changes one answer carries; past it the
// client is told to load again (stateMismatch), as JMAP's
// cannotCalculateChanges does.
const maxChanges = 5000

type changesParams struct {
	Since string `json:"since" jsonschema:"minLength=1,maxLength=40"`
}

type messageChanges struct {
	Created   []string `json:"created"`
	Updated   []string `json:"updated"`
	Destroyed []string `json:"destroyed"`
}

type changesResult struct {
	OldState       string            `json:"oldState"`
	NewState       string            `json:"newState"`
	Folders        webmail.IDChanges `json:"folders"`
	Messages       messageChanges    `json:"messages"`
	ContactFolders webmail.IDChanges `json:"contactFolders"`
	Contacts       webmail.IDChanges `json:"contacts"`
	Settings       bool              `json:"settings"`
}

func (h *Handler) registerChanges() {
	Register(h.engine, Spec{Name: "changes", Summary: "What was created, updated and destroyed since a state; stateMismatch: load everything again."}, h.changes)
}

func refs(rs []webmail.MessageRef) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, msgRef{r.MailboxID, r.UID}.id())
	}
	return out
}

func (h *Handler) changes(ctx context.Context, c *Call, p changesParams) (changesResult, error) {
	ch, err := webmail.Of(c.account()).ChangesSince(ctx, p.Since, maxChanges)
	if err != nil {
		return changesResult{}, err
	}
	return changesResult{
		OldState: ch.OldState, NewState: ch.NewState,
		Folders: ch.Mailboxes, ContactFolders: ch.ContactFolders, Contacts: ch.Contacts,
		Messages: messageChanges{Created: refs(ch.Messages.Created), Updated: refs(ch.Messages.Updated), Destroyed: refs(ch.Messages.Destroyed)},
		Settings: ch.Settings,
	}, nil
}

// heartbeat is how often an idle event stream gets a comment line, which
// keeps proxies from closing it and finds clients that left.
const heartbeat = 25 * time.Second

// streamWriteTimeout bounds one write to an event stream.
const streamWriteTimeout = 30 * time.Second

// streamCounter counts the open event streams of each session on this
// node. Streams are bound to the node that serves them, so the count that
// protects the node is the node's own.
type streamCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// open counts a new stream of session unless it has max open already.
func (s *streamCounter) open(session string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[session] >= max {
		return false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[session]++
	return true
}

func (s *streamCounter) close(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[session]--; s.n[session] <= 0 {
		delete(s.n, session)
	}
}

// serveEvents is GET /rpc/events. EventSource cannot send headers, so the
// stream is opened with the session cookie alone; it carries no mail, only
// that something changed (and where), and a page on another site neither
// gets the SameSite cookie sent nor may read the stream.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	c := h.httpSession(w, r)
	if c == nil {
		return
	}
	if !h.streams.open(c.web.ID, h.cfg.MaxEventStreams) {
		writeRPCError(w, http.StatusTooManyRequests, &Error{Code: CodeRateLimited, Message: fmt.Sprintf("at most %d event streams per session", h.cfg.MaxEventStreams),
			Data: ErrorData{Type: "rateLimited"}})
		return
	}
	defer h.streams.close(c.web.ID)
	ctx := r.Context()
	watch, err := h.st.Watch(ctx, c.userID())
	if err != nil {
		h.log.Error("events: watch", "err", err)
		writeRPCError(w, http.StatusServiceUnavailable, serverErr(CodeUnavailable, "change events unavailable"))
		return
	}
	defer watch.Close()
	// Folders other users share with this one change by their owners'
	// hands: their events are followed too (store.Watch is one per user).
	shared := &sharedWatch{st: h.st, acct: c.account(), wake: make(chan struct{}, 1)}
	defer shared.close()
	if _, err := shared.sync(ctx); err != nil {
		h.log.Warn("events: shared folders", "err", err)
	}
	// The state is taken after the watch is live: anything after it is
	// both in changes since it and announced below.
	state, err := webmail.Of(c.account()).State(ctx)
	if err != nil {
		h.log.Error("events: state", "err", err)
		writeRPCError(w, http.StatusServiceUnavailable, serverErr(CodeUnavailable, "state unavailable"))
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	// The stream outlives any whole-response write timeout the server
	// has, so each write gets a deadline of its own instead: a client
	// that stops reading (a slow loris holding the connection) is dropped
	// at its next write, a heartbeat at the latest.
	rc := http.NewResponseController(w)
	write := func(s string) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := io.WriteString(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func(event string, data any) bool {
		return write("event: " + event + "\ndata: " + string(encode(data)) + "\n\n")
	}
	w.WriteHeader(http.StatusOK)
	if !write("retry: 5000\n\n") || !send("state", map[string]string{"state": state}) {
		return
	}
	tick := time.NewTicker(h.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// A session that ended (logout, password change, expiry)
			// ends its stream too.
			if _, err := h.sess.Web(ctx, c.token); err != nil {
				send("end", map[string]string{"reason": "session ended"})
				return
			}
			// A folder shared since (or no longer) is found here: a
			// grant is the owner's event, which this stream may not
			// follow yet.
			if changed, err := shared.sync(ctx); err != nil {
				h.log.Warn("events: shared folders", "err", err)
			} else if changed && !send("change", map[string]any{"kinds": []string{"acl"}, "folderIDs": []int64{}, "resync": false}) {
				return
			}
			if !write(": ping\n\n") {
				return
			}
		case <-watch.C():
			evs, resync := watch.Take()
			if !resync && len(evs) == 0 {
				continue
			}
			payload := changePayload(evs, resync)
			if len(evs) > 0 {
				payload["serial"] = strconv.FormatUint(evs[len(evs)-1].Serial, 10)
			}
			if !send("change", payload) {
				return
			}
		case <-shared.wake:
			evs, resync, regrant := shared.take()
			if regrant {
				// A grant of a followed owner changed: a folder may have
				// come (its events were not taken) or gone.
				changed, err := shared.sync(ctx)
				if err != nil {
					h.log.Warn("events: shared folders", "err", err)
				}
				if changed {
					evs = append(evs, store.Event{Kind: "acl"})
				}
			}
			if !resync && len(evs) == 0 {
				continue
			}
			// No serial: the owner's serial is not this user's state.
			if !send("change", changePayload(evs, resync)) {
				return
			}
		}
	}
}

// changePayload is a change event's data: the kinds of change and the
// folders they touched.
func changePayload(evs []store.Event, resync bool) map[string]any {
	kinds := []string{}
	folders := []int64{}
	for _, ev := range evs {
		if !slices.Contains(kinds, ev.Kind) {
			kinds = append(kinds, ev.Kind)
		}
		if ev.MailboxID != 0 && !slices.Contains(folders, ev.MailboxID) {
			folders = append(folders, ev.MailboxID)
		}
	}
	return map[string]any{"kinds": kinds, "folderIDs": folders, "resync": resync}
}

// maxSharedOwners bounds the owners one event stream follows for the
// folders they share with its user; past it, the others' folders are
// seen changed when the user opens them.
const maxSharedOwners = 64

// sharedWatch follows, for one event stream, the owners of the folders
// shared with its user: their events on those folders, and only those,
// are announced like the user's own. Each owner's Watch is woken into
// the one wake channel by a goroutine of its own, which ends with it.
// Its methods are called from the stream's goroutine alone.
type sharedWatch struct {
	st   *store.Store
	acct *store.Account
	wake chan struct{}

	owners map[int64]*ownerWatch
	boxes  map[int64]bool // the shared folders' ids
}

type ownerWatch struct {
	w    *store.Watch
	stop context.CancelFunc
}

// sync reads again which folders are shared with the user, starts
// following new owners and stops following those who share nothing any
// more; changed says whether the set of folders changed.
func (s *sharedWatch) sync(ctx context.Context) (changed bool, err error) {
	list, err := s.acct.SharedMailboxes(ctx)
	if err != nil {
		return false, err
	}
	boxes := map[int64]bool{}
	owners := map[int64]bool{}
	for _, m := range list {
		if !owners[m.OwnerID] && len(owners) >= maxSharedOwners {
			continue
		}
		owners[m.OwnerID] = true
		boxes[m.ID] = true
	}
	changed = len(boxes) != len(s.boxes)
	for id := range boxes {
		changed = changed || !s.boxes[id]
	}
	s.boxes = boxes
	if s.owners == nil {
		s.owners = map[int64]*ownerWatch{}
	}
	for id, ow := range s.owners {
		if !owners[id] {
			ow.stop()
			ow.w.Close()
			delete(s.owners, id)
		}
	}
	for id := range owners {
		if s.owners[id] != nil {
			continue
		}
		wctx, stop := context.WithCancel(ctx)
		w, err := s.st.Watch(wctx, id)
		if err != nil {
			stop()
			return changed, fmt.Errorf("watch user %d: %w", id, err)
		}
		s.owners[id] = &ownerWatch{w: w, stop: stop}
		go func() {
			for {
				select {
				case <-wctx.Done():
					return
				case <-w.C():
					select {
					case s.wake <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return changed, nil
}

// take returns the owners' events on the shared folders since the last
// take, whether one of them must resync, and whether a grant changed
// (the set of folders is to be read again).
func (s *sharedWatch) take() (evs []store.Event, resync, regrant bool) {
	for _, ow := range s.owners {
		got, rs := ow.w.Take()
		resync = resync || rs
		for _, ev := range got {
			if ev.Kind == "acl" {
				regrant = true
			}
			if s.boxes[ev.MailboxID] {
				evs = append(evs, ev)
			}
		}
	}
	return evs, resync, regrant
}

func (s *sharedWatch) close() {
	for _, ow := range s.owners {
		ow.stop()
		ow.w.Close()
	}
	s.owners = nil
}
