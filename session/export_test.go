package session

// Verifications is how many password hashes the service has computed
// for logins (a cached login computes none).
func (s *Service) Verifications() int64 { return s.verifications.Load() }

// SetBeforeRecheck has f run before the protocol session registry reads a
// user again to check its connections.
func (s *Service) SetBeforeRecheck(f func(userID int64)) { s.conns.beforeRecheck.Store(&f) }
