package crypt

import (
	"errors"
	"fmt"
	"log/slog"

	"filippo.io/age"
)

// ErrMalformedKey is returned by ParseIdentity and ParseRecipient for input
// that is not a valid key encoding.
var ErrMalformedKey = errors.New("crypt: malformed key")

// Identity is a user's X25519 private key. Its zero value is not usable; get
// one from GenerateIdentity, ParseIdentity or OpenIdentity.
//
// Printing an Identity (fmt, slog) shows only its public recipient, never the
// secret; Secret is the one way to get the secret out, for sealing it.
type Identity struct {
	x *age.X25519Identity
}

// GenerateIdentity returns a new random identity.
func GenerateIdentity() (*Identity, error) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return &Identity{x: x}, nil
}

// ParseIdentity parses the "AGE-SECRET-KEY-1..." form returned by Secret.
func ParseIdentity(s string) (*Identity, error) {
	x, err := age.ParseX25519Identity(s)
	if err != nil {
		// age's message can quote characters of the input, which is a
		// secret, so it is dropped on purpose.
		return nil, fmt.Errorf("parse identity: %w", ErrMalformedKey)
	}
	return &Identity{x: x}, nil
}

// Secret returns the private key in age's "AGE-SECRET-KEY-1..." encoding. It
// exists for SealIdentity and session sealing; never log or store it in the
// clear.
func (id *Identity) Secret() string {
	if id == nil || id.x == nil {
		return ""
	}
	return id.x.String()
}

// Recipient returns the public key that encrypts to id.
func (id *Identity) Recipient() *Recipient {
	if id == nil || id.x == nil {
		return nil
	}
	return &Recipient{x: id.x.Recipient()}
}

// String identifies the identity by its public key; the secret is redacted.
func (id *Identity) String() string {
	if id == nil || id.x == nil {
		return "crypt.Identity(nil)"
	}
	return "crypt.Identity(" + id.x.Recipient().String() + ", secret redacted)"
}

// GoString keeps %#v from reaching the secret through reflection.
func (id *Identity) GoString() string { return id.String() }

// Format makes every fmt verb (%s, %v, %+v, %x, %q, ...) print the redacted
// String, so no verb can dump the key bytes.
func (id *Identity) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(id.String())) }

// LogValue redacts the identity in structured logs.
func (id *Identity) LogValue() slog.Value { return slog.StringValue(id.String()) }

// Recipient is a user's X25519 public key; mail is encrypted to it.
type Recipient struct {
	x *age.X25519Recipient
}

// ParseRecipient parses the "age1..." form returned by Recipient.String.
func ParseRecipient(s string) (*Recipient, error) {
	x, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, fmt.Errorf("parse recipient: %w: %v", ErrMalformedKey, err)
	}
	return &Recipient{x: x}, nil
}

// String returns the "age1..." encoding of the public key.
func (r *Recipient) String() string {
	if r == nil || r.x == nil {
		return ""
	}
	return r.x.String()
}
