package session

import (
	"strings"
	"testing"

	"basalt/crypt"
)

func TestHashAndVerify(t *testing.T) {
	p := crypt.TestKDF()
	h, err := HashPassword("s3cret pass", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$") {
		t.Fatalf("hash not in PHC form: %s", h)
	}
	h2, _ := HashPassword("s3cret pass", p)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"s3cret pass", true},
		{"s3cret pas", false},
		{"s3cret pass ", false},
		{"S3cret pass", false},
		{"", false},
	} {
		got, err := VerifyPassword(h, tc.pw)
		if err != nil || got != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, got, err, tc.want)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, _ := HashPassword("pw", crypt.TestKDF())
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$" + strings.Join(parts[3:], "$"),
		"$argon2id$v=19$m=99999999,t=1,p=1$" + strings.Join(parts[4:], "$"),
		"$argon2id$v=19$m=64,t=1000,p=1$" + strings.Join(parts[4:], "$"),
		"$argon2id$v=19$" + parts[3] + "$!!!$" + parts[5],
		"$argon2id$v=19$" + parts[3] + "$" + parts[4] + "$c2hvcnQ",
	} {
		if ok, err := VerifyPassword(h, "pw"); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want an error", h, ok, err)
		}
	}
}
