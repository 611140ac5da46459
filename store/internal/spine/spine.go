package spine

import (
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"basalt/store/blob"
	"basalt/store/cache"
	"basalt/store/sqldb"
)

// Errors the spine's writes return; the store exports them as its own
// (store.ErrNotFound, store.ErrDailyLimit), so callers test with errors.Is
// whichever package they came through.
var (
	ErrNotFound   = errors.New("not found")
	ErrDailyLimit = errors.New("daily limit reached")
)

// Key is what the store's lending methods (store.Store.Spine,
// store.Account.Owner, ...) take. Only the store's tree can import this
// package to call Lend; the zero Key, which any package can make (a
// generic function's zero value of the parameter's type), is refused.
type Key struct{ p *int }

// lent is what a Key from Lend points at: never written, it is an
// identity, not state.
var lent = new(int)

// Lend returns the Key the lending methods accept.
func Lend() Key { return Key{lent} }

// Check panics unless k came from Lend: a lending method asked for by
// code outside the store's tree is a programming error.
func (k Key) Check() {
	if k.p != lent {
		panic("store: lent parts asked for without spine.Lend")
	}
}

// Spine holds the parts of one store.
type Spine struct {
	DB    *sqldb.DB
	Blobs *blob.Store
	Cache cache.Cache
	Log   *slog.Logger
	// Now returns the current time.
	Now func() time.Time
}

// Rebind turns a query's ? placeholders into the database's own.
func (s *Spine) Rebind(q string) string { return s.DB.Rebind(q) }

// Unix is the current time in Unix seconds.
func (s *Spine) Unix() int64 { return s.Now().Unix() }

// Day is the UTC day number that daily counters are kept under.
func (s *Spine) Day() int64 { return s.Now().UTC().Unix() / 86400 }

// NotFound maps sql.ErrNoRows to ErrNotFound.
func NotFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// UserScope is the cache scope of a user's serial.
func UserScope(id int64) string { return "user:" + strconv.FormatInt(id, 10) + ":serial" }

// Clip bounds a text to what the narrowest schema column of its kind
// holds (1000 bytes), cut at a UTF-8 character boundary.
func Clip(s string) string {
	const max = 1000
	if len(s) <= max {
		return s
	}
	// Cut before the character that s[max] is part of: it is whole below.
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
