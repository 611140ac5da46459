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
		p, salt, _, err := parseArgon2(hash)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadHash, err)
		}
		return checkImportedArgon2(p.MemoryKiB, p.Time, p.Threads, len(salt))
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

// Bounds on an imported argon2id hash's parameters. Every login of the
// user runs them, and a login is open to anyone who knows the address,
// so they are what an attacker spends of the server: parseArgon2's own
// bounds (4 GiB, 64 passes) are for a hash this server made under its
// operator's settings, not for one a provisioning system hands in. These
// admit what other servers make (Dovecot's 64 MiB x 3, OWASP's 19 MiB x 2,
// libsodium's moderate 256 MiB x 3) and refuse libsodium's "sensitive"
// 1 GiB: such a user is given a new password instead.
const (
	maxImportArgon2MemoryKiB = 256 << 10 // 256 MiB
	maxImportArgon2Time      = 16
	// maxImportArgon2Work bounds memory x passes (KiB): 1 GiB once over.
	maxImportArgon2Work    = 1 << 20
	maxImportArgon2Threads = 16
	minImportArgon2Salt    = 8
	maxImportArgon2Salt    = 64
)

func checkImportedArgon2(memKiB, passes uint32, threads uint8, saltLen int) error {
	switch {
	case memKiB > maxImportArgon2MemoryKiB:
		return fmt.Errorf("%w: argon2id memory %d KiB above %d KiB", ErrBadHash, memKiB, maxImportArgon2MemoryKiB)
	case passes > maxImportArgon2Time || uint64(memKiB)*uint64(passes) > maxImportArgon2Work:
		return fmt.Errorf("%w: argon2id time %d with memory %d KiB: more work than a login may take (memory x time at most %d KiB)",
			ErrBadHash, passes, memKiB, maxImportArgon2Work)
	case threads > maxImportArgon2Threads:
		return fmt.Errorf("%w: argon2id parallelism %d above %d", ErrBadHash, threads, maxImportArgon2Threads)
	case uint32(threads)*8 > memKiB:
		return fmt.Errorf("%w: argon2id memory %d KiB below 8 KiB per lane", ErrBadHash, memKiB)
	case saltLen < minImportArgon2Salt || saltLen > maxImportArgon2Salt:
		return fmt.Errorf("%w: argon2id salt of %d bytes (%d to %d)", ErrBadHash, saltLen, minImportArgon2Salt, maxImportArgon2Salt)
	}
	return nil
}

// maxSHA512CryptPassword bounds the password tried against a
// SHA-512-crypt hash. Drepper's algorithm hashes the password once per
// character of it (steps 13-16) and twice in each of up to a million
// rounds: a megabyte typed at a login prompt would keep a core busy for
// hours. libxcrypt, whose crypt(3) made most of these hashes, refuses
// passphrases longer than its CRYPT_MAX_PASSPHRASE_SIZE, 512 bytes; a
// longer one cannot be the password and is not tried.
const maxSHA512CryptPassword = 512

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
		if len(password) > maxSHA512CryptPassword {
			return false, nil
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
