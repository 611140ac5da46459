package templates

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"basalt/session"
)

func (s *Site) passwordForm(w http.ResponseWriter, r *http.Request) {
	v := s.view("password")
	v.text("password-hint", passwordHint(s.cfg.Register.PasswordMin))
	s.render(w, r, v)
}

func passwordHint(min int) string { return "At least " + strconv.Itoa(min) + " characters." }

// password changes a password: the current one is checked (through the
// throttle, as a login), and a secure user's key is re-sealed under the
// new one (session.ChangePassword, store.SetPassword), so sealed mail
// stays readable. Every open session ends.
func (s *Site) password(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	f := r.PostForm
	user, cur, pw, pw2 := f.Get("username"), f.Get("current"), f.Get("password"), f.Get("password2")
	min := s.cfg.Register.PasswordMin
	page := func(status int, msg string, errs map[string]string) {
		v := s.view("password")
		v.status = status
		v.text("password-hint", passwordHint(min))
		v.value("username", user)
		if errs["current"] == "" {
			v.value("current", cur)
		}
		if errs["password"] == "" && errs["password2"] == "" {
			v.value("password", pw)
			v.value("password2", pw2)
		}
		v.problems(msg, errs, "username", "current", "password", "password2")
		s.render(w, r, v)
	}
	errs := map[string]string{}
	if strings.TrimSpace(user) == "" {
		errs["username"] = "Enter your address."
	}
	if cur == "" {
		errs["current"] = "Enter your current password."
	}
	checkPassword(min, pw, pw2, errs)
	if errs["password"] == "" && errs["password2"] == "" && cur != "" && pw == cur {
		errs["password"] = "The new password is the same as the current one."
	}
	if len(errs) > 0 {
		page(http.StatusUnprocessableEntity, summaryFor(len(errs)), errs)
		return
	}
	auth, ok := s.checkLogin(w, r, user, cur, loginTexts{
		field: "current", wrong: "The address or the current password is not right.",
		hint: "Check the current password (and the address above).", throttled: "Too many failed tries. Please wait a few minutes and try again.",
		doing: "check password",
	}, page)
	if !ok {
		return
	}
	if err := s.sess.ChangePassword(ctx, auth.User.ID, cur, pw); err != nil {
		if errors.Is(err, session.ErrWeakPass) {
			page(http.StatusUnprocessableEntity, "", map[string]string{"password": "The password is too short."})
			return
		}
		s.fail(w, r, "change password", err)
		return
	}
	s.log.Info("site: password changed", "user", auth.User.ID)
	v := s.view("password")
	v.show("changed")
	v.remove("#password-form")
	s.render(w, r, v)
}
