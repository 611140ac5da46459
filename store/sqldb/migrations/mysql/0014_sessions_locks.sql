-- What must outlive the cache (issue 9, part 5): a Redis restart without
-- persistence used to end every web session and free every POP3 lock.

-- Web sessions (package session). The cookie carries the id and a secret;
-- this row holds only a hash of the secret, and a secure user's unlocked
-- key sealed under the secret, so a copy of the database opens no session
-- and no key. idle_until is renewed as the session is used.
CREATE TABLE web_sessions (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id BIGINT NOT NULL,
  csrf VARCHAR(64) NOT NULL,
  secret_hash VARBINARY(64) NOT NULL,
  sealed_key BLOB,
  auth_epoch BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  idle_until BIGINT NOT NULL,
  KEY web_sessions_user (user_id),
  KEY web_sessions_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- POP3 maildrop locks (RFC 1939 8: one session per maildrop), a lease:
-- the holder renews expires_ms (Unix milliseconds) while it lives, and a
-- lock whose lease ran out may be taken by the next session.
CREATE TABLE maildrop_locks (
  user_id BIGINT NOT NULL PRIMARY KEY,
  token VARCHAR(64) NOT NULL,
  expires_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
