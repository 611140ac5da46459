package session

import (
	"context"
	"fmt"
	"time"

	"basalt/store/cache"
)

// What a front end keeps for one of its sessions (the webmail's paging
// positions, say) lives in the shared cache, so every node serving the
// session finds it. It is a hint, not state: a value may be gone at any
// time (its TTL, an eviction, a Redis restart), and the front end must
// still answer right without it.

// valueKey is where value name of session id is kept.
func valueKey(id, name string) string { return "session:value:" + id + ":" + name }

// Value returns the value name kept for session id, and whether there
// is one.
func (s *Service) Value(ctx context.Context, id, name string) ([]byte, bool, error) {
	e, ok, err := s.cache.Get(ctx, valueKey(id, name))
	if err != nil {
		return nil, false, fmt.Errorf("session value %s: %w", name, err)
	}
	return e.Value, ok, nil
}

// KeepValue keeps v as value name of session id for ttl.
func (s *Service) KeepValue(ctx context.Context, id, name string, v []byte, ttl time.Duration) error {
	if err := s.cache.Set(ctx, valueKey(id, name), cache.Entry{Value: v}, ttl); err != nil {
		return fmt.Errorf("keep session value %s: %w", name, err)
	}
	return nil
}
