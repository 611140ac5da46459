package templates

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dchest/captcha"
	"github.com/go-chi/chi/v5"

	"basalt/session"
	"basalt/store"
	"basalt/store/signup"
)

// The registration's state lives this long between its steps.
const stateTTL = time.Hour

// captchaTTL is how long a captcha can be answered.
const captchaTTL = 20 * time.Minute

// signupCookie carries the registration's state token: the cache key and
// the key the state is sealed under (the cache never holds the password
// in the clear, and its copy opens nothing).
const signupCookie = "basalt_signup"

// signupCookieFor is the state cookie's name and path for r: over HTTPS
// a __Host- cookie (which must have path /), so that a neighbour under
// the same domain cannot hand a browser a registration of its own to
// finish from the browser's network; else the plain name, for the
// registration's pages only.
func (s *Site) signupCookieFor(r *http.Request) (name, path string) {
	if s.secureCookie(r) {
		return "__Host-" + signupCookie, "/"
	}
	return signupCookie, "/register"
}

// regState is what step 1 hands to step 2, and step 2 to step 3.
type regState struct {
	Username string `json:"u"`
	Password string `json:"p,omitempty"`
	Invite   string `json:"i,omitempty"`
	Address  string `json:"a,omitempty"` // set once the account exists
	Pending  bool   `json:"w,omitempty"`
}

// usernameRE: a letter first, then letters, digits and underscores,
// ending in a letter or digit (magma's rules; the double underscore is
// checked apart).
var usernameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*[a-z0-9]$|^[a-z]$`)

func (s *Site) limit() signup.Limit {
	r := s.cfg.Register
	return signup.Limit{PerNetwork: max(r.PerNetworkPerDay, 0), PerWide: max(r.PerWideNetworkPerDay, 0)}
}

// networkRefusal is the words for a network's refusal, or "".
func networkRefusal(err error) string {
	switch {
	case errors.Is(err, signup.ErrBanned):
		return "Registration from your network is not allowed. If you think this is a mistake, contact us."
	case errors.Is(err, signup.ErrTooMany):
		return "Too many accounts were registered from your network today. Please try again tomorrow."
	}
	return ""
}

func (s *Site) registerForm(w http.ResponseWriter, r *http.Request) {
	s.registerPage(w, r, http.StatusOK, "", nil, nil)
}

// registerPage shows step 1 with a new captcha: msg at the top, field
// errors under their fields, the values kept.
func (s *Site) registerPage(w http.ResponseWriter, r *http.Request, status int, msg string, fields map[string]string, values map[string]string) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	v := s.view("register")
	v.status = status
	rc := s.cfg.Register
	if rc.Mode == ModeClosed {
		v.remove("#register-form, .steps")
		v.show("closed")
		s.render(w, r, v)
		return
	}
	ip := clientIP(r)
	if err := s.signup.CheckNetwork(ctx, ip, s.limit()); err != nil {
		if m := networkRefusal(err); m != "" {
			v.status = http.StatusForbidden
			v.remove("#register-form")
			v.summary(m)
			s.render(w, r, v)
			return
		}
		s.fail(w, r, "check network", err)
		return
	}
	id, err := s.newCaptcha(r, ip)
	if errors.Is(err, signup.ErrRateLimited) {
		s.errorPage(w, r, http.StatusTooManyRequests)
		return
	}
	if err != nil {
		s.fail(w, r, "make captcha", err)
		return
	}
	v.byID("captcha-id").SetAttr("value", id)
	v.byID("captcha-image").SetAttr("src", "/register/captcha/"+id+".png")
	v.byID("captcha-audio").SetAttr("href", "/register/captcha/"+id+".wav")
	v.text("domain", "@"+rc.Domain)
	v.text("password-hint", fmt.Sprintf("At least %d characters.", rc.PasswordMin))
	v.text("username-hint", fmt.Sprintf("%d to %d letters, digits or single underscores; it starts with a letter and ends with a letter or digit.", rc.UsernameMin, rc.UsernameMax))
	if rc.Mode != ModeInvite {
		v.remove("#invite-field")
	}
	if rc.Mode == ModeApproval {
		v.show("approval-note")
	}
	for _, name := range []string{"username", "password", "password2", "invite"} {
		if val, ok := values[name]; ok {
			v.value(name, val)
		}
	}
	v.problems(msg, fields, "username", "password", "password2", "invite", "captcha")
	s.render(w, r, v)
}

// newCaptcha makes a captcha and keeps its answer, one use, in the cache.
// Making them is rate-limited per network: each costs a cache entry.
func (s *Site) newCaptcha(r *http.Request, ip netip.Addr) (string, error) {
	if err := s.admit(r.Context(), "captcha", ip, s.cfg.Register.CaptchasPerHour); err != nil {
		return "", err
	}
	id := randomToken()[:20]
	digits := captcha.RandomDigits(s.cfg.Register.CaptchaLength)
	if err := s.signup.PutCaptcha(r.Context(), id, digits, captchaTTL); err != nil {
		return "", err
	}
	if s.hook != nil {
		s.hook(id, digitString(digits))
	}
	return id, nil
}

// digitString spells captcha digits (0-9 values) as text.
func digitString(d []byte) string {
	b := make([]byte, len(d))
	for i, x := range d {
		b[i] = '0' + x
	}
	return string(b)
}

var (
	captchaIDRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{20}$`)
	captchaFileRE = regexp.MustCompile(`^([A-Za-z0-9_-]{20})\.(png|wav)$`)
)

// captchaFile draws a captcha: its picture, or its digits read aloud.
// Drawing does not use it up; answering does.
func (s *Site) captchaFile(w http.ResponseWriter, r *http.Request) {
	m := captchaFileRE.FindStringSubmatch(chi.URLParam(r, "file"))
	if m == nil {
		s.errorPage(w, r, http.StatusNotFound)
		return
	}
	// Drawing costs far more than answering (the audio most), and one
	// live id could be drawn without end: drawings are counted per
	// network too, a few per captcha made (a reload, the audio).
	err := s.admit(r.Context(), "captcha-file", clientIP(r), 4*s.cfg.Register.CaptchasPerHour)
	if errors.Is(err, signup.ErrRateLimited) {
		s.errorPage(w, r, http.StatusTooManyRequests)
		return
	}
	if err != nil {
		s.fail(w, r, "count captcha drawings", err)
		return
	}
	digits, ok, err := s.signup.Captcha(r.Context(), m[1])
	if err != nil {
		s.fail(w, r, "load captcha", err)
		return
	}
	if !ok {
		s.errorPage(w, r, http.StatusNotFound)
		return
	}
	var buf bytes.Buffer
	if m[2] == "png" {
		w.Header().Set("Content-Type", "image/png")
		captcha.NewImage(m[1], digits, 240, 80).WriteTo(&buf)
	} else {
		w.Header().Set("Content-Type", "audio/x-wav")
		captcha.NewAudio(m[1], digits, "en").WriteTo(&buf)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// checkUsername returns what is wrong with name, or "".
func (s *Site) checkUsername(name string) string {
	rc := s.cfg.Register
	n := len(name)
	switch {
	case name == "":
		return "Choose a username."
	case n < rc.UsernameMin || n > rc.UsernameMax:
		return fmt.Sprintf("A username has %d to %d characters.", rc.UsernameMin, rc.UsernameMax)
	case !('a' <= name[0] && name[0] <= 'z'):
		return "A username starts with a letter."
	case strings.Contains(name, "__"):
		return "A username has no two underscores in a row."
	case strings.HasSuffix(name, "_"):
		return "A username ends with a letter or digit."
	case !usernameRE.MatchString(name):
		return "A username has only letters (a to z), digits and underscores."
	case slices.Contains(reservedNames, name) || slices.ContainsFunc(rc.Reserved, func(x string) bool { return strings.EqualFold(x, name) }):
		return "This username is reserved. Please choose another."
	}
	return ""
}

// checkPassword returns what is wrong with a new password (and its
// repetition), by field.
func checkPassword(min int, pw, pw2 string, errs map[string]string) {
	n := len([]rune(pw))
	switch {
	case pw == "":
		errs["password"] = "Choose a password."
	case n < min:
		errs["password"] = fmt.Sprintf("The password is too short: at least %d characters.", min)
	case n > maxPassword:
		errs["password"] = fmt.Sprintf("The password is too long: at most %d characters.", maxPassword)
	case pw2 != pw:
		errs["password2"] = "The two passwords are not the same."
	}
}

// taken says whether addr is anyone's: a user, an alias, a login name.
func (s *Site) taken(r *http.Request, addr string) (bool, error) {
	_, err := s.st.Resolve(r.Context(), addr)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, store.ErrUnknownLocal):
		return false, err
	}
	_, err = s.st.Credentials(r.Context(), addr)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, err
}

// register takes step 1: checks everything, uses the captcha up (right
// or wrong), and keeps the state for step 2.
func (s *Site) register(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	rc := s.cfg.Register
	if rc.Mode == ModeClosed {
		s.registerForm(w, r)
		return
	}
	f := r.PostForm
	name := strings.ToLower(strings.TrimSpace(f.Get("username")))
	pw, pw2, invite := f.Get("password"), f.Get("password2"), strings.TrimSpace(f.Get("invite"))
	values := map[string]string{"username": f.Get("username"), "invite": invite}
	ip := clientIP(r)
	if err := s.signup.CheckNetwork(ctx, ip, s.limit()); err != nil {
		if networkRefusal(err) != "" {
			s.registerPage(w, r, http.StatusForbidden, "", nil, nil)
			return
		}
		s.fail(w, r, "check network", err)
		return
	}
	errs := map[string]string{}
	// The captcha first: it is used up by this answer whatever else is
	// wrong, so a guess costs a new captcha each time.
	var answer []byte
	ok := false
	if cid := f.Get("captcha_id"); captchaIDRE.MatchString(cid) {
		var err error
		if answer, ok, err = s.signup.TakeCaptcha(ctx, cid, captchaTTL); err != nil {
			s.fail(w, r, "take captcha", err)
			return
		}
	}
	typed := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, f.Get("captcha"))
	switch {
	case !ok:
		errs["captcha"] = "This picture was already answered or is too old. Type the digits of the new one."
	case subtle.ConstantTimeCompare([]byte(typed), []byte(digitString(answer))) != 1:
		errs["captcha"] = "The digits were not right. Type the digits of the new picture."
	}
	// Whether a name is taken, or an invite code good, is told only to
	// an answer with the right digits: else the form would answer both
	// questions to a script that never reads a captcha.
	solved := errs["captcha"] == ""
	if m := s.checkUsername(name); m != "" {
		errs["username"] = m
	} else if solved {
		t, err := s.taken(r, name+"@"+rc.Domain)
		if err != nil {
			s.fail(w, r, "check username", err)
			return
		}
		if t {
			errs["username"] = "This username is taken. Please choose another."
		}
	}
	checkPassword(rc.PasswordMin, pw, pw2, errs)
	if rc.Mode == ModeInvite {
		if invite == "" {
			errs["invite"] = "Registration needs an invite code."
		} else if solved {
			err := s.signup.CheckInvite(ctx, invite)
			if errors.Is(err, signup.ErrInvite) {
				errs["invite"] = "This invite code is not valid: it is unknown, used up or expired."
			} else if err != nil {
				s.fail(w, r, "check invite", err)
				return
			}
		}
	}
	if len(errs) > 0 {
		// Passwords are kept only when right: a browser's password
		// manager fills them again anyway, and a wrong one is retyped.
		if errs["password"] == "" && errs["password2"] == "" {
			values["password"], values["password2"] = pw, pw2
		}
		if errs["invite"] != "" {
			delete(values, "invite")
		}
		s.registerPage(w, r, http.StatusUnprocessableEntity, summaryFor(len(errs)), errs, values)
		return
	}
	if err := s.keepState(w, r, regState{Username: name, Password: pw, Invite: invite}); err != nil {
		s.fail(w, r, "keep registration state", err)
		return
	}
	http.Redirect(w, r, "/register/plan", http.StatusSeeOther)
}

// summaryFor is the summary above a form with n wrong fields.
func summaryFor(n int) string {
	if n == 1 {
		return "One answer needs a correction:"
	}
	return strconv.Itoa(n) + " answers need a correction:"
}

// keepState seals st under a new key, keeps it in the cache, and gives
// the browser the cookie that names and opens it.
func (s *Site) keepState(w http.ResponseWriter, r *http.Request, st regState) error {
	key := make([]byte, 32)
	rand.Read(key)
	id := randomToken()[:24]
	if err := s.saveState(r, id, key, st); err != nil {
		return err
	}
	name, path := s.signupCookieFor(r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: id + "." + base64.RawURLEncoding.EncodeToString(key),
		Path: path, MaxAge: int(stateTTL / time.Second), HttpOnly: true, Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
	return nil
}

func (s *Site) saveState(r *http.Request, id string, key []byte, st regState) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	aead, err := stateAEAD(key)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return s.signup.KeepState(r.Context(), id, aead.Seal(nonce, nonce, plain, []byte(id)), stateTTL)
}

func stateAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// loadState returns the registration's state the browser's cookie
// names, with its id and key; ok is false when there is none (expired,
// never begun, or not this browser's).
func (s *Site) loadState(r *http.Request) (st regState, id string, key []byte, ok bool, err error) {
	name, _ := s.signupCookieFor(r)
	c, cerr := r.Cookie(name)
	if cerr != nil {
		return st, "", nil, false, nil
	}
	id, k, found := strings.Cut(c.Value, ".")
	key, kerr := base64.RawURLEncoding.DecodeString(k)
	if !found || kerr != nil || len(key) != 32 || len(id) != 24 {
		return st, "", nil, false, nil
	}
	sealed, ok, err := s.signup.State(r.Context(), id)
	if err != nil || !ok {
		return st, "", nil, false, err
	}
	aead, err := stateAEAD(key)
	if err != nil || len(sealed) < aead.NonceSize() {
		return st, "", nil, false, err
	}
	plain, oerr := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
	if oerr != nil || json.Unmarshal(plain, &st) != nil {
		return st, "", nil, false, nil
	}
	return st, id, key, true, nil
}

func (s *Site) planForm(w http.ResponseWriter, r *http.Request) {
	st, _, _, ok, err := s.loadState(r)
	if err != nil {
		s.fail(w, r, "load registration state", err)
		return
	}
	if !ok || st.Address != "" || s.cfg.Register.Mode == ModeClosed {
		http.Redirect(w, r, "/register", http.StatusSeeOther)
		return
	}
	s.planPage(w, r, http.StatusOK, st, "", "")
}

// planPage shows step 2: the plans open for registration, one checked.
func (s *Site) planPage(w http.ResponseWriter, r *http.Request, status int, st regState, chosen, msg string) {
	v := s.view("plan")
	v.status = status
	v.text("address", st.Username+"@"+s.cfg.Register.Domain)
	tmpl := v.byID("plan-template")
	for i, p := range s.cfg.Register.Plans {
		c := tmpl.Clone()
		id := "plan-" + strconv.Itoa(i)
		c.RemoveAttr("id")
		in := c.Find("input")
		in.SetAttr("id", id).SetAttr("value", p.ID)
		if p.ID == chosen || (chosen == "" && i == 0) {
			in.SetAttr("checked", "")
		}
		c.Find("label").SetAttr("for", id)
		c.Find(".choice-title").SetText(p.Title)
		c.Find(".choice-text").SetText(p.Description)
		tmpl.BeforeSelection(c)
	}
	tmpl.Remove()
	if msg != "" {
		v.summary(msg)
	}
	s.render(w, r, v)
}

// plan takes step 2: creates the account in one transaction (user, key
// pair for a secure plan, folders, settings, the registration's record
// and invite), then delivers the welcome message.
func (s *Site) plan(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	rc := s.cfg.Register
	st, id, key, ok, err := s.loadState(r)
	if err != nil {
		s.fail(w, r, "load registration state", err)
		return
	}
	if !ok || st.Address != "" || rc.Mode == ModeClosed {
		s.registerPage(w, r, http.StatusUnprocessableEntity, "Your registration took longer than an hour, or was finished already. Please start again.", nil, nil)
		return
	}
	choice := r.PostForm.Get("plan")
	i := slices.IndexFunc(rc.Plans, func(p PlanChoice) bool { return p.ID == choice })
	if i < 0 {
		s.planPage(w, r, http.StatusUnprocessableEntity, st, "", "Choose one of the plans.")
		return
	}
	p := rc.Plans[i]
	addr := st.Username + "@" + rc.Domain
	ip := clientIP(r)
	// A ban made since step 1, or step 2 sent from a banned network,
	// stops here; the day's count is checked again as the user is made.
	if err := s.signup.CheckNetwork(ctx, ip, signup.Limit{}); err != nil {
		if m := networkRefusal(err); m != "" {
			s.planPage(w, r, http.StatusForbidden, st, choice, m)
			return
		}
		s.fail(w, r, "check network", err)
		return
	}
	invite := ""
	if rc.Mode == ModeInvite {
		invite = st.Invite
	}
	opts := store.UserOptions{Settings: rc.Settings, InTx: s.signup.Registration(ip, s.limit(), invite)}
	if rc.ProbationDays > 0 {
		opts.ProbationUntil = s.now().Add(time.Duration(rc.ProbationDays) * 24 * time.Hour).Unix()
		opts.ProbationSendBytes = rc.ProbationSendBytes
	}
	if rc.Mode == ModeApproval {
		opts.LockedUntil, opts.LockReason = signup.PendingLock()
	}
	u, err := s.sess.CreateUser(ctx, session.NewUser{Address: addr, Password: st.Password, Secure: p.Secure, Plan: p.Plan, UserOptions: opts})
	switch {
	case errors.Is(err, store.ErrExists):
		s.registerPage(w, r, http.StatusConflict, "", map[string]string{"username": "This username was taken a moment ago. Please choose another."}, nil)
		return
	case errors.Is(err, signup.ErrTooMany), errors.Is(err, signup.ErrBanned):
		s.planPage(w, r, http.StatusForbidden, st, choice, networkRefusal(err))
		return
	case errors.Is(err, signup.ErrInvite):
		s.registerPage(w, r, http.StatusUnprocessableEntity, "", map[string]string{"invite": "This invite code was used up meanwhile."}, map[string]string{"username": st.Username})
		return
	case errors.Is(err, session.ErrWeakPass):
		s.registerPage(w, r, http.StatusUnprocessableEntity, "", map[string]string{"password": "The password is too short."}, map[string]string{"username": st.Username})
		return
	case err != nil:
		s.fail(w, r, "create account", err)
		return
	}
	network, _ := signup.Networks(ip)
	s.log.Info("site: account registered", "address", addr, "plan", p.ID, "network", network.String())
	s.welcome(r, u, rc.Mode == ModeApproval)
	if rc.Mode == ModeApproval {
		s.tellAdmins(r, "[Approval] "+addr+" waits for approval",
			"A new account waits for an administrator's approval:\n\n  "+addr+"\n  plan: "+p.ID+"\n  from: "+network.String()+"\n")
	}
	// The state now says only who registered: the password is dropped.
	if err := s.saveState(r, id, key, regState{Username: st.Username, Address: addr, Pending: rc.Mode == ModeApproval}); err != nil {
		s.log.Warn("site: keep registration state", "err", err)
	}
	http.Redirect(w, r, "/register/done", http.StatusSeeOther)
}

// done is step 3.
func (s *Site) done(w http.ResponseWriter, r *http.Request) {
	st, _, _, ok, err := s.loadState(r)
	if err != nil {
		s.fail(w, r, "load registration state", err)
		return
	}
	if !ok || st.Address == "" {
		http.Redirect(w, r, "/register", http.StatusSeeOther)
		return
	}
	v := s.view("done")
	v.text("address", st.Address)
	if st.Pending {
		v.show("pending")
		v.remove("#ready, #done-login")
	}
	s.render(w, r, v)
}
