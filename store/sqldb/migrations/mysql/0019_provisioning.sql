-- What the admin API's provisioning needs (issue 12): suspension and
-- per-protocol access on users, the last login per protocol, the indexes
-- that keep listings O(page) at any depth, held queue entries, and
-- bulletins that resume where they stopped.

-- A suspended user (suspended_at > 0, when it was suspended) logs in
-- nowhere but still receives mail. denied_protocols is a bit set of the
-- front ends the user may not log in to (store.Protocol): 0, all allowed.
ALTER TABLE users ADD COLUMN suspended_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspend_reason VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN denied_protocols INT NOT NULL DEFAULT 0;

-- The blob partition a user's new message files go to (vmoveuser); ''
-- lets the blob store pick (the one with the most free space).
ALTER TABLE users ADD COLUMN blob_partition VARCHAR(64) NOT NULL DEFAULT '';

-- Keyset paging of the user list, by each sort and filter it offers.
CREATE INDEX users_created ON users(created_at, id);
CREATE INDEX users_domain_created ON users(domain_id, created_at, id);
CREATE INDEX users_plan ON users(plan_id, address);
CREATE INDEX users_suspended ON users(suspended_at, address);
CREATE INDEX users_locked ON users(locked_until);

-- The last successful login of a user per protocol (imap, pop3, smtp,
-- webmail), written at most once per login and less often for a user
-- who logs in again and again (session coalesces them).
CREATE TABLE user_logins (
  user_id BIGINT NOT NULL,
  protocol VARCHAR(16) NOT NULL,
  at BIGINT NOT NULL,
  ip VARCHAR(64) NOT NULL DEFAULT '',
  PRIMARY KEY (user_id, protocol),
  KEY user_logins_at (at),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Alias listings by domain, in pattern order.
CREATE INDEX aliases_domain_pattern ON aliases(domain_id, pattern, target);

-- A held queue entry is not claimed until it is released, which makes it
-- due at once.
ALTER TABLE outbound_queue ADD COLUMN held TINYINT NOT NULL DEFAULT 0;
CREATE INDEX outbound_queue_created ON outbound_queue(created_ms, id);
CREATE INDEX outbound_rcpts_rcpt ON outbound_rcpts(rcpt);

-- A message sent to every user of a domain, of a plan, or to all
-- (vbulletin). Delivery goes through the delivery agent user by user in
-- id order; last_user_id is how far it got, so a restarted run resumes.
CREATE TABLE bulletins (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  scope VARCHAR(16) NOT NULL,
  scope_id BIGINT NOT NULL DEFAULT 0,
  mail_from VARCHAR(320) NOT NULL,
  raw LONGBLOB NOT NULL,
  state VARCHAR(16) NOT NULL DEFAULT 'running',
  last_user_id BIGINT NOT NULL DEFAULT 0,
  total BIGINT NOT NULL DEFAULT 0,
  delivered BIGINT NOT NULL DEFAULT 0,
  failed BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
