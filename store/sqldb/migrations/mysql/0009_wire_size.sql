-- A message's size as POP3 sends it (RFC 1939 LIST, STAT): every line
-- ended by CRLF, which mail appended with bare LFs is not. NULL until it
-- is first worked out, by reading the message once (store.Maildrop);
-- kept here so that this happens once per message, not again after a
-- restart or a cache eviction.
ALTER TABLE messages ADD COLUMN wire_size BIGINT;
