-- What an IMAP session polls after every command must cost what changed,
-- not what the mailbox's history holds: tombstones found by the modseq
-- they were made at (RFC 7162 VANISHED, the poll of a selected mailbox).
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- \Recent (RFC 3501 2.3.2): UIDs from recent_uid up are recent to no
-- session yet; the first session to select the mailbox raises it to claim
-- them. Mail already stored is not recent.
ALTER TABLE mailboxes ADD COLUMN recent_uid BIGINT UNSIGNED NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uidnext;

-- The keywords in use in the mailbox, space-separated: what IMAP's FLAGS
-- response lists (RFC 3501 7.2.6) without reading every message. Only
-- grows. NULL until first gathered from the messages (mailboxes made
-- before this column).
ALTER TABLE mailboxes ADD COLUMN keywords TEXT NULL;
