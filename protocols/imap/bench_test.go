package imap

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// benchDatabases runs f on SQLite and on MariaDB (when configured).
func benchDatabases(b *testing.B, f func(b *testing.B, db testsupport.Database)) {
	b.Run("sqlite", func(b *testing.B) { f(b, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(b)}) })
	b.Run("mysql", func(b *testing.B) { f(b, testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(b)}) })
}

// BenchmarkSelectFetch100k: SELECT of a mailbox of 100,000 messages, and
// FETCH of a 50-message range of it (ENVELOPE FLAGS) at its start and in
// its middle, over one connection.
func BenchmarkSelectFetch100k(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		h := start(b, setup{db: db})
		alice := h.env.NewUser(b, "alice@example.org", false)
		acct := h.env.Account(alice)
		storetest.Seed(b, h.env, alice.User.ID, storetest.Inbox(b, acct), 100_000)
		c := h.dial(b)
		c.login("alice@example.org")
		b.Run("select", func(b *testing.B) {
			for b.Loop() {
				must(b, c.ok("SELECT INBOX"), "* 100000 EXISTS")
			}
		})
		for _, r := range []string{"1:50", "50001:50050"} {
			b.Run("fetch-"+r+"-envelope-flags", func(b *testing.B) {
				for b.Loop() {
					if u := c.ok("FETCH " + r + " (ENVELOPE FLAGS)"); len(u) != 50 {
						b.Fatalf("FETCH: %d responses", len(u))
					}
				}
			})
		}
	})
}

// BenchmarkFetchFull: messages of 4 KB fetched whole (BODY.PEEK[]) over one
// connection, reported in messages per second.
func BenchmarkFetchFull(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		for _, secure := range []bool{false, true} {
			b.Run(fmt.Sprintf("secure=%v", secure), func(b *testing.B) {
				h := start(b, setup{db: db})
				alice := h.env.NewUser(b, fmt.Sprintf("alice%v@example.org", secure), secure)
				acct := h.env.Account(alice)
				inbox := storetest.Inbox(b, acct)
				const n = 500
				m := storetest.SizedMessage(4096)
				for i := 0; i < n; i++ {
					storetest.Append(b, acct, inbox, m, store.AppendOptions{})
				}
				c := h.dial(b)
				c.login(alice.User.Address)
				c.ok("SELECT INBOX")
				b.ResetTimer()
				start := time.Now()
				for b.Loop() {
					if u := c.ok("FETCH 1:* BODY.PEEK[]"); len(u) != n {
						b.Fatalf("FETCH: %d responses", len(u))
					}
				}
				b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	})
}

const memServerEnv = "BASALT_IMAP_MEMSERVER"

// BenchmarkIdleMemory measures the resident memory one idle logged-in
// connection costs the server: 2,000 connections each log in, SELECT
// INBOX and IDLE. The server runs in a child process (this test binary,
// re-run as TestIdleMemoryServer) so that the clients' memory is not
// counted; its VmRSS is read before and after, each time after a GC.
// The connections are plain, or upgraded with STARTTLS (which adds TLS
// and a second guard, see guard.go).
func BenchmarkIdleMemory(b *testing.B) {
	for _, mode := range []string{"plain", "starttls"} {
		b.Run(mode, func(b *testing.B) { benchIdleMemory(b, mode == "starttls") })
	}
}

func benchIdleMemory(b *testing.B, starttls bool) {
	const conns = 2000
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMemoryServer$", "-test.v")
		cmd.Env = append(os.Environ(), memServerEnv+"=1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		next := func(prefix string) string {
			for lines.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(lines.Text()), prefix); ok {
					return rest
				}
			}
			b.Fatalf("the server process ended before saying %q", prefix)
			return ""
		}
		addr := next("LISTENING ")
		// gc asks the child to collect and return memory, then reads its
		// resident set.
		gc := func() int64 {
			cmd.Process.Signal(syscall.SIGUSR1)
			next("GC DONE")
			return vmRSS(b, cmd.Process.Pid)
		}
		// A few connections first, so that code and pools the first login
		// brings in are not counted against the 2,000.
		open := func(i int) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			cl := newClient(b, c)
			if starttls {
				cl.startTLS(&tls.Config{InsecureSkipVerify: true})
				c = cl.conn
			}
			cl.login(fmt.Sprintf("user%d@example.org", i%memUsers))
			cl.ok("SELECT INBOX")
			cl.idle()
			return c
		}
		var warm []net.Conn
		for i := 0; i < 20; i++ {
			warm = append(warm, open(i))
		}
		for _, c := range warm {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
		before := gc()
		held := make([]net.Conn, 0, conns)
		for i := 0; i < conns; i++ {
			held = append(held, open(i))
		}
		after := gc()
		per := float64(after-before) / conns
		b.ReportMetric(per, "B/conn")
		b.ReportMetric(float64(before)/(1<<20), "MB-before")
		b.ReportMetric(float64(after)/(1<<20), "MB-after")
		for _, c := range held {
			c.Close()
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
}

const memUsers = 100

// TestIdleMemoryServer is BenchmarkIdleMemory's server process; it does
// nothing unless that benchmark started it.
func TestIdleMemoryServer(t *testing.T) {
	if os.Getenv(memServerEnv) == "" {
		t.Skip("run by BenchmarkIdleMemory")
	}
	h := start(t, setup{cfg: Config{MaxConnections: 10000, MaxConnectionsPerIP: 10000}})
	for i := 0; i < memUsers; i++ {
		h.user(fmt.Sprintf("user%d@example.org", i), false)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	fmt.Printf("LISTENING %s\n", h.addr)
	for sig := range sigs {
		if sig == syscall.SIGTERM {
			return
		}
		// Several rounds: each GC can halve the stacks that shrink.
		for i := 0; i < 5; i++ {
			runtime.GC()
		}
		debug.FreeOSMemory()
		fmt.Println("GC DONE")
	}
}

// vmRSS reads a process's resident set size in bytes.
func vmRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkShared100k: another user's mailbox of 100,000 messages shared
// with alice ("lrs"), against the owner's own view of it: SELECT (with
// IMAP4rev1's first unseen, which on a share is alice's own), SELECT when
// alice has seen all but the last message, and FETCH of 50 messages
// (ENVELOPE FLAGS, \Seen alice's). And LIST "" * for a user with 200
// mailboxes shared with her.
func BenchmarkShared100k(b *testing.B) {
	benchDatabases(b, func(b *testing.B, db testsupport.Database) {
		h := start(b, setup{db: db})
		h.env.NewUser(b, "alice@example.org", false)
		bob := h.env.NewUser(b, bobAddr, false)
		id := h.share(bob, "Big", "alice@example.org", "lrs")
		storetest.Seed(b, h.env, bob.User.ID, id, 100_000)
		big := fmt.Sprintf("%q", bobNS+"Big")
		o := h.dial(b)
		o.login(bobAddr)
		a := h.dial(b)
		a.login("alice@example.org")
		b.Run("select-owner", func(b *testing.B) {
			for b.Loop() {
				must(b, o.ok("SELECT Big"), "* OK [UNSEEN 1]")
			}
		})
		b.Run("select-viewer", func(b *testing.B) {
			for b.Loop() {
				must(b, a.ok("SELECT "+big), "* OK [UNSEEN 1]")
			}
		})
		b.Run("fetch-50-viewer", func(b *testing.B) {
			for b.Loop() {
				if u := a.ok("FETCH 50001:50050 (ENVELOPE FLAGS)"); len(u) != 50 {
					b.Fatalf("FETCH: %d responses", len(u))
				}
			}
		})
		a.ok("STORE 1:99999 +FLAGS.SILENT (\\Seen)")
		b.Run("select-viewer-last-unseen", func(b *testing.B) {
			for b.Loop() {
				must(b, a.ok("SELECT "+big), "* OK [UNSEEN 100000]")
			}
		})
		for i := range 200 {
			h.share(bob, fmt.Sprintf("Shared/%03d", i), "alice@example.org", "lr")
		}
		b.Run("list-200-shared", func(b *testing.B) {
			for b.Loop() {
				if u := a.ok(`LIST "" *`); len(u) < 200 {
					b.Fatalf("LIST: %d responses", len(u))
				}
			}
		})
	})
}

// bigHeaderMessage is a message whose header is about size bytes of short
// fields, all of one name ("X-F: v\r\n"), with a Subject at its end: what
// a sender can plant to make every client's header fetch costly.
// bigHeaders lets messages with headers past the limits in (stored
// before the limits were lowered, or under an operator's higher ones):
// what is stored must still be fetched in time linear in its size.
var bigHeaders = storetest.Options{Header: store.HeaderLimits{MaxBytes: -1, MaxFields: -1}}

func bigHeaderMessage(size int) []byte {
	var b strings.Builder
	b.WriteString("From: bob@example.org\r\nTo: alice@example.org\r\n")
	for b.Len() < size {
		b.WriteString("X-F: v\r\n")
	}
	b.WriteString("Subject: big header\r\n\r\nbody\r\n")
	return []byte(b.String())
}

// BenchmarkFetchHeaderFields: BODY.PEEK[HEADER.FIELDS (...)] of a message
// with a 390 KB header of short fields (about 50,000 of them), one FETCH
// per op over one connection. The header is filtered in one pass, so a
// fetch costs what reading the header costs.
func BenchmarkFetchHeaderFields(b *testing.B) {
	h := start(b, setup{opts: bigHeaders})
	alice := h.env.NewUser(b, "alice@example.org", false)
	acct := h.env.Account(alice)
	storetest.Append(b, acct, storetest.Inbox(b, acct), bigHeaderMessage(390<<10), store.AppendOptions{})
	c := h.dial(b)
	c.login("alice@example.org")
	c.ok("SELECT INBOX")
	for _, items := range []string{"BODY.PEEK[HEADER.FIELDS (Subject From)]", "BODY.PEEK[HEADER.FIELDS.NOT (Subject From)]"} {
		b.Run(strings.Fields(strings.Trim(items, "BODY.PEEK["))[0], func(b *testing.B) {
			for b.Loop() {
				must(b, c.ok("FETCH 1 "+items), "* 1 FETCH")
			}
		})
	}
}
