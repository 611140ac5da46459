-- A message a webmail user sent with a delay (undo send, send later) waits
-- in the outbound queue as a submission until it is due: submit_user is
-- its user, 0 for an ordinary entry. When due the queue hands it to the
-- delivery agent, which delivers it as the user's send; submit_meta (JSON)
-- is what filing its Sent copy and listing it need. Its attempts stay 0
-- until the queue starts it: only then can it no longer be cancelled.
ALTER TABLE outbound_queue ADD COLUMN submit_user INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbound_queue ADD COLUMN submit_meta TEXT NOT NULL DEFAULT '';
CREATE INDEX outbound_queue_submit ON outbound_queue(submit_user, next_attempt_ms);

-- The addresses a user has sent to, for completing addresses while
-- composing: how often and when last; bounded per user (the least recent
-- go).
CREATE TABLE recent_rcpts (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  uses INTEGER NOT NULL DEFAULT 0,
  last_ms INTEGER NOT NULL,
  PRIMARY KEY (user_id, address)
);
CREATE INDEX recent_rcpts_last ON recent_rcpts(user_id, last_ms);
