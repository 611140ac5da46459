-- Search, sorts and threads for the webmail (issue 11).

-- The keys of the listing orders beyond arrival and UID, each served by an
-- index that starts at the mailbox, so that a page costs its rows at any
-- depth. sent_date is the Date header (unix seconds; a secure user's mail
-- keeps its arrival time here, its header being sealed); sort_from and
-- sort_subject the first sender and the subject, normalized for sorting
-- (lowercase, Re:/Fwd:/[list] prefixes dropped, clipped) and empty for a
-- secure user's mail. Filled on append; mail stored before is filled by
-- the background indexer (store/textindex.go).
ALTER TABLE messages ADD COLUMN sent_date BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN sort_from VARCHAR(100) NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN sort_subject VARCHAR(100) NOT NULL DEFAULT '';
UPDATE messages SET sent_date = internal_date;

-- The flags the quick filters and the flagged/unread orders need, as
-- columns an index can hold (the flags bitmask cannot be searched by one):
-- computed from flags, so every writer of flags keeps them right.
ALTER TABLE messages ADD COLUMN is_flagged TINYINT AS ((flags & 16) <> 0) VIRTUAL;
ALTER TABLE messages ADD COLUMN is_unseen TINYINT AS ((flags & 4) = 0) VIRTUAL;

-- The hash of the message a message replies to (its last reference), so
-- that a parent stored after its replies joins their thread.
ALTER TABLE messages ADD COLUMN parent_hash CHAR(32) CHARACTER SET ascii NOT NULL DEFAULT '';

-- The message_text row holding this message's text: its own id, or for a
-- copy the original's, so that copies share one; 0 while not indexed yet.
ALTER TABLE messages ADD COLUMN text_id BIGINT NOT NULL DEFAULT 0;

-- Every message gets a thread id of its own: a thread is named by the id
-- of its first message (thread_id 0 used to mean "its own id", which no
-- index on the thread can use).
UPDATE messages SET thread_id = id WHERE thread_id = 0;

CREATE INDEX messages_sent ON messages(mailbox_id, sent_date, uid);
CREATE INDEX messages_from ON messages(mailbox_id, sort_from, uid);
CREATE INDEX messages_subject ON messages(mailbox_id, sort_subject, uid);
CREATE INDEX messages_size ON messages(mailbox_id, size, uid);
CREATE INDEX messages_flagged ON messages(mailbox_id, is_flagged, internal_date, uid);
CREATE INDEX messages_unseen ON messages(mailbox_id, is_unseen, internal_date, uid);
CREATE INDEX messages_attach ON messages(mailbox_id, has_attachments, internal_date, uid);
CREATE INDEX messages_thread ON messages(mailbox_id, thread_id, internal_date, uid);
CREATE INDEX messages_user_thread ON messages(user_id, thread_id);
CREATE INDEX messages_parent ON messages(user_id, parent_hash);
CREATE INDEX messages_text ON messages(text_id);

-- The full-text index of the mail of users whose mail is not sealed (a
-- secure user's never has a row): subject, senders, recipients (To and
-- Cc) and the text parts, decoded, at most 256 KiB of text a message. id
-- is the text_id of the messages that share it. InnoDB FULLTEXT needs an
-- index per column list a MATCH names: all four, and each field an
-- operator (subject:, from:, to:) searches alone.
CREATE TABLE message_text (
  id BIGINT NOT NULL PRIMARY KEY,
  user_id BIGINT NOT NULL,
  subject TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipients TEXT NOT NULL,
  body MEDIUMTEXT NOT NULL,
  KEY message_text_user (user_id),
  FULLTEXT KEY message_text_all (subject, sender, recipients, body),
  FULLTEXT KEY message_text_subject (subject),
  FULLTEXT KEY message_text_sender (sender),
  FULLTEXT KEY message_text_recipients (recipients),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Where the background indexer of mail stored before this migration is:
-- the last message id it went past.
CREATE TABLE text_index_cursor (
  name VARCHAR(32) NOT NULL PRIMARY KEY,
  last_id BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
