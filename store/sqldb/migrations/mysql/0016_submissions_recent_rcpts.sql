-- A message a webmail user sent with a delay (undo send, send later) waits
-- in the outbound queue as a submission until it is due: submit_user is
-- its user, 0 for an ordinary entry. When due the queue hands it to the
-- delivery agent, which delivers it as the user's send; submit_meta (JSON)
-- is what filing its Sent copy and listing it need. Its attempts stay 0
-- until the queue starts it: only then can it no longer be cancelled.
-- (TEXT takes no literal default in MySQL: every INSERT names it.)
ALTER TABLE outbound_queue ADD COLUMN submit_user BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbound_queue ADD COLUMN submit_meta MEDIUMTEXT NOT NULL;
CREATE INDEX outbound_queue_submit ON outbound_queue(submit_user, next_attempt_ms);

-- The addresses a user has sent to, for completing addresses while
-- composing: how often and when last; bounded per user (the least recent
-- go).
CREATE TABLE recent_rcpts (
  user_id BIGINT NOT NULL,
  address VARCHAR(320) NOT NULL,
  name VARCHAR(200) NOT NULL DEFAULT '',
  uses INT NOT NULL DEFAULT 0,
  last_ms BIGINT NOT NULL,
  PRIMARY KEY (user_id, address),
  KEY recent_rcpts_last (user_id, last_ms),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
