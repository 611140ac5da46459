// Package connlimit is what every mail listener (SMTP, LMTP, IMAP, POP3)
// shares about the connections it admits: how many are open in all and
// from one client network, and whether a connection counts as secure
// enough for a plaintext password; and the accept loop's handling of
// errors that pass, and the answer to a connection refused.
package connlimit
