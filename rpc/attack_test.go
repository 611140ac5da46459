package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/webmail"
)

// bigHeader returns a message whose header has n fields with values of
// valueLen bytes.
func bigHeader(n, valueLen int) []byte {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nTo: alice@example.org\r\nSubject: big header\r\n")
	for i := range n {
		fmt.Fprintf(&b, "X-F%d: %s\r\n", i, strings.Repeat("v", valueLen))
	}
	b.WriteString("\r\nhello\r\n")
	return []byte(b.String())
}

// TestLoadHeaderCap: messages.load lists at most maxHeaderFields fields
// and maxHeaderBytes of a header, saying so with headerTruncated; a
// header within both comes whole. (Mail stored before the header limits
// existed, or taken with them off, may carry any header.)
func TestLoadHeaderCap(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, auth := fx.user(t, "alice@example.org", false)
	for _, tc := range []struct {
		name      string
		raw       []byte
		fields    int // the most fields expected back
		truncated bool
		maxJSON   int
	}{
		{"short fields", bigHeader(30000, 1), maxHeaderFields, true, 200 << 10},
		{"long fields", bigHeader(200, 1000), 3 + maxHeaderBytes/1000, true, 200 << 10},
		{"ordinary", bigHeader(20, 10), 23, false, 10 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := fx.deliver(t, auth, tc.raw)
			raw, e := c.call("messages.load", map[string]any{"messageID": msgRef{res.MailboxID, res.UID}.id(), "sections": []string{"header"}})
			if e != nil {
				t.Fatalf("load: %+v", e)
			}
			if len(raw) > tc.maxJSON {
				t.Errorf("result of %d bytes, want at most %d", len(raw), tc.maxJSON)
			}
			r := decode[loadResult](t, raw)
			if r.HeaderTruncated != tc.truncated || len(r.Header) > tc.fields || len(r.Header) < 3 {
				t.Fatalf("%d fields, truncated %v; want at most %d, truncated %v", len(r.Header), r.HeaderTruncated, tc.fields, tc.truncated)
			}
			if !tc.truncated && len(r.Header) != tc.fields {
				t.Fatalf("%d fields of %d", len(r.Header), tc.fields)
			}
			if r.Header[0].Name != "From" || r.Header[len(r.Header)-1].Value == "" {
				t.Fatalf("fields: first %+v, last %+v", r.Header[0], r.Header[len(r.Header)-1])
			}
		})
	}
}

// TestBatchReplyCap: once a batch's results pass MaxReplyBytes, its
// remaining calls are not run and are answered CodeTooLarge; the reply
// stays within the cap and one call's result.
func TestBatchReplyCap(t *testing.T) {
	const capBytes = 1 << 20
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{MaxReplyBytes: capBytes}})
	c, auth := fx.user(t, "alice@example.org", false)
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 400<<10/78) // ~400 KB of text
	res := fx.deliver(t, auth, []byte("From: a@example.com\r\nSubject: large\r\n\r\n"+body))
	id := msgRef{res.MailboxID, res.UID}.id()
	var calls []string
	for i := range 20 {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"messages.load","params":{"messageID":%q}}`, i, id))
	}
	calls = append(calls, `{"jsonrpc":"2.0","method":"messages.load","params":{"messageID":"x"}}`) // a notification: no answer
	_, b := c.post("["+strings.Join(calls, ",")+"]", nil)
	if len(b) > capBytes+600<<10 {
		t.Fatalf("reply of %d bytes, cap %d", len(b), capBytes)
	}
	var out []testResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if len(out) != 20 {
		t.Fatalf("%d responses, want 20", len(out))
	}
	ran := 0
	for i, r := range out {
		switch {
		case r.Error == nil:
			if ran != i {
				t.Fatalf("call %d ran after one was refused", i)
			}
			ran++
		case r.Error.Code != CodeTooLarge || string(r.ID) != fmt.Sprint(i):
			t.Fatalf("response %d: %+v id %s", i, r.Error, r.ID)
		}
	}
	if ran < 2 || ran > 4 {
		t.Fatalf("%d calls ran, want the few that fit in %d bytes", ran, capBytes)
	}
	// On their own, the refused calls succeed.
	c.must("messages.load", map[string]any{"messageID": id, "sections": []string{"meta"}}, nil)
}

// TestUploadQuota: uploads are charged to the user's quota while they
// wait: one that does not fit is refused (HTTP 507, overQuota) before
// anything is kept, meta shows what they take, and removing one, sending
// its compose or pruning the compose gives the bytes back.
func TestUploadQuota(t *testing.T) {
	forEachBackend(t, fixtureOptions{cfg: Config{MaxUploadBytes: 1 << 20}}, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		c, alice := fx.user(t, "alice@example.org", false)
		fx.env.NewUser(t, "bob@example.org", false)
		used := func() int64 {
			t.Helper()
			var m metaResult
			c.must("meta", nil, &m)
			return m.Quota.Used
		}
		setQuota := func(q int64) {
			t.Helper()
			if err := fx.env.Store.SetLimits(ctx, alice.User.ID, "", store.LimitOverrides{QuotaBytes: &q}); err != nil {
				t.Fatal(err)
			}
		}
		file := func(n int) map[string]string { return map[string]string{"f.bin": strings.Repeat("u", n)} }
		var cp composeResult
		c.must("messages.compose", nil, &cp)

		// The attack: a 3,000-byte quota, uploads of 5 KiB.
		setQuota(3000)
		for range 4 {
			if resp, _ := c.upload(cp.ComposeID, file(5<<10), nil); resp.StatusCode != http.StatusInsufficientStorage {
				t.Fatalf("upload over quota: HTTP %d", resp.StatusCode)
			}
		}
		var list composeResult
		c.must("attachments.list", map[string]any{"composeID": cp.ComposeID}, &list)
		if len(list.Attachments) != 0 || used() != 0 {
			t.Fatalf("after refused uploads: %d kept, %d bytes used", len(list.Attachments), used())
		}

		setQuota(100 << 10)
		_, a1 := c.upload(cp.ComposeID, file(40<<10), nil)
		_, a2 := c.upload(cp.ComposeID, file(40<<10), nil)
		if len(a1.Attachments) != 1 || len(a2.Attachments) != 1 || used() != 80<<10 {
			t.Fatalf("two uploads of 40 KiB: %+v %+v, %d bytes used", a1, a2, used())
		}
		if resp, _ := c.upload(cp.ComposeID, file(40<<10), nil); resp.StatusCode != http.StatusInsufficientStorage {
			t.Fatalf("a third upload past the quota: HTTP %d", resp.StatusCode)
		}
		c.must("attachments.remove", map[string]any{"attachmentID": a1.Attachments[0].AttachmentID}, nil)
		if u := used(); u != 40<<10 {
			t.Fatalf("after a removal: %d bytes used, want %d", u, 40<<10)
		}

		// Sent: the upload is given back, the sent copy charged instead.
		var sent sendResult
		c.must("messages.send", map[string]any{"composeID": cp.ComposeID, "to": []string{"bob@example.org"}, "subject": "file",
			"body": map[string]any{"text": "attached"}, "attachments": []int64{a2.Attachments[0].AttachmentID}}, &sent)
		if sent.MessageID == "" {
			t.Fatalf("send: %+v", sent)
		}
		a := fx.env.Account(alice)
		msgs, err := a.List(ctx, storetest.MailboxID(t, a, "Sent"), store.ListQuery{})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("sent: %d messages, %v", len(msgs), err)
		}
		if u := used(); u != msgs[0].Size {
			t.Fatalf("after send: %d bytes used, want the sent copy's %d", u, msgs[0].Size)
		}

		// Pruned with its compose.
		var cp2 composeResult
		c.must("messages.compose", nil, &cp2)
		if resp, _ := c.upload(cp2.ComposeID, file(10<<10), nil); resp.StatusCode != 200 {
			t.Fatalf("upload: HTTP %d", resp.StatusCode)
		}
		if u := used(); u != msgs[0].Size+10<<10 {
			t.Fatalf("with an upload waiting: %d bytes used", u)
		}
		if _, err := webmail.Prune(ctx, fx.env.Store, -time.Hour); err != nil {
			t.Fatal(err)
		}
		if u := used(); u != msgs[0].Size {
			t.Fatalf("after the prune: %d bytes used, want %d", u, msgs[0].Size)
		}
	})
}
