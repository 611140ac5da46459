-- Messages whose full-text index row is still to be written. On SQLite,
-- whose one writer every write waits for, an append no longer indexes its
-- text in its own transaction: it notes the message here, in that
-- transaction, and the store's indexer writes the index rows later, many
-- to a transaction, or at once when the user searches. A message
-- expunged before that costs the index nothing.
CREATE TABLE text_pending (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  text_id INTEGER NOT NULL,
  PRIMARY KEY (user_id, text_id)
) WITHOUT ROWID;
