-- Mailbox sharing (RFC 4314 access control). A grant gives rights on one
-- mailbox to one user, or to every user of the owner's domain (a
-- domain-wide share): exactly one of the two grantee columns is set. The
-- rights are RFC 4314 letters in "lrswipkxtea" order. Owners hold every
-- right on their own mailboxes without a row.
CREATE TABLE mailbox_grants (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  mailbox_id BIGINT NOT NULL,
  grantee_user_id BIGINT NULL,
  grantee_domain_id BIGINT NULL,
  rights VARCHAR(32) NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE KEY mailbox_grants_mailbox_user (mailbox_id, grantee_user_id),
  UNIQUE KEY mailbox_grants_mailbox_domain (mailbox_id, grantee_domain_id),
  KEY mailbox_grants_user (grantee_user_id),
  KEY mailbox_grants_domain (grantee_domain_id),
  CONSTRAINT mailbox_grants_one_grantee CHECK ((grantee_user_id IS NULL) <> (grantee_domain_id IS NULL)),
  FOREIGN KEY (mailbox_id) REFERENCES mailboxes(id) ON DELETE CASCADE,
  FOREIGN KEY (grantee_user_id) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (grantee_domain_id) REFERENCES domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The messages of another user's mailbox that a user has seen: on shared
-- mail \Seen is each reader's own (RFC 4314 2.1, the "s" right), and the
-- owner's stays in messages.flags. A row means seen. mailbox_id is the
-- message's, which never changes (a move makes a new message), so a
-- mailbox's count for one reader is one index range; it needs no foreign
-- key of its own, as a mailbox's messages go before it does.
CREATE TABLE shared_seen (
  user_id BIGINT NOT NULL,
  mailbox_id BIGINT NOT NULL,
  message_id BIGINT NOT NULL,
  PRIMARY KEY (user_id, mailbox_id, message_id),
  KEY shared_seen_message (message_id),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Another user's mailboxes a user subscribed to (RFC 9051 6.3.7); the
-- owner's own subscription stays in mailboxes.subscribed.
CREATE TABLE shared_subscriptions (
  user_id BIGINT NOT NULL,
  mailbox_id BIGINT NOT NULL,
  PRIMARY KEY (user_id, mailbox_id),
  KEY shared_subscriptions_mailbox (mailbox_id),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
  FOREIGN KEY (mailbox_id) REFERENCES mailboxes(id) ON DELETE CASCADE
) ENGINE=InnoDB;
