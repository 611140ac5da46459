-- What must outlive the cache (issue 9, part 5): a Redis restart without
-- persistence used to end every web session and free every POP3 lock.

-- Web sessions (package session). The cookie carries the id and a secret;
-- this row holds only a hash of the secret, and a secure user's unlocked
-- key sealed under the secret, so a copy of the database opens no session
-- and no key. idle_until is renewed as the session is used.
CREATE TABLE web_sessions (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id INTEGER NOT NULL,
  csrf VARCHAR(64) NOT NULL,
  secret_hash BLOB NOT NULL,
  sealed_key BLOB,
  auth_epoch INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  idle_until INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

-- POP3 maildrop locks (RFC 1939 8: one session per maildrop), a lease:
-- the holder renews expires_ms (Unix milliseconds) while it lives, and a
-- lock whose lease ran out may be taken by the next session.
CREATE TABLE maildrop_locks (
  user_id INTEGER NOT NULL PRIMARY KEY,
  token VARCHAR(64) NOT NULL,
  expires_ms INTEGER NOT NULL
);
