package crypt

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of keys for SealWithKey and OpenWithKey.
const KeySize = chacha20poly1305.KeySize

// NewKey returns a fresh random KeySize-byte key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("new key: %w", err)
	}
	return k, nil
}

// SealWithKey encrypts and authenticates plaintext, and authenticates ad,
// with XChaCha20-Poly1305 under key. The output is a random 24-byte nonce
// followed by the ciphertext; the large nonce makes random nonces safe for
// any number of messages under one key.
func SealWithKey(key, plaintext, ad []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal with key: key is %d bytes, want %d", len(key), KeySize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal with key: %w", err)
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal with key: random nonce: %w", err)
	}
	return aead.Seal(out, out, plaintext, ad), nil
}

// OpenWithKey reverses SealWithKey. A wrong key, wrong ad, or any change to
// sealed gives an error wrapping ErrWrongKey. A key of the wrong length is
// reported the same way, since it usually comes from a mangled cookie.
func OpenWithKey(key, sealed, ad []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("open with key: key is %d bytes, want %d: %w", len(key), KeySize, ErrWrongKey)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("open with key: %w", err)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("open with key: %d bytes is too short: %w", len(sealed), ErrWrongKey)
	}
	nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, fmt.Errorf("open with key: %w", ErrWrongKey)
	}
	return pt, nil
}
