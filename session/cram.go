package session

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// CRAM-MD5 (RFC 2195) needs, server-side, HMAC-MD5 keyed by the password.
// Like Dovecot's CRAM-MD5 scheme, Basalt keeps not the password but the
// MD5 states after the HMAC's inner and outer key blocks: enough to check
// a response, not to recover the password. It is still a secret that lets
// its holder answer CRAM-MD5 challenges, so it is kept only when the
// operator turns CRAM-MD5 on, and never for secure users, whose mail opens
// only with the password itself.

// CRAMSecret returns the stored form of password for CRAM-MD5.
func CRAMSecret(password string) ([]byte, error) {
	key := []byte(password)
	if len(key) > md5.BlockSize {
		sum := md5.Sum(key)
		key = sum[:]
	}
	var ipad, opad [md5.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	var out []byte
	for _, pad := range [][]byte{ipad[:], opad[:]} {
		h := md5.New()
		h.Write(pad)
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("cram-md5 secret: %w", err)
		}
		out = append(out, byte(len(state)))
		out = append(out, state...)
	}
	return out, nil
}

// verifyCRAM checks a CRAM-MD5 response digest (hex) for challenge.
func verifyCRAM(secret []byte, challenge, digestHex string) (bool, error) {
	states := make([]hash.Hash, 0, 2)
	for rest := secret; len(rest) > 0; {
		n := int(rest[0])
		if len(rest) < 1+n {
			return false, errors.New("cram-md5 secret is damaged")
		}
		h := md5.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(rest[1 : 1+n]); err != nil {
			return false, fmt.Errorf("cram-md5 secret: %w", err)
		}
		states = append(states, h)
		rest = rest[1+n:]
	}
	if len(states) != 2 {
		return false, errors.New("cram-md5 secret is damaged")
	}
	inner, outer := states[0], states[1]
	inner.Write([]byte(challenge))
	outer.Write(inner.Sum(nil))
	got, err := hex.DecodeString(digestHex)
	if err != nil {
		return false, nil
	}
	return hmac.Equal(outer.Sum(nil), got), nil
}
