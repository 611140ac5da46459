package rpc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCompressedJSON: JSON answers are gzipped when the client accepts it
// (and only then), HTML in them is written as it is, not \u003c-escaped,
// and the event stream is never compressed.
func TestCompressedJSON(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "a@example.org", false)
	res := fx.deliver(t, auth, richMessage("b@example.com", "a@example.org", "<b>bold</b> & co"))
	id := msgRef{res.MailboxID, res.UID}.id()
	body := `{"jsonrpc":"2.0","id":1,"method":"messages.load","params":{"messageID":"` + id + `"}}`

	resp, plain := c.post(body, map[string]string{"Accept-Encoding": "identity"})
	if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("uncompressed: %v", resp.Header)
	}
	if bytes.Contains(plain, []byte(`\u003c`)) || bytes.Contains(plain, []byte(`\u0026`)) || !bytes.Contains(plain, []byte(`<b>bold</b> & co`)) ||
		!bytes.Contains(plain, []byte(`<p>Café at <b>noon</b></p>`)) {
		t.Fatalf("HTML escaped in JSON: %s", plain)
	}
	resp, zipped := c.post(body, map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("not compressed: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain) || len(zipped) >= len(plain) {
		t.Fatalf("gzipped %d bytes, plain %d; same after gunzip: %v", len(zipped), len(plain), bytes.Equal(unzipped, plain))
	}
	var r testResponse
	if err := json.Unmarshal(unzipped, &r); err != nil || r.Error != nil {
		t.Fatalf("%s: %v", unzipped, err)
	}

	// The event stream: headers come at once, uncompressed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fx.srv.URL+"/rpc/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	ev, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ev.Body.Close()
	if ev.StatusCode != 200 || ev.Header.Get("Content-Encoding") != "" {
		t.Fatalf("events: %d %v", ev.StatusCode, ev.Header)
	}
}

// TestRateForScrolling: the default call limit lets an app make more than
// the old 600 calls in a minute (a fast scroll): 1,300 calls, so that
// even split across two of the counter's minutes one would pass 600.
func TestRateForScrolling(t *testing.T) {
	if got := (Config{}).withDefaults().RateLimit; got != 6000 {
		t.Fatalf("default rate limit %d", got)
	}
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{MaxBatch: 50}})
	c, _ := fx.user(t, "a@example.org", false)
	batch := func() []testResponse {
		var b strings.Builder
		b.WriteString("[")
		for i := range 50 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"folders.list"}`, i)
		}
		b.WriteString("]")
		_, out := c.post(b.String(), nil)
		return decode[[]testResponse](t, out)
	}
	// 26 screenfuls of 50 rows each.
	for i := range 26 {
		for _, r := range batch() {
			if r.Error != nil {
				t.Fatalf("batch %d: %+v", i, r.Error)
			}
		}
	}
}
