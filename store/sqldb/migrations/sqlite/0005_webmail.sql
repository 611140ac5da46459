-- The webmail's own state (package rpc, through store/webmail.go,
-- store/contactfolders.go and store/changes.go).

-- Address book folders. Contacts whose folder_id is 0 (made before
-- folders existed, or through Account.SaveContact) are in the user's
-- default folder, the one row with is_default set.
CREATE TABLE contact_folders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  parent_id INTEGER NOT NULL DEFAULT 0,
  name TEXT NOT NULL,
  is_default INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, parent_id, name)
);
ALTER TABLE contacts ADD COLUMN folder_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX contacts_folder ON contacts(user_id, folder_id, name);

-- Messages being composed: the draft saved for each, if any, is a message
-- in the user's Drafts. No foreign key to users: PruneWebmail finds the
-- composes and uploads of deleted users, whose files it must release.
CREATE TABLE webmail_composes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  draft_mailbox_id INTEGER NOT NULL DEFAULT 0,
  draft_uid INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX webmail_composes_user ON webmail_composes(user_id, updated_at);
CREATE INDEX webmail_composes_age ON webmail_composes(updated_at);

-- Attachments uploaded for a compose. The file is in the blob store (with
-- a blobs row, refs 1, so the sweepers leave it), encrypted to the user's
-- key for a secure user.
CREATE TABLE webmail_uploads (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  compose_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  blob_id TEXT NOT NULL,
  part TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX webmail_uploads_compose ON webmail_uploads(compose_id);
CREATE INDEX webmail_uploads_user ON webmail_uploads(user_id);

-- Snapshots behind the webmail's state strings: what the account looked
-- like at a serial, so that "changes since" can be worked out from the
-- mailboxes' modseqs, the expunged tombstones and the contacts' times.
CREATE TABLE webmail_states (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  serial INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (user_id, serial)
);
CREATE INDEX webmail_states_age ON webmail_states(created_at);
