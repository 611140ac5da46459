package templates

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"unicode/utf8"

	"basalt/store/signup"
)

func (s *Site) contactForm(w http.ResponseWriter, r *http.Request) {
	v := s.contactView()
	if r.URL.Query().Get("kind") == "abuse" {
		v.value("kind", "abuse")
	}
	s.render(w, r, v)
}

func (s *Site) contactView() *view {
	v := s.view("contact")
	if len(s.cfg.Admins) == 0 {
		v.remove("#contact-form")
		v.summary("The contact form is not set up on this server. Write to postmaster at this domain instead.")
	}
	return v
}

// contact delivers the form's message as mail to every configured
// administrator address, with the visitor's address as Reply-To and the
// client's address in the text for abuse handling.
func (s *Site) contact(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	if len(s.cfg.Admins) == 0 {
		v := s.contactView()
		s.render(w, r, v)
		return
	}
	f := r.PostForm
	kind, name, email, subject, text := f.Get("kind"), strings.TrimSpace(f.Get("name")), strings.TrimSpace(f.Get("email")), strings.TrimSpace(f.Get("subject")), f.Get("message")
	errs := map[string]string{}
	if kind != "question" && kind != "abuse" {
		errs["kind"] = "Choose what your message is about."
	}
	if utf8.RuneCountInString(name) > 200 {
		errs["name"] = "The name is too long: at most 200 characters."
	}
	if a, err := mail.ParseAddress(email); email == "" {
		errs["email"] = "Enter your address, so we can answer."
	} else if err != nil || a.Address != email || !strings.Contains(email, "@") {
		errs["email"] = "This is not an address like name@example.org."
	}
	switch n := utf8.RuneCountInString(subject); {
	case n == 0:
		errs["subject"] = "Enter a subject."
	case n > 200:
		errs["subject"] = "The subject is too long: at most 200 characters."
	}
	switch n := utf8.RuneCountInString(strings.TrimSpace(text)); {
	case n == 0:
		errs["message"] = "Write your message."
	case n > 10000:
		errs["message"] = "The message is too long: at most 10000 characters."
	}
	if len(errs) > 0 {
		v := s.contactView()
		v.status = http.StatusUnprocessableEntity
		for k, val := range map[string]string{"kind": kind, "name": name, "email": email, "subject": subject, "message": text} {
			v.value(k, val)
		}
		v.problems(summaryFor(len(errs)), errs, "kind", "name", "email", "subject", "message")
		s.render(w, r, v)
		return
	}
	ip := clientIP(r)
	if err := s.admit(ctx, "contact", ip, s.cfg.ContactPerHour); errors.Is(err, signup.ErrRateLimited) {
		s.errorPage(w, r, http.StatusTooManyRequests)
		return
	} else if err != nil {
		s.fail(w, r, "count contact messages", err)
		return
	}
	tag := "[Contact] "
	if kind == "abuse" {
		tag = "[Abuse report] "
	}
	body := "From: " + name + " <" + email + ">\nClient address: " + ip.String() + "\nKind: " + kind + "\n\n" + text
	var failed error
	failures := 0
	for _, admin := range s.cfg.Admins {
		a, _ := mail.ParseAddress(admin)
		raw := message(s.cfg.From, s.cfg.Name+" contact form", a.Address, email, tag+subject, body, domainOf(s.cfg.From), s.now())
		if s.agent == nil {
			failed = errors.New("no delivery agent")
			failures++
			continue
		}
		if err := s.agent.DeliverLocal(ctx, s.cfg.From, a.Address, raw); err != nil {
			s.log.Error("site: deliver contact message", "to", a.Address, "err", err)
			failed = err
			failures++
		}
	}
	// One administrator reached is enough: the others' failures are logged.
	if failures == len(s.cfg.Admins) {
		s.fail(w, r, "deliver contact message", failed)
		return
	}
	v := s.view("contact")
	v.show("sent")
	v.remove("#contact-form")
	s.render(w, r, v)
}
