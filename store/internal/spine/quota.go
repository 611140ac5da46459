package spine

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// ErrOverQuota is store.ErrOverQuota: what a write that would take a user
// past the quota returns.
var ErrOverQuota = errors.New("mailbox is over quota")

// FitsQuota is the quota rule: size more bytes fit a user who uses used
// bytes of quota (0: no quota), or ErrOverQuota. The store's appends and
// the webmail's uploads check it with the user's row locked (WriteUser),
// before they charge (ChargeUser).
func FitsQuota(quota, used, size int64) error {
	if quota > 0 && used+size > quota {
		return ErrOverQuota
	}
	return nil
}

// ChargeUser adds bytes and messages to what a user's quota counts,
// inside tx (negative: gives them back). It does not check the quota: the
// caller has (FitsQuota), with the user's row locked.
func (s *Spine) ChargeUser(ctx context.Context, tx *sqlx.Tx, userID, bytes, messages int64) error {
	if _, err := s.DB.TxExec(ctx, tx, s.Rebind("UPDATE users SET used_bytes = used_bytes + ?, message_count = message_count + ? WHERE id = ?"),
		bytes, messages, userID); err != nil {
		return fmt.Errorf("charge user %d: %w", userID, err)
	}
	return nil
}
