package session

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"time"

	"basalt/store"
)

// What provisioning needs of the session service: users made with a
// hash imported from another server or with a random password, and the
// coalesced record of last logins.

// ImportedUser is a user brought over from another server with its
// password hash (CheckImportedHash lists the formats).
type ImportedUser struct {
	Address string
	Hash    string
	// Secure asks for secure storage, which an imported hash cannot give:
	// it is refused with ErrSecureImport.
	Secure    bool
	Plan      string
	Overrides store.LimitOverrides
}

// ErrSecureImport refuses an imported hash for a secure user: its key
// pair must be sealed by the password itself, which a hash does not give.
var ErrSecureImport = fmt.Errorf("%w: a user with secure storage needs its password to seal its keys; an imported hash cannot make one", store.ErrInvalid)

// importRow checks one imported user.
func importRow(iu ImportedUser) (store.NewUser, error) {
	if iu.Secure {
		return store.NewUser{}, fmt.Errorf("import user %s: %w", iu.Address, ErrSecureImport)
	}
	if err := CheckImportedHash(iu.Hash); err != nil {
		return store.NewUser{}, fmt.Errorf("import user %s: %w: %w", iu.Address, store.ErrInvalid, err)
	}
	return store.NewUser{Address: iu.Address, Password: store.Password{Hash: iu.Hash}, Plan: iu.Plan, Overrides: iu.Overrides}, nil
}

// ImportUser creates a user, never secure, who logs in with the password
// behind an imported hash; that login replaces the hash with argon2id.
func (s *Service) ImportUser(ctx context.Context, iu ImportedUser) (store.User, error) {
	nu, err := importRow(iu)
	if err != nil {
		return store.User{}, err
	}
	return s.store.CreateUser(ctx, nu)
}

// ImportUsers creates many imported users in one transaction: all or none.
func (s *Service) ImportUsers(ctx context.Context, ius []ImportedUser) ([]int64, error) {
	nus := make([]store.NewUser, len(ius))
	for i, iu := range ius {
		nu, err := importRow(iu)
		if err != nil {
			return nil, err
		}
		nus[i] = nu
	}
	return s.store.CreateUsers(ctx, nus)
}

// randomPasswordAlphabet leaves out the characters people misread (0/O,
// 1/l/I) in a password they may have to type.
const randomPasswordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// RandomPassword returns a password of n characters from crypto/rand:
// 20 of them carry about 116 bits.
func RandomPassword(n int) (string, error) {
	b := make([]byte, n)
	// Rejection sampling keeps every character equally likely.
	limit := byte(256 - 256%len(randomPasswordAlphabet))
	buf := make([]byte, 2*n)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random password: %w", err)
		}
		for _, c := range buf {
			if c < limit && i < n {
				b[i] = randomPasswordAlphabet[int(c)%len(randomPasswordAlphabet)]
				i++
			}
		}
	}
	return string(b), nil
}

// CreateUserRandom creates nu with a random password (nu.Password is
// ignored) and returns it: the only time it is known.
func (s *Service) CreateUserRandom(ctx context.Context, nu NewUser) (store.User, string, error) {
	pw, err := RandomPassword(20)
	if err != nil {
		return store.User{}, "", err
	}
	nu.Password = pw
	u, err := s.CreateUser(ctx, nu)
	if err != nil {
		return store.User{}, "", err
	}
	return u, pw, nil
}

// loginMarks remembers when this node last recorded each user's login
// over each protocol, so that a client logging in again and again costs
// one write an interval. Another node records its own logins, so the
// record is at most an interval behind the latest login anywhere.
type loginMarks struct {
	every time.Duration // <= 0: every login is recorded
	mu    sync.Mutex
	m     map[string]time.Time
}

// loginMarksMax bounds the marks kept; past it they are all dropped,
// which costs at most one extra write per user.
const loginMarksMax = 100_000

func newLoginMarks(every time.Duration) *loginMarks {
	return &loginMarks{every: every, m: map[string]time.Time{}}
}

func markKey(user int64, p store.Protocol) string {
	return strconv.FormatInt(user, 10) + "/" + string(p)
}

// due reports whether a login at now is to be recorded, and if so marks it.
func (l *loginMarks) due(user int64, p store.Protocol, now time.Time) bool {
	if l.every <= 0 {
		return true
	}
	k := markKey(user, p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.m[k]; ok && now.Sub(last) < l.every && !now.Before(last) {
		return false
	}
	if len(l.m) >= loginMarksMax {
		l.m = map[string]time.Time{}
	}
	l.m[k] = now
	return true
}

// forget drops a mark whose write failed, so the next login tries again.
func (l *loginMarks) forget(user int64, p store.Protocol) {
	l.mu.Lock()
	delete(l.m, markKey(user, p))
	l.mu.Unlock()
}
