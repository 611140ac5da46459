package crypt

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"testing"
)

func mustSeal(t testing.TB, id *Identity, pw string) []byte {
	t.Helper()
	sealed, err := SealIdentity(id, []byte(pw), TestKDF())
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestSealRoundTrip(t *testing.T) {
	id := mustIdentity(t)
	for _, p := range []KDFParams{TestKDF(), {Time: 2, MemoryKiB: 1024, Threads: 4}} {
		sealed, err := SealIdentity(id, []byte("hunter2 hunter2"), p)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		got, err := OpenIdentity(sealed, []byte("hunter2 hunter2"))
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if got.Secret() != id.Secret() {
			t.Fatalf("%+v: opened a different identity", p)
		}
		stored, err := SealedKDF(sealed)
		if err != nil || stored != p {
			t.Errorf("SealedKDF = %+v, %v; want %+v", stored, err, p)
		}
		if bytes.Contains(sealed, []byte(id.Secret())) {
			t.Error("sealed output contains the secret in the clear")
		}
	}
	// Same identity and password twice: salt and nonce must make them differ.
	if bytes.Equal(mustSeal(t, id, "pw"), mustSeal(t, id, "pw")) {
		t.Error("two seals of the same key are identical")
	}
}

// TestSealDefaultKDF runs once with the real parameters so the production
// path (multiple lanes, 64 MiB) is exercised too.
func TestSealDefaultKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("DefaultKDF is slow by design")
	}
	id := mustIdentity(t)
	sealed, err := SealIdentity(id, []byte("pw"), DefaultKDF())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenIdentity(sealed, []byte("pw"))
	if err != nil || got.Secret() != id.Secret() {
		t.Fatalf("OpenIdentity = %v, %v", got, err)
	}
	if _, err := OpenIdentity(sealed, []byte("pW")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: err = %v", err)
	}
}

// TestOpenGolden pins the on-disk format: a key sealed by an earlier build
// (with parameters that are not today's defaults) must keep opening.
func TestOpenGolden(t *testing.T) {
	const (
		sealedHex = "01000000020000010002ae60d14ad20087e84aaba934114151f243322ff985d2e65eedea54d338dcc3e565f125875d467957432b37ee15dd4bf74ecb689fc3f3e24e8002fb8948f6e7717b2323291904187958025aeac50213667c8c48aff92ffe2669527dc746b5ed0a9c5865ec1fe9f9efd9d39586df1969694d114ac205530b450baf8aaf5b6ec1107367f9f9cf98"
		password  = "correct horse battery staple"
		recipient = "age1uy70rkx580radvzwkm7uw4nrkgml5aueywnu9pp7zjc8hx04xa2qwjeymg"
	)
	sealed, err := hex.DecodeString(sealedHex)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := SealedKDF(sealed); err != nil || p != (KDFParams{Time: 2, MemoryKiB: 256, Threads: 2}) {
		t.Fatalf("SealedKDF = %+v, %v", p, err)
	}
	id, err := OpenIdentity(sealed, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	if got := id.Recipient().String(); got != recipient {
		t.Fatalf("recipient = %s, want %s", got, recipient)
	}
}

func TestWrongPassword(t *testing.T) {
	const right = "Tr0ub4dor&3-long-enough"
	id := mustIdentity(t)
	sealed := mustSeal(t, id, right)

	oneByte := []byte(right)
	oneByte[len(oneByte)/2] ^= 0x01
	wrong := map[string][]byte{
		"empty":              {},
		"nil":                nil,
		"prefix":             []byte(right[:len(right)-1]),
		"first char":         []byte(right[:1]),
		"extra byte":         []byte(right + "x"),
		"trailing NUL":       []byte(right + "\x00"),
		"one byte differs":   oneByte,
		"case changed":       bytes.ToUpper([]byte(right)),
		"leading space":      []byte(" " + right),
		"same length zeroes": make([]byte, len(right)),
	}
	for i := range 50 {
		b := make([]byte, 1+i%40)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		wrong["random "+hex.EncodeToString(b[:1])+string(rune('a'+i%26))] = b
	}
	for name, pw := range wrong {
		got, err := OpenIdentity(sealed, pw)
		if !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s: got %v, err = %v; want ErrWrongPassword", name, got, err)
		}
		if got != nil {
			t.Errorf("%s: returned an identity", name)
		}
	}
	// The right password still works afterwards (nothing was mutated).
	if _, err := OpenIdentity(sealed, []byte(right)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCorrupt(t *testing.T) {
	const pw = "pw"
	sealed := mustSeal(t, mustIdentity(t), pw)

	// Every truncation is an error, never a panic, and never looks like a
	// wrong password.
	for n := 0; n < len(sealed); n++ {
		_, err := OpenIdentity(sealed[:n], []byte(pw))
		if err == nil || errors.Is(err, ErrWrongPassword) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
		if n > 0 && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v, want ErrCorrupt", n, err)
		}
	}
	// Every single-bit flip is caught.
	for i := range sealed {
		for bit := range 8 {
			c := bytes.Clone(sealed)
			c[i] ^= 1 << bit
			_, err := OpenIdentity(c, []byte(pw))
			switch {
			case i == 0 && errors.Is(err, ErrUnsupportedVersion):
			case errors.Is(err, ErrCorrupt):
			default:
				t.Fatalf("flip byte %d bit %d: err = %v, want ErrCorrupt", i, bit, err)
			}
		}
	}
	// Appended garbage breaks the checksum.
	if _, err := OpenIdentity(append(bytes.Clone(sealed), 0), []byte(pw)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("appended byte: err = %v", err)
	}
}

// TestOpenHostileParams: a record whose checksum is valid but whose KDF
// parameters are absurd is refused before any work is done.
func TestOpenHostileParams(t *testing.T) {
	sealed := mustSeal(t, mustIdentity(t), "pw")
	for _, p := range []KDFParams{
		{Time: 0, MemoryKiB: 64, Threads: 1},
		{Time: maxKDFTime + 1, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: 64, Threads: 0},
		{Time: 1, MemoryKiB: 7, Threads: 1},
		{Time: 1, MemoryKiB: 64, Threads: 9},
		{Time: 1, MemoryKiB: maxKDFMemoryKiB + 1, Threads: 1},
		{Time: 1 << 31, MemoryKiB: 1 << 31, Threads: 255},
	} {
		c := bytes.Clone(sealed)
		binary.BigEndian.PutUint32(c[1:5], p.Time)
		binary.BigEndian.PutUint32(c[5:9], p.MemoryKiB)
		c[9] = p.Threads
		body := c[:len(c)-crcSize]
		binary.BigEndian.PutUint32(c[len(c)-crcSize:], crc32Sum(body))
		if _, err := OpenIdentity(c, []byte("pw")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%+v: err = %v, want ErrCorrupt", p, err)
		}
		if _, err := SealIdentity(mustIdentity(t), []byte("pw"), p); err == nil {
			t.Errorf("SealIdentity accepted %+v", p)
		}
	}
}

func TestSealErrors(t *testing.T) {
	id := mustIdentity(t)
	if _, err := SealIdentity(nil, []byte("pw"), TestKDF()); err == nil {
		t.Error("nil identity accepted")
	}
	if _, err := SealIdentity(&Identity{}, []byte("pw"), TestKDF()); err == nil {
		t.Error("zero identity accepted")
	}
	if _, err := SealIdentity(id, nil, TestKDF()); err == nil {
		t.Error("empty password accepted")
	}
	if _, err := SealIdentity(id, []byte("pw"), KDFParams{}); err == nil {
		t.Error("zero KDF params accepted")
	}
	if err := DefaultKDF().validate(); err != nil {
		t.Errorf("DefaultKDF invalid: %v", err)
	}
	if err := TestKDF().validate(); err != nil {
		t.Errorf("TestKDF invalid: %v", err)
	}
}

func crc32Sum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// FuzzOpenIdentity: OpenIdentity must never panic, and every failure must
// be one of the documented classes.
func FuzzOpenIdentity(f *testing.F) {
	id, err := GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := SealIdentity(id, []byte("pw"), TestKDF())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, []byte("pw"))
	f.Add(sealed, []byte("wrong"))
	f.Add(sealed[:len(sealed)-1], []byte("pw"))
	f.Add(sealed[:sealHeaderLen], []byte("pw"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{sealVersion1}, []byte("pw"))
	f.Add([]byte{2, 0, 0}, []byte("pw"))
	f.Fuzz(func(t *testing.T, data, pw []byte) {
		// Valid-looking records with expensive parameters would only test
		// argon2's speed; check they parse, then skip the KDF.
		if p, err := SealedKDF(data); err == nil && uint64(p.Time)*uint64(p.MemoryKiB) > 4096 {
			t.Skip("expensive KDF parameters")
		}
		got, err := OpenIdentity(data, pw)
		if err == nil {
			if got == nil || got.Secret() == "" {
				t.Fatal("nil error but no identity")
			}
			return
		}
		if got != nil {
			t.Fatal("identity returned with an error")
		}
		if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

func BenchmarkSealIdentity(b *testing.B) {
	id := mustIdentity(b)
	pw := []byte("a reasonably long passphrase")
	for b.Loop() {
		if _, err := SealIdentity(id, pw, DefaultKDF()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenIdentity(b *testing.B) {
	pw := []byte("a reasonably long passphrase")
	sealed, err := SealIdentity(mustIdentity(b), pw, DefaultKDF())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := OpenIdentity(sealed, pw); err != nil {
			b.Fatal(err)
		}
	}
}
