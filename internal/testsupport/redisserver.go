package testsupport

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server of a test's own, on a loopback port it
// keeps across restarts, with no persistence (as the shared test Redis
// runs): for tests that stop and restart Redis, which they must not do to
// the server other tests share.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts a private redis-server and stops it when the test ends.
// Under CI=true a missing redis-server fails the test; elsewhere it skips.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	r := &RedisServer{t: t, bin: NeedCommand(t, "redis-server"), dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a port for redis: %v", err)
	}
	r.Addr = ln.Addr().String()
	ln.Close()
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server (again) on its address and waits until it answers.
func (r *RedisServer) Start() {
	r.t.Helper()
	if r.cmd != nil {
		r.t.Fatal("redis-server already running")
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	if _, err := strconv.Atoi(port); err != nil {
		r.t.Fatalf("redis address %s: %v", r.Addr, err)
	}
	cmd := exec.Command(r.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("redis-server on %s did not answer: %v\n%s", r.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (it keeps nothing: no persistence) and waits for it
// to exit; a stopped server is left alone.
func (r *RedisServer) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// Restart stops the server and starts it again, empty.
func (r *RedisServer) Restart() {
	r.t.Helper()
	r.Stop()
	r.Start()
}

// String is the address, for messages.
func (r *RedisServer) String() string { return fmt.Sprintf("redis-server %s", r.Addr) }
