// Package signup keeps what self-service registration (the site,
// package templates) guards itself with against abuse: networks banned
// from registering, the registrations made from each network (at most so
// many a day), invite codes an operator hands out, accounts waiting for
// an administrator's approval, and the short-lived things a registration
// needs across requests, in the shared cache: one-use captcha answers,
// the state between the registration's steps, and rate counts (making
// captchas, per network).
//
// Its tables (signup_bans, signup_invites, signup_registrations,
// migration 0018) are its own. It rides the store's spine
// (store/internal/spine) for the database and the cache; a registration
// is recorded, and its invite spent, in the transaction that creates the
// user (Registration, through store.UserOptions.InTx), so a refused one
// leaves nothing behind. The admin API manages bans, invites and
// approvals through the same methods.
package signup
