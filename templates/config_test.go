package templates_test

import (
	"strings"
	"testing"

	"basalt/templates"
)

// TestConfigURLs: the logo and footer links are http(s) with a plain
// host, or site-relative: nothing that would run script, and nothing that
// would add a directive to the Content-Security-Policy the logo's host
// goes into.
func TestConfigURLs(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"/logo.svg", true},
		{"https://cdn.example.org/logo.png", true},
		{"http://cdn.example.org:8443/logo.png", true},
		{"https://[2001:db8::1]/logo.png", true},
		{"javascript:alert(1)", false},
		{"data:image/svg+xml,<svg/>", false},
		{"//evil.example/logo.png", false},
		{"https://cdn.example.org;script-src=x/logo.png", false},
		{"https://cdn.example.org'/logo.png", false},
		{"https://cdn.example.org,x/logo.png", false},
		{"https://user@cdn.example.org/logo.png", false},
	} {
		for _, field := range []string{"logo", "footer"} {
			c := templates.Config{}
			if field == "logo" {
				c.LogoURL = tc.url
			} else {
				c.Footer = []templates.Link{{Title: "Terms", URL: tc.url}}
			}
			err := c.WithDefaults().Validate()
			if tc.ok != (err == nil) {
				t.Errorf("%s %q: %v", field, tc.url, err)
			}
			if err != nil && !strings.Contains(err.Error(), "url") {
				t.Errorf("%s %q: error does not name the url: %v", field, tc.url, err)
			}
		}
	}
}

// TestConfigFrom: the sender of the site's mail is a bare address: it goes
// into the From header and the envelope, where a line break or a display
// name would not belong.
func TestConfigFrom(t *testing.T) {
	for from, ok := range map[string]bool{
		"":                                   true,
		"postmaster@example.org":             true,
		"Post <postmaster@example.org>":      false,
		"postmaster@example.org\r\nBcc: x@y": false,
		"not an address":                     false,
	} {
		err := templates.Config{From: from}.WithDefaults().Validate()
		if ok != (err == nil) {
			t.Errorf("from %q: %v", from, err)
		}
	}
}
