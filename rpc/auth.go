package rpc

import (
	"context"
	"errors"
	"time"

	"basalt/session"
	"basalt/store"
)

type authParams struct {
	Username string `json:"username" jsonschema:"minLength=1,maxLength=320"`
	Password string `json:"password" jsonschema:"minLength=1,maxLength=1024"`
}

type authResult struct {
	// Auth is "success", "failed" or "locked", as magma answered.
	Auth string `json:"auth" jsonschema:"enum=success,enum=failed,enum=locked"`
	// Reason says why a login is locked.
	Reason string `json:"reason,omitempty"`
	// CSRF is the token every later call sends in X-CSRF-Token.
	CSRF    string    `json:"csrf,omitempty"`
	Address string    `json:"address,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

type empty struct{}

type okResult struct {
	OK bool `json:"ok"`
}

type metaResult struct {
	User struct {
		UserID  int64  `json:"userID"`
		Address string `json:"address"`
		Secure  bool   `json:"secure"`
	} `json:"user"`
	Quota struct {
		Used     int64 `json:"used"`
		Limit    int64 `json:"limit"` // 0: none
		Messages int64 `json:"messages"`
	} `json:"quota"`
	Limits struct {
		MaxMessageBytes int64 `json:"maxMessageBytes"`
		MaxRecipients   int   `json:"maxRecipients"`
		MaxRequestBytes int64 `json:"maxRequestBytes"`
		MaxBatch        int   `json:"maxBatch"`
		MaxUploadBytes  int64 `json:"maxUploadBytes"`
		CallsPerMinute  int64 `json:"callsPerMinute"`
		DailySendBytes  int64 `json:"dailySendBytes"`
	} `json:"limits"`
	Session struct {
		Expires time.Time `json:"expires"`
	} `json:"session"`
}

type aliasesResult struct {
	Aliases []aliasItem `json:"aliases"`
}

type aliasItem struct {
	Address string `json:"address"`
	Primary bool   `json:"primary"`
}

func (h *Handler) registerAuth() {
	Register(h.engine, Spec{Name: "auth", Summary: "Log in; sets the session cookie and returns the CSRF token.", Public: true}, h.auth)
	Register(h.engine, Spec{Name: "logout", Summary: "End the session on the server and clear the cookie."}, h.logout)
	Register(h.engine, Spec{Name: "meta", Summary: "The user, quota used and limit, and the server's limits."}, h.meta)
	Register(h.engine, Spec{Name: "aliases", Summary: "The addresses the user may send from."}, h.aliases)
}

func (h *Handler) auth(ctx context.Context, c *Call, p authParams) (authResult, error) {
	// The login throttle counts each attempt, so a batch of guesses is
	// refused past it anyway; one check per request keeps a batch from
	// costing the server fifty password hashes at once, failed or not.
	if c.authTried {
		return authResult{}, &Error{Code: CodeRateLimited, Message: "one auth call per request", Data: ErrorData{Type: "rateLimited"}}
	}
	c.authTried = true
	a, err := h.sess.Authenticate(ctx, p.Username, p.Password, c.r.RemoteAddr)
	switch {
	case errors.Is(err, session.ErrAuthFailed):
		return authResult{Auth: "failed"}, nil
	case errors.Is(err, session.ErrThrottled):
		return authResult{Auth: "locked", Reason: session.ErrThrottled.Error()}, nil
	case errors.Is(err, session.ErrUserLocked):
		// The lock's text (until when, and the administrator's reason)
		// is meant for the user.
		return authResult{Auth: "locked", Reason: err.Error()}, nil
	case err != nil:
		// The store or cache did not answer: the client should retry,
		// as other calls are told (not -32603, a bug of the server's).
		return authResult{}, &Error{Code: CodeUnavailable, Message: "authentication unavailable", cause: err}
	}
	// A session the browser held before is ended, not left to idle out;
	// the login always makes a new one (no session fixation). EndWeb ends
	// only a session whose whole cookie it is given, so a cookie planted
	// with someone else's session id logs nobody out.
	if ck, err := c.r.Cookie(h.cfg.CookieName); err == nil && ck.Value != "" {
		if err := h.sess.EndWeb(ctx, ck.Value); err != nil && !errors.Is(err, session.ErrNoSession) {
			h.log.Warn("end replaced session", "err", err)
		}
	}
	token, web, err := h.sess.StartWeb(ctx, a)
	if err != nil {
		return authResult{}, &Error{Code: CodeUnavailable, Message: "session service unavailable", cause: err}
	}
	c.setCookie(token, web.Expires)
	// Later calls of the same batch run in the new session.
	c.looked, c.web, c.token, c.webErr = true, web, token, nil
	return authResult{Auth: "success", CSRF: web.CSRF, Address: a.User.Address, Expires: web.Expires}, nil
}

func (h *Handler) logout(ctx context.Context, c *Call, _ empty) (okResult, error) {
	if err := h.sess.EndWeb(ctx, c.token); err != nil && !errors.Is(err, session.ErrNoSession) {
		return okResult{}, err
	}
	c.setCookie("", time.Time{})
	c.web, c.webErr = nil, serverErr(CodeNotAuthenticated, "not authenticated")
	return okResult{OK: true}, nil
}

func (h *Handler) meta(ctx context.Context, c *Call, _ empty) (metaResult, error) {
	var out metaResult
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return out, err
	}
	lim, err := h.st.Limits(ctx, u)
	if err != nil {
		return out, err
	}
	out.User.UserID, out.User.Address, out.User.Secure = u.ID, u.Address, u.Secure
	out.Quota.Used, out.Quota.Limit, out.Quota.Messages = u.UsedBytes, lim.QuotaBytes, u.MessageCount
	l := &out.Limits
	l.MaxMessageBytes = lim.MaxSendSize
	if h.agent != nil && (l.MaxMessageBytes == 0 || h.agent.MaxSize() < l.MaxMessageBytes) {
		l.MaxMessageBytes = h.agent.MaxSize()
	}
	if h.agent != nil {
		l.MaxRecipients = h.agent.MaxRecipients()
	}
	l.MaxRequestBytes, l.MaxBatch, l.MaxUploadBytes = h.cfg.MaxRequestBytes, h.cfg.MaxBatch, h.cfg.MaxUploadBytes
	l.CallsPerMinute, l.DailySendBytes = h.cfg.RateLimit, lim.DailySendBytes
	out.Session.Expires = c.web.Expires
	return out, nil
}

// aliases lists the user's primary address, the aliases that lead to the
// user alone (what delivery accepts as the user's own sender), and the
// same local parts in the domain's alias domains.
func (h *Handler) aliases(ctx context.Context, c *Call, _ empty) (aliasesResult, error) {
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return aliasesResult{}, err
	}
	out := aliasesResult{Aliases: []aliasItem{{Address: u.Address, Primary: true}}}
	local, domain, _ := splitAddress(u.Address)
	as, err := h.st.Aliases(ctx, domain)
	if err != nil {
		return aliasesResult{}, err
	}
	seen := map[string]bool{u.Address: true}
	add := func(addr string) error {
		if seen[addr] {
			return nil
		}
		seen[addr] = true
		res, err := h.st.Resolve(ctx, addr)
		if errors.Is(err, store.ErrUnknownLocal) || errors.Is(err, store.ErrInvalid) {
			return nil
		}
		if err != nil {
			return err
		}
		if res.Local && len(res.Users) == 1 && res.Users[0] == u.ID && len(res.External) == 0 {
			out.Aliases = append(out.Aliases, aliasItem{Address: addr})
		}
		return nil
	}
	for _, a := range as {
		if a.IsPattern || a.Target != u.Address {
			continue
		}
		if err := add(a.Pattern); err != nil {
			return aliasesResult{}, err
		}
	}
	others, err := h.st.DomainAliases(ctx, domain)
	if err != nil {
		return aliasesResult{}, err
	}
	for _, d := range others {
		if err := add(local + "@" + d); err != nil {
			return aliasesResult{}, err
		}
	}
	return out, nil
}

func splitAddress(addr string) (local, domain string, ok bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}
