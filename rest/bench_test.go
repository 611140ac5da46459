package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"basalt/crypt"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/session"
	"basalt/store"
	"basalt/store/admin"
)

// benchAPI is the API over SQLite behind a test server, with a key over
// everything; no spec validation, which is the tests' cost, not the
// server's.
type benchAPI struct {
	e   *storetest.Env
	url string
	key string
}

func newBenchAPI(b *testing.B, o storetest.Options) *benchAPI {
	b.Helper()
	e := storetest.Open(b, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(b)}, o)
	adm := admin.New(e.Store)
	jobs := adm.NewRunner(admin.RunnerConfig{})
	api, err := rest.New(rest.Config{RatePerMinute: 1 << 40}, rest.Deps{Store: e.Store, Admin: adm, Jobs: jobs, Session: e.Session})
	if err != nil {
		b.Fatal(err)
	}
	mux := chi.NewRouter()
	mux.Mount("/api", api.Handler())
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	ctx := context.Background()
	ad, err := adm.CreateAdmin(ctx, nil, "bench")
	if err != nil {
		b.Fatal(err)
	}
	auth := admin.Authority{Scopes: []string{"*"}}
	if _, err := adm.AddGrant(ctx, nil, ad.ID, auth); err != nil {
		b.Fatal(err)
	}
	_, key, err := adm.CreateKey(ctx, nil, admin.NewKey{AdminID: ad.ID, Name: "bench", Authority: auth})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Store.AddDomain(ctx, "bench.test"); err != nil {
		b.Fatal(err)
	}
	return &benchAPI{e: e, url: srv.URL + "/api/v1", key: key}
}

func (a *benchAPI) do(b *testing.B, method, path string, body any, status int) []byte {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	r, _ := http.NewRequest(method, a.url+path, rd)
	r.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		b.Fatalf("%s %s: %d: %s", method, path, res.StatusCode, out)
	}
	return out
}

// BenchmarkUserPage reads a page of 100 users at a random depth of
// 10,000, through the API; p50 and p99 are reported besides the mean.
func BenchmarkUserPage(b *testing.B) {
	a := newBenchAPI(b, storetest.Options{})
	nus := make([]store.NewUser, 10000)
	for i := range nus {
		nus[i] = store.NewUser{Address: fmt.Sprintf("u%05d@bench.test", i), Password: store.Password{Hash: benchHash}}
	}
	if _, err := a.e.Store.CreateUsers(context.Background(), nus); err != nil {
		b.Fatal(err)
	}
	// The cursors of every page, gathered once.
	cursors := []string{""}
	for {
		var p struct {
			Next string `json:"next"`
		}
		path := "/users?limit=100"
		if c := cursors[len(cursors)-1]; c != "" {
			path += "&cursor=" + url.QueryEscape(c)
		}
		if err := json.Unmarshal(a.do(b, "GET", path, nil, 200), &p); err != nil {
			b.Fatal(err)
		}
		if p.Next == "" {
			break
		}
		cursors = append(cursors, p.Next)
	}
	if len(cursors) != 100 {
		b.Fatalf("%d pages", len(cursors))
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		c := cursors[rand.IntN(len(cursors))]
		path := "/users?limit=100"
		if c != "" {
			path += "&cursor=" + url.QueryEscape(c)
		}
		start := time.Now()
		a.do(b, "GET", path, nil, 200)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

const benchHash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// BenchmarkCreateImported1000 creates 1,000 users with imported bcrypt
// hashes, one POST each as a panel migrating would, and in one bulk
// import (session.ImportUsers); one op is 1,000 users.
func BenchmarkCreateImported1000(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("migrated password"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("api", func(b *testing.B) {
		a := newBenchAPI(b, storetest.Options{})
		n := 0
		b.ResetTimer()
		for range b.N {
			for range 1000 {
				a.do(b, "POST", "/users", map[string]any{"address": fmt.Sprintf("m%07d@bench.test", n), "passwordHash": string(h)}, 201)
				n++
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1000)/1000, "ms/user")
	})
	b.Run("bulk", func(b *testing.B) {
		a := newBenchAPI(b, storetest.Options{})
		n := 0
		b.ResetTimer()
		for range b.N {
			ius := make([]session.ImportedUser, 1000)
			for i := range ius {
				ius[i] = session.ImportedUser{Address: fmt.Sprintf("m%07d@bench.test", n), Hash: string(h)}
				n++
			}
			if _, err := a.e.Session.ImportUsers(context.Background(), ius); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1000)/1000, "ms/user")
	})
}

// BenchmarkCreateWithPassword creates one user with a password through
// the API, with the server's default argon2id parameters (64 MiB).
func BenchmarkCreateWithPassword(b *testing.B) {
	a := newBenchAPI(b, storetest.Options{Session: session.Config{KDF: crypt.DefaultKDF()}})
	b.ResetTimer()
	for i := range b.N {
		a.do(b, "POST", "/users", map[string]any{"address": fmt.Sprintf("p%07d@bench.test", i), "password": "a password of some length"}, 201)
	}
}
