package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"basalt/crypt"
)

// The hash format is the PHC string format that libsodium, Dovecot and
// others use for argon2id, so hashes can be imported and exported as is:
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<hash>.
const (
	saltLen = 16
	hashLen = 32
)

var b64 = base64.RawStdEncoding

// HashPassword hashes a password with argon2id under p.
func HashPassword(password string, p crypt.KDFParams) (string, error) {
	if p.Time == 0 || p.MemoryKiB == 0 || p.Threads == 0 {
		return "", errors.New("hash password: argon2 parameters must be positive")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	sum := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// VerifyPassword reports whether password matches hash: argon2id, or a
// hash imported from another server (imported.go). A malformed hash is an
// error, never a match.
func VerifyPassword(hash, password string) (bool, error) {
	if hashKind(hash) != "argon2id" {
		return verifyImported(hash, password)
	}
	p, salt, want, err := parseArgon2(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parseArgon2 reads an argon2id hash in PHC string form.
func parseArgon2(hash string) (p crypt.KDFParams, salt, want []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("verify password: not an argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errors.New("verify password: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("verify password: parameters: %w", err)
	}
	// Bounds stop a planted hash from making a login burn the machine.
	if p.Time == 0 || p.Time > 64 || p.MemoryKiB == 0 || p.MemoryKiB > 4<<20 || p.Threads == 0 {
		return p, nil, nil, errors.New("verify password: parameters out of range")
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("verify password: salt: %w", err)
	}
	want, err = b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return p, nil, nil, errors.New("verify password: malformed hash value")
	}
	return p, salt, want, nil
}
