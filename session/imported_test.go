package session

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"basalt/crypt"
)

// TestSHA512Crypt: the vectors of Drepper's specification and a few more,
// each checked against glibc's crypt(3) (through Python's crypt module):
// default rounds, explicit rounds, a salt cut to 16 characters, a key
// longer than a digest, and UTF-8.
func TestSHA512Crypt(t *testing.T) {
	for _, tc := range []struct{ key, hash string }{
		{"Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"This is just a test", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
		{strings.Repeat("x", 200), "$6$rounds=1000$x$RUYPQ4zzwuptrFunxuJxa0gzTqbHC0bpq3N6JQnN4.GAK0Pnht.7LvaqAhYu5H/Oe2wJUZvtzxPomR7JZ1w9s/"},
		{"pässwörd", "$6$ab$MpxrX4b2nB2ONj1vFkTxO1WziUU7H5i50b94RpB.4R9rTnXToJEHZjpxG8xZMZoIP0oKonPlfDSUHBVy8G4yg."},
	} {
		if err := CheckImportedHash(tc.hash); err != nil {
			t.Errorf("%s: refused: %v", tc.hash, err)
			continue
		}
		ok, err := VerifyPassword(tc.hash, tc.key)
		if err != nil || !ok {
			t.Errorf("%s: the right password: ok=%v err=%v", tc.hash, ok, err)
		}
		if ok, err := VerifyPassword(tc.hash, tc.key+"x"); err != nil || ok {
			t.Errorf("%s: a wrong password: ok=%v err=%v", tc.hash, ok, err)
		}
	}
}

// TestBcryptImported: bcrypt hashes of every prefix verify; a wrong
// password does not.
func TestBcryptImported(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		hash := prefix + string(h[4:])
		if err := CheckImportedHash(hash); err != nil {
			t.Fatalf("%s refused: %v", prefix, err)
		}
		if ok, err := VerifyPassword(hash, "s3cret pass"); err != nil || !ok {
			t.Errorf("%s: right password: ok=%v err=%v", prefix, ok, err)
		}
		if ok, err := VerifyPassword(hash, "s3cret pasS"); err != nil || ok {
			t.Errorf("%s: wrong password: ok=%v err=%v", prefix, ok, err)
		}
	}
}

// TestCheckImportedHash: what an import refuses, before any user exists.
func TestCheckImportedHash(t *testing.T) {
	good, _ := HashPassword("pw", crypt.TestKDF())
	for _, tc := range []struct {
		hash string
		ok   bool
	}{
		{good, true},
		{"", false},
		{"plaintext", false},
		{"$1$md5salt$abcdefghijklmnopqrstuv", false},  // MD5-crypt: not taken
		{"$5$salt$" + strings.Repeat("a", 43), false}, // SHA-256-crypt: not taken
		{"$6$salt$short", false},
		{"$6$rounds=999$salt$" + strings.Repeat("a", 86), false},
		{"$6$rounds=99999999$salt$" + strings.Repeat("a", 86), false},
		{"$6$" + strings.Repeat("s", 17) + "$" + strings.Repeat("a", 86), false},
		{"$6$salt$" + strings.Repeat("a", 85) + "!", false},
		{"$6$salt$" + strings.Repeat("a", 86), true},
		{"$2b$04$tooshort", false},
		{"$2b$31$" + strings.Repeat("a", 53), false}, // cost 31: a login would take days
		{"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", false},
		// argon2id's costs are what every login of the user pays: within
		// what other servers use, and no more.
		{argon2Import("m=65536,t=3,p=4", salt16), true},    // Dovecot's
		{argon2Import("m=262144,t=4,p=1", salt16), true},   // 1 GiB once over, the most
		{argon2Import("m=1048576,t=4,p=1", salt16), false}, // libsodium's "sensitive": 1 GiB a login
		{argon2Import("m=262145,t=1,p=1", salt16), false},
		{argon2Import("m=65536,t=17,p=1", salt16), false},
		{argon2Import("m=262144,t=5,p=1", salt16), false},
		{argon2Import("m=65536,t=1,p=17", salt16), false},
		{argon2Import("m=64,t=1,p=16", salt16), false},                    // below 8 KiB a lane
		{argon2Import("m=64,t=1,p=1", "c2FsdA"), false},                   // a 4-byte salt
		{argon2Import("m=64,t=1,p=1", strings.Repeat("c2Fs", 22)), false}, // 66 bytes
	} {
		err := CheckImportedHash(tc.hash)
		if (err == nil) != tc.ok {
			t.Errorf("CheckImportedHash(%q) = %v, want ok=%v", tc.hash, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadHash) {
			t.Errorf("CheckImportedHash(%q): %v is not ErrBadHash", tc.hash, err)
		}
	}
}

// salt16 is a 16-byte salt, base64 as PHC strings write it.
const salt16 = "c2FsdHNhbHRzYWx0c2FsdA"

// argon2Import is an argon2id hash with these parameters and salt (and a
// 32-byte value that matches no password).
func argon2Import(params, salt string) string {
	return "$argon2id$v=19$" + params + "$" + salt + "$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
}

// TestSHA512CryptLongPassword: a password longer than crypt(3) takes
// (512 bytes) is not tried against a SHA-512-crypt hash, even one made
// of it: the algorithm's work grows with the square of the password's
// length, and a login is open to anyone. 512 bytes still verify.
func TestSHA512CryptLongPassword(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{512, true}, {513, false}, {1 << 16, false}} {
		pw := strings.Repeat("p", tc.n)
		var hash string
		if tc.n <= 4096 {
			hash = sha512Crypt([]byte(pw), "saltsalt", 1000, true)
		} else {
			// Too slow to make (that is the point): any well-formed hash.
			hash = "$6$rounds=1000$saltsalt$" + strings.Repeat("a", 86)
		}
		if err := CheckImportedHash(hash); err != nil {
			t.Fatalf("%d bytes: hash refused: %v", tc.n, err)
		}
		ok, err := VerifyPassword(hash, pw)
		if err != nil || ok != tc.ok {
			t.Errorf("a password of %d bytes: ok=%v err=%v, want ok=%v", tc.n, ok, err, tc.ok)
		}
	}
}

// TestRandomPassword: the length asked for, from the alphabet, and not
// the same twice.
func TestRandomPassword(t *testing.T) {
	a, err := RandomPassword(20)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomPassword(20)
	if len(a) != 20 || strings.Trim(a, randomPasswordAlphabet) != "" || a == b {
		t.Fatalf("random passwords %q, %q", a, b)
	}
}
