-- Times are unix seconds (BIGINT) in both dialects, so no driver time
-- conversion differs between them. Addresses and names are stored as the
-- store normalises them (lower-case domains and addresses).

CREATE TABLE plans (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  quota_bytes INTEGER NOT NULL DEFAULT 0,
  max_recv_size INTEGER NOT NULL DEFAULT 0,
  max_send_size INTEGER NOT NULL DEFAULT 0,
  daily_send_bytes INTEGER NOT NULL DEFAULT 0,
  daily_recv_bytes INTEGER NOT NULL DEFAULT 0,
  daily_recv_per_ip INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);

CREATE TABLE domains (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE domain_aliases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL
);

CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES domains(id),
  address TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  plan_id INTEGER REFERENCES plans(id),
  quota_bytes INTEGER,
  max_recv_size INTEGER,
  max_send_size INTEGER,
  daily_send_bytes INTEGER,
  daily_recv_bytes INTEGER,
  daily_recv_per_ip INTEGER,
  used_bytes INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER NOT NULL DEFAULT 0,
  lock_reason TEXT NOT NULL DEFAULT '',
  secure INTEGER NOT NULL DEFAULT 0,
  auth_epoch INTEGER NOT NULL DEFAULT 0,
  serial INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX users_domain ON users(domain_id, address);

CREATE TABLE identifiers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL UNIQUE
);
CREATE INDEX identifiers_user ON identifiers(user_id);

CREATE TABLE user_keys (
  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  public_key TEXT NOT NULL,
  sealed_private BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE aliases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
  pattern TEXT NOT NULL,
  target TEXT NOT NULL,
  is_pattern INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (pattern, target)
);
CREATE INDEX aliases_domain ON aliases(domain_id, is_pattern);

CREATE TABLE nofrom (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pattern TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE mailboxes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  parent_id INTEGER,
  name TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL DEFAULT 0,
  uidnext INTEGER NOT NULL DEFAULT 1,
  highest_modseq INTEGER NOT NULL DEFAULT 1,
  special_use TEXT NOT NULL DEFAULT '',
  subscribed INTEGER NOT NULL DEFAULT 1,
  message_count INTEGER NOT NULL DEFAULT 0,
  unseen_count INTEGER NOT NULL DEFAULT 0,
  size_bytes INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, name)
);

CREATE TABLE blobs (
  id TEXT PRIMARY KEY,
  part TEXT NOT NULL,
  size INTEGER NOT NULL,
  stored INTEGER NOT NULL,
  refs INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX blobs_refs ON blobs(refs);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  flags INTEGER NOT NULL DEFAULT 0,
  keywords TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL,
  internal_date INTEGER NOT NULL,
  blob_id TEXT NOT NULL,
  info BLOB NOT NULL,
  info_sealed INTEGER NOT NULL DEFAULT 0,
  search_from TEXT NOT NULL DEFAULT '',
  search_to TEXT NOT NULL DEFAULT '',
  search_subject TEXT NOT NULL DEFAULT '',
  msgid_hash TEXT NOT NULL DEFAULT '',
  thread_id INTEGER NOT NULL DEFAULT 0,
  has_attachments INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_date ON messages(mailbox_id, internal_date, uid);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_user ON messages(user_id, id);
CREATE INDEX messages_msgid ON messages(user_id, msgid_hash);
CREATE INDEX messages_blob ON messages(blob_id);

-- Expunged UIDs with the modseq of their removal, for "what changed since"
-- (RFC 7162 QRESYNC VANISHED, the webmail's changes call).
CREATE TABLE expunged (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
);

CREATE TABLE contacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL DEFAULT '',
  email TEXT NOT NULL DEFAULT '',
  data TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_user ON contacts(user_id, name);

CREATE TABLE settings (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user_id, name)
);

-- Daily counters (received bytes per user and per IP, sent bytes per user).
CREATE TABLE counters (
  name TEXT NOT NULL,
  day INTEGER NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (name, day)
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
