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
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  mail_from VARCHAR(320) NOT NULL,
  created_ms BIGINT NOT NULL,
  next_attempt_ms BIGINT NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  lease BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL,
  blob_id CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  part VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  size BIGINT NOT NULL,
  KEY outbound_queue_due (next_attempt_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per recipient: status is 'pending', 'sent' or 'failed'; notified
-- says a failure has been reported to the sender (or needs no report).
CREATE TABLE outbound_rcpts (
  queue_id BIGINT NOT NULL,
  rcpt VARCHAR(320) NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  notified TINYINT NOT NULL DEFAULT 0,
  last_reply TEXT NOT NULL,
  updated_ms BIGINT NOT NULL,
  PRIMARY KEY (queue_id, rcpt),
  FOREIGN KEY (queue_id) REFERENCES outbound_queue(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
