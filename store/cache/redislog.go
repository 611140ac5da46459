package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLogger carries go-redis's own log lines (a failed dial, a broken
// pool connection) to a slog.Logger, as warnings of component "redis",
// at most one every Every: while Redis is away go-redis writes a line for
// every command that tries to dial, which would bury everything else. The
// next line that gets through says how many were held back.
type RedisLogger struct {
	Log   *slog.Logger
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Printf is go-redis's logging interface.
func (l *RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.Every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	held := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	args := []any{"component", "redis"}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	l.Log.WarnContext(ctx, fmt.Sprintf(format, v...), args...)
}

// SetRedisLogger sends go-redis's own log lines to log, rate-limited to
// one every every. go-redis keeps its logger in a global, so this affects
// every Redis client of the process: the composition root (package server)
// calls it once, at start.
func SetRedisLogger(log *slog.Logger, every time.Duration) {
	redis.SetLogger(&RedisLogger{Log: log, Every: every})
}
