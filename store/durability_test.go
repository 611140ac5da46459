package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/outbound"
)

// The crash child is this test binary run again with these variables set.
const (
	envCrashDriver = "BASALT_CRASH_DRIVER"
	envCrashDSN    = "BASALT_CRASH_DSN"
	envCrashBlobs  = "BASALT_CRASH_BLOBS"
	envCrashUser   = "BASALT_CRASH_USER"
)

// TestCrashChild is not a test of its own: run by TestCrashBetweenBlobAndCommit
// in a child process, it appends a message and kills itself with SIGKILL
// right after the message file is fsynced and before the rows commit.
func TestCrashChild(t *testing.T) {
	driver := os.Getenv(envCrashDriver)
	if driver == "" {
		t.Skip("run only as the child of TestCrashBetweenBlobAndCommit")
	}
	e := storetest.Open(t, testsupport.Database{Driver: driver, DSN: os.Getenv(envCrashDSN)}, storetest.Options{BlobDir: os.Getenv(envCrashBlobs)})
	uid, _ := strconv.ParseInt(os.Getenv(envCrashUser), 10, 64)
	store.SetAfterBlobWrite(e.Store, func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) })
	a := e.Store.Account(uid, nil)
	inbox := storetest.Inbox(t, a)
	// Larger than what is kept in the database: the case with a file.
	a.Append(context.Background(), inbox, storetest.SizedMessage(store.DefaultInlineMax+1), store.AppendOptions{})
	t.Fatal("the process survived its own SIGKILL")
}

// TestCrashBetweenBlobAndCommit kills a real process between the blob
// write and the commit: no half message may be visible, the counts must not
// move, and the orphan file must be swept.
func TestCrashBetweenBlobAndCommit(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		kept := storetest.Append(t, a, inbox, storetest.Message("x@example.org", "alice@example.org", "kept", "whole"), store.AppendOptions{})

		for i := range 3 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashDriver+"="+db.Driver, envCrashDSN+"="+db.DSN,
				envCrashBlobs+"="+e.BlobDir, envCrashUser+"="+strconv.FormatInt(a.UserID(), 10))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child %d did not die by SIGKILL: %v\n%s", i, err, out)
			}
		}
		msgs, err := a.List(ctx, inbox, store.ListQuery{WithInfo: true})
		if err != nil || len(msgs) != 1 || msgs[0].ID != kept.ID {
			t.Fatalf("after crashes the inbox holds %d messages (%v), want only the one committed", len(msgs), err)
		}
		checkCounts(t, e, a)
		mb, _ := a.Mailbox(ctx, inbox)
		if mb.UIDNext != 2 {
			t.Fatalf("crashed appends consumed UIDs: uidnext %d", mb.UIDNext)
		}
		if n := countBlobs(t, e); n != 4 {
			t.Fatalf("%d files before the sweep, want the kept one and 3 orphans", n)
		}
		// A grace period protects files whose append may still commit.
		if n, err := e.Store.SweepOrphans(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("sweep within grace removed %d (%v)", n, err)
		}
		n, err := e.Store.SweepOrphans(ctx, 0)
		if err != nil || n != 3 {
			t.Fatalf("sweep removed %d (%v), want 3", n, err)
		}
		if n := countBlobs(t, e); n != 1 {
			t.Fatalf("%d files after the sweep, want 1", n)
		}
		if string(readAll(t, a, kept.ID)) == "" {
			t.Fatal("the sweep took a committed message")
		}
		// After the crash the store goes on as before.
		next := storetest.Append(t, a, inbox, storetest.Message("x@example.org", "alice@example.org", "after", "ok"), store.AppendOptions{})
		if next.UID != 2 {
			t.Fatalf("next UID %d, want 2", next.UID)
		}
	})
}

// TestSecureCanary: a secure user's message body, looked for as a canary
// string, appears nowhere under the data directory, in the database or in
// Redis, while the user can still read it.
func TestSecureCanary(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		addr, prefix := testsupport.Redis(t)
		e := storetest.Open(t, db, storetest.Options{RedisAddr: addr, RedisPrefix: prefix})
		auth := e.NewUser(t, "sec@example.org", true)
		a := e.Account(auth)
		canary := "CANARY-" + testsupport.RandomName("")
		raw := storetest.Message("x@example.org", "sec@example.org", "subject "+canary, "the body says "+canary)
		res := storetest.Append(t, e.Store.Account(auth.User.ID, nil), storetest.Inbox(t, a), raw, store.AppendOptions{Inbound: true})
		copied, err := a.Copy(ctx, storetest.Inbox(t, a), nil, storetest.MailboxID(t, a, "Archive"))
		if err != nil || len(copied.Pairs) != 1 {
			t.Fatalf("copy: %v", err)
		}
		if !bytes.Contains(readAll(t, a, res.ID), []byte(canary)) {
			t.Fatal("the user cannot read their own message")
		}
		// A delivery that must wait in the outbound queue (a retry after a
		// full mailbox, a report of failures to a secure sender) is queued
		// sealed to the user's key, and delivered from there as it is: one
		// entry stays queued, one is delivered.
		queue := outbound.New(e.Store)
		for _, subj := range []string{"queued", "delivered from the queue"} {
			qraw := storetest.Message("x@example.org", "sec@example.org", subj+" "+canary, subj+": "+canary)
			if _, err := queue.Enqueue(ctx, "x@example.org", []string{"sec@example.org"}, qraw); err != nil {
				t.Fatal(err)
			}
		}
		claimed, err := queue.Claim(ctx, 10, time.Minute)
		if err != nil || len(claimed) != 2 || claimed[0].SealedUser != auth.User.ID || claimed[1].SealedUser != auth.User.ID {
			t.Fatalf("queue entries for a secure user: %+v, %v", claimed, err)
		}
		fromQueue, err := queue.DeliverSealed(ctx, &claimed[1])
		if err != nil {
			t.Fatalf("deliver a sealed entry: %v", err)
		}
		if got := readAll(t, a, fromQueue.ID); !bytes.Contains(got, []byte("delivered from the queue: "+canary)) {
			t.Fatalf("the user cannot read the message delivered from the queue: %.200q", got)
		}
		// Reading must not have left plaintext behind either.
		if _, err := a.List(ctx, storetest.Inbox(t, a), store.ListQuery{WithInfo: true}); err != nil {
			t.Fatal(err)
		}

		needle := []byte(canary)
		for _, where := range e.FindPlaintext(t, needle) {
			t.Errorf("canary found in %s", where)
		}
		rc := redis.NewClient(&redis.Options{Addr: addr})
		defer rc.Close()
		keys, err := rc.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Fatal("nothing in Redis: the test is not looking where the data is")
		}
		for _, k := range keys {
			v, err := rc.Dump(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains([]byte(v), needle) {
				t.Errorf("canary found in Redis key %s", k)
			}
		}
	})
}

// TestTwoNodes: two stores sharing one database and one Redis see each
// other's changes: events cross, and a cached user read on one node is
// refreshed when the other changes it.
func TestTwoNodes(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		addr, prefix := testsupport.Redis(t)
		n1 := storetest.Open(t, db, storetest.Options{RedisAddr: addr, RedisPrefix: prefix})
		n2 := storetest.Open(t, db, storetest.Options{RedisAddr: addr, RedisPrefix: prefix, BlobDir: n1.BlobDir})
		auth := n1.NewUser(t, "alice@example.org", false)
		// Warm node 2's cache.
		if _, err := n2.Store.UserByID(ctx, auth.User.ID); err != nil {
			t.Fatal(err)
		}
		sub, err := n2.Store.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		a1 := n1.Account(auth)
		res := storetest.Append(t, a1, storetest.Inbox(t, a1), storetest.Message("a@x.test", "b@x.test", "s", "b"), store.AppendOptions{})
		select {
		case ev := <-sub.C():
			if ev.Kind != "append" || ev.UID != res.UID {
				t.Fatalf("node 2 got %+v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("node 2 got no event from node 1")
		}
		u, err := n2.Store.UserByID(ctx, auth.User.ID)
		if err != nil || u.MessageCount != 1 {
			t.Fatalf("node 2 read a stale user: %+v, %v", u, err)
		}
		// Node 2 reads the message node 1 wrote.
		if string(readAll(t, n2.Store.Account(auth.User.ID, nil), res.ID)) == "" {
			t.Fatal("node 2 cannot read node 1's message")
		}
	})
}

// TestMySQLReconnect: connections the server drops are replaced without a
// restart.
func TestMySQLReconnect(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(t)}, storetest.Options{})
	ctx := context.Background()
	a := e.Account(e.NewUser(t, "alice@example.org", false))
	inbox := storetest.Inbox(t, a)
	admin := sqlx.NewDb(testsupport.MySQLAdmin(t), "mysql")
	// The driver logs each dead connection it drops; here that is the point.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	var dbname string
	if err := e.DB.GetContext(ctx, &dbname, "SELECT DATABASE()"); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var ids []int64
		if err := admin.SelectContext(ctx, &ids, "SELECT id FROM information_schema.processlist WHERE db = ?", dbname); err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			t.Fatal("no pooled connections to kill: the test would prove nothing")
		}
		for _, id := range ids {
			admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id))
		}
		time.Sleep(50 * time.Millisecond) // let the server's close reach our sockets
		if _, err := a.Append(ctx, inbox, storetest.Message("a@x.test", "b@x.test", "after kill", "b"), store.AppendOptions{}); err != nil {
			t.Fatalf("round %d: append after the server dropped our connections: %v", round, err)
		}
	}
	if ms, err := a.List(ctx, inbox, store.ListQuery{}); err != nil || len(ms) != 3 {
		t.Fatalf("after reconnects: %d messages, %v", len(ms), err)
	}
}
