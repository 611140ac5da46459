package store

import (
	"context"

	"github.com/jmoiron/sqlx"

	"basalt/crypt"
	"basalt/store/internal/spine"
)

// What the store lends its sub-packages (store/outbound, store/webmail,
// store/contacts), which write on the same spine. Each method takes a
// spine.Key, which only spine.Lend makes and only the store's tree can
// import store/internal/spine to call (each method checks it: the zero
// Key is refused), so these are not a way in for a front end: what one
// needs is a method of the store.

// Spine returns the store's spine.
func (s *Store) Spine(k spine.Key) *spine.Spine {
	k.Check()
	return s.sp
}

// Owner returns the account's user and its unlocked key (nil for a user
// that is not secure, or is locked), or ErrForbidden when the account is
// another user's mail seen through a share: what only an owner may do.
func (a *Account) Owner(k spine.Key) (int64, *crypt.Identity, error) {
	k.Check()
	if err := a.ownerOnly(); err != nil {
		return 0, nil, err
	}
	return a.userID, a.key, nil
}

// UserTx reads a user and its limits inside a write transaction
// (spine.WriteUser), with the user's row locked: what a write checks
// against must be what is true now, not what a cache saw.
func (s *Store) UserTx(ctx context.Context, k spine.Key, tx *sqlx.Tx, id int64) (User, Limits, error) {
	k.Check()
	return s.userTx(ctx, tx, id)
}

// Store returns the account's store.
func (a *Account) Store(k spine.Key) *Store {
	k.Check()
	return a.s
}

// MailboxesIn reads the account's mailboxes through q (the database, or a
// transaction that reads them at one serial with other rows), by id.
func (a *Account) MailboxesIn(ctx context.Context, k spine.Key, q sqlx.QueryerContext) ([]Mailbox, error) {
	k.Check()
	var ms []Mailbox
	if err := sqlx.SelectContext(ctx, q, &ms, a.s.rebind("SELECT "+mailboxColumns+" FROM mailboxes WHERE user_id = ? ORDER BY id"), a.userID); err != nil {
		return nil, err
	}
	return ms, nil
}
