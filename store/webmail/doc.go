// Package webmail keeps what the webmail (rpc) alone writes into the
// store: composes, the server-side drafts a browser writes into, and the
// files uploaded for them (in the blob store like messages, encrypted for
// a secure user, charged to the user's quota); the states the webmail
// syncs from (a snapshot per user serial) and the changes since one; and
// the pruning of all of it. The messages themselves, drafts and sent mail
// among them, are the store's.
//
// It writes on the store's spine (store/internal/spine): uploads go
// through the user's write transaction, so quota and serial stay exact.
package webmail
