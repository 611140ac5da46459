package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"basalt/internal/testsupport/storetest"
	mimemsg "basalt/message"
	"basalt/store"
	"basalt/store/outbound"
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
	setHeaders(req, hdr)
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
		if n, _ := outbound.New(fx.env.Store).Entries(ctx, 10); len(n) != 0 {
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
		q, err := outbound.New(fx.env.Store).Entries(ctx, 10)
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

// TestSendMIME checks the MIME messages.send builds, read back with
// go-message as a receiving client would: text and HTML as
// multipart/alternative (plain first), an HTML-only body as one part,
// text parts quoted-printable, a file name that is not ASCII in RFC 2231
// form, Message-ID and Date, and no header a subject could smuggle in.
func TestSendMIME(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, alice := fx.user(t, "alice@example.org", false)
	bob := fx.env.NewUser(t, "bob@example.org", false)
	send := func(params map[string]any) *message.Entity {
		t.Helper()
		var cp composeResult
		c.must("messages.compose", nil, &cp)
		params["composeID"] = cp.ComposeID
		params["to"] = []string{"bob@example.org"}
		if files, ok := params["files"].(map[string]string); ok {
			delete(params, "files")
			resp, up := c.upload(cp.ComposeID, files, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("upload: HTTP %d", resp.StatusCode)
			}
			var ids []int64
			for _, a := range up.Attachments {
				ids = append(ids, a.AttachmentID)
			}
			params["attachments"] = ids
		}
		c.must("messages.send", params, nil)
		got := storetest.Messages(t, fx.env.Account(bob), "INBOX")
		raw := got[len(got)-1]
		for _, line := range strings.Split(raw, "\r\n") {
			if len(line) > 998 {
				t.Errorf("a line of %d octets (RFC 5322 2.1.1)", len(line))
			}
		}
		e, err := message.Read(strings.NewReader(raw))
		if err != nil {
			t.Fatalf("read sent message: %v\n%s", err, raw)
		}
		return e
	}
	type part struct{ ctype, cte, disp, body string }
	parts := func(e *message.Entity) []part {
		var out []part
		e.Walk(func(path []int, p *message.Entity, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			ct, _, _ := p.Header.ContentType()
			var b []byte
			if p.MultipartReader() == nil {
				b, _ = io.ReadAll(p.Body)
			}
			out = append(out, part{ct, p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), string(b)})
			return nil
		})
		return out
	}

	longHTML := "<p>" + strings.Repeat("Lorem ipsum dolor sit amet, ", 200) + "</p>"
	e := send(map[string]any{"subject": "Both", "body": map[string]any{"text": "Plain — text", "html": longHTML},
		"files": map[string]string{"résumé 2026.pdf": "%PDF-1.4"}})
	ps := parts(e)
	if len(ps) != 5 || ps[0].ctype != "multipart/mixed" || ps[1].ctype != "multipart/alternative" ||
		ps[2].ctype != "text/plain" || ps[3].ctype != "text/html" || ps[4].ctype != "application/octet-stream" {
		t.Fatalf("structure: %+v", ps)
	}
	if ps[2].cte != "quoted-printable" || ps[3].cte != "quoted-printable" || ps[2].body != "Plain — text" || ps[3].body != longHTML {
		t.Errorf("text parts: %+v %+v", ps[2], ps[3])
	}
	if ps[4].cte != "base64" || ps[4].body != "%PDF-1.4" || !strings.Contains(ps[4].disp, "filename*=utf-8''r%C3%A9sum%C3%A9%202026.pdf") {
		t.Errorf("attachment: %+v", ps[4])
	}
	if disp, params, err := mime.ParseMediaType(ps[4].disp); err != nil || disp != "attachment" || params["filename"] != "résumé 2026.pdf" {
		t.Errorf("attachment's disposition %q: %v %v", ps[4].disp, params, err)
	}
	mh := mail.Header{Header: e.Header}
	if id, err := mh.MessageID(); err != nil || !strings.HasSuffix(id, "@mail.example.org") {
		t.Errorf("Message-ID %q %v", id, err)
	}
	if d, err := mh.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %v %v", d, err)
	}

	// HTML alone is one text/html part, not an alternative with an empty
	// plain text beside it.
	e = send(map[string]any{"subject": "HTML", "body": map[string]any{"html": "<p>hi</p>"}})
	if ps := parts(e); len(ps) != 1 || ps[0].ctype != "text/html" || ps[0].body != "<p>hi</p>" {
		t.Errorf("HTML only: %+v", ps)
	}
	e = send(map[string]any{"subject": "Text", "body": map[string]any{"text": "hi"}})
	if ps := parts(e); len(ps) != 1 || ps[0].ctype != "text/plain" || ps[0].body != "hi" {
		t.Errorf("text only: %+v", ps)
	}

	// A subject cannot add a header.
	e = send(map[string]any{"subject": "Hi\r\nBcc: eve@example.org\r\nX-Evil: 1", "body": map[string]any{"text": "x"}})
	if e.Header.Has("Bcc") || e.Header.Has("X-Evil") || len(e.Header.Values("Subject")) != 1 {
		t.Errorf("a subject added headers: %v", e.Header)
	}

	// A compose continues a draft only: sending it removes the draft,
	// and must not remove a message that is not one.
	inbox := storetest.Inbox(t, fx.env.Account(alice))
	keep := fx.deliver(t, alice, storetest.Message("x@example.com", "alice@example.org", "keep me", "x"))
	c.fail("messages.compose", map[string]any{"draftID": msgRef{inbox, keep.UID}.id()}, CodeInvalid, "invalid")
	c.must("messages.load", map[string]any{"messageID": msgRef{inbox, keep.UID}.id(), "sections": []string{"meta"}}, nil)

	// An upload declared over the limit is refused before it is read.
	var cp composeResult
	c.must("messages.compose", nil, &cp)
	if status := c.declared(fmt.Sprintf("/rpc/upload?composeID=%d", cp.ComposeID), "multipart/form-data; boundary=x", 1<<40); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload declared over the limit: HTTP %d", status)
	}
}

// forwardable has parts to forward: part 2 a text in Latin-1, part 3 a
// message, part 4 a multipart.
const forwardable = "From: x@example.com\r\nTo: alice@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
	"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n" +
	"--b\r\nContent-Type: text/plain; charset=iso-8859-1; name=\"note.txt\"\r\nContent-Disposition: attachment; filename=\"note.txt\"\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n" +
	"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n" +
	"--b\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nalt\r\n--i--\r\n" +
	"--b--\r\n"

// TestSendAttachmentTypes: what messages.send makes of an upload's
// Content-Type and of a forwarded part's, as bob receives it: the type
// with its parameters (a text's charset above all), the octets as they
// were, in an encoding the type allows.
func TestSendAttachmentTypes(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	c, alice := fx.user(t, "alice@example.org", false)
	bob := fx.env.NewUser(t, "bob@example.org", false)
	stored := fx.deliver(t, alice, []byte(forwardable))
	storedID := msgRef{stored.MailboxID, stored.UID}.id()
	tests := []struct {
		name string
		// upload is the Content-Type an upload of content is sent with;
		// "" forwards part of the stored message instead.
		upload, content, part string
		wantType              string
		wantParams            map[string]string
		wantEnc, want         string
	}{
		{name: "upload in Latin-1", upload: "text/plain; charset=iso-8859-1", content: "caf\xe9",
			wantType: "text/plain", wantParams: map[string]string{"charset": "iso-8859-1"}, wantEnc: "BASE64", want: "caf\xe9"},
		{name: "forwarded Latin-1 part", part: "2",
			wantType: "text/plain", wantParams: map[string]string{"charset": "iso-8859-1", "name": "note.txt"}, wantEnc: "BASE64", want: "caf\xe9"},
		// RFC 2046 5.2.1: a message/rfc822 is not encoded.
		{name: "forwarded message", part: "3", wantType: "message/rfc822", wantEnc: "7BIT", want: "Subject: inner\r\n\r\ninner body"},
		// A multipart's content, sent as a multipart, would be a preamble
		// of a new one.
		{name: "forwarded multipart", part: "4", wantType: "application/octet-stream", wantParams: map[string]string{"boundary": ""},
			wantEnc: "BASE64", want: "--i\r\nContent-Type: text/plain\r\n\r\nalt\r\n--i--"},
	}
	// One loop, no subtests: the client fails the test it was made for.
	for _, tt := range tests {
		var cp composeResult
		c.must("messages.compose", nil, &cp)
		params := map[string]any{"composeID": cp.ComposeID, "to": []string{"bob@example.org"}, "subject": tt.name,
			"body": map[string]any{"text": "see attached"}}
		if tt.upload != "" {
			params["attachments"] = []int64{c.uploadTyped(cp.ComposeID, "file", tt.upload, tt.content)}
		} else {
			params["attachParts"] = []map[string]any{{"messageID": storedID, "part": tt.part}}
		}
		c.must("messages.send", params, nil)
		got := storetest.Messages(t, fx.env.Account(bob), "INBOX")
		raw := []byte(got[len(got)-1])
		p, err := mimemsg.Parse(raw).Body.Find("2")
		if err != nil {
			t.Errorf("%s: %v:\n%s", tt.name, err, raw)
			continue
		}
		if typ := p.Type + "/" + p.Subtype; typ != tt.wantType || p.Encoding != tt.wantEnc {
			t.Errorf("%s: type %s, encoding %s; want %s, %s", tt.name, typ, p.Encoding, tt.wantType, tt.wantEnc)
		}
		for k, v := range tt.wantParams {
			if p.Params[k] != v {
				t.Errorf("%s: parameter %s=%q, want %q (all: %v)", tt.name, k, p.Params[k], v, p.Params)
			}
		}
		if body, err := p.Decode(raw); err != nil || string(body) != tt.want {
			t.Errorf("%s: content %q (%v), want %q", tt.name, body, err, tt.want)
		}
	}
}

// uploadTyped uploads one file with the Content-Type given, as a browser
// does for a file whose type it knows, and returns its attachment id.
func (c *client) uploadTyped(composeID int64, name, ctype, content string) int64 {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": name}))
	h.Set("Content-Type", ctype)
	w, _ := mw.CreatePart(h)
	io.WriteString(w, content)
	mw.Close()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/rpc/upload?composeID=%d", c.fx.srv.URL, composeID), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", c.csrf)
	req.Header.Set("Origin", c.origin)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out composeResult
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || len(out.Attachments) != 1 {
		c.t.Fatalf("upload: HTTP %d %s", resp.StatusCode, b)
	}
	return out.Attachments[0].AttachmentID
}
