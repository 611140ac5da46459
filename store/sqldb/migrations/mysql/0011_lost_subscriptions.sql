-- Names a user subscribed to whose mailbox was deleted: RFC 3501 6.3.6
-- has a subscription outlive its mailbox, and LIST (SUBSCRIBED) shows
-- such a name \NonExistent (RFC 5258 3). A mailbox's own subscription
-- stays in mailboxes.subscribed; a row here goes when a mailbox of that
-- name is made again (it starts subscribed) or the name is unsubscribed.
CREATE TABLE lost_subscriptions (
  user_id BIGINT NOT NULL,
  name VARCHAR(512) NOT NULL,
  PRIMARY KEY (user_id, name),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
