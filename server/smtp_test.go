package server

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"basalt/internal/testsupport/storetest"
	protosmtp "basalt/protocols/smtp"
	"basalt/session"
	"basalt/store"
)

// TestListenUnix: a socket left by an earlier run is replaced; any other
// file in its place is left alone and refused.
func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lmtp.sock")
	ln, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	// A crash leaves the socket file behind; unlink-on-close is off to
	// play one.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	ln, err = listenUnix(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	file := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("the file was touched")
	}
}

// TestMailWiring: the daemon's mail listeners run over the services Open
// builds: a user logs in over loopback (where AUTH needs no TLS) and
// submits, LMTP answers on its unix socket, and a recipient that fails
// after DATA comes back to the local sender as a bounce in their INBOX.
func TestMailWiring(t *testing.T) {
	data := t.TempDir()
	sock := filepath.Join(data, "lmtp.sock")
	svc, cfg := openServices(t, data, "mx_listen = \"127.0.0.1:0\"\nsubmission_listen = \"127.0.0.1:0\"\n"+
		"submissions_listen = \"127.0.0.1:0\"\nlmtp_listen = \"off\"\nlmtp_socket = \""+sock+"\"\n")
	ctx := context.Background()
	quota := int64(1500)
	for _, nu := range []session.NewUser{{Address: "alice@example.org"}, {Address: "bob@example.org"},
		{Address: "tight@example.org", Overrides: store.LimitOverrides{QuotaBytes: &quota}}} {
		nu.Password = "password one"
		if _, err := svc.Session.CreateUser(ctx, nu); err != nil {
			t.Fatal(err)
		}
	}
	tlsCfg, err := cfg.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := svc.listenMail(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	serveFrontEnds(t, m)
	addr := map[protosmtp.Role]string{}
	for _, l := range m.lns {
		addr[l.role] = l.ln.Addr().String()
	}
	if len(m.lns) != 4 || addr[protosmtp.RoleLMTP] != sock {
		t.Fatalf("listeners: %v", m.addrs())
	}

	c, err := gosmtp.Dial(addr[protosmtp.RoleSubmission])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "password one")); err != nil {
		t.Fatal(err)
	}
	msg := "From: alice@example.org\r\nTo: bob@example.org, tight@example.org\r\nSubject: wired\r\n\r\n" +
		strings.Repeat("a line of text that fills up the message\r\n", 50)
	if err := c.SendMail("alice@example.org", []string{"bob@example.org", "tight@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	inbox := func(addr string) []string {
		u, err := svc.Store.UserByAddress(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Messages(t, svc.Store.Account(u.ID, nil), "INBOX")
	}
	if got := inbox("bob@example.org"); len(got) != 1 || !strings.Contains(got[0], "Subject: wired") {
		t.Fatalf("bob: %q", got)
	}
	bounced := inbox("alice@example.org")
	if len(bounced) != 1 || !strings.Contains(bounced[0], "Final-Recipient: rfc822; tight@example.org") ||
		!strings.HasPrefix(bounced[0], "Return-Path: <>\r\n") {
		t.Fatalf("alice's bounce: %q", bounced)
	}

	lc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	lc.SetDeadline(time.Now().Add(10 * time.Second))
	if line, _ := bufio.NewReader(lc).ReadString('\n'); !strings.HasPrefix(line, "220 mx.test LMTP") {
		t.Fatalf("LMTP greeting %q", line)
	}
}
