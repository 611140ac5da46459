package session

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"basalt/store/cache"
)

// fallback counts in the shared cache, so that every node sees the same
// counts, and on this node alone while the shared cache fails (Redis
// down): a count that is a little low for a few seconds is better than
// refusing every login and every webmail call. A warning says so, once a
// minute at most, and the shared cache is tried again after a short pause.
type fallback struct {
	shared cache.Cache
	local  cache.Cache // nil: no fallback, the shared cache's errors are returned
	log    *slog.Logger
	what   string // names the counts in the warning

	// downUntil is when to try the shared cache again (Unix nanoseconds),
	// warned when the last warning was.
	downUntil atomic.Int64
	warned    atomic.Int64
}

// sharedRetry is how long counting stays local after the shared cache
// failed before it is tried again: a Redis that does not answer costs
// each call a timeout, which logins should not wait for one by one.
const sharedRetry = 5 * time.Second

// warnEvery bounds the warnings about the shared cache.
const warnEvery = time.Minute

// do runs fn on the shared cache, or on the local one while the shared
// cache is down. An error fn returns for which outage reports true (the
// cache failed, not what fn decided) marks the shared cache down and runs
// fn again locally; local tells fn which one it was given.
func (f *fallback) do(ctx context.Context, outage func(error) bool, fn func(c cache.Cache, local bool) error) error {
	now := time.Now()
	if f.local == nil || now.UnixNano() >= f.downUntil.Load() {
		err := fn(f.shared, false)
		if err == nil || f.local == nil || !outage(err) {
			return err
		}
		f.downUntil.Store(now.Add(sharedRetry).UnixNano())
		f.warn(err)
	}
	return fn(f.local, true)
}

func (f *fallback) warn(err error) {
	now := time.Now().UnixNano()
	last := f.warned.Load()
	if now-last < int64(warnEvery) || !f.warned.CompareAndSwap(last, now) {
		return
	}
	if f.log != nil {
		f.log.Warn(f.what+": the shared cache failed; counting on this node alone", "err", err)
	}
}
