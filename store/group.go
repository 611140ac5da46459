package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/jmoiron/sqlx"

	"basalt/store/blob"
	"basalt/store/internal/spine"
)

// Delivery is one message for one user, stored by Store.Deliver.
type Delivery struct {
	UserID int64
	// Mailbox is the name of the mailbox to store into; "" is INBOX, and
	// a missing mailbox other than INBOX falls back to INBOX.
	Mailbox string
	Raw     []byte
	Opts    AppendOptions
}

// Deliver stores a message for a user as Append does, but as part of a
// group commit: deliveries made at the same time from many connections
// share one sync of their message files and one database transaction, so
// the cost of durability is paid once per group instead of once per
// message. It returns when the message is durable, and not before.
func (s *Store) Deliver(ctx context.Context, d Delivery) (Appended, error) {
	u, err := s.userForWrite(ctx, d.UserID)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver: %w", err)
	}
	lim, err := s.Limits(ctx, u)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver: %w", err)
	}
	if err := checkAppend(lim, u.UsedBytes, int64(len(d.Raw)), d.Opts.Inbound); err != nil {
		return Appended{}, fmt.Errorf("deliver: %w", err)
	}
	kws, err := normalizeKeywords(d.Opts.Keywords)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver: %w", err)
	}
	p, err := parse(d.Raw)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver: %w", err)
	}
	for attempt := 0; ; attempt++ {
		m, err := s.sealDeferred(ctx, u, p)
		if err != nil {
			return Appended{}, fmt.Errorf("deliver: %w", err)
		}
		req := &groupReq{d: d, p: p, m: m, kws: kws, done: make(chan struct{})}
		s.group.run(ctx, s, req)
		if req.err == nil {
			return req.out, nil
		}
		s.discard(ctx, m, req.err)
		if !errors.Is(req.err, errStaleKey) || attempt > 0 {
			return Appended{}, fmt.Errorf("deliver to user %d: %w", d.UserID, req.err)
		}
		if u, err = s.loadUser(ctx, "u.id = ?", d.UserID); err != nil {
			return Appended{}, fmt.Errorf("deliver: %w", err)
		}
	}
}

// groupReq is one delivery waiting for its group's commit.
type groupReq struct {
	d    Delivery
	p    *parsed
	m    sealed
	kws  []string
	out  Appended
	err  error
	lead bool          // set when this request is handed the leadership
	done chan struct{} // closed when out/err are final, or lead is set
}

// groupCommit batches deliveries. Whoever finds no commit running leads:
// it takes every waiting request, commits them together, and hands the
// lead to the first request that arrived meanwhile. There is no goroutine
// of its own, so a Store needs no Close.
type groupCommit struct {
	mu      sync.Mutex
	busy    bool
	pending []*groupReq
}

// maxGroup bounds one transaction.
const maxGroup = 256

func (g *groupCommit) run(ctx context.Context, s *Store, req *groupReq) {
	g.mu.Lock()
	if g.busy {
		g.pending = append(g.pending, req)
		g.mu.Unlock()
		<-req.done
		if !req.lead {
			return
		}
		g.mu.Lock()
	}
	// This request leads: it is in the batch itself.
	g.busy = true
	batch := append([]*groupReq{req}, g.pending...)
	if len(batch) > maxGroup {
		g.pending = append([]*groupReq(nil), batch[maxGroup:]...)
		batch = batch[:maxGroup]
	} else {
		g.pending = nil
	}
	g.mu.Unlock()

	s.commitGroup(context.WithoutCancel(ctx), batch)

	g.mu.Lock()
	if len(g.pending) > 0 {
		next := g.pending[0]
		g.pending = g.pending[1:]
		next.lead = true
		close(next.done)
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, r := range batch {
		if r != req {
			close(r.done)
		}
	}
}

// sealDeferred is seal without the file's own fsyncs: the group's Sync
// makes it durable before its rows commit.
func (s *Store) sealDeferred(ctx context.Context, u User, p *parsed) (sealed, error) {
	return s.sealWith(ctx, u, p, false)
}

// commitGroup makes the batch's files durable, then commits all their
// rows in one transaction. Each delivery is checked against its user's
// limits inside a savepoint of its own, so one user's full mailbox fails
// only that delivery.
func (s *Store) commitGroup(ctx context.Context, batch []*groupReq) {
	parts := map[string]bool{}
	for _, r := range batch {
		if r.m.blob.Partition != blob.Inline { // inline ones commit with the rows
			parts[r.m.blob.Partition] = true
		}
	}
	names := make([]string, 0, len(parts))
	for p := range parts {
		names = append(names, p)
	}
	// The files are synced while the rows are written, and the
	// transaction commits only once the sync has succeeded: the two waits
	// overlap, and no committed row can point at a file a crash could lose.
	synced := make(chan error, 1)
	go func() { synced <- s.blobs.Sync(ctx, names...) }()
	var syncErr error
	waitSync := func() error {
		if synced != nil {
			syncErr = <-synced
			synced = nil
		}
		if syncErr != nil {
			return fmt.Errorf("sync message files: %w", syncErr)
		}
		return nil
	}
	defer waitSync() // never leave the sync running past the group
	// One lock order for every transaction: users by id.
	order := append([]*groupReq(nil), batch...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].d.UserID < order[j].d.UserID })
	var (
		changes map[int64]*spine.Change
		serials map[int64]uint64
	)
	err := s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		changes, serials = map[int64]*spine.Change{}, map[int64]uint64{}
		// Every user's row is locked before anything is read. On MySQL a
		// transaction's snapshot is taken at its first plain read: a user
		// locked after it would be checked against counters and mailboxes
		// as they were before the lock, missing what another writer (an
		// Append) committed meanwhile.
		for i, r := range order {
			if i > 0 && order[i-1].d.UserID == r.d.UserID {
				continue
			}
			if s.hooks.beforeGroupUser != nil {
				s.hooks.beforeGroupUser(r.d.UserID)
			}
			// A user that no longer exists matches nothing here and is
			// refused with ErrNotFound by appendMessages.
			if _, err := s.db.TxExec(ctx, tx, s.rebind("UPDATE users SET serial = serial + 1 WHERE id = ?"), r.d.UserID); err != nil {
				return err
			}
		}
		for i := 0; i < len(order); {
			j := i
			for j < len(order) && order[j].d.UserID == order[i].d.UserID {
				j++
			}
			userID := order[i].d.UserID
			c := spine.NewChange(userID)
			changes[userID] = c
			if err := s.commitUser(ctx, tx, c, order[i:j]); err != nil {
				return err
			}
			i = j
		}
		if err := waitSync(); err != nil {
			return err
		}
		for id := range changes {
			var serial uint64
			if err := s.db.TxGet(ctx, tx, &serial, s.rebind("SELECT COALESCE(MAX(serial), 0) FROM users WHERE id = ?"), id); err != nil {
				return err
			}
			serials[id] = serial
		}
		return nil
	})
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
		return
	}
	for id, c := range changes {
		s.sp.Announce(ctx, id, serials[id], c.List())
	}
}

// commitUser adds one user's deliveries' rows. appendMessages refuses
// (quota, limits, a missing user or mailbox, a changed key) before it
// writes anything, so a refusal is that delivery's result and the group
// goes on; any other failure ends the whole transaction.
func (s *Store) commitUser(ctx context.Context, tx *sqlx.Tx, c *spine.Change, reqs []*groupReq) error {
	a := s.Account(reqs[0].d.UserID, nil)
	boxes := map[string]int64{}
	msgs := make([]*newMessage, 0, len(reqs))
	var into []*groupReq
	for _, r := range reqs {
		r.err, r.out = nil, Appended{}
		id, known := boxes[r.d.Mailbox]
		if !known {
			var err error
			if id, err = a.deliveryMailbox(ctx, tx, r.d.Mailbox); err != nil {
				if !refusal(err) {
					return err
				}
				r.err = err
				continue
			}
			boxes[r.d.Mailbox] = id
		}
		flags := r.d.Opts.Flags&ClientFlags | r.d.Opts.SystemFlags&allFlags&^FlagRecent
		msgs = append(msgs, &newMessage{mailboxID: id, p: r.p, m: r.m, flags: flags, kws: r.kws, opts: r.d.Opts})
		into = append(into, r)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.appendMessages(ctx, tx, c, a.userID, msgs); err != nil {
		return err
	}
	for i, nm := range msgs {
		into[i].out, into[i].err = nm.out, nm.err
	}
	return nil
}

// refusal reports whether err is a delivery's own outcome rather than a
// failure of the database.
func refusal(err error) bool {
	for _, e := range []error{ErrOverQuota, ErrTooLarge, ErrDailyLimit, ErrNotFound, ErrInvalid, errStaleKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// deliveryMailbox finds the mailbox a delivery goes to: by name, with a
// missing one falling back to INBOX.
func (a *Account) deliveryMailbox(ctx context.Context, tx *sqlx.Tx, name string) (int64, error) {
	if name == "" {
		name = "INBOX"
	}
	for _, n := range []string{name, "INBOX"} {
		var id int64
		err := a.s.db.TxGet(ctx, tx, &id, a.s.rebind("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?"), a.userID, n)
		if err == nil {
			return id, nil
		}
		if err = notFound(err); !errors.Is(err, ErrNotFound) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("mailbox %q: %w", name, ErrNotFound)
}
