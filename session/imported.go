package session

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Password hashes imported from another server (a migration): bcrypt
// ($2a$, $2b$, $2y$) and SHA-512-crypt ($6$, Drepper's "Unix crypt using
// SHA-256 and SHA-512", glibc's crypt(3)), besides Basalt's own argon2id.
// A user with an imported hash logs in with it once; that login replaces
// it with argon2id (Service.check).

// ErrBadHash is a password hash in no format Basalt can verify.
var ErrBadHash = errors.New("unsupported or malformed password hash")

// hashKind names a hash's format from its prefix.
func hashKind(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return "argon2id"
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(hash, "$6$"):
		return "sha512-crypt"
	}
	return ""
}

// CheckImportedHash checks that hash is one Basalt verifies at login, well
// formed, with a cost a login can afford.
func CheckImportedHash(hash string) error {
	switch hashKind(hash) {
	case "argon2id":
		if _, _, _, err := parseArgon2(hash); err != nil {
			return fmt.Errorf("%w: %v", ErrBadHash, err)
		}
		return nil
	case "bcrypt":
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) != 60 {
			return fmt.Errorf("%w: bcrypt: malformed", ErrBadHash)
		}
		if cost > 16 {
			return fmt.Errorf("%w: bcrypt cost %d above 16", ErrBadHash, cost)
		}
		return nil
	case "sha512-crypt":
		if _, _, _, err := parseSHA512Crypt(hash); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("%w: expected $argon2id$, $2a$/$2b$/$2y$ (bcrypt) or $6$ (SHA-512-crypt)", ErrBadHash)
}

// verifyImported checks password against an imported hash.
func verifyImported(hash, password string) (bool, error) {
	switch hashKind(hash) {
	case "bcrypt":
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("verify password: bcrypt: %w", err)
		}
		return true, nil
	case "sha512-crypt":
		rounds, explicit, salt, err := parseSHA512Crypt(hash)
		if err != nil {
			return false, err
		}
		got := sha512Crypt([]byte(password), salt, rounds, explicit)
		return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1, nil
	}
	return false, ErrBadHash
}

// The bounds glibc applies to SHA-512-crypt's rounds; maxImportRounds is
// Basalt's own, so a planted hash cannot make a login run for minutes.
const (
	sha512RoundsDefault = 5000
	sha512RoundsMin     = 1000
	maxImportRounds     = 1_000_000
	sha512SaltMax       = 16
)

// parseSHA512Crypt reads "$6$[rounds=N$]salt$hash".
func parseSHA512Crypt(hash string) (rounds int, explicit bool, salt string, err error) {
	rest, ok := strings.CutPrefix(hash, "$6$")
	bad := fmt.Errorf("%w: SHA-512-crypt: malformed", ErrBadHash)
	if !ok {
		return 0, false, "", bad
	}
	rounds = sha512RoundsDefault
	if r, after, ok := strings.Cut(rest, "$"); ok && strings.HasPrefix(r, "rounds=") {
		n, err := strconv.Atoi(strings.TrimPrefix(r, "rounds="))
		if err != nil || n < sha512RoundsMin || n > maxImportRounds {
			return 0, false, "", fmt.Errorf("%w: SHA-512-crypt: rounds must be %d to %d", ErrBadHash, sha512RoundsMin, maxImportRounds)
		}
		rounds, explicit, rest = n, true, after
	}
	salt, sum, ok := strings.Cut(rest, "$")
	if !ok || salt == "" || len(salt) > sha512SaltMax || len(sum) != 86 || strings.Trim(sum, crypt64) != "" {
		return 0, false, "", bad
	}
	return rounds, explicit, salt, nil
}

// crypt64 is crypt(3)'s base-64 alphabet.
const crypt64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// sha512Crypt is SHA-512-crypt as specified by Ulrich Drepper
// (https://www.akkadia.org/drepper/SHA-crypt.txt), steps numbered as there.
func sha512Crypt(key []byte, salt string, rounds int, explicit bool) string {
	s := []byte(salt)
	// Steps 4-8: digest B of key, salt, key.
	hb := sha512.New()
	hb.Write(key)
	hb.Write(s)
	hb.Write(key)
	b := hb.Sum(nil)
	// Steps 1-3, 9-12: digest A.
	ha := sha512.New()
	ha.Write(key)
	ha.Write(s)
	n := len(key)
	for ; n > 64; n -= 64 {
		ha.Write(b)
	}
	ha.Write(b[:n])
	for n := len(key); n > 0; n >>= 1 {
		if n&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(key)
		}
	}
	a := ha.Sum(nil)
	// Steps 13-16: P, from the key repeated.
	hp := sha512.New()
	for range len(key) {
		hp.Write(key)
	}
	dp := hp.Sum(nil)
	p := make([]byte, 0, len(key))
	for len(p)+64 <= len(key) {
		p = append(p, dp...)
	}
	p = append(p, dp[:len(key)-len(p)]...)
	// Steps 17-20: S, from the salt repeated 16+A[0] times.
	hs := sha512.New()
	for range 16 + int(a[0]) {
		hs.Write(s)
	}
	ds := hs.Sum(nil)
	sb := ds[:len(s)]
	// Step 21: the rounds.
	c := a
	for i := range rounds {
		h := sha512.New()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sb)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	// Step 22: the output, bytes taken in the spec's order.
	var out strings.Builder
	out.WriteString("$6$")
	if explicit {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(crypt64[w&0x3f])
			w >>= 6
		}
	}
	for i := range 21 {
		// The triples rotate: (0,21,42), (22,43,1), (44,2,23), ...
		x, y, z := i, i+21, i+42
		switch i % 3 {
		case 1:
			x, y, z = i+21, i+42, i
		case 2:
			x, y, z = i+42, i, i+21
		}
		enc(c[x], c[y], c[z], 4)
	}
	enc(0, 0, c[63], 2)
	return out.String()
}
