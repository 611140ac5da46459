package saslserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// Mechanism names.
const (
	Login   = "LOGIN"
	CRAMMD5 = "CRAM-MD5"
)

// ErrMalformed is a CRAM-MD5 answer that is not "login digest".
var ErrMalformed = errors.New("malformed CRAM-MD5 response")

// NewLogin returns the server side of LOGIN (draft-murchison-sasl-login):
// obsolete, but Outlook and many phones still prefer it to PLAIN. The
// client may give the user name as the initial response (RFC 4954 4);
// otherwise it is asked for. authenticate checks the pair.
func NewLogin(authenticate func(login, password string) error) sasl.Server {
	return &loginServer{authenticate: authenticate}
}

type loginServer struct {
	step         int
	user         string
	authenticate func(login, password string) error
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.authenticate(l.user, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

// NewCRAMMD5 returns the server side of CRAM-MD5 (RFC 2195): a challenge
// in the form of a message id naming hostname, then the answer "login
// digest". verify checks the digest (lower-case hex) against the
// challenge; an answer of another form ends the exchange with the error
// malformed returns (ErrMalformed when it is nil).
func NewCRAMMD5(hostname string, verify func(login, challenge, digest string) error, malformed func() error) sasl.Server {
	var b [12]byte
	rand.Read(b[:])
	if malformed == nil {
		malformed = func() error { return ErrMalformed }
	}
	return &cramServer{
		challenge: fmt.Sprintf("<%s.%d@%s>", hex.EncodeToString(b[:]), time.Now().Unix(), hostname),
		verify:    verify,
		malformed: malformed,
	}
}

type cramServer struct {
	challenge string
	done      bool
	verify    func(login, challenge, digest string) error
	malformed func() error
}

func (c *cramServer) Next(response []byte) ([]byte, bool, error) {
	if c.done {
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
	if response == nil {
		return []byte(c.challenge), false, nil
	}
	c.done = true
	// "login SP digest", the digest 16 bytes in hex; a login may itself
	// hold spaces, so the digest is what follows the last one.
	resp := string(response)
	i := strings.LastIndexByte(resp, ' ')
	if i <= 0 || len(resp)-i-1 != 32 {
		return nil, true, c.malformed()
	}
	return nil, true, c.verify(resp[:i], c.challenge, strings.ToLower(resp[i+1:]))
}
