package contacts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// MaxRecent is how many recent recipients a user keeps; past it the
// least recently used go.
const MaxRecent = 500

// Recipient is an address the user sent to.
type Recipient struct {
	Address string
	Name    string
}

// NoteRecipients counts a send to each of rs (addresses lower-cased),
// keeping the name last given, and trims the list to MaxRecent.
func (b *Book) NoteRecipients(ctx context.Context, rs []Recipient) error {
	if err := b.ownerOnly(); err != nil {
		return fmt.Errorf("note recipients: %w", err)
	}
	if len(rs) == 0 {
		return nil
	}
	now := b.sp.Now().UnixMilli()
	err := b.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		for _, r := range rs {
			addr := strings.ToLower(strings.TrimSpace(r.Address))
			if addr == "" || len(addr) > 320 {
				continue
			}
			// Cut on a character's start: half a character is not UTF-8,
			// which MariaDB refuses (and the whole list with it).
			name := strings.ToValidUTF8(r.Name, "")
			if len(name) > 200 {
				cut := 200
				for cut > 0 && !utf8.RuneStart(name[cut]) {
					cut--
				}
				name = name[:cut]
			}
			res, err := tx.ExecContext(ctx, b.sp.Rebind(`UPDATE recent_rcpts SET uses = uses + 1, last_ms = ?,
				name = CASE WHEN ? = '' THEN name ELSE ? END WHERE user_id = ? AND address = ?`), now, name, name, b.userID, addr)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, b.sp.Rebind(`INSERT INTO recent_rcpts (user_id, address, name, uses, last_ms)
				VALUES (?, ?, ?, 1, ?)`), b.userID, addr, name, now); err != nil {
				return err
			}
		}
		// Bounded: the least recently used past MaxRecent go (one send
		// adds at most its recipients, so the excess is small).
		var excess []string
		if err := tx.SelectContext(ctx, &excess, b.sp.Rebind(`SELECT address FROM recent_rcpts WHERE user_id = ?
			ORDER BY last_ms DESC, uses DESC, address LIMIT 100000 OFFSET ?`), b.userID, MaxRecent); err != nil {
			return err
		}
		for start := 0; start < len(excess); start += 500 {
			q, args, err := sqlx.In("DELETE FROM recent_rcpts WHERE user_id = ? AND address IN (?)", b.userID, excess[start:min(start+500, len(excess))])
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, b.sp.Rebind(q), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("note recipients: %w", err)
	}
	return nil
}

// Suggestion is an address to offer while composing.
type Suggestion struct {
	Name    string
	Address string
	// Uses counts the sends to it; Contact says it is in the address book.
	Uses    int64
	Contact bool
}

// Suggest offers up to limit addresses whose address or name starts with
// prefix (case folded; a word of the name will do): the contacts and the
// recent recipients, the most used first, then contacts before the rest,
// then by name.
func (b *Book) Suggest(ctx context.Context, prefix string, limit int) ([]Suggestion, error) {
	if err := b.ownerOnly(); err != nil {
		return nil, fmt.Errorf("suggest: %w", err)
	}
	p := strings.ToLower(strings.TrimSpace(prefix))
	if p == "" || limit <= 0 {
		return []Suggestion{}, nil
	}
	// Both lists are bounded per user (MaxRecent; the address book is a
	// person's), so they are read whole and matched here, the same way
	// on both dialects and for any script.
	var recent []struct {
		Address string `db:"address"`
		Name    string `db:"name"`
		Uses    int64  `db:"uses"`
	}
	if err := b.sp.DB.SelectContext(ctx, &recent, b.sp.Rebind("SELECT address, name, uses FROM recent_rcpts WHERE user_id = ?"), b.userID); err != nil {
		return nil, fmt.Errorf("suggest: %w", err)
	}
	var book []struct {
		Name  string `db:"name"`
		Email string `db:"email"`
	}
	if err := b.sp.DB.SelectContext(ctx, &book, b.sp.Rebind("SELECT name, email FROM contacts WHERE user_id = ? AND email <> ''"), b.userID); err != nil {
		return nil, fmt.Errorf("suggest: %w", err)
	}
	byAddr := map[string]*Suggestion{}
	var all []*Suggestion
	add := func(name, addr string, uses int64, contact bool) {
		addr = strings.ToLower(strings.TrimSpace(addr))
		if !matches(p, name, addr) {
			return
		}
		s := byAddr[addr]
		if s == nil {
			s = &Suggestion{Address: addr}
			byAddr[addr] = s
			all = append(all, s)
		}
		s.Uses += uses
		if contact {
			s.Contact = true
			if name != "" {
				s.Name = name // the address book's name wins
			}
		} else if s.Name == "" {
			s.Name = name
		}
	}
	for _, c := range book {
		add(c.Name, c.Email, 0, true)
	}
	for _, r := range recent {
		add(r.Name, r.Address, r.Uses, false)
	}
	slices.SortFunc(all, func(x, y *Suggestion) int {
		switch {
		case x.Uses != y.Uses:
			return int(min(max(y.Uses-x.Uses, -1), 1))
		case x.Contact != y.Contact:
			if x.Contact {
				return -1
			}
			return 1
		}
		if c := strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)); c != 0 {
			return c
		}
		return strings.Compare(x.Address, y.Address)
	})
	out := make([]Suggestion, 0, min(limit, len(all)))
	for _, s := range all[:min(limit, len(all))] {
		out = append(out, *s)
	}
	return out, nil
}

// matches reports whether the address, or the name or one of its words,
// starts with p (lower case).
func matches(p, name, addr string) bool {
	if strings.HasPrefix(addr, p) {
		return true
	}
	name = strings.ToLower(name)
	if strings.HasPrefix(name, p) {
		return true
	}
	for _, w := range strings.Fields(name) {
		if strings.HasPrefix(w, p) {
			return true
		}
	}
	return false
}
