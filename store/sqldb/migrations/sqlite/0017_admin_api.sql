-- The admin API (issue 12): domain limits, admins with their grants and API
-- keys, the audit log's who/what/before/after, idempotency records and jobs.

-- Domain limits (IndiMail's vlimit): 0 is unlimited. max_quota_bytes bounds
-- the sum of the quotas of the domain's users; default_plan_id is the plan a
-- new user of the domain gets when none is named.
ALTER TABLE domains ADD COLUMN max_users INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN max_aliases INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN max_quota_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN default_plan_id INTEGER;
ALTER TABLE domains ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

-- Who made a change (admin, key, client address), the domain it touched
-- (for domain-limited readers of the log) and the target's state before and
-- after, as JSON.
ALTER TABLE audit_log ADD COLUMN admin_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN key_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN domain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN before_json TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN after_json TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_domain ON audit_log(domain, id);
CREATE INDEX audit_log_action ON audit_log(action, id);

CREATE TABLE admins (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(128) NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- A grant gives an admin scopes ("resource:action", space-separated) over
-- some domains (space-separated; empty is every domain).
CREATE TABLE admin_grants (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
  scopes TEXT NOT NULL,
  domains TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX admin_grants_admin ON admin_grants(admin_id);

-- API keys: the secret is shown once; secret_hash is its SHA-256, found by
-- its prefix. networks are CIDRs (space-separated; empty is anywhere).
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
  prefix VARCHAR(32) NOT NULL UNIQUE,
  secret_hash BLOB NOT NULL,
  name VARCHAR(128) NOT NULL DEFAULT '',
  scopes TEXT NOT NULL,
  domains TEXT NOT NULL,
  networks TEXT NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0,
  created_by_key INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_admin ON api_keys(admin_id, id);

-- Idempotency-Key records: the response a create gave, replayed for 24 h.
-- status 0 is a request still running.
CREATE TABLE idempotency (
  key_id INTEGER NOT NULL,
  idem_key VARCHAR(255) NOT NULL,
  request_hash BLOB NOT NULL,
  status INTEGER NOT NULL DEFAULT 0,
  content_type VARCHAR(128) NOT NULL DEFAULT '',
  location VARCHAR(1000) NOT NULL DEFAULT '',
  body BLOB,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_created ON idempotency(created_at);

-- Long operations. A running job holds a lease (lease_until, Unix
-- milliseconds) that its runner renews; one whose lease ran out was
-- interrupted and is resumed (attempts below the maximum) or failed.
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind VARCHAR(64) NOT NULL,
  state VARCHAR(16) NOT NULL,
  domain VARCHAR(253) NOT NULL DEFAULT '',
  params TEXT NOT NULL,
  progress INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '',
  errors TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  admin_id INTEGER NOT NULL DEFAULT 0,
  key_id INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_domain ON jobs(domain, id);

-- Server secrets made on first use (the paging cursors' MAC key), shared by
-- every node on the database.
CREATE TABLE api_secrets (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value BLOB NOT NULL
);
