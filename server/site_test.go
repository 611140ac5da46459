package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// TestSiteUnknownPlan: a registration plan naming a store plan that does
// not exist stops the server at start, with the name in the error,
// before it listens (not a 500 at every registration's step 2).
func TestSiteUnknownPlan(t *testing.T) {
	l := func(k string) string { return k + " = \"127.0.0.1:0\"\n" }
	path := writeConfig(t, "[http]\n"+l("listen")+"[smtp]\nhostname = \"mx.test\"\n"+l("mx_listen")+l("submission_listen")+l("submissions_listen")+l("lmtp_listen")+
		"[pop3]\n"+l("listen")+l("tls_listen")+"[imap]\n"+l("listen")+l("tls_listen")+
		"[site.register]\nmode = \"open\"\ndomain = \"example.org\"\n"+
		"[[site.register.plan]]\nid = \"gold\"\ntitle = \"Gold\"\nplan = \"golden\"\n")
	cfg, err := LoadConfig(path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Level = "error"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Run(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), `plan "golden" does not exist`) {
		t.Fatalf("Run = %v, want the unknown plan named", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the server ran until its context ended")
	}
}
