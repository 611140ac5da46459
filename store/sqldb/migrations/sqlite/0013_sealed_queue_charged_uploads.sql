-- A queue entry sealed to a secure user's key (store/sealedqueue.go): a
-- delivery to that user that waits for a retry, or a report of failures to
-- a secure sender, is queued encrypted, and delivered as it is. 0: an
-- entry queued as it came.
ALTER TABLE outbound_queue ADD COLUMN sealed_user INTEGER NOT NULL DEFAULT 0;

-- The bytes of an upload counted in its user's used_bytes (store/webmail.go
-- AddUpload), given back when it goes; 0 for an upload made before uploads
-- were charged, which gives back nothing.
ALTER TABLE webmail_uploads ADD COLUMN charged INTEGER NOT NULL DEFAULT 0;
