// Package admin keeps what the admin API (rest) runs on: admins, the
// grants that give them scopes over domains, their API keys, the audit
// log's listing, Idempotency-Key records, jobs with the runner that
// carries them through restarts, and per-key rate counters.
//
// Authority. A scope is "resource:action" (domains:read, users:write, ...);
// "resource:*" and "*" name every action and everything, and a write scope
// implies the read scope of its resource. A grant gives an admin scopes over
// a list of domains (none: every domain). A key carries scopes, domains,
// source networks and an expiry of its own, and what it may do is what both
// it and its admin's grants allow (Principal.Allows). Nothing a key makes
// (a key, an admin's grant) may be wider than the key: every scope it holds
// for every domain it names, no network outside the key's, no later expiry
// (Principal.Covers; CreateKey, AddGrant and CreateAdmin check it, and the
// command line, which acts with no key, is the one way to make the first).
//
// Secrets. A key's secret is 256 random bits, shown once; the table keeps
// its SHA-256 and a short public prefix to find the row. A fast hash is
// right here where it would be wrong for a password: a guess at a 256-bit
// uniformly random secret has no dictionary to draw from and a 2^-256
// chance, so a slow KDF would add nothing against a stolen table while it
// would cost every API request a deliberate hundred milliseconds (and hand
// anyone who can send requests a way to burn the server's CPU).
//
// It writes on the store's spine: audit records go into the transaction of
// the change they record (store.Store.AuditTx).
package admin
