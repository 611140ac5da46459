package store

// SetAfterBlobWrite lets tests stop a process between writing a message
// file and committing its rows.
func SetAfterBlobWrite(s *Store, f func()) { s.hooks.afterBlobWrite = f }

// SetBeforeGroupUser lets tests act while a group commit is about to lock
// a user's row.
func SetBeforeGroupUser(s *Store, f func(userID int64)) { s.hooks.beforeGroupUser = f }

// GroupPending is how many deliveries wait for the running group commit.
func GroupPending(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.pending)
}
