package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
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
	// ErrSuspended and ErrProtocolDenied are kinds of ErrUserLocked, so
	// front ends that answer "account locked" answer them alike.
	ErrSuspended      = fmt.Errorf("%w: account suspended", ErrUserLocked)
	ErrProtocolDenied = fmt.Errorf("%w: this account may not log in over this protocol", ErrUserLocked)
)

// Config tunes the session service. Zero fields take the defaults.
type Config struct {
	KDF         crypt.KDFParams `toml:"-"`
	MinPassword int             `toml:"min_password"` // default 8
	// The login throttle (see Throttle): failures allowed in a row per
	// account from one network, per account from all networks, per
	// address and per network, counted over FailureWindow; then bans of
	// BanTime doubling up to MaxBan. An account's logins from a network
	// make it trusted there for TrustFor. A negative count turns its
	// scope off.
	FailuresPerAccount    int64         `toml:"failures_per_account"`     // default 5
	FailuresPerAccountAll int64         `toml:"failures_per_account_all"` // default 20
	FailuresPerIP         int64         `toml:"failures_per_ip"`          // default 8
	FailuresPerNet        int64         `toml:"failures_per_net"`         // default 16
	FailureWindow         time.Duration `toml:"failure_window"`           // default 24h
	BanTime               time.Duration `toml:"ban_time"`                 // default 1m
	MaxBan                time.Duration `toml:"max_ban"`                  // default 15m
	TrustFor              time.Duration `toml:"trust_for"`                // default 30 days
	SessionMaxAge         time.Duration `toml:"session_max_age"`          // default 12h
	SessionIdle           time.Duration `toml:"session_idle"`             // default 1h
	// LoginCache is how long a verified password is remembered, so that
	// a client reconnecting with it does not cost another argon2 hash
	// (see loginCache); default 5m, negative: off.
	LoginCache time.Duration `toml:"login_cache"`
	// HashConcurrency bounds the argon2 computations running at once,
	// each of which takes KDF.MemoryKiB of memory; default: one per CPU.
	HashConcurrency int `toml:"hash_concurrency"`
	// CRAMMD5 allows AUTH CRAM-MD5 (RFC 2195) for users who are not
	// secure. It keeps a password-equivalent secret for each such user
	// (see cram.go), so it is off unless the operator turns it on; it
	// takes effect for a user at their next password change.
	CRAMMD5 bool `toml:"cram_md5"`
	// LoginRecordEvery is how often at most a user's last login over one
	// protocol is written (store.RecordLogin): a client that logs in
	// every minute costs one write an interval, not one a login.
	// Default 5m; negative: every login.
	LoginRecordEvery time.Duration `toml:"login_record_every"`
	// ConnLease is how long a node's listing of a live protocol
	// connection in the shared cache lasts unless the node renews it
	// (every third of it): a node that dies without cleaning up drops
	// out of the sessions listed within this. Default 90s.
	ConnLease time.Duration `toml:"conn_lease"`
}

func (c Config) withDefaults() Config {
	if c.KDF == (crypt.KDFParams{}) {
		c.KDF = crypt.DefaultKDF()
	}
	orDefault(&c.MinPassword, 8)
	orDefault(&c.FailuresPerAccount, 5)
	orDefault(&c.FailuresPerAccountAll, 20)
	orDefault(&c.FailuresPerIP, 8)
	orDefault(&c.FailuresPerNet, 16)
	orDefault(&c.FailureWindow, 24*time.Hour)
	orDefault(&c.BanTime, time.Minute)
	orDefault(&c.MaxBan, 15*time.Minute)
	orDefault(&c.TrustFor, 30*24*time.Hour)
	orDefault(&c.SessionMaxAge, 12*time.Hour)
	orDefault(&c.SessionIdle, time.Hour)
	orDefault(&c.LoginCache, 5*time.Minute)
	orDefault(&c.LoginRecordEvery, 5*time.Minute)
	orDefault(&c.ConnLease, 90*time.Second)
	c.ConnLease = max(c.ConnLease, 3*time.Millisecond) // renewed every third, at least a millisecond
	orDefault(&c.HashConcurrency, runtime.GOMAXPROCS(0))
	c.MaxBan = max(c.MaxBan, c.BanTime)
	return c
}

// orDefault sets *v to d when it holds its type's zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Service authenticates users and keeps their sessions.
type Service struct {
	store    *store.Store
	cfg      Config
	throttle *Throttle
	verified *loginCache // nil when off
	calls    *fallback   // where AdmitCall counts
	cache    cache.Cache // the shared cache: what Value keeps
	hashSem  chan struct{}
	log      *slog.Logger
	now      func() time.Time
	// logins coalesces the records of last logins (RecordLogin).
	logins *loginMarks
	// conns is the registry of live protocol connections (conns.go).
	conns *conns
	// node names this Service among those sharing the cache, in the
	// listing of its connections there.
	node string
	// done is closed by Close: what runs in the background stops.
	done      chan struct{}
	closeOnce sync.Once
	// verifications counts password hashes computed for logins.
	verifications atomic.Int64
	freed         atomic.Int64 // when returnMemory last ran, Unix ns
}

// New returns the session service over st, keeping its counts and its
// sessions' values in c: the cache st runs on, which every node shares.
func New(st *store.Store, c cache.Cache, cfg Config, log *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	off := func(n int64) int64 { return max(n, 0) } // negative: off
	local := cache.NewMemory(cache.MemoryOptions{})
	s := &Service{
		store: st, cfg: cfg, log: log, now: time.Now, done: make(chan struct{}), hashSem: make(chan struct{}, cfg.HashConcurrency), cache: c,
		calls: &fallback{shared: c, local: local, log: log, what: "webmail call rate"},
		throttle: &Throttle{
			Cache: c, Local: local, Log: log,
			PerAccount: off(cfg.FailuresPerAccount), PerAccountAll: off(cfg.FailuresPerAccountAll),
			PerIP: off(cfg.FailuresPerIP), PerNet: off(cfg.FailuresPerNet),
			Window: cfg.FailureWindow, BanTime: cfg.BanTime, MaxBan: cfg.MaxBan, TrustFor: cfg.TrustFor,
		},
	}
	if cfg.LoginCache > 0 {
		s.verified = newLoginCache(cfg.LoginCache, loginCacheMax)
	}
	s.logins = newLoginMarks(cfg.LoginRecordEvery)
	s.conns = newConns(s)
	s.node = nodeName()
	return s
}

// Close stops the service's background work: the renewal of its
// connections' listing in the shared cache (a node that stops without
// closing them leaves them listed until their lease runs out). It does
// not end the connections, which the protocols' shutdown does.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.conns.mu.Lock()
		close(s.done)
		s.conns.mu.Unlock()
		s.conns.cancel()
	})
	// The registry's rechecks and renewals log and read the store: none
	// may outlive the Service (nor a test that made it).
	s.conns.bg.Wait()
}

// nodeName is the host's name and a random suffix: two processes on one
// host are two nodes.
func nodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	rand.Read(b[:])
	return host + "/" + hex.EncodeToString(b[:])
}

// Auth is an authenticated user: what a protocol connection keeps.
type Auth struct {
	User store.User
	// Key is the secure user's unlocked identity, nil for other users.
	Key *crypt.Identity
	// checked is when the user's state that admitted the login was read
	// (see Front.Open).
	checked time.Time
}

// Account returns the authenticated user's mail.
func (a *Auth) Account(st *store.Store) *store.Account { return st.Account(a.User.ID, a.Key) }

// Authenticate checks login and password from the client at ip (an
// address, or host:port) for the webmail: the service's own front end
// (the protocols log in through For). It unlocks a secure user's key with
// the password. Every attempt counts toward the throttle until it
// succeeds; a throttled client is refused before its password is looked
// at.
func (s *Service) Authenticate(ctx context.Context, login, password, ip string) (*Auth, error) {
	return s.authenticate(ctx, store.ProtoWebmail, login, password, ip)
}

func (s *Service) authenticate(ctx context.Context, proto store.Protocol, login, password, ip string) (*Auth, error) {
	return s.attempt(ctx, login, ip, func(cred *store.Credentials, gate func() error) (*Auth, error) {
		return s.check(ctx, proto, ip, cred, password, gate)
	})
}

// Front is the session service as one protocol's listener uses it: its
// logins are refused for users denied that protocol, and recorded as
// that protocol's.
type Front struct {
	s     *Service
	proto store.Protocol
}

// For returns the service for the listeners of protocol p.
func (s *Service) For(p store.Protocol) *Front { return &Front{s: s, proto: p} }

// Authenticate is Service.Authenticate over f's protocol.
func (f *Front) Authenticate(ctx context.Context, login, password, ip string) (*Auth, error) {
	return f.s.authenticate(ctx, f.proto, login, password, ip)
}

// AuthenticateCRAM is Service.AuthenticateCRAM over f's protocol.
func (f *Front) AuthenticateCRAM(ctx context.Context, login, challenge, digest, ip string) (*Auth, error) {
	return f.s.authenticateCRAM(ctx, f.proto, login, challenge, digest, ip)
}

// CRAMMD5 reports whether CRAM-MD5 may be offered.
func (f *Front) CRAMMD5() bool { return f.s.CRAMMD5() }

// AuthenticateCRAM checks a CRAM-MD5 response (RFC 2195): the hex digest
// of challenge under the user's password. It works only when CRAM-MD5 is
// allowed and only for users who are not secure (their key needs the
// password itself); the throttle applies as to passwords.
func (s *Service) AuthenticateCRAM(ctx context.Context, login, challenge, digest, ip string) (*Auth, error) {
	return s.authenticateCRAM(ctx, store.ProtoWebmail, login, challenge, digest, ip)
}

func (s *Service) authenticateCRAM(ctx context.Context, proto store.Protocol, login, challenge, digest, ip string) (*Auth, error) {
	return s.attempt(ctx, login, ip, func(cred *store.Credentials, gate func() error) (*Auth, error) {
		if err := gate(); err != nil {
			return nil, err
		}
		if !s.cfg.CRAMMD5 || cred == nil || cred.Secure || len(cred.CRAMSecret) == 0 {
			return nil, ErrAuthFailed
		}
		ok, err := verifyCRAM(cred.CRAMSecret, challenge, digest)
		if err != nil {
			s.log.Error("authenticate", "user", cred.UserID, "err", err)
			return nil, fmt.Errorf("authenticate: %w", err)
		}
		if !ok {
			return nil, ErrAuthFailed
		}
		return s.admit(ctx, proto, ip, *cred, nil)
	})
}

// CRAMMD5 reports whether CRAM-MD5 may be offered.
func (s *Service) CRAMMD5() bool { return s.cfg.CRAMMD5 }

// attempt runs one login attempt at login from ip under the throttle.
// check gets the login's credentials (nil when no such login exists) and
// gate, which it must call before it decides anything: gate counts the
// attempt (ErrThrottled when it may not be made), and the count is given
// back if check succeeds.
//
// The throttle is asked twice. First here (Check, which counts nothing),
// so that a refused attempt is turned away at once, not after waiting for
// a hash slot. Then by gate, where check is about to decide: in a
// hash slot, or with the answer in the login cache. So the attempts
// counted but undecided at any moment are the few in the hash slots, not
// every login queued for one: a burst of logins from one office's
// address is not taken for a flood of guesses, while parallel guesses
// still cannot slip past the limit.
func (s *Service) attempt(ctx context.Context, login, ip string, check func(cred *store.Credentials, gate func() error) (*Auth, error)) (*Auth, error) {
	addr, err := ParseClientIP(ip)
	if err != nil {
		// Front ends always know their client; an address that does not
		// parse is a bug, and must not switch the throttle off.
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	var cred *store.Credentials
	read := s.now()
	c, err := s.store.Credentials(ctx, login)
	switch {
	case err == nil:
		cred = &c
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	var uid int64
	if cred != nil {
		uid = cred.UserID
	}
	account := accountKey(uid, login)
	if err := s.throttle.Check(ctx, account, addr); err != nil {
		return nil, err
	}
	var at *Attempt
	gate := func() error {
		if at != nil {
			return nil
		}
		a, err := s.throttle.Begin(ctx, account, addr)
		if err != nil {
			return err
		}
		at = a
		return nil
	}
	auth, err := check(cred, gate)
	if err != nil {
		if !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrUserLocked) {
			// The password was never judged (the store did not answer):
			// an outage must not spend every client's tries and ban them
			// all once it is over.
			at.Abandon(ctx)
		}
		return nil, err
	}
	// A login admitted from the verified-login cache took no count (at is
	// nil), but marks its network trusted as any success does.
	if at == nil {
		err = s.throttle.Trust(ctx, account, addr)
	} else {
		err = at.Succeeded(ctx)
	}
	if err != nil {
		s.log.Warn("login throttle", "err", err)
	}
	auth.checked = read
	return auth, nil
}

// hashing runs fn while holding one of the argon2 slots, so that a flood
// of logins queues instead of allocating KDF memory for each of them.
func (s *Service) hashing(ctx context.Context, fn func() error) error {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := fn()
	<-s.hashSem
	s.returnMemory()
	return err
}

// freeEvery bounds how often returnMemory runs.
const freeEvery = time.Second

// returnMemory hands the memory of finished argon2 computations back to
// the system when no other is running. Each takes KDF.MemoryKiB (64 MiB)
// at once, which the Go runtime would otherwise keep and return only
// slowly, so a burst of logins left the process hundreds of MiB large
// with a small live heap. It runs at most once every freeEvery, off the
// login's path: a full GC over a small heap costs far less than a hash.
func (s *Service) returnMemory() {
	if len(s.hashSem) > 0 {
		return // the next computation reuses the memory
	}
	now := time.Now().UnixNano()
	last := s.freed.Load()
	if now-last < int64(freeEvery) || !s.freed.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

// verify is VerifyPassword for a login, counted.
func (s *Service) verify(hash, password string) (bool, error) {
	s.verifications.Add(1)
	return VerifyPassword(hash, password)
}

func (s *Service) check(ctx context.Context, proto store.Protocol, ip string, cred *store.Credentials, password string, gate func() error) (*Auth, error) {
	if cred == nil {
		// Spend the time a real check would, so response times do not
		// reveal which user names exist.
		err := s.hashing(ctx, func() error {
			if err := gate(); err != nil {
				return err
			}
			s.verify(s.dummyHash(), password)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return nil, ErrAuthFailed
	}
	// A secure user's login must unlock the key, which costs the same
	// argon2 hash as the check, so the login cache would save nothing
	// there without keeping the key (or what opens it) in memory between
	// logins; see loginCache.
	var sum loginSum
	if s.verified != nil && !cred.Secure {
		sum = s.verified.sum(cred.UserID, cred.PasswordHash, password)
		cached, done := s.verified.claim(ctx, sum, s.now())
		defer done()
		if cached {
			// Not counted: the password is known good, so this is no
			// guess, and counting a burst of them (a client opening its
			// connections at once, which wait here for one hash) took
			// the account's tries and banned its own logins. A banned
			// client was turned away before (Throttle.Check), so it
			// learns nothing of the cache either.
			return s.admit(ctx, proto, ip, *cred, nil)
		}
	}
	var ok bool
	auth := &Auth{}
	err := s.hashing(ctx, func() error {
		if err := gate(); err != nil {
			return err
		}
		var err error
		if ok, err = s.verify(cred.PasswordHash, password); err != nil || !ok {
			return err
		}
		if hashKind(cred.PasswordHash) != "argon2id" {
			// An imported hash (a migration) has done its work: the
			// password is known now, so it is kept as Basalt keeps
			// every other. A failure leaves the old hash, still good.
			s.upgradeHash(ctx, cred, password)
		}
		if cred.Secure {
			// The hash matched, so the sealed key should open: a failure
			// here is damage, not a wrong password.
			if auth.Key, err = crypt.OpenIdentity(cred.SealedKey, []byte(password)); err != nil {
				return fmt.Errorf("unlock key of user %d: %w", cred.UserID, err)
			}
		}
		return nil
	})
	if errors.Is(err, ErrThrottled) {
		return nil, err
	}
	if err != nil {
		s.log.Error("authenticate", "user", cred.UserID, "err", err)
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if !ok {
		return nil, ErrAuthFailed
	}
	if s.verified != nil && !cred.Secure {
		s.verified.put(sum, s.now())
	}
	return s.admit(ctx, proto, ip, *cred, auth.Key)
}

// upgradeHash replaces an imported hash by argon2id of the password that
// just matched it; called in a hash slot.
func (s *Service) upgradeHash(ctx context.Context, cred *store.Credentials, password string) {
	h, err := HashPassword(password, s.cfg.KDF)
	if err == nil {
		_, err = s.store.UpgradePasswordHash(ctx, cred.UserID, cred.PasswordHash, h)
	}
	if err != nil {
		s.log.Warn("replace imported password hash", "user", cred.UserID, "err", err)
	}
}

// admit finishes a login whose credentials checked out: a locked or
// suspended user is still refused, and so is one denied the protocol.
// The login is recorded as the user's last over proto.
func (s *Service) admit(ctx context.Context, proto store.Protocol, ip string, cred store.Credentials, key *crypt.Identity) (*Auth, error) {
	now := s.now()
	if cred.LockedUntil > now.Unix() {
		return nil, fmt.Errorf("%w until %s: %s", ErrUserLocked, time.Unix(cred.LockedUntil, 0).UTC().Format(time.RFC3339), cred.LockReason)
	}
	if cred.SuspendedAt > 0 {
		return nil, ErrSuspended
	}
	if cred.DeniedProtocols.Has(proto) {
		return nil, fmt.Errorf("%w (%s)", ErrProtocolDenied, proto)
	}
	u, err := s.store.UserByID(ctx, cred.UserID)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if s.logins.due(cred.UserID, proto, now) {
		host := ip
		if a, err := ParseClientIP(ip); err == nil {
			host = a.String()
		}
		if err := s.store.RecordLogin(ctx, cred.UserID, proto, host, now); err != nil {
			// The login stands: the record is for administrators.
			s.log.Warn("record login", "user", cred.UserID, "err", err)
			s.logins.forget(cred.UserID, proto)
		}
	}
	return &Auth{User: u, Key: key}, nil
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
	store.UserOptions
}

// CreateUser hashes the password, makes and seals a key pair for a secure
// user, and creates the user with its default mailboxes.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (store.User, error) {
	if err := s.checkPassword(nu.Password); err != nil {
		return store.User{}, err
	}
	p, err := s.credentials(ctx, nu.Password, nil, nu.Secure)
	if err != nil {
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	return s.store.CreateUser(ctx, store.NewUser{Address: nu.Address, Password: p, Secure: nu.Secure, Plan: nu.Plan, Overrides: nu.Overrides, UserOptions: nu.UserOptions})
}

// credentials hashes password and, for a secure user, seals key (a new
// key pair when key is nil) under it; for other users it adds the CRAM-MD5
// secret when CRAM-MD5 is allowed.
func (s *Service) credentials(ctx context.Context, password string, key *crypt.Identity, secure bool) (store.Password, error) {
	var p store.Password
	err := s.hashing(ctx, func() error {
		var err error
		if p.Hash, err = HashPassword(password, s.cfg.KDF); err != nil {
			return err
		}
		if !secure {
			if s.cfg.CRAMMD5 {
				p.CRAMSecret, err = CRAMSecret(password)
			}
			return err
		}
		if key == nil {
			if key, err = crypt.GenerateIdentity(); err != nil {
				return err
			}
			p.PublicKey = key.Recipient().String()
		}
		p.SealedKey, err = crypt.SealIdentity(key, []byte(password), s.cfg.KDF)
		return err
	})
	return p, err
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
	var key *crypt.Identity
	var ok bool
	err = s.hashing(ctx, func() error {
		var err error
		if ok, err = VerifyPassword(cred.PasswordHash, oldPassword); err != nil || !ok || !cred.Secure {
			return err
		}
		key, err = crypt.OpenIdentity(cred.SealedKey, []byte(oldPassword))
		return err
	})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if !ok {
		return ErrAuthFailed
	}
	p, err := s.credentials(ctx, newPassword, key, cred.Secure)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return s.store.SetPassword(ctx, userID, p)
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
	if u.Secure && !newKeys {
		return fmt.Errorf("reset password of %s: %w: the user is secure; a reset without the old password makes a new key pair and old mail unreadable", u.Address, store.ErrInvalid)
	}
	p, err := s.credentials(ctx, newPassword, nil, u.Secure)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return s.store.SetPassword(ctx, userID, p)
}

// Web is a browser session.
type Web struct {
	ID      string
	UserID  int64
	CSRF    string
	Key     *crypt.Identity
	Created time.Time
	Expires time.Time // the latest it can live, however busy
	// CapKey signs the session's capability URLs (the webmail's images,
	// loaded by a sandboxed frame that carries no cookie): see
	// WebCapability.
	CapKey []byte
}

const tokenSep = "."

// StartWeb opens a web session for auth and returns the cookie value. The
// record is kept in SQL (store.WebSession), where it outlives a cache
// restart; it holds only a hash of the cookie's secret, and the unlocked
// key sealed under the secret, so a copy of the database opens no session
// and no key.
func (s *Service) StartWeb(ctx context.Context, auth *Auth) (string, *Web, error) {
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	secret, err := crypt.NewKey()
	if err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	now := s.now()
	id := hex.EncodeToString(idb)
	w := &Web{ID: id, UserID: auth.User.ID, CSRF: csrfToken(secret, id), Key: auth.Key,
		Created: now, Expires: now.Add(s.cfg.SessionMaxAge)}
	sum := sha256.Sum256(secret)
	w.CapKey = capabilityKey(sum[:], id)
	// The CSRF token is not stored: it is derived from the secret, which
	// the record holds only a hash of, so a copy of the database does
	// not give it away either.
	rec := store.WebSession{ID: w.ID, UserID: w.UserID, SecretHash: sum[:], AuthEpoch: auth.User.AuthEpoch,
		Created: now.Unix(), Expires: w.Expires.Unix(), IdleUntil: now.Add(s.cfg.SessionIdle).Unix()}
	if auth.Key != nil {
		if rec.SealedKey, err = crypt.SealWithKey(secret, []byte(auth.Key.Secret()), []byte(w.ID)); err != nil {
			return "", nil, fmt.Errorf("start session: %w", err)
		}
	}
	if err := s.store.CreateWebSession(ctx, rec); err != nil {
		return "", nil, fmt.Errorf("start session: %w", err)
	}
	return w.ID + tokenSep + base64.RawURLEncoding.EncodeToString(secret), w, nil
}

// Web returns the live session a cookie value names, unsealing the key. A
// session ends when idle too long, at its maximum age, at logout, and when
// its user is deleted, locked, or has a new password.
func (s *Service) Web(ctx context.Context, token string) (*Web, error) {
	id, secretStr, ok := strings.Cut(token, tokenSep)
	secret, err := base64.RawURLEncoding.DecodeString(secretStr)
	if !ok || err != nil || len(secret) != crypt.KeySize || len(id) != 32 {
		return nil, ErrNoSession
	}
	rec, err := s.store.WebSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	sum := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(sum[:], rec.SecretHash) != 1 {
		return nil, ErrNoSession
	}
	now := s.now()
	if err := s.live(ctx, rec, now); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, rec.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Locked(now) || u.AuthEpoch != rec.AuthEpoch ||
		u.Suspended() || u.DeniedProtocols.Has(store.ProtoWebmail))) {
		s.end(ctx, id)
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	w := &Web{ID: id, UserID: rec.UserID, CSRF: rec.CSRF, Created: time.Unix(rec.Created, 0), Expires: time.Unix(rec.Expires, 0),
		CapKey: capabilityKey(rec.SecretHash, id)}
	if w.CSRF == "" {
		w.CSRF = csrfToken(secret, id) // not stored (StartWeb); older records keep theirs
	}
	if rec.SealedKey != nil {
		plain, err := crypt.OpenWithKey(secret, rec.SealedKey, []byte(id))
		if err != nil {
			return nil, ErrNoSession
		}
		if w.Key, err = crypt.ParseIdentity(string(plain)); err != nil {
			return nil, fmt.Errorf("load session: %w", err)
		}
	}
	// Renew at most every tenth of the idle time, not on every request:
	// a write per request would cost more than the read.
	idle := int64(s.cfg.SessionIdle / time.Second)
	if renewed := rec.IdleUntil - idle; now.Unix()-renewed >= idle/10 {
		if err := s.store.TouchWebSession(ctx, id, now.Unix()+idle); err != nil {
			s.log.Warn("renew session", "err", err)
		}
	}
	return w, nil
}

// live checks that a session record may still be used, ending it if not:
// idle too long, past its maximum age, its user deleted, locked or with a
// new password.
func (s *Service) live(ctx context.Context, rec store.WebSession, now time.Time) error {
	if now.Unix() >= rec.IdleUntil || now.Unix() >= rec.Expires {
		s.end(ctx, rec.ID)
		return ErrNoSession
	}
	u, err := s.store.UserByID(ctx, rec.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Locked(now) || u.AuthEpoch != rec.AuthEpoch)) {
		s.end(ctx, rec.ID)
		return ErrNoSession
	}
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	return nil
}

// WebCapability returns the user and the capability key of the live
// session id, for a request that carries no cookie but a URL the session
// signed (Web.CapKey). The key is derived from the record's hash of the
// cookie's secret, so it dies with the session (logout, expiry, a new
// password) and differs for every session; it opens no mail key, so a
// secure user's stored mail stays closed to such a request. It does not
// renew the session: only the user's own requests keep it alive.
func (s *Service) WebCapability(ctx context.Context, id string) (int64, []byte, error) {
	if len(id) != 32 {
		return 0, nil, ErrNoSession
	}
	rec, err := s.store.WebSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, ErrNoSession
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load session: %w", err)
	}
	if err := s.live(ctx, rec, s.now()); err != nil {
		return 0, nil, err
	}
	return rec.UserID, capabilityKey(rec.SecretHash, id), nil
}

// capabilityKey derives a session's key for signing capability URLs.
func capabilityKey(secretHash []byte, id string) []byte {
	m := hmac.New(sha256.New, secretHash)
	m.Write([]byte("basalt web capability\x00" + id))
	return m.Sum(nil)
}

// csrfToken is a web session's CSRF token: a MAC of its id under the
// cookie's secret.
func csrfToken(secret []byte, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("basalt web csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (s *Service) end(ctx context.Context, id string) error {
	if err := s.store.DeleteWebSession(ctx, id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndWeb ends a session server-side (logout). Only the whole token ends
// it: a session id without its secret (from a log, say) ends nothing.
func (s *Service) EndWeb(ctx context.Context, token string) error {
	w, err := s.Web(ctx, token)
	if err != nil {
		return err
	}
	return s.end(ctx, w.ID)
}
