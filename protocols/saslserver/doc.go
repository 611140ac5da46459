// Package saslserver holds the server sides of the SASL mechanisms that
// github.com/emersion/go-sasl has only as clients or not at all, LOGIN and
// CRAM-MD5, for the SMTP, POP3 and IMAP front ends to share. Each returns
// a sasl.Server; checking the credentials is the caller's (the session
// service).
package saslserver
