package crypt

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func mustIdentity(t testing.TB) *Identity {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIdentityRoundTrip(t *testing.T) {
	id := mustIdentity(t)
	secret := id.Secret()
	if !strings.HasPrefix(secret, "AGE-SECRET-KEY-1") {
		t.Fatalf("Secret() has unexpected form (prefix %.16q)", secret)
	}
	back, err := ParseIdentity(secret)
	if err != nil {
		t.Fatal(err)
	}
	if back.Secret() != secret {
		t.Error("ParseIdentity(Secret()) gave a different key")
	}
	if back.Recipient().String() != id.Recipient().String() {
		t.Error("parsed identity has a different recipient")
	}
	if other := mustIdentity(t); other.Secret() == secret {
		t.Error("two generated identities are equal")
	}
}

func TestRecipientRoundTrip(t *testing.T) {
	r := mustIdentity(t).Recipient()
	s := r.String()
	if !strings.HasPrefix(s, "age1") {
		t.Fatalf("Recipient.String() = %q, want age1...", s)
	}
	back, err := ParseRecipient(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != s {
		t.Errorf("round trip = %q, want %q", back.String(), s)
	}
}

func TestParseErrors(t *testing.T) {
	id := mustIdentity(t)
	secret := id.Secret()
	badIDs := map[string]string{
		"empty":           "",
		"recipient":       id.Recipient().String(),
		"truncated":       secret[:len(secret)-1],
		"bad checksum":    secret[:len(secret)-1] + flipChar(secret[len(secret)-1]),
		"lower-case junk": "age-secret-key-1xyz",
	}
	for name, s := range badIDs {
		t.Run("identity/"+name, func(t *testing.T) {
			_, err := ParseIdentity(s)
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("ParseIdentity: err = %v, want ErrMalformedKey", err)
			}
			// The error must not echo any secret material back.
			if len(s) >= 24 && strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(s[16:24])) {
				t.Errorf("error %q quotes the input", err)
			}
		})
	}
	for _, s := range []string{"", secret, "age1", "age1qqqqqq"} {
		if _, err := ParseRecipient(s); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("ParseRecipient(%.10q...): err = %v, want ErrMalformedKey", s, err)
		}
	}
}

func flipChar(c byte) string {
	if c == 'Q' {
		return "P"
	}
	return "Q"
}

// TestIdentityRedacted checks that no ordinary way of printing or logging an
// Identity reveals its secret.
func TestIdentityRedacted(t *testing.T) {
	id := mustIdentity(t)
	secret := id.Secret()
	// The bech32 data part without the human-readable prefix: any of it
	// appearing would be a leak, in any case.
	data := strings.ToLower(secret[len("AGE-SECRET-KEY-1"):])

	var logbuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logbuf, nil))
	log.Info("x", "id", id)
	slog.New(slog.NewJSONHandler(&logbuf, nil)).Info("y", "id", id)

	outputs := map[string]string{
		"String": id.String(),
		"%v":     fmt.Sprintf("%v", id),
		"%+v":    fmt.Sprintf("%+v", id),
		"%#v":    fmt.Sprintf("%#v", id),
		"%s":     fmt.Sprintf("%s", id),
		"%x":     fmt.Sprintf("%x", id),
		"%q":     fmt.Sprintf("%q", id),
		"value":  fmt.Sprintf("%+v %#v", *id, *id),
		"slice":  fmt.Sprint([]*Identity{id}),
		"struct": fmt.Sprintf("%+v", struct{ ID *Identity }{id}),
		"slog":   logbuf.String(),
		"nil":    fmt.Sprint((*Identity)(nil)),
		"error":  fmt.Errorf("login %v failed", id).Error(),
	}
	for name, out := range outputs {
		if strings.Contains(strings.ToLower(out), data) || strings.Contains(out, "AGE-SECRET-KEY") {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
	if !strings.Contains(id.String(), id.Recipient().String()) {
		t.Errorf("String() = %q should name the public key", id.String())
	}
}
