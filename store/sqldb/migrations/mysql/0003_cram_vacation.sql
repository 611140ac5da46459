-- A CRAM-MD5 secret (the HMAC-MD5 inner and outer states, as Dovecot keeps
-- them) for users who may log in with CRAM-MD5; empty for everyone else.
ALTER TABLE users ADD COLUMN cram_secret VARBINARY(255) NOT NULL DEFAULT '';

-- When a vacation reply last went to a sender (RFC 3834 5.1: at most one
-- per sender per interval).
CREATE TABLE vacation_replies (
  user_id BIGINT NOT NULL,
  sender VARCHAR(320) NOT NULL,
  sent_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, sender),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Set when the user has vacation or forwarding rules, so that delivery
-- reads them only for those users.
ALTER TABLE users ADD COLUMN delivery_rules TINYINT NOT NULL DEFAULT 0;
