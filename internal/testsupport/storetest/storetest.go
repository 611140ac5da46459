// Package storetest builds real stores for tests: a migrated database
// (SQLite file or a private MariaDB database), message files in a
// temporary directory, the in-process cache or a private Redis prefix,
// and the session service over them; plus users and messages to fill
// them with. It sits apart from testsupport because it imports store,
// which testsupport's own users may not.
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"basalt/crypt"
	"basalt/internal/testsupport"
	"basalt/session"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/cache"
	"basalt/store/sqldb"
)

// Env is a store with everything under it.
type Env struct {
	Store    *store.Store
	Session  *session.Service
	DB       *sqldb.DB
	Blobs    *blob.Store
	Cache    cache.Cache
	Database testsupport.Database
	BlobDir  string
}

// Options vary an Env.
type Options struct {
	// Redis uses the test Redis under this prefix instead of the
	// in-process cache; two Envs with the same prefix are two nodes.
	RedisAddr, RedisPrefix string
	// BlobDir reuses a blob directory (another node, or a reopen).
	BlobDir string
	// MorePartitions are names of more blob partitions, each in a
	// directory of its own beside BlobDir's.
	MorePartitions []string
	Limits         store.Limits
	// Header is store.Config.Header: zero, the defaults.
	Header  store.HeaderLimits
	Session session.Config
	// InlineMax is store.Config.InlineMax: 0 the default, negative keeps
	// every message in a file.
	InlineMax int64
	// Search is store.Config.Search: zero, the defaults.
	Search store.SearchTuning
	// WrapCache, when set, stands between the store and its cache: a
	// test's way to make the cache or its bus fail on cue.
	WrapCache func(cache.Cache) cache.Cache
}

// Open builds an Env on db; everything is closed when the test ends.
func Open(t testing.TB, db testsupport.Database, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	sdb, err := sqldb.Open(ctx, sqldb.Config{Driver: db.Driver, DSN: db.DSN})
	if err != nil {
		t.Fatalf("open %s: %v", db.Driver, err)
	}
	t.Cleanup(func() { sdb.Close() })
	if _, err := sdb.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", db.Driver, err)
	}
	dir := o.BlobDir
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "blobs")
	}
	parts := []blob.Partition{{Name: "default", Path: dir}}
	for _, name := range o.MorePartitions {
		parts = append(parts, blob.Partition{Name: name, Path: dir + "-" + name})
	}
	blobs, err := blob.New(blob.Options{Partitions: parts})
	if err != nil {
		t.Fatalf("open blob store: %v", err)
	}
	var c cache.Cache
	if o.RedisAddr != "" {
		c, err = cache.NewRedis(ctx, cache.RedisOptions{Addr: o.RedisAddr, Prefix: o.RedisPrefix})
		if err != nil {
			t.Fatalf("open redis: %v", err)
		}
	} else {
		c = cache.NewMemory(cache.MemoryOptions{})
	}
	t.Cleanup(func() { c.Close() })
	if o.WrapCache != nil {
		c = o.WrapCache(c)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.New(store.Config{DB: sdb, Blobs: blobs, Cache: c, Logger: log, Limits: o.Limits, Header: o.Header, InlineMax: o.InlineMax, Search: o.Search})
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	scfg := o.Session
	if scfg.KDF == (crypt.KDFParams{}) {
		scfg.KDF = crypt.TestKDF()
	}
	ss := session.New(st, c, scfg, log)
	t.Cleanup(ss.Close)
	return &Env{Store: st, Session: ss, DB: sdb, Blobs: blobs, Cache: c, Database: db, BlobDir: dir}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Password is the password of every user NewUser makes.
const Password = "correct horse battery staple"

// NewUser creates addr (and its domain when missing) and logs it in,
// returning the authenticated user.
func (e *Env) NewUser(t testing.TB, addr string, secure bool) *session.Auth {
	t.Helper()
	ctx := context.Background()
	_, domain, _ := strings.Cut(addr, "@")
	if _, err := e.Store.DomainByName(ctx, domain); err != nil {
		if _, err := e.Store.AddDomain(ctx, domain); err != nil {
			t.Fatalf("add domain %s: %v", domain, err)
		}
	}
	if _, err := e.Session.CreateUser(ctx, session.NewUser{Address: addr, Password: Password, Secure: secure}); err != nil {
		t.Fatalf("create user %s: %v", addr, err)
	}
	auth, err := e.Session.Authenticate(ctx, addr, Password, "127.0.0.1")
	if err != nil {
		t.Fatalf("log in %s: %v", addr, err)
	}
	return auth
}

// Account returns auth's mail.
func (e *Env) Account(auth *session.Auth) *store.Account { return auth.Account(e.Store) }

// Inbox returns the id of the account's INBOX.
func Inbox(t testing.TB, a *store.Account) int64 {
	t.Helper()
	return MailboxID(t, a, "INBOX")
}

// MailboxID returns the id of one of the account's mailboxes.
func MailboxID(t testing.TB, a *store.Account, name string) int64 {
	t.Helper()
	m, err := a.MailboxByName(context.Background(), name)
	if err != nil {
		t.Fatalf("mailbox %s: %v", name, err)
	}
	return m.ID
}

// Message returns a plain-text RFC 5322 message.
func Message(from, to, subject, body string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@test>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, to, subject, time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).Format(time.RFC1123Z),
		testsupport.RandomName("m"), strings.ReplaceAll(body, "\n", "\r\n")))
}

// SizedMessage returns a message of about n bytes.
func SizedMessage(n int) []byte {
	m := Message("a@example.org", "b@example.org", "sized", "")
	line := strings.Repeat("x", 76) + "\r\n"
	var b strings.Builder
	b.Write(m)
	for b.Len() < n {
		b.WriteString(line)
	}
	return []byte(b.String()[:n])
}

// Append appends msg to the account's mailbox and fails the test on error.
func Append(t testing.TB, a *store.Account, mailboxID int64, msg []byte, o store.AppendOptions) store.Appended {
	t.Helper()
	res, err := a.Append(context.Background(), mailboxID, msg, o)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// Messages returns the raw messages in one of the account's mailboxes, in
// UID order.
func Messages(t testing.TB, a *store.Account, mailbox string) []string {
	t.Helper()
	ctx := context.Background()
	msgs, err := a.List(ctx, MailboxID(t, a, mailbox), store.ListQuery{})
	if err != nil {
		t.Fatalf("list %s: %v", mailbox, err)
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		rc, err := a.Open(ctx, m.ID)
		if err != nil {
			t.Fatalf("open message %d: %v", m.ID, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read message %d: %v", m.ID, err)
		}
		out = append(out, string(b))
	}
	return out
}
