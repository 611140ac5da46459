package session

// Verifications is how many password hashes the service has computed
// for logins (a cached login computes none).
func (s *Service) Verifications() int64 { return s.verifications.Load() }
