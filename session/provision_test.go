package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// sha512Vector is glibc's crypt("Hello world!", "$6$saltstring").
const sha512Vector = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"

func storedHash(t *testing.T, e *storetest.Env, addr string) string {
	t.Helper()
	c, err := e.Store.Credentials(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return c.PasswordHash
}

// TestImportedHashUpgraded: a user imported with a bcrypt or a
// SHA-512-crypt hash logs in with its password; a wrong password leaves
// the hash as it is; the first good login replaces it with argon2id,
// which the next login uses. A secure user cannot be imported.
func TestImportedHashUpgraded(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{Session: session.Config{LoginCache: -1}})
		if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		bc, err := bcrypt.GenerateFromPassword([]byte("Hello world!"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ addr, hash string }{
			{"bc@example.org", string(bc)},
			{"sha@example.org", sha512Vector},
		} {
			if _, err := e.Session.ImportUser(ctx, session.ImportedUser{Address: tc.addr, Hash: tc.hash}); err != nil {
				t.Fatalf("import %s: %v", tc.addr, err)
			}
			if _, err := e.Session.For(store.ProtoIMAP).Authenticate(ctx, tc.addr, "Hello world?", "127.0.0.1"); !errors.Is(err, session.ErrAuthFailed) {
				t.Fatalf("%s: wrong password: %v", tc.addr, err)
			}
			if h := storedHash(t, e, tc.addr); h != tc.hash {
				t.Fatalf("%s: a failed login changed the hash to %q", tc.addr, h)
			}
			if _, err := e.Session.For(store.ProtoIMAP).Authenticate(ctx, tc.addr, "Hello world!", "127.0.0.1"); err != nil {
				t.Fatalf("%s: login with the imported hash: %v", tc.addr, err)
			}
			h := storedHash(t, e, tc.addr)
			if !strings.HasPrefix(h, "$argon2id$") {
				t.Fatalf("%s: hash after login %q, want argon2id", tc.addr, h)
			}
			if _, err := e.Session.For(store.ProtoPOP3).Authenticate(ctx, tc.addr, "Hello world!", "127.0.0.1"); err != nil {
				t.Fatalf("%s: login with the upgraded hash: %v", tc.addr, err)
			}
			if storedHash(t, e, tc.addr) != h {
				t.Fatalf("%s: an argon2id hash was replaced again", tc.addr)
			}
		}
		_, err = e.Session.ImportUser(ctx, session.ImportedUser{Address: "sec@example.org", Hash: sha512Vector, Secure: true})
		if !errors.Is(err, session.ErrSecureImport) || !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("secure import: %v", err)
		}
		if _, err := e.Session.ImportUser(ctx, session.ImportedUser{Address: "md5@example.org", Hash: "$1$salt$abcdefghijklmnopqrstuv"}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("MD5-crypt import: %v", err)
		}
		if _, err := e.Store.UserByAddress(ctx, "sec@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused import made a user: %v", err)
		}
	})
}

// TestProtocolAccessAndSuspension: a protocol denied refuses logins over
// it only; a suspended user logs in nowhere (and its web session ends)
// until unsuspended; both are told apart from a wrong password.
func TestProtocolAccessAndSuspension(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{})
	auth := e.NewUser(t, "u@example.org", false)
	id := auth.User.ID
	imap, pop := e.Session.For(store.ProtoIMAP), e.Session.For(store.ProtoPOP3)
	token, _, err := e.Session.StartWeb(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.SetDeniedProtocols(ctx, id, store.ProtocolSet(0).With(store.ProtoIMAP, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := imap.Authenticate(ctx, "u@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrProtocolDenied) || !errors.Is(err, session.ErrUserLocked) {
		t.Fatalf("imap denied: %v", err)
	}
	if _, err := pop.Authenticate(ctx, "u@example.org", storetest.Password, "127.0.0.1"); err != nil {
		t.Fatalf("pop3 still allowed: %v", err)
	}
	if _, err := e.Session.Web(ctx, token); err != nil {
		t.Fatalf("web session with only imap denied: %v", err)
	}
	// Webmail denied: the web session ends, and no new web login.
	if err := e.Store.SetDeniedProtocols(ctx, id, store.ProtocolSet(0).With(store.ProtoWebmail, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session.Web(ctx, token); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("web session with webmail denied: %v", err)
	}
	if _, err := e.Session.Authenticate(ctx, "u@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrProtocolDenied) {
		t.Fatalf("web login with webmail denied: %v", err)
	}
	if err := e.Store.SetDeniedProtocols(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if token, _, err = e.Session.StartWeb(ctx, auth); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.Suspend(ctx, id, "unpaid"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []interface {
		Authenticate(ctx context.Context, login, password, ip string) (*session.Auth, error)
	}{imap, pop, e.Session.For(store.ProtoSMTP), e.Session} {
		if _, err := f.Authenticate(ctx, "u@example.org", storetest.Password, "127.0.0.1"); !errors.Is(err, session.ErrSuspended) {
			t.Fatalf("suspended login: %v", err)
		}
	}
	if _, err := e.Session.Web(ctx, token); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("web session of a suspended user: %v", err)
	}
	// Mail still comes in.
	if _, err := e.Store.Deliver(ctx, store.Delivery{UserID: id, Raw: storetest.Message("a@example.com", "u@example.org", "hi", "still here"), Opts: store.AppendOptions{Inbound: true}}); err != nil {
		t.Fatalf("delivery to a suspended user: %v", err)
	}
	if err := e.Store.Unsuspend(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := imap.Authenticate(ctx, "u@example.org", storetest.Password, "127.0.0.1"); err != nil {
		t.Fatalf("after unsuspend: %v", err)
	}
}

// TestLastLoginRecorded: logins are recorded per protocol with their
// address, and a user logging in again within the interval costs no
// write (the recorded time stays that of the first login).
func TestLastLoginRecorded(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{LoginRecordEvery: time.Hour})
	e.NewUser(t, "u@example.org", false) // a webmail login
	imap := e.Session.For(store.ProtoIMAP)
	if _, err := imap.Authenticate(ctx, "u@example.org", storetest.Password, "192.0.2.7:1234"); err != nil {
		t.Fatal(err)
	}
	u, _ := e.Store.UserByAddress(ctx, "u@example.org")
	logins, err := e.Store.Logins(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(logins) != 2 || logins[0].Protocol != store.ProtoIMAP || logins[0].IP != "192.0.2.7" || logins[1].Protocol != store.ProtoWebmail {
		t.Fatalf("logins %+v", logins)
	}
	// Move the record back; a login within the interval leaves it.
	if err := e.Store.RecordLogin(ctx, u.ID, store.ProtoIMAP, "192.0.2.7", time.Unix(1000, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := imap.Authenticate(ctx, "u@example.org", storetest.Password, "192.0.2.8"); err != nil {
		t.Fatal(err)
	}
	logins, _ = e.Store.Logins(ctx, u.ID)
	if logins[0].At != 1000 {
		t.Fatalf("a second login within the interval was written: %+v", logins[0])
	}
	// With every login recorded, it is.
	e2 := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{Session: session.Config{LoginRecordEvery: -1}})
	e2.NewUser(t, "v@example.org", false)
	v, _ := e2.Store.UserByAddress(ctx, "v@example.org")
	if err := e2.Store.RecordLogin(ctx, v.ID, store.ProtoWebmail, "", time.Unix(1000, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Session.Authenticate(ctx, "v@example.org", storetest.Password, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	logins, _ = e2.Store.Logins(ctx, v.ID)
	if len(logins) != 1 || logins[0].At == 1000 {
		t.Fatalf("login not recorded: %+v", logins)
	}
}

// TestCreateUserRandom: the password returned is the user's.
func TestCreateUserRandom(t *testing.T) {
	ctx := context.Background()
	e := open(t, "memory", "", "", session.Config{})
	if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	_, pw, err := e.Session.CreateUserRandom(ctx, session.NewUser{Address: "r@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session.Authenticate(ctx, "r@example.org", pw, "127.0.0.1"); err != nil {
		t.Fatalf("login with the random password: %v", err)
	}
}
