package testsupport

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Daemon is a server run as a child process, so that a test can kill it
// the way a crash or the OOM killer would (SIGKILL: no deferred call, no
// shutdown, no flush) and start it again over the same state.
type Daemon struct {
	t    testing.TB
	argv []string
	env  []string
	// Log holds what every run of the process wrote to stdout and stderr.
	Log  *LogBuffer
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NewDaemon prepares argv (the program first) run with env added to the
// test's environment. Start runs it; a process still running when the
// test ends is killed.
func NewDaemon(t testing.TB, env []string, argv ...string) *Daemon {
	d := &Daemon{t: t, argv: argv, env: env, Log: &LogBuffer{}}
	t.Cleanup(func() { d.Kill() })
	return d
}

// SelfDaemon prepares the test binary itself as the daemon, with env set:
// the package's TestMain sees the variable it chose and serves instead of
// testing, as cmd/basalt's tests run `basalt serve`.
func SelfDaemon(t testing.TB, env ...string) *Daemon {
	return NewDaemon(t, env, os.Args[0])
}

// Start runs the process once more; the previous run must have ended.
func (d *Daemon) Start() {
	d.t.Helper()
	if d.Running() {
		d.t.Fatal("daemon started twice")
	}
	cmd := exec.Command(d.argv[0], d.argv[1:]...)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout = d.Log
	cmd.Stderr = d.Log
	// Killed with the test if the test dies before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", d.argv[0], err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		err := cmd.Wait()
		d.err = err
		close(done)
	}()
}

// Running reports whether the process is running.
func (d *Daemon) Running() bool {
	if d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL and waits for it to be gone.
func (d *Daemon) Kill() {
	if !d.Running() {
		return
	}
	d.cmd.Process.Kill()
	<-d.done
}

// Stop asks the process to shut down (SIGTERM) and returns its exit
// error, killing it if it has not exited within limit.
func (d *Daemon) Stop(limit time.Duration) error {
	d.t.Helper()
	if !d.Running() {
		return d.err
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(limit):
		d.Kill()
		d.t.Fatalf("%s did not exit within %v of SIGTERM:\n%s", d.argv[0], limit, d.Log.String())
		return nil
	}
}

// WaitReady polls ready every 20 ms until it holds, failing the test if
// the process exits first or limit passes.
func (d *Daemon) WaitReady(limit time.Duration, ready func() bool) {
	d.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if !d.Running() {
			d.t.Fatalf("%s exited while starting (%v):\n%s", d.argv[0], d.err, d.Log.String())
		}
		if ready() {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not ready after %v:\n%s", d.argv[0], limit, d.Log.String())
		}
	}
}
