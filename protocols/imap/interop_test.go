package imap

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// run runs a client program with a time limit and returns its output.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Python's imaplib through a session that uses every command the server
// implements: testdata/imaplib_session.py. The client is remote as far
// as plaintext login goes, so it needs STARTTLS first.
func TestInteropImaplib(t *testing.T) {
	python := testsupport.NeedCommand(t, "python3")
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db, remote: true, cram: true})
		h.user("alice@example.org", false)
		out := run(t, nil, python, "testdata/imaplib_session.py", "127.0.0.1", port(h.addr), "alice@example.org", storetest.Password, h.caFile)
		if !strings.Contains(out, "ALL OK") {
			t.Fatalf("imaplib session:\n%s", out)
		}
	})
}

// curl lists mailboxes, fetches a message and uploads one, over STARTTLS
// and over implicit TLS.
func TestInteropCurl(t *testing.T) {
	curl := testsupport.NeedCommand(t, "curl")
	h := start(t, setup{remote: true})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("for curl", "Fetched by curl."), store.AppendOptions{})
	upload := filepath.Join(t.TempDir(), "up.eml")
	if err := os.WriteFile(upload, msg("uploaded by curl", "Sent with curl -T."), 0o600); err != nil {
		t.Fatal(err)
	}
	user := "alice@example.org:" + storetest.Password
	for _, tc := range []struct{ name, base string }{
		{"starttls", "imap://" + testHost + ":" + port(h.addr)},
		{"imaps", "imaps://" + testHost + ":" + port(h.tlsAddr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			common := []string{"-sS", "--max-time", "30", "--ssl-reqd", "--cacert", h.caFile,
				"--resolve", testHost + ":" + port(h.addr) + ":127.0.0.1", "--resolve", testHost + ":" + port(h.tlsAddr) + ":127.0.0.1", "--user", user}
			list := run(t, nil, curl, append(common, tc.base+"/")...)
			for _, want := range []string{`"/" INBOX`, `\Drafts`, `"Archive"`} {
				if !strings.Contains(list, want) {
					t.Errorf("curl LIST:\n%s\nlacks %s", list, want)
				}
			}
			body := run(t, nil, curl, append(common, tc.base+"/INBOX;UID=1")...)
			if !strings.Contains(body, "Subject: for curl") || !strings.Contains(body, "Fetched by curl.") {
				t.Errorf("curl FETCH:\n%s", body)
			}
			run(t, nil, curl, append(common, "-T", upload, tc.base+"/Drafts")...)
		})
	}
	got := storetest.Messages(t, h.env.Account(alice), "Drafts")
	if len(got) != 2 || !strings.Contains(got[0], "Sent with curl -T.") {
		t.Errorf("Drafts after two uploads: %q", got)
	}
}

// mbsync (isync) keeps INBOX and a local Maildir in step both ways: new
// messages and flag changes on each side, and an expunge.
func TestInteropMbsync(t *testing.T) {
	mbsync := testsupport.NeedCommand(t, "mbsync")
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("server one", "1"), store.AppendOptions{})
	h.deliver(alice, "INBOX", msg("server two", "2"), store.AppendOptions{})

	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	rc := filepath.Join(dir, "mbsyncrc")
	config := fmt.Sprintf(`IMAPAccount basalt
Host 127.0.0.1
Port %s
User alice@example.org
Pass "%s"
SSLType None
AuthMechs PLAIN

IMAPStore remote
Account basalt

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel inbox
Far :remote:INBOX
Near :local:INBOX
Create Both
Expunge Both
SyncState *
Sync All
`, port(h.addr), storetest.Password, maildir, maildir)
	if err := os.WriteFile(rc, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir}
	sync := func() { run(t, env, mbsync, "-c", rc, "-a") }
	local := func() map[string]string { // file name -> content
		out := map[string]string{}
		for _, sub := range []string{"new", "cur"} {
			files, _ := filepath.Glob(filepath.Join(maildir, "INBOX", sub, "*"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				out[f] = string(b)
			}
		}
		return out
	}
	find := func(m map[string]string, sub string) string {
		for f, b := range m {
			if strings.Contains(b, sub) {
				return f
			}
		}
		return ""
	}

	sync()
	files := local()
	if len(files) != 2 || find(files, "server one") == "" {
		t.Fatalf("after the first sync the Maildir holds %d messages", len(files))
	}
	// Local side: read "server one", delete "server two", write a new one.
	one := find(files, "server one")
	seen := filepath.Join(maildir, "INBOX", "cur", strings.Split(filepath.Base(one), ":")[0]+":2,S")
	if err := os.Rename(one, seen); err != nil {
		t.Fatal(err)
	}
	two := find(files, "server two")
	if err := os.Rename(two, filepath.Join(maildir, "INBOX", "cur", strings.Split(filepath.Base(two), ":")[0]+":2,T")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(maildir, "INBOX", "new", "1700000000.local.host"), msg("written locally", "3"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Server side: a new message, and a flag on one.
	h.deliver(alice, "INBOX", msg("server three", "4"), store.AppendOptions{})
	acct := h.env.Account(alice)
	inbox := storetest.Inbox(t, acct)
	if _, err := acct.SetFlags(context.Background(), inbox, store.UIDSet{{Start: 1, Stop: 1}}, store.FlagAdd, store.FlagFlagged, nil); err != nil {
		t.Fatal(err)
	}

	sync()
	msgs, err := acct.List(context.Background(), inbox, store.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	raw := storetest.Messages(t, acct, "INBOX")
	byText := map[string]store.Flags{}
	for i, m := range msgs {
		byText[raw[i]] = m.Flags
	}
	check := func(sub string, want store.Flags) {
		t.Helper()
		for text, f := range byText {
			if strings.Contains(text, sub) {
				if !f.Has(want) {
					t.Errorf("server: %q has flags %v, want %v", sub, f, want)
				}
				return
			}
		}
		t.Errorf("server: no message %q (have %d)", sub, len(byText))
	}
	check("server one", store.FlagSeen|store.FlagFlagged)
	check("written locally", 0)
	check("server three", 0)
	if len(msgs) != 3 {
		t.Errorf("server INBOX holds %d messages, want 3 (the one deleted locally expunged)", len(msgs))
	}
	files = local()
	if len(files) != 3 || find(files, "server three") == "" || find(files, "server two") != "" {
		t.Errorf("Maildir after the second sync: %v", keys(files))
	}
	if f := find(files, "server one"); !strings.HasSuffix(f, ":2,FS") {
		t.Errorf("the flag set on the server did not reach the Maildir: %s", f)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, filepath.Base(k))
	}
	return out
}

// mutt reads INBOX over IMAP in batch mode (under a pseudo-terminal, as
// it insists on one): it opens a message, which marks it seen, and pipes
// it to a file.
func TestInteropMutt(t *testing.T) {
	mutt := testsupport.NeedCommand(t, "mutt")
	script := testsupport.NeedCommand(t, "script")
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("read me with mutt", "The body mutt saves."), store.AppendOptions{})

	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.txt")
	rc := filepath.Join(dir, "muttrc")
	config := fmt.Sprintf(`set folder="imap://alice%%40example.org@127.0.0.1:%s/"
set spoolfile="+INBOX"
set imap_pass="%s"
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set quit=yes
set wait_key=no
set confirmappend=no
set mark_old=no
set move=no
set beep=no
set pipe_decode=no
set imap_check_subscribed=no
`, port(h.addr), storetest.Password)
	if err := os.WriteFile(rc, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := fmt.Sprintf(`push "<display-message><exit><pipe-message>cat > %s<enter><sync-mailbox><quit>"`, saved)
	cmdline := fmt.Sprintf("%s -n -F %s -e '%s'", mutt, rc, keys)
	run(t, []string{"HOME=" + dir, "TERM=vt100"}, script, "-qec", cmdline, "/dev/null")

	b, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(b), "The body mutt saves.") {
		t.Fatalf("mutt saved %q, %v", b, err)
	}
	acct := h.env.Account(alice)
	ms, err := acct.List(context.Background(), storetest.Inbox(t, acct), store.ListQuery{})
	if err != nil || len(ms) != 1 || !ms[0].Flags.Has(store.FlagSeen) {
		t.Fatalf("after mutt read it the message is %+v, %v; want \\Seen", ms, err)
	}
}
