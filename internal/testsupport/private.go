package testsupport

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A private server is one the test owns alone, so that it may stop and
// start it (a database outage, a cache restart) without disturbing the
// shared servers of scripts/testenv.sh. It runs as a child process with
// its state in the test's temporary directory, on a loopback port picked
// once: a restart comes back on the same address, as a restarted service
// does in production. The commands are scripts/testenv.sh's.

// freePorts is where FreePort looks next: one test binary's calls go up
// from a random start, so that it never hands out a port twice, and two
// binaries running at once rarely try the same ones.
var freePorts atomic.Int64

// FreePort returns a loopback address with a port that was free a moment
// ago, for a server process to listen on. It is taken from below the
// kernel's range of ephemeral ports: a port from that range (what a
// listener on port 0 gets) may be given, before the server binds it, to
// the outgoing connection of any test running beside it, which made a
// clean CI run fail with "address already in use".
func FreePort(t testing.TB) string {
	t.Helper()
	low := 32768 // Linux's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil {
			low = lo
		}
	}
	freePorts.CompareAndSwap(0, 1+rand.Int64N(10000))
	for range 100 {
		if low <= 11024 {
			break // no room below the range: the kernel's choice it is
		}
		port := low - 10000 + int(freePorts.Add(1)%10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		l.Close()
		return l.Addr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// child is one run of a server process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

func startChild(t testing.TB, name string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(name, args...), done: make(chan struct{}), log: &bytes.Buffer{}}
	c.cmd.Stdout = c.log
	c.cmd.Stderr = c.log
	// Its own process group, so a terminal's ^C reaches the test only and
	// the test's cleanup stops the server; and killed with the test, when
	// the test dies before its cleanup runs (a closed pipe, a timeout).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	return c
}

// stop sends sig and waits up to limit for the process to exit, then
// kills it.
func (c *child) stop(sig syscall.Signal, limit time.Duration) {
	if c == nil {
		return
	}
	c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(limit):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitReady polls ready every 50 ms for up to limit, failing the test if
// the child exits or ready never holds.
func waitReady(t testing.TB, what string, c *child, limit time.Duration, ready func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		if ready() {
			return
		}
		if c.exited() {
			t.Fatalf("%s exited while starting:\n%s", what, c.log.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v:\n%s", what, limit, c.log.String())
		}
	}
}

// PrivateMariaDB is a MariaDB server of the test's own.
type PrivateMariaDB struct {
	t    testing.TB
	dir  string
	Addr string
	bin  string
	c    *child
}

// StartMariaDB initialises a data directory and starts a private MariaDB
// on a free port; it is stopped when the test ends. Missing binaries fail
// the test under CI=true and skip it elsewhere.
func StartMariaDB(t testing.TB) *PrivateMariaDB {
	t.Helper()
	bin := ""
	for _, n := range []string{"mariadbd", "mysqld"} {
		if p, err := exec.LookPath(n); err == nil {
			bin = p
			break
		}
		if p := filepath.Join("/usr/sbin", n); isExec(p) {
			bin = p
			break
		}
	}
	if bin == "" {
		NeedCommand(t, "mariadbd") // fails or skips
	}
	install := NeedCommand(t, "mariadb-install-db")
	m := &PrivateMariaDB{t: t, dir: t.TempDir(), Addr: FreePort(t), bin: bin}
	cmd := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"), "--user="+currentUser(),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.Start()
	t.Cleanup(func() { m.c.stop(syscall.SIGTERM, 30*time.Second) })
	return m
}

// DSN is the DSN of database name (created by CreateDatabase) as root.
func (m *PrivateMariaDB) DSN(name string) string {
	return fmt.Sprintf("root@tcp(%s)/%s", m.Addr, name)
}

// CreateDatabase creates an empty database and returns its DSN.
func (m *PrivateMariaDB) CreateDatabase(name string) string {
	m.t.Helper()
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		m.t.Fatalf("create database %s: %v", name, err)
	}
	return m.DSN(name)
}

// Start starts the server (again) and waits until it answers.
func (m *PrivateMariaDB) Start() {
	m.t.Helper()
	_, port, _ := net.SplitHostPort(m.Addr)
	m.c = startChild(m.t, m.bin, "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"), "--user="+currentUser(),
		"--bind-address=127.0.0.1", "--port="+port, "--socket="+filepath.Join(m.dir, "mysql.sock"),
		"--pid-file="+filepath.Join(m.dir, "mysql.pid"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--max-connections=500", "--innodb-flush-log-at-trx-commit=1",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin")
	waitReady(m.t, "MariaDB", m.c, 60*time.Second, func() bool {
		db, err := sql.Open("mysql", m.DSN(""))
		if err != nil {
			return false
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return db.PingContext(ctx) == nil
	})
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit:
// every connection to it is closed, and new ones are refused.
func (m *PrivateMariaDB) Stop() {
	m.c.stop(syscall.SIGTERM, 60*time.Second)
}

// Restart stops the server and starts it again on the same port.
func (m *PrivateMariaDB) Restart() {
	m.t.Helper()
	m.Stop()
	m.Start()
}

// PrivateRedis is a Redis server of the test's own, without persistence
// (as scripts/testenv.sh runs it): a restart loses every key.
type PrivateRedis struct {
	t    testing.TB
	dir  string
	Addr string
	bin  string
	c    *child
}

// StartRedis starts a private Redis on a free port; it is stopped when
// the test ends.
func StartRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	r := &PrivateRedis{t: t, dir: t.TempDir(), Addr: FreePort(t), bin: NeedCommand(t, "redis-server")}
	r.Start()
	t.Cleanup(func() { r.c.stop(syscall.SIGTERM, 10*time.Second) })
	return r
}

// Start starts the server (again), empty, and waits until it answers.
func (r *PrivateRedis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.c = startChild(r.t, r.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no")
	waitReady(r.t, "Redis", r.c, 30*time.Second, func() bool {
		c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// Stop shuts the server down and waits for it to exit.
func (r *PrivateRedis) Stop() {
	r.c.stop(syscall.SIGTERM, 10*time.Second)
}

// Restart stops the server and starts it again, empty, on the same port.
func (r *PrivateRedis) Restart() {
	r.t.Helper()
	r.Stop()
	r.Start()
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// currentUser is the name mariadbd runs as: the test's own user, as
// scripts/testenv.sh does with `id -un`.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
