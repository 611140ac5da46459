package saslserver

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"regexp"
	"testing"

	"github.com/emersion/go-sasl"
)

var errBad = errors.New("bad credentials")

func check(login, password string) error {
	if login == "alice" && password == "secret" {
		return nil
	}
	return errBad
}

func TestLogin(t *testing.T) {
	for _, tc := range []struct {
		name      string
		initial   []byte // nil: none
		responses []string
		wantErr   error
	}{
		{"asked for both", nil, []string{"alice", "secret"}, nil},
		{"user name as initial response", []byte("alice"), []string{"secret"}, nil},
		{"wrong password", nil, []string{"alice", "nope"}, errBad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewLogin(check)
			ch, done, err := s.Next(tc.initial)
			if done || err != nil {
				t.Fatalf("first step: %q %v %v", ch, done, err)
			}
			want := "Password:"
			if tc.initial == nil {
				want = "Username:"
			}
			if string(ch) != want {
				t.Fatalf("first challenge %q, want %q", ch, want)
			}
			for i, r := range tc.responses {
				ch, done, err = s.Next([]byte(r))
				if last := i == len(tc.responses)-1; done != last {
					t.Fatalf("step %d: done=%v", i, done)
				}
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("result %v, want %v", err, tc.wantErr)
			}
			if _, _, err := s.Next([]byte("more")); !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
				t.Fatalf("after the end: %v", err)
			}
		})
	}
}

func TestCRAMMD5(t *testing.T) {
	digest := func(challenge, password string) string {
		m := hmac.New(md5.New, []byte(password))
		m.Write([]byte(challenge))
		return hex.EncodeToString(m.Sum(nil))
	}
	verify := func(login, challenge, d string) error {
		if login == "alice smith" && d == digest(challenge, "secret") {
			return nil
		}
		return errBad
	}
	start := func(t *testing.T) (sasl.Server, string) {
		s := NewCRAMMD5("mail.example.org", verify, nil)
		ch, done, err := s.Next(nil)
		if done || err != nil || !regexp.MustCompile(`^<[0-9a-f]{24}\.\d+@mail\.example\.org>$`).Match(ch) {
			t.Fatalf("challenge %q %v %v", ch, done, err)
		}
		return s, string(ch)
	}
	s, ch := start(t)
	if _, done, err := s.Next([]byte("alice smith " + digest(ch, "secret"))); !done || err != nil {
		t.Fatalf("right digest, a login with a space: %v %v", done, err)
	}
	if _, _, err := s.Next([]byte("again")); !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
		t.Fatalf("after the end: %v", err)
	}
	s, ch = start(t)
	if _, _, err := s.Next([]byte("alice smith " + digest(ch, "wrong"))); !errors.Is(err, errBad) {
		t.Fatalf("wrong digest: %v", err)
	}
	for _, bad := range []string{"", "alice", " " + digest(ch, "secret"), "alice 0123"} {
		s, _ = start(t)
		if _, _, err := s.Next([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", bad, err)
		}
	}
	// Two challenges are never the same.
	_, a := start(t)
	_, b := start(t)
	if a == b {
		t.Fatalf("challenge repeated: %s", a)
	}
}
