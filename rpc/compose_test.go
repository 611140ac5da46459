package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// upload posts files to /rpc/upload for a compose, as a browser's
// FormData does.
func (c *client) upload(composeID int64, files map[string]string, hdr map[string]string) (*http.Response, composeResult) {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("note", "fields that are not files are skipped")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, _ := mw.CreateFormFile("file", n)
		io.WriteString(w, files[n])
	}
	mw.Close()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/rpc/upload?composeID=%d", c.fx.srv.URL, composeID), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", c.csrf)
	req.Header.Set("Origin", c.origin)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out composeResult
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &out); err != nil {
			c.t.Fatalf("upload answer %s: %v", b, err)
		}
	}
	return resp, out
}

func TestComposeAndSend(t *testing.T) {
	forEachBackend(t, fixtureOptions{cfg: Config{MaxUploadBytes: 1 << 16}}, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		c, alice := fx.user(t, "alice@example.org", true)
		bob := fx.env.NewUser(t, "bob@example.org", false)
		carol := fx.env.NewUser(t, "carol@example.org", false)
		if _, err := fx.env.Store.AddAlias(ctx, "al@example.org", "alice@example.org"); err != nil {
			t.Fatal(err)
		}
		a := fx.env.Account(alice)
		c.must("settings.identity", map[string]any{"displayName": "Alice Liddell"}, nil)

		// A message to answer.
		orig := fx.deliver(t, alice, []byte("From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: Tea?\r\nMessage-ID: <tea@example.org>\r\nReferences: <older@example.org>\r\n\r\nTea at four?\r\n"))
		origID := msgRef{orig.MailboxID, orig.UID}.id()

		var cp composeResult
		c.must("messages.compose", nil, &cp)
		resp, up := c.upload(cp.ComposeID, map[string]string{"menu.txt": "scones, jam, cream", "b.bin": "\x00\x01\x02"}, nil)
		if resp.StatusCode != 200 || len(up.Attachments) != 2 || up.Attachments[1].Name != "menu.txt" || up.Attachments[1].Size != 18 {
			t.Fatalf("upload: %d %+v", resp.StatusCode, up)
		}
		var list composeResult
		c.must("attachments.list", map[string]any{"composeID": cp.ComposeID}, &list)
		if len(list.Attachments) != 2 {
			t.Fatalf("attachments.list: %+v", list)
		}
		c.must("attachments.remove", map[string]any{"attachmentID": up.Attachments[0].AttachmentID}, nil)
		menu := up.Attachments[1].AttachmentID

		// Uploads are guarded like calls, and bounded.
		if resp, _ := c.upload(cp.ComposeID, map[string]string{"x": "y"}, map[string]string{"X-CSRF-Token": ""}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("upload without CSRF: HTTP %d", resp.StatusCode)
		}
		if resp, _ := c.upload(cp.ComposeID, map[string]string{"x": "y"}, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("upload from another origin: HTTP %d", resp.StatusCode)
		}
		if resp, _ := c.upload(cp.ComposeID, map[string]string{"big": strings.Repeat("x", 1<<16+1)}, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("upload over the limit: HTTP %d", resp.StatusCode)
		}
		if resp, _ := c.upload(1<<40, map[string]string{"x": "y"}, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("upload to no compose: HTTP %d", resp.StatusCode)
		}

		msg := map[string]any{
			"composeID": cp.ComposeID, "to": []string{"Bob <bob@example.org>", "friend@elsewhere.example"},
			"cc": []string{"carol@example.org"}, "bcc": []string{"hidden@elsewhere.example"},
			"subject": "Re: Tea? — yes", "body": map[string]any{"text": "Yes, see the menu.", "html": "<p>Yes, see the <b>menu</b>.</p>"},
			"inReplyTo": origID, "attachments": []int64{menu},
		}
		// Drafts: saving twice keeps one draft.
		var d1, d2 saveResult
		c.must("messages.save", msg, &d1)
		c.must("messages.save", msg, &d2)
		if d1.MessageID == d2.MessageID {
			t.Fatal("the second save did not make a new draft")
		}
		drafts := storetest.MailboxID(t, a, "Drafts")
		if ms, _ := a.List(ctx, drafts, store.ListQuery{}); len(ms) != 1 || !ms[0].Flags.Has(store.FlagDraft) {
			t.Fatalf("drafts after two saves: %+v", ms)
		}
		var dl loadResult
		c.must("messages.load", map[string]any{"messageID": d2.MessageID, "sections": []string{"header", "attachments"}}, &dl)
		if !hasHeader(dl.Header, "Bcc", "hidden@elsewhere.example") || len(dl.Attachments) != 1 {
			t.Fatalf("draft: %+v", dl)
		}

		// Sending as someone else is refused, whatever the display name.
		bad := clone(msg)
		bad["from"] = "Bob <bob@example.org>"
		c.fail("messages.send", bad, CodeForbiddenFrom, "forbiddenFrom")
		bad["from"] = "not an address"
		c.fail("messages.send", bad, CodeInvalid, "invalid")
		bad = clone(msg)
		bad["to"] = []string{"nobody@example.org"}
		e := c.fail("messages.send", bad, CodeRefused, "recipientRefused")
		if len(e.Data.Recipients) != 1 || e.Data.Recipients[0].Address != "nobody@example.org" || !strings.Contains(e.Data.Recipients[0].Reason, "550") {
			t.Fatalf("refused recipient: %+v", e.Data)
		}
		bad = clone(msg)
		delete(bad, "to")
		delete(bad, "cc")
		delete(bad, "bcc")
		c.fail("messages.send", bad, CodeInvalid, "invalid")
		bad = clone(msg)
		bad["attachments"] = []int64{1 << 40}
		c.fail("messages.send", bad, CodeNotFound, "notFound")
		if n, _ := fx.env.Store.OutboundEntries(ctx, 10); len(n) != 0 {
			t.Fatalf("a refused send queued something: %+v", n)
		}

		// From an alias, with the identity's name.
		msg["from"] = "al@example.org"
		var sr sendResult
		c.must("messages.send", msg, &sr)
		if len(sr.Failed) != 0 || len(sr.Delivered) != 4 || sr.MessageID == "" {
			t.Fatalf("send: %+v", sr)
		}
		// Local recipients have it, without Bcc, threaded, from the alias.
		got := storetest.Messages(t, fx.env.Account(bob), "INBOX")
		if len(got) != 1 {
			t.Fatalf("bob has %d messages", len(got))
		}
		m := got[0]
		for _, want := range []string{"From: \"Alice Liddell\" <al@example.org>", "In-Reply-To: <tea@example.org>", "References: <older@example.org> <tea@example.org>",
			"Received: from webmail", "with HTTP", "c2NvbmVzLCBqYW0sIGNyZWFt", "filename=menu.txt", "multipart/alternative"} {
			if !strings.Contains(m, want) && !strings.Contains(unQP(m), want) {
				t.Errorf("delivered message lacks %q:\n%s", want, m)
			}
		}
		if strings.Contains(m, "hidden@elsewhere.example") {
			t.Error("Bcc reached a recipient")
		}
		if len(storetest.Messages(t, fx.env.Account(carol), "INBOX")) != 1 {
			t.Error("cc recipient has nothing")
		}
		// Remote recipients are queued, Bcc among them, once.
		q, err := fx.env.Store.OutboundEntries(ctx, 10)
		if err != nil || len(q) != 1 || q[0].From != "al@example.org" {
			t.Fatalf("queue: %+v %v", q, err)
		}
		var rcpts []string
		for _, r := range q[0].Rcpts {
			rcpts = append(rcpts, r.Address)
		}
		slices.Sort(rcpts)
		if !slices.Equal(rcpts, []string{"friend@elsewhere.example", "hidden@elsewhere.example"}) {
			t.Fatalf("queued for %v", rcpts)
		}
		// A copy in Sent, with Bcc; the draft gone; the original answered;
		// the compose closed.
		var sl loadResult
		c.must("messages.load", map[string]any{"messageID": sr.MessageID, "sections": []string{"meta", "header"}}, &sl)
		if !hasHeader(sl.Header, "Bcc", "hidden@elsewhere.example") || !slices.Contains(sl.Meta.Flags, "seen") {
			t.Fatalf("sent copy: %+v", sl)
		}
		c.fail("messages.load", map[string]any{"messageID": d2.MessageID}, CodeNotFound, "notFound")
		c.must("messages.load", map[string]any{"messageID": origID, "sections": []string{"meta"}}, &sl)
		if !slices.Contains(sl.Meta.Flags, "answered") {
			t.Fatalf("original not answered: %+v", sl.Meta)
		}
		c.fail("messages.send", msg, CodeNotFound, "notFound")

		// Forwarding a stored part, and reopening a draft.
		rich := fx.deliver(t, alice, richMessage("x@example.com", "alice@example.org", "Report"))
		var cp2 composeResult
		c.must("messages.compose", nil, &cp2)
		var d3 saveResult
		c.must("messages.save", map[string]any{"composeID": cp2.ComposeID, "to": []string{"bob@example.org"}, "subject": "Fwd: Report",
			"body": map[string]any{"text": "see attached"}, "attachParts": []map[string]any{{"messageID": msgRef{rich.MailboxID, rich.UID}.id(), "part": "2"}}}, &d3)
		var cp3 composeResult
		c.must("messages.compose", map[string]any{"draftID": d3.MessageID}, &cp3)
		c.must("messages.send", map[string]any{"composeID": cp3.ComposeID, "to": []string{"bob@example.org"}, "subject": "Fwd: Report",
			"body": map[string]any{"text": "see attached"}, "attachParts": []map[string]any{{"messageID": d3.MessageID, "part": "2"}}}, &sr)
		got = storetest.Messages(t, fx.env.Account(bob), "INBOX")
		if len(got) != 2 || !strings.Contains(got[1], "report.pdf") || !strings.Contains(got[1], "JVBERi0xLjQgbm90IHJlYWxseSBhIHBkZ") {
			t.Fatalf("forwarded attachment:\n%s", got[len(got)-1])
		}
		c.fail("messages.load", map[string]any{"messageID": d3.MessageID}, CodeNotFound, "notFound")
		c.fail("messages.compose", map[string]any{"draftID": "1-999999"}, CodeNotFound, "notFound")
	})
}

func hasHeader(h []headerField, name, sub string) bool {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) && strings.Contains(f.Value, sub) {
			return true
		}
	}
	return false
}

func clone(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// unQP undoes soft line breaks, enough to find text in a QP body.
func unQP(s string) string { return strings.ReplaceAll(s, "=\r\n", "") }
