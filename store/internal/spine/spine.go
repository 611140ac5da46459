package spine

import (
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"time"

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
// store.Account.Owner, ...) take: only the store's tree can import this
// package and write Key{}.
type Key struct{ _ [0]func() }

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
	s = s[:max]
	for len(s) > 0 && !utf8Start(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
