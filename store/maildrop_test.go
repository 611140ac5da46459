package store_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestMaildrop: the INBOX only, in UID order, each message's size that of
// the wire form's stream, for plain and secure (encrypted) users alike,
// and the same from the cache the second time.
func TestMaildrop(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		for _, secure := range []bool{false, true} {
			addr := map[bool]string{false: "plain@example.org", true: "secure@example.org"}[secure]
			a := e.Account(e.NewUser(t, addr, secure))
			inbox := storetest.Inbox(t, a)
			raws := []string{
				string(storetest.Message("x@example.org", addr, "crlf", "hello")),
				"Subject: bare\n\nline one\n.dot line\nno end",
				string(storetest.SizedMessage(100 << 10)),
			}
			for _, r := range raws {
				storetest.Append(t, a, inbox, []byte(r), store.AppendOptions{})
			}
			storetest.Append(t, a, storetest.MailboxID(t, a, "Sent"), []byte("Subject: elsewhere\r\n\r\nx\r\n"), store.AppendOptions{})

			md, err := a.Maildrop(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mb, err := a.Mailbox(ctx, inbox)
			if err != nil {
				t.Fatal(err)
			}
			if md.MailboxID != inbox || md.UIDValidity != mb.UIDValidity || len(md.Messages) != len(raws) {
				t.Fatalf("maildrop = mailbox %d uidvalidity %d, %d messages; want %d %d %d",
					md.MailboxID, md.UIDValidity, len(md.Messages), inbox, mb.UIDValidity, len(raws))
			}
			for i, m := range md.Messages {
				if i > 0 && m.UID <= md.Messages[i-1].UID {
					t.Fatalf("not in UID order: %+v", md.Messages)
				}
				rc, err := a.Open(ctx, m.ID)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				want := strings.ReplaceAll(strings.ReplaceAll(raws[i], "\r\n", "\n"), "\n", "\r\n")
				if !strings.HasSuffix(want, "\r\n") {
					want += "\r\n"
				}
				if string(got) != raws[i] {
					t.Fatalf("secure %v message %d: opened %.60q, stored %.60q", secure, i, got, raws[i])
				}
				if m.Size != int64(len(want)) {
					t.Fatalf("secure %v message %d: size %d, want %d", secure, i, m.Size, len(want))
				}
			}
			again, err := a.Maildrop(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range again.Messages {
				if again.Messages[i] != md.Messages[i] {
					t.Fatalf("second listing %+v, first %+v", again.Messages[i], md.Messages[i])
				}
			}
		}
	})
}

// TestMaildropSizeNeedsKey: a secure user's maildrop cannot be sized
// without the key, rather than being sized wrongly.
func TestMaildropSizeNeedsKey(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	auth := e.NewUser(t, "sec@example.org", true)
	a := e.Account(auth)
	storetest.Append(t, a, storetest.Inbox(t, a), []byte("Subject: s\n\nbody\n"), store.AppendOptions{})
	if _, err := e.Store.Account(auth.User.ID, nil).Maildrop(context.Background()); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("maildrop without the key: %v, want ErrLocked", err)
	}
}

// TestLockMaildrop: one session per maildrop, on one node or on two
// sharing a database; the lock outlives a Redis restart; a crashed
// holder's lease runs out; a holder whose lock goes is told, at once
// when it checks.
func TestLockMaildrop(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		rs := testsupport.StartRedis(t)
		o := storetest.Options{RedisAddr: rs.Addr, RedisPrefix: "t:"}
		e := storetest.Open(t, db, o)
		o.BlobDir = e.BlobDir
		nodes := []*store.Store{e.Store, storetest.Open(t, db, o).Store}
		uid := e.NewUser(t, "drop@example.org", false).User.ID

		l, err := nodes[0].LockMaildrop(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range nodes {
			if _, err := n.LockMaildrop(ctx, uid); !errors.Is(err, store.ErrInUse) {
				t.Fatalf("second lock on node %d: %v, want ErrInUse", i, err)
			}
		}
		// Redis restarted empty: the lock is not in it, so nothing is freed.
		rs.Restart()
		if _, err := nodes[1].LockMaildrop(ctx, uid); !errors.Is(err, store.ErrInUse) {
			t.Fatalf("lock after a Redis restart: %v, want ErrInUse", err)
		}
		if err := l.Check(ctx); err != nil {
			t.Fatalf("holder's check after a Redis restart: %v", err)
		}
		other, err := nodes[1].LockMaildrop(ctx, uid+1)
		if err != nil {
			t.Fatalf("another user's maildrop: %v", err)
		}
		other.Unlock()
		l.Unlock()
		l.Unlock()
		l2, err := nodes[1].LockMaildrop(ctx, uid)
		if err != nil {
			t.Fatalf("lock after unlock: %v", err)
		}
		l2.Unlock()

		// A live holder keeps its lock past its lease by renewing it; a
		// crashed one loses it when the lease runs out.
		ttl, every := 300*time.Millisecond, 50*time.Millisecond
		live, err := store.LockMaildropFor(nodes[0], ctx, uid, ttl, every)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * ttl)
		if _, err := nodes[1].LockMaildrop(ctx, uid); !errors.Is(err, store.ErrInUse) {
			t.Fatalf("lock while a live holder renews: %v, want ErrInUse", err)
		}
		live.Abandon()
		abandoned := time.Now()
		testsupport.WaitFor(t, 10*time.Second, "a crashed holder's lease to run out", func() bool {
			l3, err := nodes[1].LockMaildrop(ctx, uid)
			if err == nil {
				l3.Unlock()
				return true
			}
			if !errors.Is(err, store.ErrInUse) {
				t.Fatal(err)
			}
			return false
		})
		if d := time.Since(abandoned); d > ttl+time.Second {
			t.Errorf("a crashed holder's lock took %v to free, lease %v", d, ttl)
		}

		// A holder whose lock went behind its back learns it at once from
		// Check, and at its next renewal from Lost.
		gone, err := store.LockMaildropFor(nodes[0], ctx, uid, time.Minute, every)
		if err != nil {
			t.Fatal(err)
		}
		defer gone.Unlock()
		if err := gone.Steal(ctx); err != nil {
			t.Fatal(err)
		}
		thief, err := nodes[1].LockMaildrop(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		defer thief.Unlock()
		if err := gone.Check(ctx); !errors.Is(err, store.ErrLockLost) {
			t.Fatalf("Check after the lock went: %v, want ErrLockLost", err)
		}
		select {
		case <-gone.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("Lost not closed after the lock went")
		}
		// Its Unlock must not release the new holder's lock.
		gone.Unlock()
		if _, err := nodes[0].LockMaildrop(ctx, uid); !errors.Is(err, store.ErrInUse) {
			t.Fatalf("after the old holder's Unlock: %v, want ErrInUse", err)
		}
		if err := thief.Check(ctx); err != nil {
			t.Fatalf("new holder's check: %v", err)
		}
	})
}

// BenchmarkMaildrop measures a POP3 login's listing of a 1000-message
// INBOX: cold, when every message must be read once to learn its size
// on the wire, and warm, when the sizes are in the cache.
func BenchmarkMaildrop(b *testing.B) {
	db := testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(b)}
	e := storetest.Open(b, db, storetest.Options{})
	auth := e.NewUser(b, "bench@example.org", false)
	a := e.Account(auth)
	inbox := storetest.Inbox(b, a)
	const n = 1000
	msg := storetest.SizedMessage(4 << 10)
	for range n {
		storetest.Append(b, a, inbox, msg, store.AppendOptions{})
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			fresh := storetest.Open(b, db, storetest.Options{BlobDir: e.BlobDir}) // an empty cache
			acct := fresh.Store.Account(auth.User.ID, nil)
			b.StartTimer()
			if md, err := acct.Maildrop(context.Background()); err != nil || len(md.Messages) != n {
				b.Fatalf("%v %v", md, err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if md, err := a.Maildrop(context.Background()); err != nil || len(md.Messages) != n {
				b.Fatalf("%v %v", md, err)
			}
		}
	})
}

// TestMaildropSizesKept: a message is read to size it once, the first
// time it is listed; later listings, on any node and after a restart
// (a fresh in-process cache), take the size from its row, and so work
// even without the message files.
func TestMaildropSizesKept(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		auth := e.NewUser(t, "bob@example.org", false)
		a := e.Account(auth)
		inbox := storetest.Inbox(t, a)
		// Above the size kept in the database, so that each is a file;
		// one with bare LFs, whose size on the wire is larger.
		bare := strings.ReplaceAll(string(storetest.SizedMessage(200<<10)), "\r\n", "\n")
		for _, raw := range []string{bare, string(storetest.SizedMessage(300 << 10))} {
			storetest.Append(t, a, inbox, []byte(raw), store.AppendOptions{})
		}
		first, err := a.Maildrop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wire := strings.ReplaceAll(bare, "\n", "\r\n")
		if !strings.HasSuffix(wire, "\r\n") {
			wire += "\r\n"
		}
		if len(first.Messages) != 2 || first.Messages[0].Size != int64(len(wire)) || wire == bare {
			t.Fatalf("first listing %+v", first.Messages)
		}
		// Another node over the same database, with no message files and
		// nothing in its cache.
		other := storetest.Open(t, e.Database, storetest.Options{BlobDir: t.TempDir()})
		again, err := other.Store.Account(auth.User.ID, nil).Maildrop(ctx)
		if err != nil {
			t.Fatalf("listing without the message files: %v", err)
		}
		for i := range first.Messages {
			if again.Messages[i] != first.Messages[i] {
				t.Errorf("message %d listed %+v, first %+v", i, again.Messages[i], first.Messages[i])
			}
		}
	})
}
