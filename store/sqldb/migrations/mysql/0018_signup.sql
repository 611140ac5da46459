-- Self-service registration (issue 13, the site): the abuse limits of
-- package store/signup, and a new account's probation.

-- A user registered through the site sends at most probation_send_bytes
-- a day until probation_until (Unix seconds), whatever its plan allows:
-- spammers register to send. 0: no probation.
ALTER TABLE users ADD COLUMN probation_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN probation_send_bytes BIGINT NOT NULL DEFAULT 0;

-- Networks (CIDR, in canonical form) that may not register; expires_at 0:
-- never.
CREATE TABLE signup_bans (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  network VARCHAR(64) NOT NULL,
  reason TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  UNIQUE KEY signup_bans_network (network)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Invite codes an operator hands out when registration needs one; each is
-- good for uses_left more registrations.
CREATE TABLE signup_invites (
  code VARCHAR(64) NOT NULL PRIMARY KEY,
  uses_left BIGINT NOT NULL,
  note TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per registration, by the client's network (IPv4 /24, IPv6 /64)
-- and wider network (IPv4 /24 again, IPv6 /48), to count them per day.
CREATE TABLE signup_registrations (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  network VARCHAR(64) NOT NULL,
  wide VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  KEY signup_registrations_network (network, created_at),
  KEY signup_registrations_wide (wide, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
