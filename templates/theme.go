package templates

import (
	"net/http"
	"slices"
	"time"
)

// themeCookie keeps the theme a visitor chose with the footer's toggle:
// "light" or "dark"; without it the site follows prefers-color-scheme.
// The site runs no script, so the choice goes through the server.
const themeCookie = "basalt_theme"

// themePages are where the toggle returns to: the site's own pages only,
// so the form cannot be made to send anyone elsewhere.
var themePages = []string{"/", "/login", "/register", "/register/plan", "/register/done", "/password", "/contact"}

// render writes v for r: the CSRF token in its forms, the chosen theme,
// and the page the theme toggle comes back to.
func (s *Site) render(w http.ResponseWriter, r *http.Request, v *view) {
	if c, err := r.Cookie(themeCookie); err == nil && (c.Value == "light" || c.Value == "dark") {
		v.doc.Find("html").SetAttr("data-theme", c.Value)
	}
	back := r.URL.Path
	if !slices.Contains(themePages, back) {
		back = "/"
	}
	v.byID("theme-back").SetAttr("value", back)
	v.render(w, s.token(w, r))
}

// theme keeps the visitor's choice of theme and returns to the page it
// was made on.
func (s *Site) theme(w http.ResponseWriter, r *http.Request) {
	c := &http.Cookie{Name: themeCookie, Path: "/", Secure: s.secureCookie(r), HttpOnly: true, SameSite: http.SameSiteLaxMode}
	switch t := r.PostForm.Get("theme"); t {
	case "light", "dark":
		c.Value, c.MaxAge = t, int(365*24*time.Hour/time.Second)
	default: // "auto": follow the system again
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
	back := r.PostForm.Get("back")
	if !slices.Contains(themePages, back) {
		back = "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
