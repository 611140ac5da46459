package rpc

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
)

// The benchmarks go through real HTTP on 127.0.0.1, as a browser's calls
// do: session lookup, CSRF check, rate count, the call and its JSON. Each
// reports the median and 99th percentile of its calls besides ns/op.

func benchBackends(b *testing.B, f func(b *testing.B, fx *fixture)) {
	b.Run("sqlite", func(b *testing.B) {
		f(b, newFixture(b, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(b)}, fixtureOptions{cfg: Config{RateLimit: 1 << 40}}))
	})
	b.Run("mysql", func(b *testing.B) {
		if os.Getenv(testsupport.EnvMySQLDSN) == "" {
			b.Skip("MariaDB not configured")
		}
		f(b, newFixture(b, testsupport.Database{Driver: "mysql", DSN: testsupport.MySQLDSN(b)}, fixtureOptions{cfg: Config{RateLimit: 1 << 40}, redis: true}))
	})
}

// timed runs call once per iteration and reports p50 and p99.
func timed(b *testing.B, call func()) { timedAfter(b, nil, call) }

// timedAfter is timed with an untimed setup before each call.
func timedAfter(b *testing.B, setup, call func()) {
	var ds []time.Duration
	for b.Loop() {
		if setup != nil {
			b.StopTimer()
			setup()
			b.StartTimer()
		}
		start := time.Now()
		call()
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	pct := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(float64(len(ds))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkMessagesList: messages.list of 50 in a folder of 100,000
// messages, newest first: the first page; half-way down by after; by
// start as a jump, again, while paging on, and back to a page served.
func BenchmarkMessagesList(b *testing.B) {
	benchBackends(b, func(b *testing.B, fx *fixture) {
		_, auth := fx.user(b, "alice@example.org", false)
		inbox := storetest.Inbox(b, fx.env.Account(auth))
		storetest.Seed(b, fx.env, auth.User.ID, inbox, 100_000)
		// The seeded messages arrive a minute apart, UID order: the
		// message half-way down, newest first, is UID 50,001.
		mid := msgRef{inbox, 50_001}.id()
		list := func(b *testing.B, c *client, params map[string]any) {
			var r listResult
			c.must("messages.list", params, &r)
			if len(r.Messages) != 50 || r.Total != 100_000 {
				b.Fatalf("list: %d of %d", len(r.Messages), r.Total)
			}
		}
		for _, tt := range []struct {
			name   string
			params map[string]any
		}{
			{"first", map[string]any{"folderID": inbox, "limit": 50}},
			{"after=50000", map[string]any{"folderID": inbox, "limit": 50, "after": mid}},
		} {
			b.Run(tt.name, func(b *testing.B) {
				c := fx.client(b)
				c.login("alice@example.org", storetest.Password)
				timed(b, func() { list(b, c, tt.params) })
			})
		}
		// A jump straight to a start the session was never served: the
		// OFFSET fallback. Each call is a new session's (made untimed,
		// without a password hash), so nothing is remembered.
		b.Run("start=50000-jump", func(b *testing.B) {
			var c *client
			timedAfter(b, func() {
				token, web, err := fx.env.Session.StartWeb(context.Background(), auth)
				if err != nil {
					b.Fatal(err)
				}
				c = fx.client(b)
				c.csrf = web.CSRF
				c.hc.Jar.SetCookies(mustParse(b, fx.srv.URL+"/rpc"), []*http.Cookie{{Name: "basalt_session", Value: token, Path: "/rpc"}})
			}, func() { list(b, c, map[string]any{"folderID": inbox, "limit": 50, "start": 50_000}) })
		})
		// The same jump again in one session: a reload, or a page back.
		b.Run("start=50000-again", func(b *testing.B) {
			c := fx.client(b)
			c.login("alice@example.org", storetest.Password)
			timed(b, func() { list(b, c, map[string]any{"folderID": inbox, "limit": 50, "start": 50_000}) })
		})
		// The common case: a client paging on with start = previous start
		// + limit. The session has paged down to 50,000 (untimed); each
		// call then asks for the next page, one it was never served.
		c := fx.client(b)
		c.login("alice@example.org", storetest.Password)
		for start := 0; start <= 50_000; start += 50 {
			list(b, c, map[string]any{"folderID": inbox, "limit": 50, "start": start})
		}
		b.Run("start=paging-past-50000", func(b *testing.B) {
			start := 50_050
			timed(b, func() {
				list(b, c, map[string]any{"folderID": inbox, "limit": 50, "start": start})
				start = 50_000 + (start+50)%50_000
			})
		})
		// Back to a page served before.
		b.Run("start=50000-served", func(b *testing.B) {
			timed(b, func() { list(b, c, map[string]any{"folderID": inbox, "limit": 50, "start": 50_000}) })
		})
	})
}

// BenchmarkMessagesLoad: messages.load (meta, header, body, attachments)
// of a 50 KB HTML newsletter: read, parse, decode and sanitize.
func BenchmarkMessagesLoad(b *testing.B) {
	benchBackends(b, func(b *testing.B, fx *fixture) {
		for _, secure := range []bool{false, true} {
			b.Run(map[bool]string{false: "plain", true: "secure"}[secure], func(b *testing.B) {
				c, auth := fx.user(b, fmt.Sprintf("u%v@example.org", secure), secure)
				raw := newsletter(50 << 10)
				res := fx.deliver(b, auth, raw)
				id := msgRef{res.MailboxID, res.UID}.id()
				b.SetBytes(int64(len(raw)))
				timed(b, func() {
					var r loadResult
					c.must("messages.load", map[string]any{"messageID": id}, &r)
					if len(r.Body.HTML) < 20<<10 || !r.Body.RemoteBlocked {
						b.Fatalf("load: %d bytes of HTML", len(r.Body.HTML))
					}
				})
			})
		}
	})
}

// newsletter returns an HTML message of about size bytes of the kind mail
// is full of: nested tables, inline styles, remote images, many links.
func newsletter(size int) []byte {
	var body strings.Builder
	body.WriteString(`<!DOCTYPE html><html><head><meta charset="utf-8"><style>.x{color:red}</style></head><body style="margin:0;padding:0;background-color:#f4f4f4">`)
	for i := 0; body.Len() < size-400; i++ {
		fmt.Fprintf(&body, `<table width="600" cellpadding="0" cellspacing="0" border="0" align="center" bgcolor="#ffffff"><tr><td style="padding: 20px; font-family: Arial, sans-serif; font-size: 14px; color: #333333;">`+
			`<img src="https://cdn.example.com/img/%d.png" width="560" height="200" alt="Story %d"><h2 style="font-size:20px;margin:0 0 10px 0">Story number %d</h2>`+
			`<p style="line-height:1.5">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. `+
			`<a href="https://news.example.com/story/%d?utm_source=mail" style="color:#0066cc">Read more</a></p></td></tr></table>`+"\n", i, i, i, i)
	}
	body.WriteString(`</body></html>`)
	return []byte(strings.ReplaceAll(`From: News <news@example.com>
To: reader@example.org
Subject: This week's stories
Date: Mon, 02 Nov 2026 10:00:00 +0000
Message-ID: <newsletter@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

`, "\n", "\r\n") + body.String())
}
