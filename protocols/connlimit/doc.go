// Package connlimit is what every mail listener (SMTP, LMTP, IMAP, POP3)
// shares about the connections it admits: how many are open in all and
// from one client network, and whether a connection counts as secure
// enough for a plaintext password.
package connlimit
