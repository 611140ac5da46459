package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"basalt/crypt"
	"basalt/store"
	"basalt/store/cache"
)

// Errors of authentication. ErrAuthFailed is all a client is told about a
// wrong user name or password, so the two cannot be told apart.
var (
	ErrAuthFailed = errors.New("authentication failed")
	ErrThrottled  = errors.New("too many failed logins; try again later")
	ErrUserLocked = errors.New("account locked")
	ErrNoSession  = errors.New("no such session or session expired")
	ErrWeakPass   = errors.New("password too short")
)

// Config tunes the session service. Zero fields take the defaults.
type Config struct {
	KDF            crypt.KDFParams `toml:"-"`
	MinPassword    int             `toml:"min_password"`     // default 8
	FailuresPerIP  int64           `toml:"failures_per_ip"`  // default 8
	FailuresPerNet int64           `toml:"failures_per_net"` // default 16
	FailureWindow  time.Duration   `toml:"failure_window"`   // default 24h
	SessionMaxAge  time.Duration   `toml:"session_max_age"`  // default 12h
	SessionIdle    time.Duration   `toml:"session_idle"`     // default 1h
}

func (c Config) withDefaults() Config {
	if c.KDF == (crypt.KDFParams{}) {
		c.KDF = crypt.DefaultKDF()
	}
	if c.MinPassword == 0 {
		c.MinPassword = 8
	}
	if c.FailuresPerIP == 0 {
		c.FailuresPerIP = 8
	}
	if c.FailuresPerNet == 0 {
		c.FailuresPerNet = 16
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = 24 * time.Hour
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = 12 * time.Hour
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = time.Hour
	}
	return c
}

// Service authenticates users and keeps their sessions.
type Service struct {
	store    *store.Store
	cache    cache.Cache
	cfg      Config
	throttle Throttle
	log      *slog.Logger
	now      func() time.Time
}

// New returns the session service over st, keeping state in st's cache.
func New(st *store.Store, cfg Config, log *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Service{
		store: st, cache: st.Cache(), cfg: cfg, log: log, now: time.Now,
		throttle: Throttle{Cache: st.Cache(), PerIP: cfg.FailuresPerIP, PerSubnet: cfg.FailuresPerNet, Window: cfg.FailureWindow},
	}
}

// Auth is an authenticated user: what a protocol connection keeps.
type Auth struct {
	User store.User
	// Key is the secure user's unlocked identity, nil for other users.
	Key *crypt.Identity
}

// Account returns the authenticated user's mail.
func (a *Auth) Account(st *store.Store) *store.Account { return st.Account(a.User.ID, a.Key) }

// Authenticate checks login and password from the client at ip. It unlocks
// a secure user's key with the password. Every failure from ip counts
// toward the throttle; a throttled ip is refused before the password is
// even looked at.
func (s *Service) Authenticate(ctx context.Context, login, password, ip string) (*Auth, error) {
	if err := s.throttle.Allowed(ctx, ip); err != nil {
		return nil, err
	}
	fail := func() (*Auth, error) {
		if err := s.throttle.Failed(ctx, ip); err != nil {
			s.log.Warn("record failed login", "err", err)
		}
		return nil, ErrAuthFailed
	}
	cred, err := s.store.Credentials(ctx, login)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the time a real check would, so response times do not
		// reveal which user names exist.
		VerifyPassword(s.dummyHash(), password)
		return fail()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	ok, err := VerifyPassword(cred.PasswordHash, password)
	if err != nil {
		s.log.Error("stored password hash is unusable", "user", cred.UserID, "err", err)
		return fail()
	}
	if !ok {
		return fail()
	}
	if cred.LockedUntil > s.now().Unix() {
		return nil, fmt.Errorf("%w until %s: %s", ErrUserLocked, time.Unix(cred.LockedUntil, 0).UTC().Format(time.RFC3339), cred.LockReason)
	}
	auth := &Auth{}
	if cred.Secure {
		if auth.Key, err = crypt.OpenIdentity(cred.SealedKey, []byte(password)); err != nil {
			// The hash matched, so the sealed key should open: this is
			// damage, not a wrong password.
			return nil, fmt.Errorf("authenticate: unlock key of user %d: %w", cred.UserID, err)
		}
	}
	if auth.User, err = s.store.UserByID(ctx, cred.UserID); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return auth, nil
}

func (s *Service) dummyHash() string {
	// A fixed salt is fine: this hash is never compared against anything
	// that matters, it only costs the same time as a real one.
	sum := sha256.Sum256([]byte("basalt-dummy"))
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", s.cfg.KDF.MemoryKiB, s.cfg.KDF.Time, s.cfg.KDF.Threads,
		b64.EncodeToString(sum[:16]), b64.EncodeToString(sum[:]))
}

func (s *Service) checkPassword(pw string) error {
	if len([]rune(pw)) < s.cfg.MinPassword {
		return fmt.Errorf("%w: at least %d characters", ErrWeakPass, s.cfg.MinPassword)
	}
	return nil
}

// NewUser describes a user to create with a password.
type NewUser struct {
	Address   string
	Password  string
	Secure    bool
	Plan      string
	Overrides store.LimitOverrides
}

// CreateUser hashes the password, makes and seals a key pair for a secure
// user, and creates the user with its default mailboxes.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (store.User, error) {
	if err := s.checkPassword(nu.Password); err != nil {
		return store.User{}, err
	}
	hash, err := HashPassword(nu.Password, s.cfg.KDF)
	if err != nil {
		return store.User{}, err
	}
	su := store.NewUser{Address: nu.Address, PasswordHash: hash, Secure: nu.Secure, Plan: nu.Plan, Overrides: nu.Overrides}
	if nu.Secure {
		id, err := crypt.GenerateIdentity()
		if err != nil {
			return store.User{}, fmt.Errorf("create user: %w", err)
		}
		if su.SealedKey, err = crypt.SealIdentity(id, []byte(nu.Password), s.cfg.KDF); err != nil {
			return store.User{}, fmt.Errorf("create user: %w", err)
		}
		su.PublicKey = id.Recipient().String()
	}
	return s.store.CreateUser(ctx, su)
}

// ChangePassword sets a new password after checking the old one, and
// re-seals a secure user's key under it.
func (s *Service) ChangePassword(ctx context.Context, userID int64, oldPassword, newPassword string) error {
	if err := s.checkPassword(newPassword); err != nil {
		return err
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	cred, err := s.store.Credentials(ctx, u.Address)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if ok, err := VerifyPassword(cred.PasswordHash, oldPassword); err != nil || !ok {
		return ErrAuthFailed
	}
	hash, err := HashPassword(newPassword, s.cfg.KDF)
	if err != nil {
		return err
	}
	var sealed []byte
	if cred.Secure {
		id, err := crypt.OpenIdentity(cred.SealedKey, []byte(oldPassword))
		if err != nil {
			return fmt.Errorf("change password: unlock key: %w", err)
		}
		if sealed, err = crypt.SealIdentity(id, []byte(newPassword), s.cfg.KDF); err != nil {
			return fmt.Errorf("change password: %w", err)
		}
	}
	return s.store.SetPassword(ctx, userID, hash, sealed, "")
}

// ResetPassword is an administrator's reset: no old password is known, so
// a secure user's old key cannot be re-sealed; it is replaced by a new key
// pair, and mail encrypted to the old key can no longer be read. The
// caller must say it accepts that with newKeys, or a secure user's reset
// is refused.
func (s *Service) ResetPassword(ctx context.Context, userID int64, newPassword string, newKeys bool) error {
	if err := s.checkPassword(newPassword); err != nil {
		return err
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	hash, err := HashPassword(newPassword, s.cfg.KDF)
	if err != nil {
		return err
	}
	if !u.Secure {
		return s.store.SetPassword(ctx, userID, hash, nil, "")
	}
	if !newKeys {
		return fmt.Errorf("reset password of %s: %w: the user is secure; a reset without the old password makes a new key pair and old mail unreadable", u.Address, store.ErrInvalid)
	}
	id, err := crypt.GenerateIdentity()
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	sealed, err := crypt.SealIdentity(id, []byte(newPassword), s.cfg.KDF)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return s.store.SetPassword(ctx, userID, hash, sealed, id.Recipient().String())
}

// Web is a browser session.
type Web struct {
	ID      string
	UserID  int64
	CSRF    string
	Key     *crypt.Identity
	Created time.Time
	Expires time.Time
}

// webRecord is what the server keeps: the unlocked key only sealed under
// the secret half of the cookie, which the server never stores.
type webRecord struct {
	UserID    int64  `json:"u"`
	CSRF      string `json:"c"`
	SealedKey []byte `json:"k,omitempty"`
	Created   int64  `json:"t"`
	Expires   int64  `json:"e"`
}

const tokenSep = "."

func webKey(id string) string { return "websess:" + id }

// StartWeb opens a web session for auth and returns the cookie value.
func (s *Service) StartWeb(ctx context.Context, auth *Auth) (string, *Web, error) {
	idb := make([]byte, 16)
	csrf := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	if _, err := rand.Read(csrf); err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	secret, err := crypt.NewKey()
	if err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	now := s.now()
	w := &Web{ID: hex.EncodeToString(idb), UserID: auth.User.ID, CSRF: base64.RawURLEncoding.EncodeToString(csrf), Key: auth.Key,
		Created: now, Expires: s.expiry(now, now)}
	rec := webRecord{UserID: w.UserID, CSRF: w.CSRF, Created: now.Unix(), Expires: w.Expires.Unix()}
	if auth.Key != nil {
		if rec.SealedKey, err = crypt.SealWithKey(secret, []byte(auth.Key.Secret()), []byte(w.ID)); err != nil {
			return "", nil, fmt.Errorf("start session: %w", err)
		}
	}
	if err := s.saveWeb(ctx, w.ID, rec); err != nil {
		return "", nil, err
	}
	return w.ID + tokenSep + base64.RawURLEncoding.EncodeToString(secret), w, nil
}

func (s *Service) expiry(created, now time.Time) time.Time {
	e := now.Add(s.cfg.SessionIdle)
	if max := created.Add(s.cfg.SessionMaxAge); e.After(max) {
		e = max
	}
	return e
}

func (s *Service) saveWeb(ctx context.Context, id string, rec webRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	ttl := time.Until(time.Unix(rec.Expires, 0))
	if ttl <= 0 {
		return ErrNoSession
	}
	if err := s.cache.Set(ctx, webKey(id), cache.Entry{Value: b}, ttl); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// Web returns the live session a cookie value names, unsealing the key.
// An idle session's expiry is pushed forward, up to the maximum age.
func (s *Service) Web(ctx context.Context, token string) (*Web, error) {
	id, secretStr, ok := strings.Cut(token, tokenSep)
	secret, err := base64.RawURLEncoding.DecodeString(secretStr)
	if !ok || err != nil || len(secret) != crypt.KeySize || len(id) != 32 {
		return nil, ErrNoSession
	}
	e, found, err := s.cache.Get(ctx, webKey(id))
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if !found {
		return nil, ErrNoSession
	}
	var rec webRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, ErrNoSession
	}
	now := s.now()
	if now.Unix() >= rec.Expires {
		s.cache.Delete(ctx, webKey(id))
		return nil, ErrNoSession
	}
	w := &Web{ID: id, UserID: rec.UserID, CSRF: rec.CSRF, Created: time.Unix(rec.Created, 0), Expires: time.Unix(rec.Expires, 0)}
	if rec.SealedKey != nil {
		// A wrong secret means a forged or stale cookie, not a server fault.
		plain, err := crypt.OpenWithKey(secret, rec.SealedKey, []byte(id))
		if err != nil {
			return nil, ErrNoSession
		}
		if w.Key, err = crypt.ParseIdentity(string(plain)); err != nil {
			return nil, fmt.Errorf("load session: %w", err)
		}
	}
	// Refresh the idle expiry at most once a minute, not on every request.
	if next := s.expiry(w.Created, now); next.Sub(w.Expires) > time.Minute {
		rec.Expires = next.Unix()
		w.Expires = next
		if err := s.saveWeb(ctx, id, rec); err != nil {
			s.log.Warn("refresh session", "err", err)
		}
	}
	return w, nil
}

// EndWeb ends a session server-side (logout).
func (s *Service) EndWeb(ctx context.Context, token string) error {
	id, _, _ := strings.Cut(token, tokenSep)
	if len(id) != 32 {
		return ErrNoSession
	}
	if err := s.cache.Delete(ctx, webKey(id)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
