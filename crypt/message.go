package crypt

import (
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// ErrWrongKey means the data was not encrypted for this key, or was altered.
var ErrWrongKey = errors.New("crypt: wrong key")

// Encrypt returns a writer that encrypts what is written to it for to and
// writes the age-format ciphertext to dst. Every call uses a fresh random
// file key. Close must be called to finish the stream; it does not close dst.
func Encrypt(dst io.Writer, to *Recipient) (io.WriteCloser, error) {
	if to == nil || to.x == nil {
		return nil, errors.New("encrypt message: nil recipient")
	}
	w, err := age.Encrypt(dst, to.x)
	if err != nil {
		return nil, fmt.Errorf("encrypt message: %w", err)
	}
	return w, nil
}

// Decrypt reads an age stream made by Encrypt from src and returns the
// plaintext reader. If id is not the recipient the error wraps ErrWrongKey.
// The payload is authenticated chunk by chunk as it is read, so a damaged
// stream shows up as an error from Read.
func Decrypt(src io.Reader, id *Identity) (io.Reader, error) {
	if id == nil || id.x == nil {
		return nil, errors.New("decrypt message: nil identity")
	}
	r, err := age.Decrypt(src, id.x)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("decrypt message: %w: %w", ErrWrongKey, err)
		}
		return nil, fmt.Errorf("decrypt message: %w", err)
	}
	return &readErrWrapper{r: r}, nil
}

// readErrWrapper adds context to age's stream errors ("failed to decrypt
// and authenticate payload chunk") so they are recognisable up the stack.
type readErrWrapper struct{ r io.Reader }

func (w *readErrWrapper) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decrypt message: %w", err)
	}
	return n, err
}
