-- A CRAM-MD5 secret (the HMAC-MD5 inner and outer states, as Dovecot keeps
-- them) for users who may log in with CRAM-MD5; empty for everyone else.
ALTER TABLE users ADD COLUMN cram_secret BLOB NOT NULL DEFAULT '';

-- When a vacation reply last went to a sender (RFC 3834 5.1: at most one
-- per sender per interval).
CREATE TABLE vacation_replies (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  sender TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, sender)
);

-- Set when the user has vacation or forwarding rules, so that delivery
-- reads them only for those users.
ALTER TABLE users ADD COLUMN delivery_rules INTEGER NOT NULL DEFAULT 0;
