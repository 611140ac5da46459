-- The outbound queue: messages waiting to be relayed through the smarthost.
-- Its times are unix MILLISECONDS (the _ms columns), unlike the rest of the
-- schema: retry steps and leases are shorter than a second in tests, and
-- a lease compares times exactly.
--
-- A claim moves next_attempt_ms to the end of the lease and bumps lease,
-- a fencing token: every later write by the claimer names the token it got,
-- so a node whose lease ran out cannot overwrite the work of the node that
-- claimed the entry after it. The message file has a blobs row (refs 1)
-- like a stored message, so the sweepers leave it alone.

CREATE TABLE outbound_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mail_from TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  blob_id TEXT NOT NULL,
  part TEXT NOT NULL,
  size INTEGER NOT NULL
);
CREATE INDEX outbound_queue_due ON outbound_queue(next_attempt_ms);

-- One row per recipient: status is 'pending', 'sent' or 'failed'; notified
-- says a failure has been reported to the sender (or needs no report).
CREATE TABLE outbound_rcpts (
  queue_id INTEGER NOT NULL REFERENCES outbound_queue(id) ON DELETE CASCADE,
  rcpt TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  notified INTEGER NOT NULL DEFAULT 0,
  last_reply TEXT NOT NULL DEFAULT '',
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (queue_id, rcpt)
);
