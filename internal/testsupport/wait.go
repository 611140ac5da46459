package testsupport

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms until it holds, failing the test once
// limit has passed: for what another goroutine or process does in its
// own time (a queue draining, a connection closing).
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
