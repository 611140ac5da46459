-- Names a user subscribed to whose mailbox was deleted: RFC 3501 6.3.6
-- has a subscription outlive its mailbox, and LIST (SUBSCRIBED) shows
-- such a name \NonExistent (RFC 5258 3). A mailbox's own subscription
-- stays in mailboxes.subscribed; a row here goes when a mailbox of that
-- name is made again (it starts subscribed) or the name is unsubscribed.
CREATE TABLE lost_subscriptions (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  PRIMARY KEY (user_id, name)
);
