package store

import (
	"context"
	"fmt"
	"strings"

	"basalt/store/sqldb"
)

// Counts are what a server, a domain or a user holds.
type Counts struct {
	Domains   int64 `db:"domains" json:"domains"`
	Users     int64 `db:"users" json:"users"`
	Aliases   int64 `db:"aliases" json:"aliases"`
	Messages  int64 `db:"messages" json:"messages"`
	UsedBytes int64 `db:"used_bytes" json:"usedBytes"`
}

// DayVolume is the mail of one day (UTC), from the daily counters.
type DayVolume struct {
	Day           int64 `db:"day" json:"day"` // days since 1970-01-01
	ReceivedBytes int64 `db:"recv" json:"receivedBytes"`
	SentBytes     int64 `db:"sent" json:"sentBytes"`
}

// Stats counts what the server holds, or one domain ("" the server), and
// the mail volume of the last days.
func (s *Store) Stats(ctx context.Context, domain string, days int) (Counts, []DayVolume, error) {
	var c Counts
	var err error
	if domain == "" {
		err = s.db.GetContext(ctx, &c, `SELECT (SELECT COUNT(*) FROM domains) AS domains, (SELECT COUNT(*) FROM users) AS users,
			(SELECT COUNT(*) FROM aliases) AS aliases, (SELECT COALESCE(SUM(message_count), 0) FROM users) AS messages,
			(SELECT COALESCE(SUM(used_bytes), 0) FROM users) AS used_bytes`)
	} else {
		var d DomainInfo
		if d, err = s.DomainInfo(ctx, domain); err != nil {
			return Counts{}, nil, err
		}
		err = s.db.GetContext(ctx, &c, s.rebind(`SELECT 1 AS domains, COUNT(*) AS users, (SELECT COUNT(*) FROM aliases WHERE domain_id = ?) AS aliases,
			COALESCE(SUM(message_count), 0) AS messages, COALESCE(SUM(used_bytes), 0) AS used_bytes FROM users WHERE domain_id = ?`), d.ID, d.ID)
	}
	if err != nil {
		return Counts{}, nil, fmt.Errorf("stats: %w", err)
	}
	vol, err := s.volume(ctx, domain, 0, days)
	return c, vol, err
}

// UserStats counts a user's mail and its volume of the last days.
func (s *Store) UserStats(ctx context.Context, address string, days int) (User, []DayVolume, error) {
	u, err := s.UserByAddress(ctx, address)
	if err != nil {
		return User{}, nil, err
	}
	vol, err := s.volume(ctx, "", u.ID, days)
	return u, vol, err
}

// volume sums the receive and send counters by day, of a user, a domain's
// users or everyone.
func (s *Store) volume(ctx context.Context, domain string, userID int64, days int) ([]DayVolume, error) {
	from := s.day() - int64(days) + 1
	concat := func(prefix string) string {
		if s.db.Dialect() == sqldb.MySQL {
			return "CONCAT('" + prefix + "', u.id)"
		}
		return "'" + prefix + "' || u.id"
	}
	var q string
	var args []any
	switch {
	case userID != 0:
		q = `SELECT day, SUM(CASE WHEN name = ? THEN value ELSE 0 END) AS recv, SUM(CASE WHEN name = ? THEN value ELSE 0 END) AS sent
			FROM counters WHERE name IN (?, ?) AND day >= ? GROUP BY day ORDER BY day`
		r, sn := fmt.Sprintf("recv:%d", userID), fmt.Sprintf("send:%d", userID)
		args = []any{r, sn, r, sn, from}
	case domain != "":
		q = `SELECT c.day, SUM(CASE WHEN c.name = ` + concat("recv:") + ` THEN c.value ELSE 0 END) AS recv,
			SUM(CASE WHEN c.name = ` + concat("send:") + ` THEN c.value ELSE 0 END) AS sent
			FROM users u JOIN domains d ON d.id = u.domain_id JOIN counters c ON c.name IN (` + concat("recv:") + `, ` + concat("send:") + `)
			WHERE d.name = ? AND c.day >= ? GROUP BY c.day ORDER BY c.day`
		args = []any{strings.ToLower(domain), from}
	default:
		// A user's received bytes are also counted by sending address
		// ("recv:<id>:ip:<addr>"): those are the same bytes again.
		q = `SELECT day, SUM(CASE WHEN name LIKE 'recv:%' THEN value ELSE 0 END) AS recv, SUM(CASE WHEN name LIKE 'send:%' THEN value ELSE 0 END) AS sent
			FROM counters WHERE day >= ? AND (name LIKE 'recv:%' OR name LIKE 'send:%') AND name NOT LIKE '%:ip:%' GROUP BY day ORDER BY day`
		args = []any{from}
	}
	vs := []DayVolume{}
	if err := s.db.SelectContext(ctx, &vs, s.rebind(q), args...); err != nil {
		return nil, fmt.Errorf("mail volume: %w", err)
	}
	return vs, nil
}
