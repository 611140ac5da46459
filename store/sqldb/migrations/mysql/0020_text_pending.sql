-- Messages whose full-text index row is still to be written (see the
-- SQLite migration). InnoDB defers its FULLTEXT work itself, so on
-- MariaDB an append indexes its text as it goes and this stays empty; it
-- exists so that both schemas are the same.
CREATE TABLE text_pending (
  user_id BIGINT NOT NULL,
  text_id BIGINT NOT NULL,
  PRIMARY KEY (user_id, text_id),
  FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB;
