package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialects.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// Config says which database to open and how to pool connections to it.
// The zero value with a DSN set opens SQLite.
type Config struct {
	Driver          string        `toml:"driver"` // "sqlite" (default) or "mysql"
	DSN             string        `toml:"dsn"`    // a file path for SQLite; user:pass@tcp(host:port)/db for MySQL
	MaxOpenConns    int           `toml:"max_open_conns"`
	MaxIdleConns    int           `toml:"max_idle_conns"`
	ConnMaxLifetime time.Duration `toml:"conn_max_lifetime"`
	ConnMaxIdleTime time.Duration `toml:"conn_max_idle_time"`
}

// DB is an open database of one dialect.
type DB struct {
	*sqlx.DB
	dialect string
	// writer runs the write transactions of SQLite, which allows one
	// writer at a time, in batches that share a commit (batch.go): waiting
	// there is cheaper and fairer than spinning on SQLITE_BUSY inside the
	// driver. Nil for MySQL.
	writer *writer
	// stmts holds the statements of the hot paths, prepared once: parsing
	// SQL again for every delivery is a large share of its cost on SQLite.
	stmts  sync.Map // query -> *sqlx.Stmt
	nstmts atomic.Int64
}

//go:embed migrations
var migrations embed.FS

// Open connects to the database described by cfg and checks that it answers.
// It does not migrate; call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	driver := cfg.Driver
	if driver == "" {
		driver = SQLite
	}
	var (
		dsn string
		db  = &DB{dialect: driver}
	)
	switch driver {
	case SQLite:
		if cfg.DSN == "" {
			return nil, errors.New("open sqlite: no database path configured")
		}
		if err := os.MkdirAll(filepath.Dir(cfg.DSN), 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		if err := createPrivate(cfg.DSN); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		dsn = sqliteDSN(cfg.DSN)
		db.writer = &writer{}
	case MySQL:
		mc, err := mysql.ParseDSN(cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("open mysql: parse dsn: %w", err)
		}
		// Every session runs in UTC with strict modes, so the same SQL
		// behaves the same on every server it is pointed at.
		mc.Loc = time.UTC
		if mc.Params == nil {
			mc.Params = map[string]string{}
		}
		mc.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'"
		mc.Params["time_zone"] = "'+00:00'"
		mc.Params["charset"] = "utf8mb4"
		// Report rows matched, not rows changed, by an UPDATE, as SQLite
		// does: "did this row exist" must not depend on the dialect.
		mc.ClientFoundRows = true
		// Interpolate arguments client-side: one round trip a statement
		// instead of prepare, execute and close. The driver does this only
		// for character sets where it is safe, and utf8mb4 is one.
		mc.InterpolateParams = true
		dsn = mc.FormatDSN()
	default:
		return nil, fmt.Errorf("open database: unknown driver %q (want sqlite or mysql)", driver)
	}
	sdb, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", driver, err)
	}
	db.DB = sdb
	applyPool(sdb.DB, cfg, driver)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sdb.PingContext(pctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connect to %s: %w", driver, err)
	}
	return db, nil
}

// createPrivate creates the database file, empty and readable by this
// user alone, unless it exists: SQLite would create it with the umask's
// mode (0644, commonly), readable by every local user, and it gives the
// -wal and -shm files the database file's mode (os_unix.c
// findCreateFileMode), so they follow. An existing file keeps the mode
// its operator gave it.
func createPrivate(path string) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil // not a plain path: SQLite's to interpret
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func sqliteDSN(path string) string {
	q := url.Values{}
	// WAL lets readers go on while one writer commits; synchronous(FULL)
	// makes every commit durable before it returns, which is what lets a
	// protocol answer 250 after it. BEGIN IMMEDIATE takes the write lock up
	// front so a transaction never fails half-way on an upgrade to writer.
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func applyPool(db *sql.DB, cfg Config, driver string) {
	maxOpen := cfg.MaxOpenConns
	if maxOpen == 0 {
		maxOpen = 32
		if driver == SQLite {
			maxOpen = 8
		}
	}
	db.SetMaxOpenConns(maxOpen)
	maxIdle := cfg.MaxIdleConns
	if maxIdle == 0 {
		maxIdle = maxOpen
	}
	db.SetMaxIdleConns(maxIdle)
	// A server-side timeout or a failover drops connections we still hold;
	// recycling them keeps stale ones from piling up, and database/sql
	// retries a fresh connection when the driver reports one as bad.
	life := cfg.ConnMaxLifetime
	if life == 0 && driver == MySQL {
		life = 30 * time.Minute
	}
	db.SetConnMaxLifetime(life)
	idle := cfg.ConnMaxIdleTime
	if idle == 0 && driver == MySQL {
		idle = 5 * time.Minute
	}
	db.SetConnMaxIdleTime(idle)
}

// TxExec runs a statement of a hot path in tx. On SQLite it comes from a
// statement prepared once per connection: parsing the SQL anew is a large
// share of a delivery's cost there. MySQL parses on the server, where it
// is cheap, and preparing on the pool from inside a transaction could wait
// for a connection that only other waiting transactions hold, so there it
// runs as it is. The query must already be rebound.
func (db *DB) TxExec(ctx context.Context, tx *sqlx.Tx, query string, args ...any) (sql.Result, error) {
	if db.dialect != SQLite {
		return tx.ExecContext(ctx, query, args...)
	}
	ctx, err := Short(ctx)
	if err != nil {
		return nil, err
	}
	st, err := db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtxContext(ctx, st).ExecContext(ctx, args...)
}

// Short returns what a short statement runs on: ctx's values without its
// cancellation, once it is known not to have ended. On SQLite a
// cancellable context costs each statement two goroutines (database/sql's
// watch of the rows, the driver's interrupt watch) and a progress callback
// every 1000 steps of SQLite's engine: more than a short indexed statement
// itself costs. And an interrupt inside a write batch (batch.go) rolls the
// whole batch back, the other writes with it. The one-row reads and the
// statements of a transaction here run on it; callers use it for reads
// they know to be short (a poll, a listing of a few messages). Statements
// that may scan keep their cancellation, so they stop when their client
// leaves.
func Short(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// TxGet is TxExec for a query that reads one row into dest.
func (db *DB) TxGet(ctx context.Context, tx *sqlx.Tx, dest any, query string, args ...any) error {
	if db.dialect != SQLite {
		return tx.GetContext(ctx, dest, query, args...)
	}
	ctx, err := Short(ctx)
	if err != nil {
		return err
	}
	st, err := db.stmt(ctx, query)
	if err != nil {
		return err
	}
	return tx.StmtxContext(ctx, st).GetContext(ctx, dest, args...)
}

// TxSelect is TxExec for a query that reads rows into dest.
func (db *DB) TxSelect(ctx context.Context, tx *sqlx.Tx, dest any, query string, args ...any) error {
	if db.dialect != SQLite {
		return tx.SelectContext(ctx, dest, query, args...)
	}
	ctx, err := Short(ctx)
	if err != nil {
		return err
	}
	st, err := db.stmt(ctx, query)
	if err != nil {
		return err
	}
	return tx.StmtxContext(ctx, st).SelectContext(ctx, dest, args...)
}

// GetContext reads one row. On SQLite it runs a statement prepared once
// per connection (see stmt): parsing SQL anew for every read was the
// largest single cost of an IMAP command there.
func (db *DB) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	if st := db.cached(ctx, query); st != nil {
		// One row is an indexed lookup: short, so run without the watch
		// of a cancellable context (Short).
		ctx, err := Short(ctx)
		if err != nil {
			return err
		}
		return st.GetContext(ctx, dest, args...)
	}
	return db.DB.GetContext(ctx, dest, query, args...)
}

// SelectContext reads rows, as GetContext does.
func (db *DB) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	if st := db.cached(ctx, query); st != nil {
		return st.SelectContext(ctx, dest, args...)
	}
	return db.DB.SelectContext(ctx, dest, query, args...)
}

// Get is GetContext.
func (db *DB) Get(ctx context.Context, dest any, query string, args ...any) error {
	return db.GetContext(ctx, dest, query, args...)
}

// Select is SelectContext.
func (db *DB) Select(ctx context.Context, dest any, query string, args ...any) error {
	return db.SelectContext(ctx, dest, query, args...)
}

// maxCached bounds the statements kept prepared: queries built with a
// varying number of placeholders (IN lists) would otherwise add one each.
const maxCached = 512

// cached returns the statement prepared for query on SQLite, or nil: on
// MySQL (which parses on the server, where it is cheap), when the cache is
// full, or when preparing fails (the caller then runs the query as it is
// and gets its error).
func (db *DB) cached(ctx context.Context, query string) *sqlx.Stmt {
	if db.dialect != SQLite {
		return nil
	}
	if v, ok := db.stmts.Load(query); ok {
		return v.(*sqlx.Stmt)
	}
	if db.nstmts.Load() >= maxCached {
		return nil
	}
	st, err := db.stmt(ctx, query)
	if err != nil {
		return nil
	}
	return st
}

func (db *DB) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if v, ok := db.stmts.Load(query); ok {
		return v.(*sqlx.Stmt), nil
	}
	st, err := db.PreparexContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if v, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sqlx.Stmt), nil
	}
	db.nstmts.Add(1)
	return st, nil
}

// Close closes the prepared statements and the pool.
func (db *DB) Close() error {
	db.stmts.Range(func(k, v any) bool {
		v.(*sqlx.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
	return db.DB.Close()
}

// Dialect returns SQLite or MySQL.
func (db *DB) Dialect() string { return db.dialect }

// ExecContext runs one statement outside a transaction. On SQLite that is
// a write, and it waits its turn with the write transactions, and commits
// in a batch with them, rather than waiting on SQLite's own lock: waiting
// there holds a pool connection for up to the busy timeout, which a
// transaction holding the lock may need to finish — under load every
// connection ends up waiting, and the writer too, until the timeout breaks
// it (seen as 30 s stalls and SQLITE_BUSY under imaptest). Never call it
// from inside Tx's fn: the statement belongs in the transaction.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if db.writer == nil {
		return db.DB.ExecContext(ctx, query, args...)
	}
	var res sql.Result
	err := db.writer.do(ctx, db, func(tx *sqlx.Tx) error {
		var err error
		res, err = db.TxExec(ctx, tx, query, args...)
		return err
	})
	return res, err
}

// Tx runs fn in a write transaction and commits it. A transaction that loses
// a deadlock or lock wait (MySQL) or finds the database busy (SQLite) is
// retried from the start a few times, so fn must not have effects outside
// the transaction until it returns nil. On SQLite fn shares its
// transaction with the writes waiting at the same time (batch.go): it may
// run on another goroutine, and again when the batch fails for another
// write's sake.
func (db *DB) Tx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	if db.writer != nil {
		return db.writer.do(ctx, db, fn)
	}
	var err error
	for i := 0; i < maxAttempts; i++ {
		err = db.tryTx(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-time.After(time.Duration(i+1) * 5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError marks a failed COMMIT: whether it took effect is unknown, so
// it is never retried.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// IsCommitUncertain reports whether err is a failed COMMIT, after which the
// transaction may or may not have taken effect.
func IsCommitUncertain(err error) bool {
	var ce *commitError
	return errors.As(err, &ce)
}

// retryable reports whether a transaction failed only because it collided
// with another one and would succeed if run again.
func retryable(err error) bool {
	var ce *commitError
	if errors.As(err, &ce) {
		return false
	}
	// A connection the server dropped (a restart, a failover, an idle
	// timeout) fails the transaction before its commit, so nothing of it
	// happened and a new connection may run it again.
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205 // deadlock, lock wait timeout
	}
	return sqliteBusy(err)
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED
// (any extended code): another connection held the lock past the busy
// timeout.
func sqliteBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsUnavailable reports whether err says the database could not be
// reached or is not serving: a refused or dropped connection, a server
// shutting down or out of connections, a database file another process
// holds locked past the busy timeout. The same request may succeed later,
// so clients are told to come back (SMTP 4xx, IMAP [UNAVAILABLE]).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // ER_CON_COUNT_ERROR: too many connections
			1053, // ER_SERVER_SHUTDOWN
			1205, // ER_LOCK_WAIT_TIMEOUT, after the retries
			1290, // ER_OPTION_PREVENTS_STATEMENT: read-only (a failover)
			1927, // ER_CONNECTION_KILLED
			4031: // ER_CLIENT_INTERACTION_TIMEOUT
			return true
		}
		return false
	}
	return sqliteBusy(err)
}

// IsNoSpace reports whether err says the database's disk is full (SQLite
// SQLITE_FULL, MariaDB's "disk full" and "table is full" errors), which
// passes when an operator frees room.
func IsNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1021, // ER_DISK_FULL
			1114: // ER_RECORD_FILE_FULL: "The table is full"
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_FULL
	}
	return false
}

// IsDuplicate reports whether err is a unique-constraint violation.
func IsDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// AddCounterSQL returns the statement that adds to a (name, day) counter,
// creating it at the value when absent. Arguments: name, day, value.
func (db *DB) AddCounterSQL() string {
	if db.dialect == MySQL {
		return "INSERT INTO counters (name, day, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = value + VALUES(value)"
	}
	return "INSERT INTO counters (name, day, value) VALUES (?, ?, ?) ON CONFLICT (name, day) DO UPDATE SET value = value + excluded.value"
}

// ForUpdate is the locking suffix for a SELECT inside a write transaction:
// MySQL needs it to lock the rows it read; SQLite already holds the one
// write lock for the whole transaction and has no such syntax.
func (db *DB) ForUpdate() string {
	if db.dialect == MySQL {
		return " FOR UPDATE"
	}
	return ""
}

// UIDIndexHint names the (mailbox_id, uid) index for MySQL. Given
// "mailbox_id = ? AND uid > ? ORDER BY uid LIMIT n", MariaDB 10.11 picks a
// ref access on mailbox_id alone and filters uid by index condition
// pushdown, walking every entry below the bound: a page deep in a large
// mailbox would cost O(position). Forcing the index makes it a range scan
// that starts at the bound. SQLite's planner needs no hint.
func (db *DB) UIDIndexHint() string {
	if db.dialect == MySQL {
		return " FORCE INDEX (messages_mailbox_uid)"
	}
	return ""
}

// Migration is one numbered schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the dialect's migrations in order.
func (db *DB) Migrations() ([]Migration, error) {
	dir := "migrations/" + db.dialect
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		b, err := fs.ReadFile(migrations, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Migrate applies every migration the database has not had and returns
// how many it applied. Several nodes starting at once against one
// MySQL server take a named lock, so only one migrates.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	ms, err := db.Migrations()
	if err != nil {
		return 0, err
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if db.dialect == MySQL {
		var got sql.NullInt64
		if err := conn.GetContext(ctx, &got, "SELECT GET_LOCK('basalt_migrate', 60)"); err != nil || got.Int64 != 1 {
			return 0, fmt.Errorf("migrate: take lock: %v (got %v)", err, got.Int64)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('basalt_migrate')")
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	// Every migration not yet applied is applied, in order, not only those
	// above the highest applied: branches that each added one may land
	// in either order.
	var done []int64
	if err := conn.SelectContext(ctx, &done, "SELECT version FROM schema_migrations"); err != nil {
		return 0, fmt.Errorf("migrate: read versions: %w", err)
	}
	have := make(map[int64]bool, len(done))
	for _, v := range done {
		have[v] = true
	}
	applied := 0
	for _, m := range ms {
		if have[int64(m.Version)] {
			continue
		}
		if err := db.apply(ctx, conn, m); err != nil {
			return applied, err
		}
		applied++
	}
	return applied, nil
}

func (db *DB) apply(ctx context.Context, conn *sqlx.Conn, m Migration) error {
	// MySQL commits DDL implicitly, so a migration there is not atomic;
	// each file is kept to statements that can simply be re-run by hand if
	// one fails half-way. SQLite runs it in one transaction.
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	for _, stmt := range splitStatements(m.SQL) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migration %s: %w\n%s", m.Name, err, stmt)
		}
	}
	if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.Version, m.Name, time.Now().Unix()); err != nil {
		return fmt.Errorf("migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}

// splitStatements splits a migration file on semicolons at line ends,
// dropping comment-only lines. Migrations hold no procedures or strings
// with ";\n" in them, so nothing smarter is needed.
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// Version returns the newest applied migration, 0 for an empty database.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.GetContext(ctx, &v, "SELECT MAX(version) FROM schema_migrations"); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
