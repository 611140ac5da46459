package crypt

import (
	"bytes"
	"errors"
	"testing"
)

func TestNewKey(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("key sizes %d, %d; want %d", len(a), len(b), KeySize)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two keys are equal")
	}
}

func TestSealWithKey(t *testing.T) {
	key, _ := NewKey()
	other, _ := NewKey()
	ad := []byte("session:42")
	tests := []struct {
		name  string
		plain []byte
	}{
		{"empty", nil},
		{"secret", []byte("AGE-SECRET-KEY-1-pretend")},
		{"large", bytes.Repeat([]byte{7}, 1<<16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := SealWithKey(key, tt.plain, ad)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.plain) > 0 && bytes.Contains(sealed, tt.plain) {
				t.Fatal("sealed output contains the plaintext")
			}
			got, err := OpenWithKey(key, sealed, ad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plain) {
				t.Fatal("round trip mismatch")
			}
			// Wrong key, wrong or missing ad.
			for name, f := range map[string]func() ([]byte, error){
				"wrong key":  func() ([]byte, error) { return OpenWithKey(other, sealed, ad) },
				"wrong ad":   func() ([]byte, error) { return OpenWithKey(key, sealed, []byte("session:43")) },
				"missing ad": func() ([]byte, error) { return OpenWithKey(key, sealed, nil) },
				"short key":  func() ([]byte, error) { return OpenWithKey(key[:16], sealed, ad) },
				"nil key":    func() ([]byte, error) { return OpenWithKey(nil, sealed, ad) },
			} {
				if pt, err := f(); !errors.Is(err, ErrWrongKey) || pt != nil {
					t.Errorf("%s: %q, %v; want ErrWrongKey", name, pt, err)
				}
			}
			// Flips and truncations are caught: at every position for small
			// inputs, at the nonce, both ends and a stride for large ones.
			for _, i := range positions(len(sealed)) {
				c := bytes.Clone(sealed)
				c[i] ^= 0x80
				if _, err := OpenWithKey(key, c, ad); !errors.Is(err, ErrWrongKey) {
					t.Fatalf("flip at %d: err = %v", i, err)
				}
				if _, err := OpenWithKey(key, sealed[:i], ad); !errors.Is(err, ErrWrongKey) {
					t.Fatalf("truncated to %d: err = %v", i, err)
				}
			}
		})
	}
}

func TestSealWithKeyNonceFresh(t *testing.T) {
	key, _ := NewKey()
	a, _ := SealWithKey(key, []byte("same"), nil)
	b, _ := SealWithKey(key, []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("same plaintext sealed twice gives identical output: nonce reused")
	}
}

func TestSealWithKeyBadKey(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := SealWithKey(make([]byte, n), []byte("x"), nil); err == nil {
			t.Errorf("SealWithKey accepted a %d-byte key", n)
		}
	}
}

// positions returns the byte offsets of an n-byte sealed value to tamper
// with: all of them when n is small, else the first and last 100 and every
// 997th in between.
func positions(n int) []int {
	var ps []int
	for i := 0; i < n; i++ {
		if n <= 1024 || i < 100 || i >= n-100 || i%997 == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}
