// Package sqldb is Basalt's SQL layer: it opens MySQL/MariaDB
// (github.com/go-sql-driver/mysql) or embedded SQLite (modernc.org/sqlite,
// no cgo) through sqlx, applies the numbered schema migrations for that
// dialect, and runs write transactions with the retries and serialisation
// each dialect needs. It knows nothing of mail; package store does.
package sqldb
