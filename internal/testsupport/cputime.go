package testsupport

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime starts counting the process's CPU time (user and system): the
// returned function gives what was used since. Benchmarks report it per
// operation beside the wall time, which on a shared machine moves with
// what the neighbours do.
func CPUTime(tb testing.TB) func() time.Duration {
	tb.Helper()
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			tb.Fatalf("getrusage: %v", err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := used()
	return func() time.Duration { return used() - start }
}
