-- The admin API (issue 12): domain limits, admins with their grants and API
-- keys, the audit log's who/what/before/after, idempotency records and jobs.

-- Domain limits (IndiMail's vlimit): 0 is unlimited. max_quota_bytes bounds
-- the sum of the quotas of the domain's users; default_plan_id is the plan a
-- new user of the domain gets when none is named.
ALTER TABLE domains ADD COLUMN max_users BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN max_aliases BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN max_quota_bytes BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN default_plan_id BIGINT NULL,
  ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;

-- Who made a change (admin, key, client address), the domain it touched
-- (for domain-limited readers of the log) and the target's state before and
-- after, as JSON.
ALTER TABLE audit_log ADD COLUMN admin_id BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN key_id BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN domain VARCHAR(253) NOT NULL DEFAULT '',
  ADD COLUMN before_json MEDIUMTEXT NOT NULL DEFAULT '',
  ADD COLUMN after_json MEDIUMTEXT NOT NULL DEFAULT '',
  ADD COLUMN client VARCHAR(64) NOT NULL DEFAULT '',
  ADD KEY audit_log_domain (domain, id),
  ADD KEY audit_log_action (action, id);

CREATE TABLE admins (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(128) NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE KEY admins_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A grant gives an admin scopes ("resource:action", space-separated) over
-- some domains (space-separated; empty is every domain).
CREATE TABLE admin_grants (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  admin_id BIGINT NOT NULL,
  scopes TEXT NOT NULL,
  domains TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  KEY admin_grants_admin (admin_id),
  CONSTRAINT admin_grants_admin_fk FOREIGN KEY (admin_id) REFERENCES admins(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- API keys: the secret is shown once; secret_hash is its SHA-256, found by
-- its prefix. networks are CIDRs (space-separated; empty is anywhere).
CREATE TABLE api_keys (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  admin_id BIGINT NOT NULL,
  prefix VARCHAR(32) NOT NULL,
  secret_hash VARBINARY(64) NOT NULL,
  name VARCHAR(128) NOT NULL DEFAULT '',
  scopes TEXT NOT NULL,
  domains TEXT NOT NULL,
  networks TEXT NOT NULL,
  expires_at BIGINT NOT NULL DEFAULT 0,
  last_used_at BIGINT NOT NULL DEFAULT 0,
  revoked_at BIGINT NOT NULL DEFAULT 0,
  created_by_key BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  UNIQUE KEY api_keys_prefix (prefix),
  KEY api_keys_admin (admin_id, id),
  CONSTRAINT api_keys_admin_fk FOREIGN KEY (admin_id) REFERENCES admins(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Idempotency-Key records: the response a create gave, replayed for 24 h.
-- status 0 is a request still running.
CREATE TABLE idempotency (
  key_id BIGINT NOT NULL,
  idem_key VARCHAR(255) NOT NULL,
  request_hash VARBINARY(64) NOT NULL,
  status INT NOT NULL DEFAULT 0,
  content_type VARCHAR(128) NOT NULL DEFAULT '',
  location VARCHAR(1000) NOT NULL DEFAULT '',
  body MEDIUMBLOB,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (key_id, idem_key),
  KEY idempotency_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Long operations. A running job holds a lease (lease_until, Unix
-- milliseconds) that its runner renews; one whose lease ran out was
-- interrupted and is resumed (attempts below the maximum) or failed.
CREATE TABLE jobs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(64) NOT NULL,
  state VARCHAR(16) NOT NULL,
  domain VARCHAR(253) NOT NULL DEFAULT '',
  params MEDIUMTEXT NOT NULL,
  progress BIGINT NOT NULL DEFAULT 0,
  total BIGINT NOT NULL DEFAULT 0,
  result MEDIUMTEXT NOT NULL DEFAULT '',
  errors MEDIUMTEXT NOT NULL DEFAULT '',
  attempts INT NOT NULL DEFAULT 0,
  lease_until BIGINT NOT NULL DEFAULT 0,
  admin_id BIGINT NOT NULL DEFAULT 0,
  key_id BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT NOT NULL DEFAULT 0,
  finished_at BIGINT NOT NULL DEFAULT 0,
  KEY jobs_state (state, id),
  KEY jobs_domain (domain, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Server secrets made on first use (the paging cursors' MAC key), shared by
-- every node on the database.
CREATE TABLE api_secrets (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value VARBINARY(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
