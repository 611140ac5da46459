package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"basalt/store"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// AuditRecord is one entry of the audit log.
type AuditRecord struct {
	ID      int64  `db:"id"`
	At      int64  `db:"at"`
	Actor   string `db:"actor"`
	AdminID int64  `db:"admin_id"`
	KeyID   int64  `db:"key_id"`
	Action  string `db:"action"`
	Target  string `db:"subject"`
	Domain  string `db:"domain"`
	Before  string `db:"before_json"`
	After   string `db:"after_json"`
	Client  string `db:"client"`
}

// AuditQuery filters the audit log. Records come newest first; Before is
// the id to continue below (keyset paging on the primary key).
type AuditQuery struct {
	Before  int64
	Limit   int
	Action  string // exact, or a prefix ending in "." ("domain.")
	Target  string
	Domain  string
	AdminID int64
	KeyID   int64
	Since   int64
	Until   int64
	// Domains, when not nil, restricts the records to these domains (a
	// domain-limited reader sees nothing server-wide).
	Domains []string
}

// Audit lists the audit log.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	where, args := []string{"1 = 1"}, []any{}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	if strings.HasSuffix(q.Action, ".") {
		where, args = append(where, "action LIKE ?"), append(args, strings.NewReplacer("%", "", "_", "\\_").Replace(q.Action)+"%")
	} else if q.Action != "" {
		where, args = append(where, "action = ?"), append(args, q.Action)
	}
	for _, f := range []struct {
		col string
		v   any
		set bool
	}{
		{"subject = ?", q.Target, q.Target != ""},
		{"domain = ?", q.Domain, q.Domain != ""},
		{"admin_id = ?", q.AdminID, q.AdminID != 0},
		{"key_id = ?", q.KeyID, q.KeyID != 0},
		{"at >= ?", q.Since, q.Since != 0},
		{"at < ?", q.Until, q.Until != 0},
	} {
		if f.set {
			where, args = append(where, f.col), append(args, f.v)
		}
	}
	if q.Domains != nil {
		if len(q.Domains) == 0 {
			return []AuditRecord{}, nil
		}
		where = append(where, "domain IN (?"+strings.Repeat(", ?", len(q.Domains)-1)+")")
		for _, d := range q.Domains {
			args = append(args, d)
		}
	}
	var rs []AuditRecord
	err := s.sp.DB.SelectContext(ctx, &rs, s.sp.Rebind(`SELECT id, at, actor, admin_id, key_id, action, subject, domain,
		before_json, after_json, client FROM audit_log WHERE `+strings.Join(where, " AND ")+" ORDER BY id DESC LIMIT "+strconv.Itoa(q.Limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return rs, nil
}

// Idempotency-Key records.

// IdempotencyTTL is how long a create's response is replayed.
const IdempotencyTTL = 24 * time.Hour

// Errors of Idempotency-Key use.
var (
	// ErrIdempotencyReused: the key was used with another request.
	ErrIdempotencyReused = errors.New("Idempotency-Key already used for a different request")
	// ErrIdempotencyBusy: the first request with the key is still running.
	ErrIdempotencyBusy = errors.New("a request with this Idempotency-Key is still being processed")
)

// Response is a stored response, replayed for a retried request.
type Response struct {
	Status      int    `db:"status"`
	ContentType string `db:"content_type"`
	Location    string `db:"location"`
	Body        []byte `db:"body"`
}

type idemRow struct {
	Hash      []byte `db:"request_hash"`
	CreatedAt int64  `db:"created_at"`
	Response
}

// BeginIdempotent claims idemKey for the key's request with this hash.
// It returns the stored response to replay, or nil when the request is to
// be run (and then FinishIdempotent or AbandonIdempotent must follow).
func (s *Store) BeginIdempotent(ctx context.Context, keyID int64, idemKey string, hash []byte) (*Response, error) {
	now := s.sp.Unix()
	for range 2 {
		_, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("INSERT INTO idempotency (key_id, idem_key, request_hash, created_at) VALUES (?, ?, ?, ?)"),
			keyID, idemKey, hash, now)
		if err == nil {
			return nil, nil
		}
		if !sqldb.IsDuplicate(err) {
			return nil, fmt.Errorf("idempotency key: %w", err)
		}
		var r idemRow
		if err := s.sp.DB.GetContext(ctx, &r, s.sp.Rebind(`SELECT request_hash, created_at, status, content_type, location, body
			FROM idempotency WHERE key_id = ? AND idem_key = ?`), keyID, idemKey); err != nil {
			if spine.NotFound(err) == spine.ErrNotFound {
				continue // abandoned meanwhile: claim it
			}
			return nil, fmt.Errorf("idempotency key: %w", err)
		}
		if now-r.CreatedAt >= int64(IdempotencyTTL/time.Second) {
			// Expired: forget it and claim it anew.
			if _, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND created_at = ?"),
				keyID, idemKey, r.CreatedAt); err != nil {
				return nil, fmt.Errorf("idempotency key: %w", err)
			}
			continue
		}
		if !bytes.Equal(r.Hash, hash) {
			return nil, ErrIdempotencyReused
		}
		if r.Status == 0 {
			return nil, ErrIdempotencyBusy
		}
		return &r.Response, nil
	}
	return nil, ErrIdempotencyBusy
}

// FinishIdempotent stores the response to replay.
func (s *Store) FinishIdempotent(ctx context.Context, keyID int64, idemKey string, r Response) error {
	_, err := s.sp.DB.ExecContext(context.WithoutCancel(ctx), s.sp.Rebind(`UPDATE idempotency SET status = ?, content_type = ?, location = ?, body = ?
		WHERE key_id = ? AND idem_key = ?`), r.Status, r.ContentType, r.Location, r.Body, keyID, idemKey)
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}

// AbandonIdempotent forgets a claim whose request failed in a way worth
// retrying (a server error): the retry runs it again.
func (s *Store) AbandonIdempotent(ctx context.Context, keyID int64, idemKey string) error {
	_, err := s.sp.DB.ExecContext(context.WithoutCancel(ctx), s.sp.Rebind("DELETE FROM idempotency WHERE key_id = ? AND idem_key = ?"), keyID, idemKey)
	if err != nil {
		return fmt.Errorf("abandon idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotency deletes records past IdempotencyTTL.
func (s *Store) PruneIdempotency(ctx context.Context) (int64, error) {
	res, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind("DELETE FROM idempotency WHERE created_at < ?"), s.sp.Unix()-int64(IdempotencyTTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency records: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Rate limits.

// RateLimit counts one request of the key against a budget of n per
// window in the cache (fixed windows, shared by every node on the same
// Redis). When over, it returns false and how long until the window ends.
func (s *Store) RateLimit(ctx context.Context, keyID int64, name string, n int64, window time.Duration) (bool, time.Duration, error) {
	now := s.sp.Now()
	w := window.Milliseconds()
	start := now.UnixMilli() / w
	key := "ratelimit:" + name + ":" + strconv.FormatInt(keyID, 10) + ":" + strconv.FormatInt(start, 10)
	v, err := s.sp.Cache.Incr(ctx, key, 1, window)
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	if v > n {
		left := time.Duration((start+1)*w-now.UnixMilli()) * time.Millisecond
		return false, max(left, time.Second), nil
	}
	return true, 0, nil
}

// jsonText marshals v for a TEXT column.
func jsonText(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return string(b), nil
}
