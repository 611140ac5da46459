package listener

import (
	"context"
	"sync"
)

// Tasks counts work the connections start that may outlive them (SMTP's
// deliveries: go-smtp's goroutine can be in one after an abort closed its
// connection). Its Drain is a Config.Drain: once called, no task starts,
// and it waits for those running.
type Tasks struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup // Add under mu, never once stopped
}

// Start counts a task in; false: the Set is past waiting for tasks, and
// this one must not run.
func (t *Tasks) Start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.wg.Add(1)
	return true
}

// Done counts a started task out.
func (t *Tasks) Done() { t.wg.Done() }

// Drain stops new tasks and waits for those running until ctx ends.
func (t *Tasks) Drain(ctx context.Context) {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	wait(ctx, &t.wg)
}

// wait waits for wg until ctx ends, and reports whether wg got to zero.
func wait(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
