-- Mailbox sharing (RFC 4314 access control). A grant gives rights on one
-- mailbox to one user, or to every user of the owner's domain (a
-- domain-wide share): exactly one of the two grantee columns is set. The
-- rights are RFC 4314 letters in "lrswipkxtea" order. Owners hold every
-- right on their own mailboxes without a row.
CREATE TABLE mailbox_grants (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  grantee_user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
  grantee_domain_id INTEGER REFERENCES domains(id) ON DELETE CASCADE,
  rights TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (mailbox_id, grantee_user_id),
  UNIQUE (mailbox_id, grantee_domain_id),
  CHECK ((grantee_user_id IS NULL) <> (grantee_domain_id IS NULL))
);
CREATE INDEX mailbox_grants_user ON mailbox_grants(grantee_user_id);
CREATE INDEX mailbox_grants_domain ON mailbox_grants(grantee_domain_id);

-- The messages of another user's mailbox that a user has seen: on shared
-- mail \Seen is each reader's own (RFC 4314 2.1, the "s" right), and the
-- owner's stays in messages.flags. A row means seen. mailbox_id is the
-- message's, which never changes (a move makes a new message), so a
-- mailbox's count for one reader is one index range; it needs no foreign
-- key of its own, as a mailbox's messages go before it does.
CREATE TABLE shared_seen (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  mailbox_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, mailbox_id, message_id)
);
CREATE INDEX shared_seen_message ON shared_seen(message_id);

-- Another user's mailboxes a user subscribed to (RFC 9051 6.3.7); the
-- owner's own subscription stays in mailboxes.subscribed.
CREATE TABLE shared_subscriptions (
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, mailbox_id)
);
CREATE INDEX shared_subscriptions_mailbox ON shared_subscriptions(mailbox_id);
