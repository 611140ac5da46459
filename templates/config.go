package templates

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"basalt/store"
)

// Config is the site's configuration: the [site] section.
type Config struct {
	// Name is the site's name, in the header, titles and mail; default
	// "Basalt".
	Name string `toml:"name"`
	// LogoURL is the logo's address; empty: the embedded default.
	LogoURL string `toml:"logo_url"`
	// Accent is the one accent colour (#rgb or #rrggbb): primary buttons,
	// links, focus rings; default "#2457c5". White text goes on it.
	Accent string `toml:"accent"`
	// Footer are the links in every page's footer (terms, privacy).
	Footer []Link `toml:"footer"`
	// Admins receive the contact and abuse form's messages and, in
	// approval mode, a note of each account that waits: local addresses
	// in their inbox, others through the outbound queue (which needs
	// [queue] smarthost).
	Admins []string `toml:"admins"`
	// From is the sender of the welcome message and of the contact
	// form's mail; default postmaster@ the registration domain.
	From string `toml:"from"`
	// HTTPSRedirect sends plain-HTTP requests to https:// (the request
	// came over TLS, or through a proxy that says X-Forwarded-Proto:
	// https, is not redirected) and adds Strict-Transport-Security.
	HTTPSRedirect bool `toml:"https_redirect"`
	// Host is the site's public host name (and port, if not 443): the
	// HTTPS redirect goes there. Empty: to the request's Host, which the
	// client chose.
	Host string `toml:"host"`
	// ContactPerHour bounds the contact form's messages from one network
	// an hour; default 5.
	ContactPerHour int64 `toml:"contact_per_hour"`
	// Register is the registration.
	Register RegisterConfig `toml:"register"`

	// Set by the server, from the webmail's configuration: the session
	// cookie the login hands over, and where the webmail is.
	SessionCookie string `toml:"-"`
	SessionPath   string `toml:"-"`
	SecureCookie  bool   `toml:"-"`
	WebmailPath   string `toml:"-"`
	// MinPassword is the session service's minimum password length,
	// under which no registration goes.
	MinPassword int `toml:"-"`
}

// Link is a footer link.
type Link struct {
	Title string `toml:"title"`
	URL   string `toml:"url"`
}

// Registration modes.
const (
	ModeClosed   = "closed"   // no registration: the pages say so
	ModeOpen     = "open"     // anyone passing the captcha and limits
	ModeInvite   = "invite"   // an invite code is needed too
	ModeApproval = "approval" // accounts wait for an administrator
)

// RegisterConfig is the registration: [site.register].
type RegisterConfig struct {
	// Mode is closed (the default), open, invite or approval.
	Mode string `toml:"mode"`
	// Domain is the domain new accounts are made in.
	Domain string `toml:"domain"`
	// UsernameMin and UsernameMax bound a username's length; default 3
	// and 32.
	UsernameMin int `toml:"username_min"`
	UsernameMax int `toml:"username_max"`
	// PasswordMin is the shortest password taken; default (and at least)
	// the session service's min_password. At most 200 characters.
	PasswordMin int `toml:"password_min"`
	// Reserved are names nobody may register, besides postmaster,
	// abuse, hostmaster, webmaster, admin, root, security, noreply and
	// support.
	Reserved []string `toml:"reserved"`
	// PerNetworkPerDay is how many registrations one network (IPv4 /24,
	// IPv6 /64) makes a day; default 2, negative: no limit.
	PerNetworkPerDay int `toml:"per_network_per_day"`
	// PerWideNetworkPerDay is the same for an IPv6 /48; default 4 times
	// PerNetworkPerDay.
	PerWideNetworkPerDay int `toml:"per_wide_network_per_day"`
	// CaptchasPerHour bounds the captchas one network makes an hour;
	// default 60.
	CaptchasPerHour int64 `toml:"captchas_per_hour"`
	// CaptchaLength is the captcha's digits; default 6.
	CaptchaLength int `toml:"captcha_length"`
	// ProbationDays is how long a new account sends at most
	// ProbationSendBytes a day; default 7 days and 1 MiB; negative days:
	// no probation.
	ProbationDays      int   `toml:"probation_days"`
	ProbationSendBytes int64 `toml:"probation_send_bytes"`
	// Plans are the choices of step 2; default a standard and a secure
	// account on the server's default limits.
	Plans []PlanChoice `toml:"plan"`
	// Settings are every new account's first settings (the webmail's).
	Settings map[string]string `toml:"settings"`
	// Welcome is the welcome message's text; "{name}" and "{address}"
	// are replaced. Default: a short greeting.
	Welcome string `toml:"welcome"`
}

// PlanChoice is one plan open for registration.
type PlanChoice struct {
	ID          string `toml:"id"` // the form's value
	Title       string `toml:"title"`
	Description string `toml:"description"`
	// Plan is the store's plan (its limits); empty: the server's defaults.
	Plan string `toml:"plan"`
	// Secure accounts keep their mail sealed under a key that only the
	// password opens.
	Secure bool `toml:"secure"`
}

// reservedNames are never registered: the role addresses of RFC 2142 and
// those people trust to speak for the server.
var reservedNames = []string{"postmaster", "abuse", "hostmaster", "webmaster", "admin", "root", "security", "noreply", "support"}

var colourRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// WithDefaults fills in what the operator left out.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = "Basalt"
	}
	if c.Accent == "" {
		c.Accent = "#2457c5"
	}
	if c.ContactPerHour == 0 {
		c.ContactPerHour = 5
	}
	if c.SessionCookie == "" {
		c.SessionCookie = "basalt_session"
	}
	if c.SessionPath == "" {
		c.SessionPath = "/rpc"
	}
	if c.WebmailPath == "" {
		c.WebmailPath = "/mail/"
	}
	r := &c.Register
	r.Mode = strings.ToLower(r.Mode)
	if r.Mode == "" {
		r.Mode = ModeClosed
	}
	r.Domain = strings.ToLower(strings.TrimSpace(r.Domain))
	if r.UsernameMin == 0 {
		r.UsernameMin = 3
	}
	if r.UsernameMax == 0 {
		r.UsernameMax = 32
	}
	if c.MinPassword == 0 {
		c.MinPassword = 8
	}
	r.PasswordMin = max(r.PasswordMin, c.MinPassword)
	if r.PerNetworkPerDay == 0 {
		r.PerNetworkPerDay = 2
	}
	if r.PerWideNetworkPerDay == 0 {
		r.PerWideNetworkPerDay = 4 * r.PerNetworkPerDay
	}
	if r.CaptchasPerHour == 0 {
		r.CaptchasPerHour = 60
	}
	if r.CaptchaLength == 0 {
		r.CaptchaLength = 6
	}
	if r.ProbationDays == 0 {
		r.ProbationDays = 7
	}
	if r.ProbationSendBytes == 0 {
		r.ProbationSendBytes = 1 << 20
	}
	if len(r.Plans) == 0 {
		r.Plans = []PlanChoice{
			{ID: "standard", Title: "Standard", Description: "Your mail is kept as it arrives. You can reset a forgotten password with an administrator's help."},
			{ID: "secure", Title: "Secure", Description: "Your mail is sealed under a key that only your password opens. Nobody, not even an administrator, can read it; a forgotten password loses it.", Secure: true},
		}
	}
	if r.Welcome == "" {
		r.Welcome = "Welcome to {name}!\n\nYour address is {address}. You can read your mail on the web, or with any IMAP or POP3 client.\n"
	}
	if c.From == "" && r.Domain != "" {
		c.From = "postmaster@" + r.Domain
	}
	return c
}

// Validate reports what is wrong with a configuration that has its
// defaults.
func (c Config) Validate() error {
	var errs []error
	if !colourRE.MatchString(c.Accent) {
		errs = append(errs, fmt.Errorf("site.accent: %q is not a colour like #2457c5", c.Accent))
	}
	for i, l := range c.Footer {
		if l.Title == "" || !safeURL(l.URL) {
			errs = append(errs, fmt.Errorf("site.footer %d: needs a title and an http(s) or site-relative url", i+1))
		}
	}
	if c.Host != "" && !hostRE.MatchString(c.Host) {
		errs = append(errs, fmt.Errorf("site.host: %q is not a host name like mail.example.org", c.Host))
	}
	if c.LogoURL != "" && !safeURL(c.LogoURL) {
		errs = append(errs, errors.New("site.logo_url: an http(s) or site-relative url"))
	}
	if a, err := mail.ParseAddress(c.From); c.From != "" && (err != nil || a.Address != c.From) {
		errs = append(errs, fmt.Errorf("site.from: %q is not an address like postmaster@example.org", c.From))
	}
	for _, a := range c.Admins {
		if _, err := mail.ParseAddress(a); err != nil {
			errs = append(errs, fmt.Errorf("site.admins: %q: %w", a, err))
		}
	}
	r := c.Register
	switch r.Mode {
	case ModeClosed:
	case ModeOpen, ModeInvite, ModeApproval:
		if r.Domain == "" {
			errs = append(errs, errors.New("site.register.domain: required when registration is not closed"))
		}
	default:
		errs = append(errs, fmt.Errorf("site.register.mode: %q is none of closed, open, invite, approval", r.Mode))
	}
	if r.UsernameMin < 1 || r.UsernameMax < r.UsernameMin || r.UsernameMax > 64 {
		errs = append(errs, errors.New("site.register: username_min at least 1, username_max at least that and at most 64"))
	}
	if r.PasswordMin > maxPassword {
		errs = append(errs, fmt.Errorf("site.register.password_min: at most %d", maxPassword))
	}
	if r.CaptchaLength < 4 || r.CaptchaLength > 10 {
		errs = append(errs, errors.New("site.register.captcha_length: 4 to 10 digits"))
	}
	seen := map[string]bool{}
	for i, p := range r.Plans {
		if p.ID == "" || p.Title == "" || seen[p.ID] {
			errs = append(errs, fmt.Errorf("site.register.plan %d: needs an id of its own and a title", i+1))
		}
		seen[p.ID] = true
	}
	return errors.Join(errs...)
}

// safeURL admits http(s) and site-relative links: no javascript: or
// data: in an href the operator wrote by mistake. An absolute one's host
// must be a host name or address: the logo's goes into the
// Content-Security-Policy header, where a ";" or a quote in it would
// start a directive of its own.
func safeURL(u string) bool {
	if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") {
		return true
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && p.User == nil && hostRE.MatchString(p.Host)
}

// hostRE is a host name or IPv4 address, or a bracketed IPv6 address,
// with an optional port.
var hostRE = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// maxPassword bounds a password: argon2 takes any length, but a megabyte
// of password is an attack, not a password.
const maxPassword = 200

// CheckPlans reports a registration plan whose store plan (plan =) does
// not exist: the server checks this at start, so a misspelt name stops
// it with this error rather than failing every registration at step 2.
// Closed registration offers no plan and is not checked.
func (c Config) CheckPlans(ctx context.Context, st *store.Store) error {
	if c.Register.Mode == ModeClosed {
		return nil
	}
	var errs []error
	for i, p := range c.Register.Plans {
		if p.Plan == "" {
			continue
		}
		if _, err := st.PlanByName(ctx, p.Plan); errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("site.register.plan %d (%s): plan %q does not exist (make it with basalt plan set, or correct the name)", i+1, p.ID, p.Plan))
		} else if err != nil {
			return fmt.Errorf("check site.register.plan %d: %w", i+1, err)
		}
	}
	return errors.Join(errs...)
}
