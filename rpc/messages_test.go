package rpc

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
)

var pdfBytes = []byte("%PDF-1.4 not really a pdf, but bytes all the same \x00\x01\x02")

var pngBytes = []byte("\x89PNG\r\n\x1a\n a tiny picture")

// richMessage is an HTML message with a plain alternative, an inline image
// referred to by cid, a remote image, some hostile markup and a PDF.
func richMessage(from, to, subject string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: Sender Name <%s>
To: %s
Cc: Carol <carol@example.net>
Subject: %s
Date: Mon, 02 Nov 2026 10:00:00 +0000
Message-ID: <rich-%d@example.com>
Received: from mx.example.com ([192.0.2.1]) by mail.example.org; Mon, 02 Nov 2026 10:00:01 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 at noon, plain version.
--alt
Content-Type: text/html; charset=utf-8

<html><body><p>Caf&eacute; at <b>noon</b></p><img src="cid:logo@example.com"><img src="https://tracker.example/p.gif"><script>alert(1)</script><a href="javascript:alert(2)">x</a></body></html>
--alt--
--rel
Content-Type: image/png
Content-ID: <logo@example.com>
Content-Transfer-Encoding: base64

%s
--rel--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

%s
--outer--
`, from, to, subject, time.Now().UnixNano(), base64.StdEncoding.EncodeToString(pngBytes), base64.StdEncoding.EncodeToString(pdfBytes)), "\n", "\r\n"))
}

func TestMessages(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		for _, secure := range []bool{false, true} {
			t.Run(map[bool]string{false: "plain", true: "secure"}[secure], func(t *testing.T) {
				testMessages(t, fx, secure)
			})
		}
	})
}

func testMessages(t *testing.T, fx *fixture, secure bool) {
	addr := fmt.Sprintf("user%v@example.org", secure)
	c, auth := fx.user(t, addr, secure)
	a := fx.env.Account(auth)
	ctx := context.Background()
	inbox := storetest.Inbox(t, a)
	for i := range 5 {
		fx.deliver(t, auth, storetest.Message("x@example.com", addr, fmt.Sprintf("plain %d", i), fmt.Sprintf("body number %d", i)))
	}
	rich := fx.deliver(t, auth, richMessage("sender@example.com", addr, "Lunch"))
	richID := msgRef{inbox, rich.UID}.id()

	// messages.list: newest first by default, paged, with the summary.
	var page listResult
	c.must("messages.list", map[string]any{"folderID": inbox, "limit": 2}, &page)
	if page.Total != 6 || len(page.Messages) != 2 || page.State == "" {
		t.Fatalf("list: %+v", page)
	}
	first := page.Messages[0]
	wantFlags := []string{}
	if secure {
		wantFlags = []string{"encrypted"} // the store marks what it keeps encrypted
	}
	if first.MessageID != richID || first.Subject != "Lunch" || first.From[0].Name != "Sender Name" || first.From[0].Address != "sender@example.com" ||
		first.Cc[0].Address != "carol@example.net" || !first.HasAttachments || first.Bytes == 0 || first.UTC == 0 || first.Sent == 0 ||
		!strings.Contains(first.Snippet, "Caf") || !slices.Equal(first.Flags, wantFlags) {
		t.Fatalf("first item: %+v", first)
	}
	var next listResult
	c.must("messages.list", map[string]any{"folderID": inbox, "start": 2, "limit": 2, "sort": "date-desc"}, &next)
	if len(next.Messages) != 2 || next.Messages[0].MessageID == page.Messages[1].MessageID {
		t.Fatalf("second page: %+v", next.Messages)
	}
	// Keyset paging gives the same pages as offsets.
	var after listResult
	c.must("messages.list", map[string]any{"folderID": inbox, "after": page.Messages[1].MessageID, "limit": 2}, &after)
	if len(after.Messages) != 2 || after.Messages[0].MessageID != next.Messages[0].MessageID || after.Messages[1].MessageID != next.Messages[1].MessageID {
		t.Fatalf("after: %+v, want %+v", after.Messages, next.Messages)
	}
	c.fail("messages.list", map[string]any{"folderID": inbox, "after": page.Messages[1].MessageID, "start": 2}, CodeInvalid, "invalid")
	c.fail("messages.list", map[string]any{"folderID": inbox, "after": fmt.Sprintf("%d-999", inbox)}, CodeNotFound, "notFound")
	var byUID listResult
	c.must("messages.list", map[string]any{"folderID": inbox, "sort": "uid"}, &byUID)
	if len(byUID.Messages) != 6 || byUID.Messages[0].Subject != "plain 0" {
		t.Fatalf("by UID: %+v", byUID.Messages)
	}
	c.must("messages.list", map[string]any{"folderID": inbox, "sort": "uid", "after": byUID.Messages[3].MessageID}, &after)
	if len(after.Messages) != 2 || after.Messages[0].MessageID != byUID.Messages[4].MessageID {
		t.Fatalf("after by UID: %+v", after.Messages)
	}
	c.fail("messages.list", map[string]any{"folderID": inbox, "limit": 501}, CodeInvalidParams, "invalidParams")
	c.fail("messages.list", map[string]any{"folderID": inbox, "sort": "bogus"}, CodeInvalidParams, "invalidParams")
	c.fail("messages.list", map[string]any{"folderID": 1 << 40}, CodeNotFound, "notFound")

	// messages.load
	var ld loadResult
	c.must("messages.load", map[string]any{"messageID": richID}, &ld)
	if ld.Meta == nil || ld.Meta.Subject != "Lunch" || ld.Body == nil || ld.Source != "" || ld.Security != nil {
		t.Fatalf("load: %+v", ld)
	}
	if ld.Body.Text != "Café at noon, plain version." {
		t.Errorf("text body (from ISO-8859-1, quoted-printable): %q", ld.Body.Text)
	}
	html := ld.Body.HTML
	if !ld.Body.RemoteBlocked || strings.Contains(html, "tracker.example") || strings.Contains(html, "<script") || strings.Contains(html, "javascript:") ||
		!strings.Contains(html, "<b>noon</b>") || !strings.Contains(html, `src="/rpc/blob/`+richID+`/1.2"`) {
		t.Errorf("html body: %+v", ld.Body)
	}
	if len(ld.Attachments) != 2 {
		t.Fatalf("attachments: %+v", ld.Attachments)
	}
	var pdf attachmentItem
	for _, at := range ld.Attachments {
		if at.Name == "report.pdf" {
			pdf = at
		}
	}
	if pdf.Type != "application/pdf" || pdf.Size != int64(len(pdfBytes)) || pdf.Inline || pdf.URL != "/rpc/blob/"+richID+"/2" {
		t.Fatalf("pdf: %+v", pdf)
	}
	var hasSubject bool
	for _, f := range ld.Header {
		hasSubject = hasSubject || (f.Name == "Subject" && f.Value == "Lunch")
	}
	if !hasSubject {
		t.Errorf("header: %+v", ld.Header)
	}
	c.must("messages.load", map[string]any{"messageID": richID, "sections": []string{"body", "source", "security"}, "allowRemote": true}, &ld)
	if ld.Body.RemoteBlocked || !strings.Contains(ld.Body.HTML, "tracker.example") || !strings.HasPrefix(ld.Source, "Return-Path") && !strings.HasPrefix(ld.Source, "From:") ||
		ld.Security == nil || len(ld.Security.Received) == 0 || ld.Security.Encrypted != secure && false {
		t.Fatalf("load with remote, source, security: %+v", ld)
	}
	c.fail("messages.load", map[string]any{"messageID": "1-x"}, CodeInvalidParams, "invalidParams")
	c.fail("messages.load", map[string]any{"messageID": fmt.Sprintf("%d-999", inbox)}, CodeNotFound, "notFound")
	c.fail("messages.load", map[string]any{"messageID": richID, "sections": []string{"everything"}}, CodeInvalidParams, "invalidParams")

	// The blob endpoint serves parts decoded, as attachments.
	resp, b := c.get(pdf.URL, nil)
	if resp.StatusCode != 200 || string(b) != string(pdfBytes) || resp.Header.Get("Content-Type") != "application/pdf" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("blob: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if resp, b := c.get("/rpc/blob/"+richID+"/1.2", nil); resp.StatusCode != 200 || string(b) != string(pngBytes) {
		t.Fatalf("cid image: %d %q", resp.StatusCode, b)
	}
	if resp, b := c.get("/rpc/blob/"+richID+"/source", nil); resp.StatusCode != 200 || !strings.Contains(string(b), "Subject: Lunch") {
		t.Fatalf("source: %d", resp.StatusCode)
	}
	for _, path := range []string{"/rpc/blob/" + richID + "/9", "/rpc/blob/" + richID + "/0.1", fmt.Sprintf("/rpc/blob/%d-999/1", inbox), "/rpc/blob/x/1"} {
		if resp, _ := c.get(path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
	}
	if resp, _ := c.get(pdf.URL, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site blob: HTTP %d", resp.StatusCode)
	}
	if resp, _ := fx.client(t).get(pdf.URL, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("blob without a session: HTTP %d", resp.StatusCode)
	}

	// Flags and tags.
	ids := []string{page.Messages[0].MessageID, page.Messages[1].MessageID}
	var fr flagResult
	c.must("messages.flag", map[string]any{"messageIDs": ids, "action": "add", "flags": []string{"seen", "flagged"}}, &fr)
	if len(fr.Messages) != 2 || !slices.Equal(userFlags(fr.Messages[0].Flags), []string{"seen", "flagged"}) {
		t.Fatalf("flag add: %+v", fr)
	}
	c.must("messages.tag", map[string]any{"messageIDs": ids, "action": "add", "tags": []string{"work", "urgent"}}, &fr)
	c.must("messages.flag", map[string]any{"messageIDs": ids, "action": "replace", "flags": []string{"answered"}}, &fr)
	if !slices.Equal(userFlags(fr.Messages[0].Flags), []string{"answered"}) || !slices.Equal(fr.Messages[0].Tags, []string{"urgent", "work"}) {
		t.Fatalf("flag replace kept tags? %+v", fr)
	}
	c.must("messages.tag", map[string]any{"messageIDs": ids, "action": "replace", "tags": []string{"home"}}, &fr)
	if !slices.Equal(fr.Messages[1].Tags, []string{"home"}) || !slices.Equal(userFlags(fr.Messages[1].Flags), []string{"answered"}) {
		t.Fatalf("tag replace: %+v", fr)
	}
	c.must("messages.tag", map[string]any{"messageIDs": ids[:1], "action": "remove", "tags": []string{"home"}}, &fr)
	c.must("messages.flag", map[string]any{"messageIDs": ids, "action": "list"}, &fr)
	if len(fr.Messages[0].Tags) != 0 || !slices.Equal(fr.Messages[1].Tags, []string{"home"}) {
		t.Fatalf("tag list: %+v", fr)
	}
	c.fail("messages.flag", map[string]any{"messageIDs": ids, "action": "add", "flags": []string{"secure"}}, CodeInvalidParams, "invalidParams")
	c.fail("messages.flag", map[string]any{"messageIDs": ids, "action": "add"}, CodeInvalid, "invalid")
	c.fail("messages.tag", map[string]any{"messageIDs": ids, "action": "add", "tags": []string{"two words"}}, CodeInvalid, "invalid")
	c.fail("messages.flag", map[string]any{"messageIDs": []string{}, "action": "list"}, CodeInvalidParams, "invalidParams")
	c.fail("messages.flag", map[string]any{"messageIDs": []string{ids[0], fmt.Sprintf("%d-999", inbox)}, "action": "add", "flags": []string{"deleted"}}, CodeNotFound, "notFound")
	c.must("messages.flag", map[string]any{"messageIDs": ids[:1], "action": "list"}, &fr)
	if slices.Contains(fr.Messages[0].Flags, "deleted") {
		t.Fatal("a refused call changed a message")
	}

	// Copy, move, remove.
	archive := storetest.MailboxID(t, a, "Archive")
	trash := storetest.MailboxID(t, a, "Trash")
	var cr copyResult
	c.must("messages.copy", map[string]any{"messageIDs": ids, "folderID": archive}, &cr)
	if len(cr.MessageIDs) != 2 || !strings.HasPrefix(cr.MessageIDs[0], fmt.Sprint(archive)+"-") {
		t.Fatalf("copy: %+v", cr)
	}
	c.must("messages.load", map[string]any{"messageID": cr.MessageIDs[0], "sections": []string{"meta"}}, &ld)
	if ld.Meta.Subject != page.Messages[0].Subject || !slices.Equal(userFlags(ld.Meta.Flags), []string{"answered"}) {
		t.Fatalf("copy kept flags? %+v", ld.Meta)
	}
	var mv copyResult
	c.must("messages.move", map[string]any{"messageIDs": cr.MessageIDs, "folderID": trash}, &mv)
	c.fail("messages.load", map[string]any{"messageID": cr.MessageIDs[0]}, CodeNotFound, "notFound")
	c.fail("messages.move", map[string]any{"messageIDs": mv.MessageIDs, "folderID": trash}, CodeInvalid, "invalid")
	c.must("messages.remove", map[string]any{"messageIDs": mv.MessageIDs}, nil)
	c.fail("messages.remove", map[string]any{"messageIDs": mv.MessageIDs}, CodeNotFound, "notFound")
	if m, _ := a.Mailbox(ctx, trash); m.Messages != 0 {
		t.Fatalf("trash after remove: %+v", m)
	}

	// Search.
	search := func(p map[string]any) searchResult {
		t.Helper()
		var r searchResult
		c.must("messages.search", p, &r)
		return r
	}
	if r := search(map[string]any{"query": "body number 3"}); r.Total != 1 || r.Messages[0].Subject != "plain 3" {
		t.Errorf("body text: %+v", r)
	}
	if r := search(map[string]any{"query": "CAFÉ", "folderID": inbox}); r.Total != 1 || r.Messages[0].MessageID != richID {
		t.Errorf("text in the ISO-8859-1 part, any case: %+v", r)
	}
	if r := search(map[string]any{"from": "sender@example"}); r.Total != 1 {
		t.Errorf("from: %+v", r)
	}
	if r := search(map[string]any{"to": "carol"}); r.Total != 1 {
		t.Errorf("to (cc): %+v", r)
	}
	if r := search(map[string]any{"subject": "plain", "limit": 2}); r.Total != 5 || len(r.Messages) != 2 || r.Messages[0].Subject != "plain 4" {
		t.Errorf("subject, paged: %+v", r)
	}
	if r := search(map[string]any{"hasAttachment": true}); r.Total != 1 {
		t.Errorf("attachments: %+v", r)
	}
	if r := search(map[string]any{"flags": []string{"answered"}}); r.Total != 2 {
		t.Errorf("flags: %+v", r)
	}
	if r := search(map[string]any{"notFlags": []string{"answered"}, "folderID": inbox}); r.Total != 4 || r.Messages[0].Subject == "" {
		t.Errorf("not flags: %+v", r)
	}
	if r := search(map[string]any{"since": time.Now().Add(time.Hour)}); r.Total != 0 {
		t.Errorf("since the future: %+v", r)
	}
	if r := search(map[string]any{"before": time.Now().Add(time.Hour), "query": "nothing like this"}); r.Total != 0 {
		t.Errorf("no match: %+v", r)
	}
	c.fail("messages.search", map[string]any{"since": "yesterday"}, CodeInvalidParams, "invalidParams")
	c.fail("messages.search", map[string]any{"folderID": 1 << 40}, CodeNotFound, "notFound")

	// Threads fold the whole folder: one entry a thread, its newest.
	root := "From: x@example.com\r\nTo: " + addr + "\r\nSubject: Plans\r\nMessage-ID: <root-" + addr + ">\r\n\r\nroot\r\n"
	re := "From: y@example.com\r\nTo: " + addr + "\r\nSubject: Re: Plans\r\nMessage-ID: <re-" + addr + ">\r\nIn-Reply-To: <root-" + addr + ">\r\nReferences: <root-" + addr + ">\r\n\r\nreply\r\n"
	fx.deliver(t, auth, []byte(root))
	fx.deliver(t, auth, []byte(re))
	var thr listResult
	c.must("messages.list", map[string]any{"folderID": inbox, "threads": true, "limit": 3}, &thr)
	if len(thr.Messages) != 3 || thr.Total != 7 || thr.Messages[0].Subject != "Re: Plans" || thr.Messages[0].ThreadCount != 2 ||
		thr.Messages[0].UnreadCount != 2 || thr.Messages[1].ThreadCount != 1 {
		t.Errorf("threads: %d of %d: %+v", len(thr.Messages), thr.Total, thr.Messages)
	}
	var tm threadResult
	c.must("messages.thread", map[string]any{"threadID": thr.Messages[0].ThreadID}, &tm)
	if len(tm.Messages) != 2 || tm.Messages[0].Subject != "Plans" || tm.Messages[1].Subject != "Re: Plans" {
		t.Errorf("thread: %+v", tm.Messages)
	}
}

// userFlags drops the flags the server sets itself.
func userFlags(fs []string) []string {
	return slices.DeleteFunc(slices.Clone(fs), func(f string) bool { return f == "encrypted" || f == "secure" })
}

// TestLoadDecodedText: messages.load shows the odd header values and
// text parts (testsupport.HeaderTextCases, PartTextCases) as
// message.HeaderText and message.Part.Text decode them, the text IMAP
// SEARCH finds (imap's TestSearchDecodedText): word by word, and octets
// in an unknown charset read as ISO-8859-1 rather than replaced.
func TestLoadDecodedText(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		c, alice := fx.user(t, "alice@example.org", false)
		load := func(raw []byte) loadResult {
			m := fx.deliver(t, alice, raw)
			var out loadResult
			c.must("messages.load", map[string]any{"messageID": msgRef{m.MailboxID, m.UID}.id(), "sections": []string{"header", "body"}}, &out)
			return out
		}
		for _, tc := range testsupport.HeaderTextCases() {
			got := load(testsupport.TextMessage(tc.Value, "text/plain", "", "x"))
			if !slices.ContainsFunc(got.Header, func(f headerField) bool { return f.Name == "X-Odd" && f.Value == tc.Text }) {
				t.Errorf("%s: header %+v, want X-Odd %q", tc.Name, got.Header, tc.Text)
			}
		}
		for _, tc := range testsupport.PartTextCases() {
			got := load(testsupport.TextMessage("x", tc.ContentType, tc.Encoding, tc.Body))
			if got.Body == nil || got.Body.Text != tc.Text {
				t.Errorf("%s: body %+v, want text %q", tc.Name, got.Body, tc.Text)
			}
		}
	})
}
