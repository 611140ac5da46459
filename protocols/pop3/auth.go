package pop3

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// AUTH (RFC 5034) runs SASL exchanges: PLAIN from go-sasl, LOGIN and
// CRAM-MD5 written here, as go-sasl has no server side for them. The
// checks are the session service's, under its login throttle.

const (
	mechLogin   = "LOGIN"
	mechCRAMMD5 = "CRAM-MD5"
)

// mechanisms are those offered on this connection: none that send a
// password in the clear where that is not allowed; CRAM-MD5 sends none.
func (p *popSession) mechanisms() []string {
	var m []string
	if p.plaintextOK() {
		m = append(m, sasl.Plain, mechLogin)
	}
	if p.srv.cfg.CRAM != nil {
		m = append(m, mechCRAMMD5)
	}
	return m
}

func (p *popSession) authCmd(args []string) bool {
	if len(args) == 0 {
		// The mechanism list without a mechanism is RFC 1734's, which
		// RFC 5034 dropped but older clients still ask for.
		p.ok("Mechanisms follow")
		for _, m := range p.mechanisms() {
			p.w.WriteString(m + "\r\n")
		}
		p.w.WriteString(".\r\n")
		return true
	}
	if len(args) > 2 {
		return p.refuse(errTooManyArgs)
	}
	srv, r := p.saslServer(strings.ToUpper(args[0]))
	if r != nil {
		return p.refuse(r)
	}
	var resp []byte // nil: no initial response
	if len(args) == 2 {
		resp = []byte{} // "=" is an empty initial response (RFC 5034 4)
		if args[1] != "=" {
			var err error
			if resp, err = base64.StdEncoding.DecodeString(args[1]); err != nil {
				return p.refuse(bad("Malformed base64 in the initial response"))
			}
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return p.refuse(asReply(err))
		}
		if done {
			if p.state != stateTransaction {
				return p.refuse(errAuthFailed)
			}
			p.loggedIn()
			return true
		}
		p.w.WriteString("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
		if p.w.Flush() != nil {
			return false
		}
		p.c.readDeadline(p.srv.cfg.LoginTimeout)
		line, err := p.readLine(saslLineMax)
		switch {
		case errors.Is(err, errLineTooLong):
			return p.refuse(bad("Authentication response too long"))
		case err != nil:
			return false
		case line == "*":
			return p.refuse(bad("Authentication cancelled")) // RFC 5034 4
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			return p.refuse(bad("Malformed base64 in the authentication response"))
		}
	}
}

// saslServer returns the server side of mech, or why it is refused.
func (p *popSession) saslServer(mech string) (sasl.Server, *reply) {
	switch mech {
	case sasl.Plain:
		if !p.plaintextOK() {
			return nil, errPlaintext
		}
		return sasl.NewPlainServer(func(identity, login, password string) error {
			// No proxy authorization (RFC 4616 2): the authzid is the
			// login or nothing.
			if identity != "" && identity != login {
				return bad("[AUTH] Authorization identity must be the login")
			}
			return p.password(login, password)
		}), nil
	case mechLogin:
		if !p.plaintextOK() {
			return nil, errPlaintext
		}
		return &loginServer{authenticate: p.password}, nil
	case mechCRAMMD5:
		if p.srv.cfg.CRAM != nil {
			return p.cramServer(), nil
		}
	}
	return nil, bad("Unsupported authentication mechanism")
}

// loginServer is the server side of LOGIN (draft-murchison-sasl-login):
// obsolete, but Outlook and many phones still prefer it to PLAIN. The
// user name may come as the initial response.
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

// cramServer runs one CRAM-MD5 exchange (RFC 2195): a challenge in the
// form of a message id, then the answer "login digest".
type cramServer struct {
	challenge string
	done      bool
	verify    func(login, challenge, digest string) error
}

func (p *popSession) cramServer() sasl.Server {
	var b [12]byte
	rand.Read(b[:])
	return &cramServer{
		challenge: fmt.Sprintf("<%s.%d@%s>", hex.EncodeToString(b[:]), time.Now().Unix(), p.srv.cfg.Hostname),
		verify: func(login, challenge, digest string) error {
			a, err := p.srv.cfg.CRAM.AuthenticateCRAM(p.ctx(), login, challenge, digest, p.remote)
			return p.admit(login, a, err)
		},
	}
}

func (c *cramServer) Next(response []byte) ([]byte, bool, error) {
	if c.done {
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
	if response == nil {
		return []byte(c.challenge), false, nil
	}
	c.done = true
	// "login SP digest", the digest 16 octets in hex; a login may itself
	// hold spaces, so the digest is what follows the last one.
	resp := string(response)
	i := strings.LastIndexByte(resp, ' ')
	if i <= 0 || len(resp)-i-1 != 32 {
		return nil, true, errAuthFailed
	}
	return nil, true, c.verify(resp[:i], c.challenge, strings.ToLower(resp[i+1:]))
}
