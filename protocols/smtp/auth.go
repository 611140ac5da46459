package smtp

import "github.com/emersion/go-sasl"

// loginServer is the server side of LOGIN (draft-murchison-sasl-login),
// which go-sasl has only as a client. It is obsolete, but Outlook and many
// phones still prefer it to PLAIN. The client may give the user name as
// the initial response (RFC 4954 4); otherwise it is asked for.
type loginServer struct {
	step         int
	user         string
	authenticate func(login, password string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
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
