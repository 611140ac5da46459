// Package smtp serves SMTP and LMTP over the delivery agent, on
// github.com/emersion/go-smtp. One Server plays three roles, each on the
// listeners given to it:
//
//   - MX: mail from other servers (RFC 5321), no authentication and no
//     relaying; STARTTLS (RFC 3207) when a certificate is configured.
//   - Submission: users' clients (RFC 6409) on port 587 with STARTTLS, and
//     on port 465 with TLS from the first byte (RFC 8314); AUTH (RFC 4954)
//     PLAIN and LOGIN, offered only over TLS or from loopback unless
//     plaintext is allowed; nothing is taken before authentication.
//   - LMTP: an MTA handing mail over (RFC 2033), over TCP or a unix
//     socket, with one reply per recipient after DATA.
//
// The protocol is go-smtp's; this package decides what each command gets:
// the agent checks senders at MAIL and recipients at RCPT and stores the
// message after DATA, and its refusals (*delivery.Error) become the SMTP
// replies, enhanced status codes included (RFC 2034, RFC 3463). What the
// agent does not see is guarded here: connections in total and per client
// address, messages per connection, a cutoff on errors after which the
// connection is dropped (magma's violations), and a timeout on every read
// and write.
package smtp
