-- A queue entry sealed to a secure user's key (store/sealedqueue.go): a
-- delivery to that user that waits for a retry, or a report of failures to
-- a secure sender, is queued encrypted, and delivered as it is. 0: an
-- entry queued as it came.
ALTER TABLE outbound_queue ADD COLUMN sealed_user BIGINT NOT NULL DEFAULT 0;
