package crypt

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Errors from OpenIdentity. A wrong password and a damaged blob are kept
// apart so callers can tell "try again" from "this key record is broken".
var (
	ErrWrongPassword      = errors.New("crypt: wrong password")
	ErrCorrupt            = errors.New("crypt: sealed data is corrupt or truncated")
	ErrUnsupportedVersion = errors.New("crypt: unsupported sealed-key version")
)

// KDFParams are the argon2id cost parameters used to derive the sealing key
// from a password. They are stored inside every sealed key, so raising the
// defaults later leaves old sealed keys readable.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultKDF returns the server's argon2id cost: 3 passes over 64 MiB with 2
// lanes (RFC 9106's second recommendation, with lanes matched to a small
// server so concurrent logins don't starve each other).
func DefaultKDF() KDFParams { return KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 2} }

// TestKDF returns deliberately cheap parameters for tests. Never use it for
// real keys.
func TestKDF() KDFParams { return KDFParams{Time: 1, MemoryKiB: 64, Threads: 1} }

// Bounds on KDFParams. The upper bounds are far above any sane default; they
// exist so a damaged or hostile record cannot make OpenIdentity allocate
// terabytes or spin for hours.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
)

func (p KDFParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxKDFTime:
		return fmt.Errorf("kdf time %d out of range 1..%d", p.Time, maxKDFTime)
	case p.Threads < 1:
		return errors.New("kdf threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads):
		// argon2 needs 8 KiB per lane and would silently raise it; refuse
		// instead so the stored parameters are the ones really used.
		return fmt.Errorf("kdf memory %d KiB below the minimum 8 KiB per thread", p.MemoryKiB)
	case p.MemoryKiB > maxKDFMemoryKiB:
		return fmt.Errorf("kdf memory %d KiB above the maximum %d KiB", p.MemoryKiB, maxKDFMemoryKiB)
	}
	return nil
}

// Sealed identity format, version 1:
//
//	off  len  field
//	0    1    version (1)
//	1    4    argon2id time, big endian
//	5    4    argon2id memory KiB, big endian
//	9    1    argon2id threads
//	10   16   salt
//	26   24   XChaCha20-Poly1305 nonce
//	50   n    ciphertext of Identity.Secret() with 16-byte tag
//	50+n 4    CRC-32C of everything before it
//
// The header (bytes 0..50) is also the AEAD's additional data, so the stored
// parameters cannot be swapped. The CRC is not a security measure: it lets
// OpenIdentity tell accidental damage (ErrCorrupt) from a wrong password,
// which the AEAD alone cannot, and skips the costly KDF for damaged input.
const (
	sealVersion1  = 1
	saltSize      = 16
	sealHeaderLen = 1 + 4 + 4 + 1 + saltSize + chacha20poly1305.NonceSizeX
	crcSize       = 4
	sealMinLen    = sealHeaderLen + chacha20poly1305.Overhead + 1 + crcSize
	sealKeyLabel  = "basalt/crypt sealed identity v1\x00"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SealIdentity encrypts id's secret under a key derived from password with
// argon2id (parameters p, random 16-byte salt) and XChaCha20-Poly1305. The
// result is self-describing: OpenIdentity needs only it and the password.
func SealIdentity(id *Identity, password []byte, p KDFParams) ([]byte, error) {
	if id == nil || id.x == nil {
		return nil, errors.New("seal identity: nil identity")
	}
	if len(password) == 0 {
		return nil, errors.New("seal identity: empty password")
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("seal identity: %w", err)
	}
	out := make([]byte, sealHeaderLen, sealHeaderLen+len(id.Secret())+chacha20poly1305.Overhead+crcSize)
	out[0] = sealVersion1
	binary.BigEndian.PutUint32(out[1:5], p.Time)
	binary.BigEndian.PutUint32(out[5:9], p.MemoryKiB)
	out[9] = p.Threads
	salt := out[10 : 10+saltSize]
	nonce := out[10+saltSize : sealHeaderLen]
	if _, err := rand.Read(out[10:sealHeaderLen]); err != nil {
		return nil, fmt.Errorf("seal identity: random salt and nonce: %w", err)
	}

	key := argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal identity: %w", err)
	}
	secret := []byte(id.Secret())
	defer clear(secret)
	out = aead.Seal(out, nonce, secret, sealAD(out[:sealHeaderLen]))
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	return out, nil
}

// OpenIdentity reverses SealIdentity. A wrong password gives an error
// wrapping ErrWrongPassword; damaged input gives one wrapping ErrCorrupt (or
// ErrUnsupportedVersion for a format this build does not know).
func OpenIdentity(sealed, password []byte) (*Identity, error) {
	p, err := parseSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("open identity: %w", err)
	}
	hdr := sealed[:sealHeaderLen]
	salt := hdr[10 : 10+saltSize]
	nonce := hdr[10+saltSize:]
	ct := sealed[sealHeaderLen : len(sealed)-crcSize]

	key := argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("open identity: %w", err)
	}
	secret, err := aead.Open(nil, nonce, ct, sealAD(hdr))
	if err != nil {
		// The CRC matched, so the bytes are as written: the key is wrong.
		return nil, fmt.Errorf("open identity: %w", ErrWrongPassword)
	}
	defer clear(secret)
	id, err := ParseIdentity(string(secret))
	if err != nil {
		return nil, fmt.Errorf("open identity: sealed secret: %w", ErrCorrupt)
	}
	return id, nil
}

// SealedKDF returns the KDF parameters a sealed identity was made with, so a
// caller can re-seal at login when they are weaker than DefaultKDF.
func SealedKDF(sealed []byte) (KDFParams, error) {
	p, err := parseSealed(sealed)
	if err != nil {
		return KDFParams{}, fmt.Errorf("sealed kdf: %w", err)
	}
	return p, nil
}

// parseSealed checks everything about sealed that can be checked without
// the password and returns its KDF parameters.
func parseSealed(sealed []byte) (KDFParams, error) {
	if len(sealed) == 0 {
		return KDFParams{}, fmt.Errorf("empty input: %w", ErrCorrupt)
	}
	if sealed[0] != sealVersion1 {
		return KDFParams{}, fmt.Errorf("version %d: %w", sealed[0], ErrUnsupportedVersion)
	}
	if len(sealed) < sealMinLen {
		return KDFParams{}, fmt.Errorf("%d bytes, want at least %d: %w", len(sealed), sealMinLen, ErrCorrupt)
	}
	body, sum := sealed[:len(sealed)-crcSize], sealed[len(sealed)-crcSize:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return KDFParams{}, fmt.Errorf("checksum mismatch: %w", ErrCorrupt)
	}
	p := KDFParams{
		Time:      binary.BigEndian.Uint32(sealed[1:5]),
		MemoryKiB: binary.BigEndian.Uint32(sealed[5:9]),
		Threads:   sealed[9],
	}
	if err := p.validate(); err != nil {
		return KDFParams{}, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	return p, nil
}

func sealAD(hdr []byte) []byte {
	ad := make([]byte, 0, len(sealKeyLabel)+len(hdr))
	return append(append(ad, sealKeyLabel...), hdr...)
}
