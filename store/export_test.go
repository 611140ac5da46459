package store

import "context"

// SetAfterBlobWrite lets tests stop a process between writing a message
// file and committing its rows.
func SetAfterBlobWrite(s *Store, f func()) { s.hooks.afterBlobWrite = f }

// SetBeforeGroupUser lets tests act while a group commit is about to lock
// a user's row.
func SetBeforeGroupUser(s *Store, f func(userID int64)) { s.hooks.beforeGroupUser = f }

// SetBroadCount sets the count of index matches from which a search's
// matches are counted without a look-up each (broadCount).
func SetBroadCount(s *Store, n int) { s.hooks.broadCount = n }

// SetSearchTuning sets the thresholds of FindPage's plans (as
// Config.Search does), so that a few messages take the paths many would.
func SetSearchTuning(s *Store, t SearchTuning) { s.search = t }

// GroupPending is how many deliveries wait for the running group commit.
func GroupPending(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.pending)
}

// FilesCached is how many message files' metadata and bodies the store
// keeps in memory.
func FilesCached(s *Store) (infos, bodies int) {
	s.files.infos.mu.Lock()
	infos = len(s.files.infos.items)
	s.files.infos.mu.Unlock()
	s.files.bodies.mu.Lock()
	defer s.files.bodies.mu.Unlock()
	return infos, len(s.files.bodies.items)
}

// IndexBatch indexes the next size messages of the text index's backlog.
func IndexBatch(s *Store, ctx context.Context, size int) (int, bool, error) {
	return s.indexBatch(ctx, size)
}

// Weighs reports whether FindPage on MariaDB weighs q's words on a
// sample (findplan.go) rather than leaving q to the index alone.
func Weighs(ctx context.Context, a *Account, q MailQuery) (bool, error) {
	p, err := a.planMy(ctx, q)
	return p != nil, err
}
