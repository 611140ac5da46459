package pop3

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"

	"basalt/protocols/saslserver"
)

// AUTH (RFC 5034) runs SASL exchanges: PLAIN from go-sasl, LOGIN and
// CRAM-MD5 from saslserver. The checks are the session service's, under
// its login throttle.

// mechanisms are those offered on this connection: none that send a
// password in the clear where that is not allowed; CRAM-MD5 sends none.
func (p *popSession) mechanisms() []string {
	var m []string
	if p.plaintextOK() {
		m = append(m, sasl.Plain, saslserver.Login)
	}
	if p.srv.cfg.CRAM != nil {
		m = append(m, saslserver.CRAMMD5)
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
	case saslserver.Login:
		if !p.plaintextOK() {
			return nil, errPlaintext
		}
		return saslserver.NewLogin(p.password), nil
	case saslserver.CRAMMD5:
		if p.srv.cfg.CRAM != nil {
			return saslserver.NewCRAMMD5(p.srv.cfg.Hostname, func(login, challenge, digest string) error {
				a, err := p.srv.cfg.CRAM.AuthenticateCRAM(p.ctx(), login, challenge, digest, p.remote)
				return p.admit(login, a, err)
			}, func() error { return errAuthFailed }), nil
		}
	}
	return nil, bad("Unsupported authentication mechanism")
}
