package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"basalt/store/cache"
)

// ErrRateLimited is a call over its session's rate; RateLimitError says
// when to try again.
var ErrRateLimited = errors.New("too many calls; try again later")

// RateLimitError is ErrRateLimited with the time until the window ends.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// AdmitCall counts one call of the web session id against limit calls a
// minute, in fixed one-minute windows counted across nodes. Over the
// limit it returns a *RateLimitError. While the shared cache is down the
// calls are counted on this node alone rather than refused: losing Redis
// must not stop the webmail.
func (s *Service) AdmitCall(ctx context.Context, id string, limit int64) error {
	if limit <= 0 {
		return nil
	}
	now := s.now()
	key := "rpc:rate:" + id + ":" + strconv.FormatInt(now.Unix()/60, 10)
	var n int64
	err := s.calls.do(ctx, func(error) bool { return true }, func(c cache.Cache, _ bool) error {
		var err error
		n, err = c.Incr(ctx, key, 1, 2*time.Minute)
		return err
	})
	if err != nil {
		return fmt.Errorf("call rate: %w", err)
	}
	if n > limit {
		return &RateLimitError{RetryAfter: time.Duration(60-now.Unix()%60) * time.Second}
	}
	return nil
}
