package templates

import (
	"errors"
	"net/http"
	"strings"

	"basalt/session"
	"basalt/store/signup"
)

func (s *Site) loginForm(w http.ResponseWriter, r *http.Request) {
	v := s.view("login")
	if s.cfg.Register.Mode == ModeClosed {
		v.remove("#login-register")
	}
	s.render(w, r, v)
}

// lockedText is what a locked account's owner is told: the lock's words
// (until when, why) are meant for the user; an account waiting for
// approval is just that, with no year 9999 in sight.
func lockedText(err error) string {
	if strings.HasSuffix(err.Error(), signup.PendingReason) {
		return "This account is " + signup.PendingReason + "."
	}
	return "This account is locked " + strings.TrimPrefix(err.Error(), session.ErrUserLocked.Error()+" ") + "."
}

// loginName completes a bare username with the registration domain.
func (s *Site) loginName(u string) string {
	u = strings.TrimSpace(u)
	if u != "" && !strings.Contains(u, "@") && s.cfg.Register.Domain != "" {
		return u + "@" + s.cfg.Register.Domain
	}
	return u
}

// loginTexts are the words a form shows when its password check fails:
// the field the hint goes under, the summary for a wrong password, the
// hint, and the summary when the throttle holds; doing names the check in
// the log.
type loginTexts struct{ field, wrong, hint, throttled, doing string }

// checkLogin checks a password through the session service (its throttle
// counts every try). On a refusal it shows the form again through page
// with the status that fits (401, 429, 403 with the lock's reason) and
// returns false; on another error it answers 500.
func (s *Site) checkLogin(w http.ResponseWriter, r *http.Request, user, pw string, t loginTexts, page func(int, string, map[string]string)) (*session.Auth, bool) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	auth, err := s.sess.Authenticate(ctx, s.loginName(user), pw, r.RemoteAddr)
	switch {
	case errors.Is(err, session.ErrAuthFailed):
		page(http.StatusUnauthorized, t.wrong, map[string]string{t.field: t.hint})
	case errors.Is(err, session.ErrThrottled):
		page(http.StatusTooManyRequests, t.throttled, nil)
	case errors.Is(err, session.ErrUserLocked):
		page(http.StatusForbidden, lockedText(err), nil)
	case err != nil:
		s.fail(w, r, t.doing, err)
	default:
		return auth, true
	}
	return nil, false
}

// login checks the password through the session service (its throttle
// counts every try), opens a web session and hands it to the webmail: the
// session cookie, as the webmail's own login sets it, and the session's
// CSRF token in the fragment of the webmail's address (/mail/#csrf=...),
// which is never sent to a server nor in a Referer.
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	f := r.PostForm
	user, pw := f.Get("username"), f.Get("password")
	page := func(status int, msg string, fields map[string]string) {
		v := s.view("login")
		v.status = status
		if s.cfg.Register.Mode == ModeClosed {
			v.remove("#login-register")
		}
		v.value("username", user)
		v.problems(msg, fields, "username", "password")
		s.render(w, r, v)
	}
	errs := map[string]string{}
	if strings.TrimSpace(user) == "" {
		errs["username"] = "Enter your address."
	}
	if pw == "" {
		errs["password"] = "Enter your password."
	}
	if len(errs) > 0 {
		page(http.StatusUnprocessableEntity, summaryFor(len(errs)), errs)
		return
	}
	auth, ok := s.checkLogin(w, r, user, pw, loginTexts{
		field: "password", wrong: "The address or the password is not right.",
		hint: "Check the password (and the address above).", throttled: "Too many failed logins. Please wait a few minutes and try again.",
		doing: "log in",
	}, page)
	if !ok {
		return
	}
	token, web, err := s.sess.StartWeb(ctx, auth)
	if err != nil {
		s.fail(w, r, "start session", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cfg.SessionCookie, Value: token, Path: s.cfg.SessionPath, Expires: web.Expires,
		HttpOnly: true, Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, s.cfg.WebmailPath+"#csrf="+web.CSRF, http.StatusSeeOther)
}
