-- Times are unix seconds (BIGINT) in both dialects, so no driver time
-- conversion differs between them. utf8mb4_bin compares bytes, as SQLite
-- does; the store normalises the case of addresses itself.

CREATE TABLE plans (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL UNIQUE,
  quota_bytes BIGINT NOT NULL DEFAULT 0,
  max_recv_size BIGINT NOT NULL DEFAULT 0,
  max_send_size BIGINT NOT NULL DEFAULT 0,
  daily_send_bytes BIGINT NOT NULL DEFAULT 0,
  daily_recv_bytes BIGINT NOT NULL DEFAULT 0,
  daily_recv_per_ip BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE domains (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE domain_aliases (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL UNIQUE,
  domain_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  FOREIGN KEY (domain_id) REFERENCES domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE users (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id BIGINT NOT NULL,
  address VARCHAR(320) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL,
  plan_id BIGINT NULL,
  quota_bytes BIGINT NULL,
  max_recv_size BIGINT NULL,
  max_send_size BIGINT NULL,
  daily_send_bytes BIGINT NULL,
  daily_recv_bytes BIGINT NULL,
  daily_recv_per_ip BIGINT NULL,
  used_bytes BIGINT NOT NULL DEFAULT 0,
  message_count BIGINT NOT NULL DEFAULT 0,
  locked_until BIGINT NOT NULL DEFAULT 0,
  lock_reason VARCHAR(255) NOT NULL DEFAULT '',
  secure TINYINT NOT NULL DEFAULT 0,
  auth_epoch BIGINT NOT NULL DEFAULT 0,
  serial BIGINT UNSIGNED NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  KEY users_domain (domain_id, address),
  FOREIGN KEY (domain_id) REFERENCES domains(id),
  FOREIGN KEY (plan_id) REFERENCES plans(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE identifiers (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  name VARCHAR(320) NOT NULL UNIQUE,
  KEY identifiers_user (user_id),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_keys (
  user_id BIGINT NOT NULL PRIMARY KEY,
  public_key VARCHAR(255) NOT NULL,
  sealed_private BLOB NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE aliases (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id BIGINT NOT NULL,
  pattern VARCHAR(320) NOT NULL,
  target VARCHAR(320) NOT NULL,
  is_pattern TINYINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  UNIQUE KEY aliases_pattern_target (pattern, target),
  KEY aliases_domain (domain_id, is_pattern),
  FOREIGN KEY (domain_id) REFERENCES domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE nofrom (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pattern VARCHAR(255) NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE mailboxes (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  parent_id BIGINT NULL,
  name VARCHAR(512) NOT NULL,
  uidvalidity BIGINT UNSIGNED NOT NULL DEFAULT 0,
  uidnext BIGINT UNSIGNED NOT NULL DEFAULT 1,
  highest_modseq BIGINT UNSIGNED NOT NULL DEFAULT 1,
  special_use VARCHAR(32) NOT NULL DEFAULT '',
  subscribed TINYINT NOT NULL DEFAULT 1,
  message_count BIGINT NOT NULL DEFAULT 0,
  unseen_count BIGINT NOT NULL DEFAULT 0,
  size_bytes BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  UNIQUE KEY mailboxes_user_name (user_id, name),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE blobs (
  id CHAR(32) NOT NULL PRIMARY KEY,
  part VARCHAR(64) NOT NULL,
  size BIGINT NOT NULL,
  stored BIGINT NOT NULL,
  refs INT NOT NULL,
  created_at BIGINT NOT NULL,
  KEY blobs_refs (refs)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE messages (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  mailbox_id BIGINT NOT NULL,
  uid BIGINT UNSIGNED NOT NULL,
  modseq BIGINT UNSIGNED NOT NULL,
  flags BIGINT NOT NULL DEFAULT 0,
  keywords TEXT NOT NULL,
  size BIGINT NOT NULL,
  internal_date BIGINT NOT NULL,
  blob_id CHAR(32) CHARACTER SET ascii NOT NULL,
  info MEDIUMBLOB NOT NULL,
  info_sealed TINYINT NOT NULL DEFAULT 0,
  search_from VARCHAR(1024) NOT NULL DEFAULT '',
  search_to VARCHAR(1024) NOT NULL DEFAULT '',
  search_subject VARCHAR(1024) NOT NULL DEFAULT '',
  msgid_hash CHAR(32) CHARACTER SET ascii NOT NULL DEFAULT '',
  thread_id BIGINT NOT NULL DEFAULT 0,
  has_attachments TINYINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  UNIQUE KEY messages_mailbox_uid (mailbox_id, uid),
  KEY messages_date (mailbox_id, internal_date, uid),
  KEY messages_modseq (mailbox_id, modseq),
  KEY messages_user (user_id, id),
  KEY messages_msgid (user_id, msgid_hash),
  KEY messages_blob (blob_id),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (mailbox_id) REFERENCES mailboxes(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Expunged UIDs with the modseq of their removal, for "what changed since"
-- (RFC 7162 QRESYNC VANISHED, the webmail's changes call).
CREATE TABLE expunged (
  mailbox_id BIGINT NOT NULL,
  uid BIGINT UNSIGNED NOT NULL,
  modseq BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (mailbox_id, uid),
  FOREIGN KEY (mailbox_id) REFERENCES mailboxes(id) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE contacts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  email VARCHAR(320) NOT NULL DEFAULT '',
  data MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  KEY contacts_user (user_id, name),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE settings (
  user_id BIGINT NOT NULL,
  name VARCHAR(128) NOT NULL,
  value MEDIUMTEXT NOT NULL,
  PRIMARY KEY (user_id, name),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Daily counters (received bytes per user and per IP, sent bytes per user).
CREATE TABLE counters (
  name VARCHAR(255) NOT NULL,
  day BIGINT NOT NULL,
  value BIGINT NOT NULL,
  PRIMARY KEY (name, day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_log (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at BIGINT NOT NULL,
  actor VARCHAR(255) NOT NULL,
  action VARCHAR(64) NOT NULL,
  subject VARCHAR(320) NOT NULL,
  detail TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
