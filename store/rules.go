package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// Vacation is a user's auto-reply (RFC 3834).
type Vacation struct {
	Enabled  bool          `json:"enabled"`
	Subject  string        `json:"subject"`
	Body     string        `json:"body"`
	Start    time.Time     `json:"start,omitzero"` // zero: from now
	End      time.Time     `json:"end,omitzero"`   // zero: until turned off
	Interval time.Duration `json:"interval"`       // one reply per sender per interval; 0: 7 days
}

// Active reports whether the auto-reply is on at t.
func (v Vacation) Active(t time.Time) bool {
	return v.Enabled && (v.Start.IsZero() || !t.Before(v.Start)) && (v.End.IsZero() || t.Before(v.End))
}

// Forwarding sends a user's incoming mail on to other addresses.
type Forwarding struct {
	To       []string `json:"to"`
	KeepCopy bool     `json:"keepCopy"`
}

// RulesSettingPrefix starts the names of the settings the delivery rules
// keep (SaveRules): no other writer of settings may use it.
const RulesSettingPrefix = "delivery."

const (
	settingVacation   = RulesSettingPrefix + "vacation"
	settingForwarding = RulesSettingPrefix + "forwarding"
	maxForwards       = 10
)

// Rules returns the account's vacation and forwarding rules.
func (a *Account) Rules(ctx context.Context) (Vacation, Forwarding, error) {
	if err := a.ownerOnly(); err != nil {
		return Vacation{}, Forwarding{}, fmt.Errorf("load delivery rules: %w", err)
	}
	var v Vacation
	var f Forwarding
	var rows []struct {
		Name  string `db:"name"`
		Value string `db:"value"`
	}
	err := a.s.db.SelectContext(ctx, &rows, a.s.rebind("SELECT name, value FROM settings WHERE user_id = ? AND name IN (?, ?)"),
		a.userID, settingVacation, settingForwarding)
	if err != nil {
		return v, f, fmt.Errorf("load delivery rules: %w", err)
	}
	for _, r := range rows {
		var dst any = &v
		if r.Name == settingForwarding {
			dst = &f
		}
		if err := json.Unmarshal([]byte(r.Value), dst); err != nil {
			return v, f, fmt.Errorf("load delivery rules: %s: %w", r.Name, err)
		}
	}
	return v, f, nil
}

// SaveRules sets the account's vacation and forwarding rules.
func (a *Account) SaveRules(ctx context.Context, v Vacation, f Forwarding) error {
	if err := a.ownerOnly(); err != nil {
		return fmt.Errorf("save delivery rules: %w", err)
	}
	if len(v.Subject) > 998 || len(v.Body) > 64<<10 || v.Interval < 0 || (!v.End.IsZero() && v.End.Before(v.Start)) {
		return fmt.Errorf("save vacation: %w", ErrInvalid)
	}
	if len(f.To) > maxForwards {
		return fmt.Errorf("save forwarding: %w: at most %d addresses", ErrInvalid, maxForwards)
	}
	for i, t := range f.To {
		n, err := NormalizeAddress(t)
		if err != nil {
			return fmt.Errorf("save forwarding: %w", err)
		}
		f.To[i] = n
	}
	vb, _ := json.Marshal(v)
	fb, _ := json.Marshal(f)
	on := v.Enabled || len(f.To) > 0
	return a.s.sp.WriteUser(ctx, a.userID, func(tx *sqlx.Tx, c *spine.Change) error {
		for _, kv := range [][2]string{{settingVacation, string(vb)}, {settingForwarding, string(fb)}} {
			if _, err := tx.ExecContext(ctx, a.s.rebind("DELETE FROM settings WHERE user_id = ? AND name = ?"), a.userID, kv[0]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, a.s.rebind("INSERT INTO settings (user_id, name, value) VALUES (?, ?, ?)"), a.userID, kv[0], kv[1]); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, a.s.rebind("UPDATE users SET delivery_rules = ? WHERE id = ?"), on, a.userID)
		c.Add(0, "settings", 0, 0)
		return err
	})
}

// VacationReplyDue records that the account auto-replies to sender now,
// unless it already did within interval (RFC 3834 2: not more than once
// per period per sender); it reports whether to reply.
func (a *Account) VacationReplyDue(ctx context.Context, sender string, interval time.Duration) (bool, error) {
	if err := a.ownerOnly(); err != nil {
		return false, fmt.Errorf("vacation reply: %w", err)
	}
	sender = strings.ToLower(sender)
	now := a.s.unix()
	due := false
	err := a.s.db.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, a.s.rebind("UPDATE vacation_replies SET sent_at = ? WHERE user_id = ? AND sender = ? AND sent_at <= ?"),
			now, a.userID, sender, now-int64(interval/time.Second))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			due = true
			return nil
		}
		_, err = tx.ExecContext(ctx, a.s.rebind("INSERT INTO vacation_replies (user_id, sender, sent_at) VALUES (?, ?, ?)"), a.userID, sender, now)
		if sqldb.IsDuplicate(err) {
			due = false // replied within the interval
			return nil
		}
		due = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("vacation reply to %s: %w", sender, err)
	}
	return due, nil
}
