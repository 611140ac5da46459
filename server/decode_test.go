package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/store"
)

// TestDecodeAgrees: IMAP's BINARY and BINARY.SIZE (RFC 3516), the
// webmail's download and the attachment sizes it lists agree byte for
// byte on every odd part of testsupport.TransferCases, as the daemon
// wires them: they all decode with message.Decode. A part in an unknown
// encoding is refused by BINARY with UNKNOWN-CTE and downloaded as it is
// stored. On SQLite and on MariaDB.
func TestDecodeAgrees(t *testing.T) {
	imapOnly := "[imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"off\"\n"
	t.Run("sqlite", func(t *testing.T) { decodeAgrees(t, imapOnly) })
	t.Run("mariadb", func(t *testing.T) {
		decodeAgrees(t, imapOnly+"[database]\ndriver = \"mysql\"\ndsn = "+strconv.Quote(testsupport.MySQLDSN(t))+"\n")
	})
}

func decodeAgrees(t *testing.T, config string) {
	svc, _ := openWired(t, config)
	ctx := context.Background()
	cases := testsupport.TransferCases()
	u, err := svc.Store.UserByAddress(ctx, "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	a := svc.Store.Account(u.ID, nil)
	inbox, err := a.MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	app, err := a.Append(ctx, inbox.ID, testsupport.TransferMessage(cases), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := svc.Config.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	imapFE, err := svc.listenIMAP(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	serveFrontEnds(t, imapFE)
	web := httptest.NewServer(svc.Router())
	defer web.Close()

	ic := dialIMAP(t, imapFE.(*pairListeners).lns[0].ln.Addr().String())
	ic.cmd(`LOGIN bob@example.org "password one"`)
	ic.cmd("SELECT INBOX")

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "auth",
		"params": map[string]any{"username": "bob@example.org", "password": "password one"}})
	resp, err := hc.Post(web.URL+"/rpc", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var auth struct{ Result struct{ CSRF string } }
	json.NewDecoder(resp.Body).Decode(&auth)
	resp.Body.Close()
	id := fmt.Sprintf("%d-%d", app.MailboxID, app.UID)
	body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "messages.load",
		"params": map[string]any{"messageID": id, "sections": []string{"attachments"}}})
	req, _ := http.NewRequest("POST", web.URL+"/rpc", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", auth.Result.CSRF)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	var load struct {
		Result struct {
			Attachments []struct {
				Part string
				Size int64
			}
		}
		Error any
	}
	json.NewDecoder(resp.Body).Decode(&load)
	resp.Body.Close()
	if load.Error != nil {
		t.Fatalf("messages.load: %v", load.Error)
	}
	listed := map[string]int64{}
	for _, at := range load.Result.Attachments {
		listed[at.Part] = at.Size
	}
	if len(listed) != len(cases) {
		t.Fatalf("messages.load lists %d attachments, want %d", len(listed), len(cases))
	}

	for i, tc := range cases {
		part := strconv.Itoa(i + 1)
		t.Run(tc.Name, func(t *testing.T) {
			resp, err := hc.Get(web.URL + "/rpc/blob/" + id + "/" + part)
			if err != nil {
				t.Fatal(err)
			}
			download, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(download) != tc.Decoded {
				t.Errorf("download: %d %q, want %q", resp.StatusCode, download, tc.Decoded)
			}
			if listed[part] != int64(len(download)) {
				t.Errorf("listed size %d, downloaded %d", listed[part], len(download))
			}
			resps, status := ic.do(fmt.Sprintf("UID FETCH %d (BINARY.PEEK[%s] BINARY.SIZE[%s])", app.UID, part, part))
			if tc.Unknown {
				if !strings.HasPrefix(status, "NO [UNKNOWN-CTE]") {
					t.Errorf("BINARY of an unknown encoding: %q %q, want NO [UNKNOWN-CTE]", resps, status)
				}
				return
			}
			if !strings.HasPrefix(status, "OK") || len(resps) != 1 {
				t.Fatalf("FETCH: %q %q", resps, status)
			}
			bin, size, ok := binaryItems(resps[0], part)
			if !ok {
				t.Fatalf("FETCH response %q", resps[0])
			}
			if bin != string(download) || size != len(download) {
				t.Errorf("BINARY %q, BINARY.SIZE %d; download %q", bin, size, download)
			}
		})
	}
}

// binaryItems picks BINARY[part]'s literal and BINARY.SIZE[part] out of
// a FETCH response.
func binaryItems(resp, part string) (string, int, bool) {
	_, rest, ok := strings.Cut(resp, "BINARY["+part+"] ")
	if !ok {
		return "", 0, false
	}
	m := regexp.MustCompile(`^~?\{(\d+)\}\r\n`).FindStringSubmatch(rest)
	if m == nil {
		return "", 0, false
	}
	n, _ := strconv.Atoi(m[1])
	rest = rest[len(m[0]):]
	if len(rest) < n {
		return "", 0, false
	}
	bin := rest[:n]
	_, sz, ok := strings.Cut(rest[n:], "BINARY.SIZE["+part+"] ")
	if !ok {
		return "", 0, false
	}
	sz, _, _ = strings.Cut(sz, ")")
	sz, _, _ = strings.Cut(sz, " ")
	size, err := strconv.Atoi(sz)
	return bin, size, err == nil
}
