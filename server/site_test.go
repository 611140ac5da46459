package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSiteMounted: the HTTP core serves the site at /, branded from
// [site], beside the health checks and the webmail's API, and the site's
// 404 page for paths no front end has.
func TestSiteMounted(t *testing.T) {
	svc, _ := openWired(t, "[site]\nname = \"Wired Mail\"\naccent = \"#336699\"\n[site.register]\nmode = \"open\"\ndomain = \"example.org\"\n")
	srv := httptest.NewServer(svc.Router())
	defer srv.Close()
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/", 200, `<title id="title">Home — Wired Mail</title>`},
		{"/register", 200, `@example.org`},
		{"/site/brand.css", 200, "--accent: #336699"},
		{"/healthz", 200, `"ok"`},
		{"/nowhere", 404, "Page not found"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %.200q", tc.path, resp.StatusCode, b)
		}
	}
	resp, err := http.Post(srv.URL+"/rpc", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"meta"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Error("the site hides the webmail's API")
	}
}
