package session_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
)

func cramDigest(password, challenge string) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}

func TestCRAMMD5(t *testing.T) {
	ctx := context.Background()
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{Session: session.Config{CRAMMD5: true}})
	e.NewUser(t, "plain@example.org", false)
	e.NewUser(t, "sec@example.org", true)
	long := strings.Repeat("p", 100) // longer than an MD5 block: the key is hashed first
	if err := e.Session.ChangePassword(ctx, mustUser(t, e, "plain@example.org"), storetest.Password, long); err != nil {
		t.Fatal(err)
	}
	const challenge = "<1896.697170952@postoffice.example.net>"
	for _, tc := range []struct {
		login, digest string
		ok            bool
	}{
		{"plain@example.org", cramDigest(long, challenge), true},
		{"plain@example.org", cramDigest(storetest.Password, challenge), false},
		{"plain@example.org", cramDigest(long, challenge+"x"), false},
		{"plain@example.org", "not hex", false},
		{"sec@example.org", cramDigest(storetest.Password, challenge), false}, // secure users need the password itself
		{"nobody@example.org", cramDigest(long, challenge), false},
	} {
		a, err := e.Session.AuthenticateCRAM(ctx, tc.login, challenge, tc.digest, "127.0.0.1")
		if tc.ok && (err != nil || a.User.Address != tc.login) {
			t.Errorf("CRAM %s: %v", tc.login, err)
		}
		if !tc.ok && !errors.Is(err, session.ErrAuthFailed) {
			t.Errorf("CRAM %s with a bad digest: %v", tc.login, err)
		}
	}
}

func TestCRAMMD5Disabled(t *testing.T) {
	ctx := context.Background()
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	e.NewUser(t, "plain@example.org", false)
	if _, err := e.Session.AuthenticateCRAM(ctx, "plain@example.org", "<c@x>", cramDigest(storetest.Password, "<c@x>"), "127.0.0.1"); !errors.Is(err, session.ErrAuthFailed) {
		t.Fatalf("CRAM-MD5 while disabled: %v", err)
	}
	if e.Session.CRAMMD5() {
		t.Fatal("CRAM-MD5 offered while disabled")
	}
}

func mustUser(t *testing.T, e *storetest.Env, addr string) int64 {
	t.Helper()
	u, err := e.Store.UserByAddress(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
