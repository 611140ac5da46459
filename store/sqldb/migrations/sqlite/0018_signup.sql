-- Self-service registration (issue 13, the site): the abuse limits of
-- package store/signup, and a new account's probation.

-- A user registered through the site sends at most probation_send_bytes
-- a day until probation_until (Unix seconds), whatever its plan allows:
-- spammers register to send. 0: no probation.
ALTER TABLE users ADD COLUMN probation_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN probation_send_bytes INTEGER NOT NULL DEFAULT 0;

-- Networks (CIDR, in canonical form) that may not register; expires_at 0:
-- never.
CREATE TABLE signup_bans (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  network VARCHAR(64) NOT NULL UNIQUE,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

-- Invite codes an operator hands out when registration needs one; each is
-- good for uses_left more registrations.
CREATE TABLE signup_invites (
  code VARCHAR(64) NOT NULL PRIMARY KEY,
  uses_left INTEGER NOT NULL,
  note TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

-- One row per registration, by the client's network (IPv4 /24, IPv6 /64)
-- and wider network (IPv4 /24 again, IPv6 /48), to count them per day.
CREATE TABLE signup_registrations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  network VARCHAR(64) NOT NULL,
  wide VARCHAR(64) NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX signup_registrations_network ON signup_registrations(network, created_at);
CREATE INDEX signup_registrations_wide ON signup_registrations(wide, created_at);
