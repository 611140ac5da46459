package rpc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"basalt/session"
	"basalt/store"
	"basalt/store/contacts"
)

// Per-user settings live in the store's settings table under prefixes of
// their own: "webmail." for config.* (the client's free-form preferences)
// "identity." for settings.identity, "images." for settings.images; the delivery rules
// (settings.vacation) go through the store's Rules, which checks them.
const (
	configPrefix      = "webmail."
	settingName       = "identity.name"
	settingSignature  = "identity.signature"
	maxConfigKeys     = 200
	maxSignatureBytes = 16 << 10
)

var configKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

type configResult struct {
	Config map[string]string `json:"config"`
}

type configEditParams struct {
	// Set gives new values; an empty value removes the key.
	Set map[string]string `json:"set"`
}

type identityParams struct {
	// Absent fields are left as they are; the result is the identity after.
	DisplayName *string `json:"displayName,omitempty" jsonschema:"maxLength=200"`
	Signature   *string `json:"signature,omitempty" jsonschema:"maxLength=16384"`
}

type identityResult struct {
	DisplayName string `json:"displayName"`
	Signature   string `json:"signature"`
}

type vacation struct {
	Enabled bool   `json:"enabled"`
	Subject string `json:"subject,omitempty" jsonschema:"maxLength=998"`
	Body    string `json:"body,omitempty" jsonschema:"maxLength=65536"`
	// Start and End bound when replies go out; absent: from now, until
	// turned off.
	Start *time.Time `json:"start,omitempty"`
	End   *time.Time `json:"end,omitempty"`
	// IntervalDays is how often one sender gets a reply (RFC 3834 2);
	// 0 means 7.
	IntervalDays int `json:"intervalDays,omitempty" jsonschema:"minimum=0,maximum=365"`
}

type vacationParams struct {
	// Vacation, when given, replaces the auto-reply; the result is it after.
	Vacation *vacation `json:"vacation,omitempty"`
}

type vacationResult struct {
	Vacation vacation `json:"vacation"`
	Active   bool     `json:"active"`
}

type passwordParams struct {
	Old string `json:"old" jsonschema:"minLength=1,maxLength=1024"`
	New string `json:"new" jsonschema:"minLength=1,maxLength=1024"`
}

func (h *Handler) registerSettings() {
	Register(h.engine, Spec{Name: "config.load", Summary: "The client's stored preferences."}, h.configLoad)
	Register(h.engine, Spec{Name: "config.edit", Summary: "Set preferences; an empty value removes one."}, h.configEdit)
	Register(h.engine, Spec{Name: "settings.identity", Summary: "Load, or change, the display name and signature."}, h.settingsIdentity)
	Register(h.engine, Spec{Name: "settings.vacation", Summary: "Load, or replace, the auto-reply."}, h.settingsVacation)
	Register(h.engine, Spec{Name: "settings.images", Summary: "Load, or change, the remote-image policy and the senders whose images are always shown.",
		Description: "policy: never (blocked unless shown for one message with messages.load images=show), ask (the default: blocked unless the sender is listed), " +
			"always (shown through the image proxy). addSenders/removeSenders edit the list (addresses, compared without case); the result is the settings after."}, h.settingsImages)
	Register(h.engine, Spec{Name: "settings.password", Summary: "Change the password (a secure user's key is sealed again); the session is renewed."}, h.settingsPassword)
}

func (h *Handler) configLoad(ctx context.Context, c *Call, _ empty) (configResult, error) {
	kv, err := contacts.Of(c.account()).Settings(ctx)
	if err != nil {
		return configResult{}, err
	}
	out := configResult{Config: map[string]string{}}
	for k, v := range kv {
		if name, ok := strings.CutPrefix(k, configPrefix); ok {
			out.Config[name] = v
		}
	}
	return out, nil
}

func (h *Handler) configEdit(ctx context.Context, c *Call, p configEditParams) (configResult, error) {
	if len(p.Set) > maxConfigKeys {
		return configResult{}, invalid("set", "too many keys at once")
	}
	kv := make(map[string]string, len(p.Set))
	for k, v := range p.Set {
		if !configKey.MatchString(k) {
			return configResult{}, invalid("set."+k, "a key is 1-100 letters, digits, '.', '_' or '-'")
		}
		kv[configPrefix+k] = v
	}
	cur, err := h.configLoad(ctx, c, empty{})
	if err != nil {
		return configResult{}, err
	}
	added := 0
	for k, v := range p.Set {
		if _, ok := cur.Config[k]; !ok && v != "" {
			added++
		}
	}
	if len(cur.Config)+added > maxConfigKeys {
		return configResult{}, invalid("set", "too many keys stored")
	}
	if err := contacts.Of(c.account()).SaveSettings(ctx, kv); err != nil {
		return configResult{}, err
	}
	return h.configLoad(ctx, c, empty{})
}

func (h *Handler) settingsIdentity(ctx context.Context, c *Call, p identityParams) (identityResult, error) {
	a := c.account()
	set := map[string]string{}
	if p.DisplayName != nil {
		name := strings.TrimSpace(*p.DisplayName)
		if strings.ContainsAny(name, "\r\n\x00") {
			return identityResult{}, invalid("displayName", "a display name is one line")
		}
		set[settingName] = name
	}
	if p.Signature != nil {
		set[settingSignature] = *p.Signature
	}
	if len(set) > 0 {
		if err := contacts.Of(a).SaveSettings(ctx, set); err != nil {
			return identityResult{}, err
		}
	}
	return identity(ctx, a)
}

type imagesParams struct {
	Policy        string   `json:"policy,omitempty" jsonschema:"enum=never,enum=ask,enum=always"`
	AddSenders    []string `json:"addSenders,omitempty" jsonschema:"maxItems=250"`
	RemoveSenders []string `json:"removeSenders,omitempty" jsonschema:"maxItems=250"`
}

type imagesResult struct {
	Policy  string   `json:"policy"`
	Senders []string `json:"senders"`
}

func (h *Handler) settingsImages(ctx context.Context, c *Call, p imagesParams) (imagesResult, error) {
	a := c.account()
	kv, err := settingsOf(ctx, a)
	if err != nil {
		return imagesResult{}, err
	}
	prefs := loadImagePrefs(kv)
	set := map[string]string{}
	if p.Policy != "" {
		prefs.Policy = imagePolicy(p.Policy)
		set[settingImagePolicy] = p.Policy
	}
	if len(p.AddSenders) > 0 || len(p.RemoveSenders) > 0 {
		for i, s := range p.AddSenders {
			ad, err := mail.ParseAddress(s)
			if err != nil {
				return imagesResult{}, invalid(fmt.Sprintf("addSenders.%d", i), fmt.Sprintf("%q is not an address", s))
			}
			if k := strings.ToLower(ad.Address); !slices.Contains(prefs.Senders, k) {
				prefs.Senders = append(prefs.Senders, k)
			}
		}
		for _, s := range p.RemoveSenders {
			k := strings.ToLower(strings.TrimSpace(s))
			if ad, err := mail.ParseAddress(s); err == nil {
				k = strings.ToLower(ad.Address)
			}
			prefs.Senders = slices.DeleteFunc(prefs.Senders, func(x string) bool { return x == k })
		}
		if len(prefs.Senders) > maxImageSenders {
			return imagesResult{}, invalid("addSenders", fmt.Sprintf("at most %d senders", maxImageSenders))
		}
		set[settingImageSenders] = strings.Join(prefs.Senders, "\n")
	}
	if len(set) > 0 {
		if err := contacts.Of(a).SaveSettings(ctx, set); err != nil {
			return imagesResult{}, err
		}
	}
	return imagesResult{Policy: string(prefs.Policy), Senders: prefs.Senders}, nil
}

// settingsOf returns the account's stored settings.
func settingsOf(ctx context.Context, a *store.Account) (map[string]string, error) {
	return contacts.Of(a).Settings(ctx)
}

func identity(ctx context.Context, a *store.Account) (identityResult, error) {
	kv, err := contacts.Of(a).Settings(ctx)
	if err != nil {
		return identityResult{}, err
	}
	return identityResult{DisplayName: kv[settingName], Signature: kv[settingSignature]}, nil
}

func (h *Handler) settingsVacation(ctx context.Context, c *Call, p vacationParams) (vacationResult, error) {
	a := c.account()
	v, fwd, err := a.Rules(ctx)
	if err != nil {
		return vacationResult{}, err
	}
	if p.Vacation != nil {
		nv := store.Vacation{Enabled: p.Vacation.Enabled, Subject: p.Vacation.Subject, Body: p.Vacation.Body,
			Interval: time.Duration(p.Vacation.IntervalDays) * 24 * time.Hour}
		if p.Vacation.Start != nil {
			nv.Start = p.Vacation.Start.UTC()
		}
		if p.Vacation.End != nil {
			nv.End = p.Vacation.End.UTC()
		}
		if !nv.End.IsZero() && nv.End.Before(nv.Start) {
			return vacationResult{}, invalid("vacation.end", "the end is before the start")
		}
		if err := a.SaveRules(ctx, nv, fwd); err != nil {
			return vacationResult{}, err
		}
		v = nv
	}
	out := vacationResult{Vacation: vacation{Enabled: v.Enabled, Subject: v.Subject, Body: v.Body, IntervalDays: int(v.Interval / (24 * time.Hour))},
		Active: v.Active(h.now())}
	if !v.Start.IsZero() {
		out.Vacation.Start = &v.Start
	}
	if !v.End.IsZero() {
		out.Vacation.End = &v.End
	}
	return out, nil
}

type passwordResult struct {
	OK bool `json:"ok"`
	// CSRF is the new session's token: a password change ends every
	// session of the user, this one included, and starts a new one here.
	CSRF string `json:"csrf"`
}

func (h *Handler) settingsPassword(ctx context.Context, c *Call, p passwordParams) (passwordResult, error) {
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return passwordResult{}, err
	}
	// The old password is checked as a login is, under the login
	// throttle, so a stolen session cannot be used to guess it.
	_, err = h.sess.Authenticate(ctx, u.Address, p.Old, c.r.RemoteAddr)
	switch {
	case errors.Is(err, session.ErrAuthFailed):
		return passwordResult{}, invalid("old", "the current password is wrong")
	case errors.Is(err, session.ErrThrottled):
		return passwordResult{}, &Error{Code: CodeRateLimited, Message: err.Error(), Data: ErrorData{Type: "rateLimited"}}
	case err != nil:
		return passwordResult{}, err
	}
	err = h.sess.ChangePassword(ctx, u.ID, p.Old, p.New)
	if errors.Is(err, session.ErrAuthFailed) {
		return passwordResult{}, invalid("old", "the current password is wrong")
	}
	if err != nil {
		return passwordResult{}, err
	}
	// The old session died with the password (the user's auth epoch
	// moved, so the user is read again); the new one carries the key,
	// unchanged and sealed again, to this browser.
	if u, err = h.st.UserByID(ctx, u.ID); err != nil {
		return passwordResult{}, err
	}
	token, web, err := h.sess.StartWeb(ctx, &session.Auth{User: u, Key: c.web.Key})
	if err != nil {
		return passwordResult{}, err
	}
	h.sess.EndWeb(ctx, c.token)
	c.setCookie(token, web.Expires)
	c.web, c.token = web, token
	return passwordResult{OK: true, CSRF: web.CSRF}, nil
}
