package store

import (
	"context"
	"fmt"
	"strconv"

	"basalt/store/internal/spine"
)

// Bulletins (IndiMail's vbulletin): one message delivered to every user
// of a domain, of a plan, or of the server. The store keeps the message
// and how far its delivery got; package delivery delivers it, user by
// user in id order, through the same path as any mail (limits, filters,
// quota), and records its progress after every batch, so a delivery that
// stopped resumes after the last user recorded.

// BulletinScope is who a bulletin goes to.
type BulletinScope string

// The scopes of a bulletin.
const (
	BulletinAll    BulletinScope = "all"
	BulletinDomain BulletinScope = "domain"
	BulletinPlan   BulletinScope = "plan"
)

// Bulletin states.
const (
	BulletinRunning = "running"
	BulletinDone    = "done"
)

// MaxBulletinSize bounds a bulletin's message: it is kept in its row.
const MaxBulletinSize = 1 << 20

// Bulletin is a bulletin and how far its delivery got.
type Bulletin struct {
	ID         int64         `db:"id" json:"id"`
	Scope      BulletinScope `db:"scope" json:"scope"`
	ScopeID    int64         `db:"scope_id" json:"-"`
	From       string        `db:"mail_from" json:"from"`
	State      string        `db:"state" json:"state"`
	LastUserID int64         `db:"last_user_id" json:"-"`
	Total      int64         `db:"total" json:"total"`
	Delivered  int64         `db:"delivered" json:"delivered"`
	Failed     int64         `db:"failed" json:"failed"`
	LastError  string        `db:"last_error" json:"lastError"`
	CreatedAt  int64         `db:"created_at" json:"createdAt"`
	UpdatedAt  int64         `db:"updated_at" json:"updatedAt"`
}

const bulletinColumns = "id, scope, scope_id, mail_from, state, last_user_id, total, delivered, failed, last_error, created_at, updated_at"

// scopeWhere is the condition on users u of a bulletin's scope.
func (b Bulletin) scopeWhere() (string, []any) {
	switch b.Scope {
	case BulletinDomain:
		return "u.domain_id = ?", []any{b.ScopeID}
	case BulletinPlan:
		return "u.plan_id = ?", []any{b.ScopeID}
	}
	return "1 = 1", nil
}

// CreateBulletin stores a bulletin from the envelope sender from (""
// the null sender) to the users of scope: every user, the domain name,
// or the plan name.
func (s *Store) CreateBulletin(ctx context.Context, scope BulletinScope, name, from string, raw []byte) (Bulletin, error) {
	b := Bulletin{Scope: scope, State: BulletinRunning}
	switch scope {
	case BulletinAll:
	case BulletinDomain:
		d, err := s.DomainByName(ctx, name)
		if err != nil {
			return Bulletin{}, fmt.Errorf("create bulletin: %w", err)
		}
		b.ScopeID = d.ID
	case BulletinPlan:
		p, err := s.PlanByName(ctx, name)
		if err != nil {
			return Bulletin{}, fmt.Errorf("create bulletin: %w", err)
		}
		b.ScopeID = p.ID
	default:
		return Bulletin{}, fmt.Errorf("create bulletin: %w: scope %q", ErrInvalid, scope)
	}
	if from != "" {
		f, err := NormalizeAddress(from)
		if err != nil {
			return Bulletin{}, fmt.Errorf("create bulletin: sender: %w", err)
		}
		b.From = f
	}
	if len(raw) == 0 || len(raw) > MaxBulletinSize {
		return Bulletin{}, fmt.Errorf("create bulletin: %w: the message must be 1 byte to %d", ErrInvalid, MaxBulletinSize)
	}
	where, args := b.scopeWhere()
	if err := s.db.GetContext(ctx, &b.Total, s.rebind("SELECT COUNT(*) FROM users u WHERE "+where), args...); err != nil {
		return Bulletin{}, fmt.Errorf("create bulletin: %w", err)
	}
	now := s.unix()
	b.CreatedAt, b.UpdatedAt = now, now
	res, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO bulletins (scope, scope_id, mail_from, raw, state, total, last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '', ?, ?)`), b.Scope, b.ScopeID, b.From, raw, b.State, b.Total, now, now)
	if err != nil {
		return Bulletin{}, fmt.Errorf("create bulletin: %w", err)
	}
	if b.ID, err = res.LastInsertId(); err != nil {
		return Bulletin{}, fmt.Errorf("create bulletin: %w", err)
	}
	return b, nil
}

// BulletinByID returns a bulletin and its message.
func (s *Store) BulletinByID(ctx context.Context, id int64) (Bulletin, []byte, error) {
	var b Bulletin
	if err := s.db.GetContext(ctx, &b, s.rebind("SELECT "+bulletinColumns+" FROM bulletins WHERE id = ?"), id); err != nil {
		return Bulletin{}, nil, fmt.Errorf("bulletin %d: %w", id, spine.NotFound(err))
	}
	var raw []byte
	if err := s.db.GetContext(ctx, &raw, s.rebind("SELECT raw FROM bulletins WHERE id = ?"), id); err != nil {
		return Bulletin{}, nil, fmt.Errorf("bulletin %d: %w", id, spine.NotFound(err))
	}
	return b, raw, nil
}

// BulletinRecipient is a user a bulletin is still to reach.
type BulletinRecipient struct {
	ID      int64  `db:"id"`
	Address string `db:"address"`
}

// BulletinRecipients returns up to limit users of b's scope after
// b.LastUserID, in id order.
func (s *Store) BulletinRecipients(ctx context.Context, b Bulletin, limit int) ([]BulletinRecipient, error) {
	where, args := b.scopeWhere()
	var rs []BulletinRecipient
	if err := s.db.SelectContext(ctx, &rs, s.rebind("SELECT u.id, u.address FROM users u WHERE u.id > ? AND "+where+
		" ORDER BY u.id LIMIT "+strconv.Itoa(max(limit, 1))), append([]any{b.LastUserID}, args...)...); err != nil {
		return nil, fmt.Errorf("bulletin %d recipients: %w", b.ID, err)
	}
	return rs, nil
}

// SaveBulletinProgress records how far b's delivery got (its LastUserID,
// counts, last error and state).
func (s *Store) SaveBulletinProgress(ctx context.Context, b Bulletin) error {
	_, err := s.db.ExecContext(ctx, s.rebind(`UPDATE bulletins SET last_user_id = ?, delivered = ?, failed = ?, last_error = ?, state = ?,
		updated_at = ? WHERE id = ?`), b.LastUserID, b.Delivered, b.Failed, spine.Clip(b.LastError), b.State, s.unix(), b.ID)
	if err != nil {
		return fmt.Errorf("bulletin %d progress: %w", b.ID, err)
	}
	return nil
}
