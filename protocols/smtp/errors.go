package smtp

import (
	"errors"
	"net"

	"github.com/emersion/go-smtp"

	"basalt/delivery"
)

func smtpErr(code int, class, subject, detail int, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: msg}
}

// The replies this package gives itself; the agent's are in delivery.
var (
	errTemporary     = smtpErr(451, 4, 3, 0, "Temporary failure, please try again later")
	errShuttingDown  = smtpErr(421, 4, 3, 2, "Service shutting down, try again later")
	errRevoked       = smtpErr(421, 4, 7, 0, "Session ended by the server")
	errTooManyConns  = smtpErr(421, 4, 4, 5, "Too many connections, try again later")
	errTooManyFromIP = smtpErr(421, 4, 7, 0, "Too many connections from your address")
	errTooManyMsgs   = smtpErr(421, 4, 7, 0, "Too many messages on one connection, reconnect to send more")
	errTooManyErrors = smtpErr(421, 4, 7, 0, "Too many errors, closing connection")
	errBadSequence   = smtpErr(503, 5, 5, 1, "Bad sequence of commands")
	errReadTimeout   = smtpErr(421, 4, 4, 2, "Timeout reading the message, closing connection")
	errLineTooLong   = smtpErr(500, 5, 5, 2, "Line too long")
	// errBareNewline is Postfix's answer with smtpd_forbid_bare_newline
	// (its smtpd_forbid_bare_newline_reject_code is 550, the enhanced
	// code 5.5.2), after which it closes the connection, as chasquid and
	// sendmail do: see errBareNewlineRead.
	errBareNewline = smtpErr(550, 5, 5, 2, "Error: bare <CR> or <LF> received; lines must end in <CR><LF>")

	// RFC 4954 6 gives the AUTH replies.
	errAuthFailed    = smtpErr(535, 5, 7, 8, "Authentication credentials invalid")
	errAuthLocked    = smtpErr(535, 5, 7, 8, "Account locked")
	errAuthThrottled = smtpErr(454, 4, 7, 0, "Too many failed logins, try again later")
	errAuthTemporary = smtpErr(454, 4, 7, 0, "Temporary authentication failure")
	errAuthEncrypt   = smtpErr(538, 5, 7, 11, "Encryption required for requested authentication mechanism")
	errAuthNotHere   = smtpErr(502, 5, 5, 1, "AUTH is not offered here; use the submission port")
	errAuthzid       = smtpErr(535, 5, 7, 8, "Authorization identity must be the login")
)

// reply is the SMTP reply for err: the agent's refusals carry theirs
// (RFC 5321 4.2, enhanced codes RFC 3463); anything else is a failure on
// this side, which the client should retry.
func reply(err error) *smtp.SMTPError {
	if de, ok := errors.AsType[*delivery.Error](err); ok {
		return &smtp.SMTPError{Code: de.Code, EnhancedCode: smtp.EnhancedCode(de.Enhanced), Message: de.Message}
	}
	if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
		return se
	}
	return errTemporary
}

// readError is the reply for a message whose reading failed on the
// client's side.
func readError(err error) *smtp.SMTPError {
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return reply(delivery.ErrTooLarge) // RFC 1870 6.1: 552 once the declared size is passed
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	case errors.Is(err, errBareNewlineRead):
		return errBareNewline
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return errReadTimeout
	}
	return errTemporary
}
