-- What the admin API's provisioning needs (issue 12): suspension and
-- per-protocol access on users, the last login per protocol, the indexes
-- that keep listings O(page) at any depth, held queue entries, and
-- bulletins that resume where they stopped.

-- A suspended user (suspended_at > 0, when it was suspended) logs in
-- nowhere but still receives mail. denied_protocols is a bit set of the
-- front ends the user may not log in to (store.Protocol): 0, all allowed.
ALTER TABLE users ADD COLUMN suspended_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspend_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN denied_protocols INTEGER NOT NULL DEFAULT 0;

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
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  protocol VARCHAR(16) NOT NULL,
  at INTEGER NOT NULL,
  ip VARCHAR(64) NOT NULL DEFAULT '',
  PRIMARY KEY (user_id, protocol)
);
CREATE INDEX user_logins_at ON user_logins(at);

-- Alias listings by domain, in pattern order.
CREATE INDEX aliases_domain_pattern ON aliases(domain_id, pattern, target);

-- A held queue entry is not claimed until it is released, which makes it
-- due at once.
ALTER TABLE outbound_queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbound_queue_created ON outbound_queue(created_ms, id);
CREATE INDEX outbound_rcpts_rcpt ON outbound_rcpts(rcpt);

-- A message sent to every user of a domain, of a plan, or to all
-- (vbulletin). Delivery goes through the delivery agent user by user in
-- id order; last_user_id is how far it got, so a restarted run resumes.
CREATE TABLE bulletins (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  scope VARCHAR(16) NOT NULL,
  scope_id INTEGER NOT NULL DEFAULT 0,
  mail_from TEXT NOT NULL,
  raw BLOB NOT NULL,
  state VARCHAR(16) NOT NULL DEFAULT 'running',
  last_user_id INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL DEFAULT 0,
  delivered INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
