package crypt

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func encrypt(t testing.TB, to *Recipient, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Encrypt(&buf, to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decrypt(id *Identity, ct []byte) ([]byte, error) {
	r, err := Decrypt(bytes.NewReader(ct), id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncryptRoundTrip(t *testing.T) {
	id := mustIdentity(t)
	tests := []struct {
		name  string
		plain []byte
	}{
		{"empty", nil},
		{"one byte", []byte{'x'}},
		{"4 KB", randBytes(t, 4096)},
		{"chunk boundary", randBytes(t, 64*1024)},
		{"chunk boundary+1", randBytes(t, 64*1024+1)},
		{"5 MB", randBytes(t, 5<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := encrypt(t, id.Recipient(), tt.plain)
			got, err := decrypt(id, ct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plain) {
				t.Fatalf("round trip mismatch: got %d bytes, want %d", len(got), len(tt.plain))
			}
		})
	}
}

func TestEncryptHidesPlaintext(t *testing.T) {
	id := mustIdentity(t)
	canary := []byte("CANARY-7f3a9c-the-plaintext-must-not-appear")
	plain := bytes.Repeat(append(canary, '\n'), 1000)
	ct := encrypt(t, id.Recipient(), plain)
	if bytes.Contains(ct, canary) || bytes.Contains(ct, canary[:12]) {
		t.Fatal("ciphertext contains the canary")
	}
	// A fresh file key per message: same plaintext, different ciphertext.
	if bytes.Equal(ct, encrypt(t, id.Recipient(), plain)) {
		t.Fatal("two encryptions of the same message are identical")
	}
}

func TestDecryptWrongIdentity(t *testing.T) {
	alice, bob := mustIdentity(t), mustIdentity(t)
	ct := encrypt(t, alice.Recipient(), []byte("for alice only"))
	got, err := decrypt(bob, ct)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("bob decrypting alice's mail: got %q, err = %v; want ErrWrongKey", got, err)
	}
}

func TestDecryptTampered(t *testing.T) {
	id := mustIdentity(t)
	plain := randBytes(t, 100_000)
	ct := encrypt(t, id.Recipient(), plain)
	// Flip a byte in the header, the first payload chunk and the last one;
	// also truncate. None may yield the plaintext without an error.
	cases := map[string][]byte{
		"header":    flipAt(ct, 20),
		"payload":   flipAt(ct, len(ct)/3),
		"last":      flipAt(ct, len(ct)-1),
		"truncated": ct[:len(ct)-10],
		"no chunks": ct[:len(ct)-len(plain)-40],
		"garbage":   []byte("not an age file at all"),
	}
	for name, c := range cases {
		if _, err := decrypt(id, c); err == nil {
			t.Errorf("%s: decrypted without error", name)
		}
	}
}

func flipAt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestEncryptNilArgs(t *testing.T) {
	if _, err := Encrypt(io.Discard, nil); err == nil {
		t.Error("Encrypt with nil recipient succeeded")
	}
	if _, err := Decrypt(bytes.NewReader(nil), nil); err == nil {
		t.Error("Decrypt with nil identity succeeded")
	}
}

func BenchmarkEncrypt4KB(b *testing.B) {
	to := mustIdentity(b).Recipient()
	msg := randBytes(b, 4096)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		w, err := Encrypt(io.Discard, to)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt4KB(b *testing.B) {
	id := mustIdentity(b)
	msg := randBytes(b, 4096)
	ct := encrypt(b, id.Recipient(), msg)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r, err := Decrypt(bytes.NewReader(ct), id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
