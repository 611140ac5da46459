// Package crypt is Basalt's encryption service.
//
// It owns three jobs and nothing else: per-user X25519 key pairs (age
// identities and recipients), sealing a user's private key under a key
// derived from the password (argon2id + XChaCha20-Poly1305), and encrypting
// message bodies to a user's public key with age so delivery needs no
// password. SealWithKey/OpenWithKey additionally let a web session keep the
// unlocked identity sealed under a secret only the client's cookie carries.
//
// Secret-bearing values never print their secret: Identity's String, Format
// and LogValue show only the public half.
package crypt
