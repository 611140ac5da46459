package store

import (
	"context"
)

// LockMaildropFor is LockMaildrop with a lifetime and refresh interval
// short enough for a test to see them pass.
var LockMaildropFor = (*Store).lockMaildrop

// Abandon stops refreshing l without releasing it, as a process that
// crashed would.
func (l *MaildropLock) Abandon() {
	l.unlock.Do(func() {
		l.stop()
		<-l.done
	})
}

// Steal releases l behind its holder's back, as its expiry would.
func (l *MaildropLock) Steal(ctx context.Context) error {
	_, err := l.s.db.ExecContext(ctx, l.s.rebind("DELETE FROM maildrop_locks WHERE user_id = ? AND token = ?"), l.userID, l.token)
	return err
}
