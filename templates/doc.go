// Package templates is the site: the public pages around the webmail
// (home, login, registration in three steps, password change, contact and
// abuse reports, error pages), served at / of the HTTP core.
//
// As magma did with its XHTML templates, the pages are HTML files parsed
// once at start (with goquery) into documents; each request clones one
// and edits it by element id: texts set as text nodes, so the DOM escapes
// them, values kept after an error, elements that do not apply removed.
// No HTML is ever spliced from strings. The branding (site name, logo,
// accent colour, footer links) comes from the configuration's [site]
// section, and the pages need nothing from elsewhere: one stylesheet, the
// system fonts, no script.
//
// Registration follows magma's three steps: (1) a username, the password
// twice and a captcha (github.com/dchest/captcha, its answers kept in the
// shared cache through store/signup, each good for one answer); (2) a
// plan among those open for registration, which creates the account in
// one transaction and delivers a welcome message; (3) done. Between the
// steps the state is kept in the cache for an hour, sealed under a key
// that only the browser's cookie holds. store/signup guards it: banned
// networks, registrations per network a day, invite codes, approval.
//
// Every form carries a CSRF token (double submit: a random cookie, a
// __Host- cookie over HTTPS, and the same value in the form, compared on
// every POST); every page gets a strict Content-Security-Policy. The
// footer's light/dark toggle is a form too (no script): the choice is a
// cookie, put on <html data-theme> of every page.
package templates
