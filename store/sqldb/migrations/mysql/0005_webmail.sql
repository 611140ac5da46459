-- The webmail's own state (package rpc, through store/webmail.go,
-- store/contactfolders.go and store/changes.go).

-- Address book folders. Contacts whose folder_id is 0 (made before
-- folders existed, or through Account.SaveContact) are in the user's
-- default folder, the one row with is_default set.
CREATE TABLE contact_folders (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  parent_id BIGINT NOT NULL DEFAULT 0,
  name VARCHAR(255) NOT NULL,
  is_default TINYINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  UNIQUE KEY contact_folders_name (user_id, parent_id, name),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
ALTER TABLE contacts ADD COLUMN folder_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX contacts_folder ON contacts(user_id, folder_id, name);

-- Messages being composed: the draft saved for each, if any, is a message
-- in the user's Drafts. No foreign key to users: PruneWebmail finds the
-- composes and uploads of deleted users, whose files it must release.
CREATE TABLE webmail_composes (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  draft_mailbox_id BIGINT NOT NULL DEFAULT 0,
  draft_uid BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  KEY webmail_composes_user (user_id, updated_at),
  KEY webmail_composes_age (updated_at)
) ENGINE=InnoDB;

-- Attachments uploaded for a compose. The file is in the blob store (with
-- a blobs row, refs 1, so the sweepers leave it), encrypted to the user's
-- key for a secure user.
CREATE TABLE webmail_uploads (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  compose_id BIGINT NOT NULL,
  name VARCHAR(255) NOT NULL,
  content_type VARCHAR(255) NOT NULL,
  size BIGINT NOT NULL,
  blob_id CHAR(32) NOT NULL,
  part VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  KEY webmail_uploads_compose (compose_id),
  KEY webmail_uploads_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Snapshots behind the webmail's state strings: what the account looked
-- like at a serial, so that "changes since" can be worked out from the
-- mailboxes' modseqs, the expunged tombstones and the contacts' times.
CREATE TABLE webmail_states (
  user_id BIGINT NOT NULL,
  serial BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  data MEDIUMBLOB NOT NULL,
  PRIMARY KEY (user_id, serial),
  KEY webmail_states_age (created_at),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB;
