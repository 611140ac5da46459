package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"basalt/server"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it; it is unmounted when the test ends. Without the right to mount the
// test is skipped, or fails under CI=true, where it runs as root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs on %s: %v (the disk-full test needs root, as CI runs it)", dir, err)
		}
		t.Skipf("cannot mount a tmpfs (%v): the disk-full test needs root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the file system has no room left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, chunk := range []int{64 << 10, 4 << 10, 512} {
		for {
			if _, err := f.Write(buf[:chunk]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return p
}

// TestDiskFull fills the file system the data directory (SQLite's
// database and the message files) is on, under the load. Mail is
// answered 452 4.3.1 (RFC 5321 4.2.2's "insufficient system storage",
// RFC 3463's X.3.1 "mail system full"); an IMAP APPEND NO [UNAVAILABLE]
// (RFC 5530 3: the temporary failure of a subsystem; OVERQUOTA would send
// the user deleting mail of theirs, LIMIT say that retrying is useless);
// a webmail send the unavailable code. Nothing is left half-written, and
// once there is room again everything works.
func TestDiskFull(t *testing.T) {
	// Room for what the load writes in the test, at full speed; the
	// filler takes the rest.
	data := mountTmpfs(t, "64m")
	users := []string{"a@example.org", "b@example.org"}
	n := newNode(t, options{dataDir: data}, users...)
	n.start()
	l := newLedger()
	ld := startLoad(n, l, users)
	time.Sleep(time.Second)

	// Probes made while the disk is full, and again after: each message
	// is larger than storage.inline_max, so it needs a file.
	smtp := &smtpClient{addr: n.smtp}
	defer smtp.close()
	imap, err := loginIMAP(n.imap, users[0])
	if err != nil {
		t.Fatal(err)
	}
	defer imap.close()
	web := newRPC(n.http)
	if e := web.login(users[0]); e != nil {
		t.Fatal(e)
	}
	big := strings.Repeat("a line of text to fill the message past the inline limit\r\n", 2000)
	bigMessage := func(user string) []byte {
		id, raw := l.message("probe", user)
		raw = append(raw, big...)
		l.note(id, user, raw)
		return raw
	}
	probe := func(full bool, composeID int64) {
		t.Helper()
		raw := bigMessage(users[1])
		r := smtp.send("load@load.test", users[1], raw)
		if r.code == 250 {
			l.ack(messageIDRE.FindStringSubmatch(string(raw))[1])
		}
		if full && (r.code != 452 || r.enhanced != "4.3.1") {
			t.Errorf("SMTP with the disk full: %s, want 452 4.3.1", r)
		}
		if !full && r.code != 250 {
			t.Errorf("SMTP with room again: %s", r)
		}
		raw = bigMessage(users[0])
		ar, err := imap.appendMsg("INBOX", raw)
		if err == nil && ar.status == "OK" {
			l.ack(messageIDRE.FindStringSubmatch(string(raw))[1])
		}
		switch {
		case err != nil:
			t.Errorf("APPEND: %v", err)
		case full && (ar.status != "NO" || ar.code() != "UNAVAILABLE"):
			t.Errorf("APPEND with the disk full: %s, want NO [UNAVAILABLE]", ar)
		case !full && ar.status != "OK":
			t.Errorf("APPEND with room again: %s", ar)
		}
		// The compose is opened before the disk fills: it is the send
		// that meets the full disk, not the compose's own row.
		subject := fmt.Sprintf("rpc-%d-%08x", l.seq.Add(1), rand.Uint32())
		l.presence(subject, users[1])
		e := web.sendCompose(composeID, []string{users[1]}, subject, big)
		if e == nil {
			l.ack(subject)
		}
		switch {
		case full && (e == nil || e.Code != -32006):
			t.Errorf("webmail send with the disk full: %v, want the unavailable code -32006", e)
		case !full && e != nil:
			t.Errorf("webmail send with room again: %v", e)
		}
	}

	composeFull, e := web.compose()
	if e != nil {
		t.Fatal(e)
	}
	full := time.Now()
	filler := fill(t, data)
	time.Sleep(500 * time.Millisecond)
	probe(true, composeFull)
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	room := time.Now()
	composeRoom, e := web.compose()
	if e != nil {
		t.Errorf("messages.compose with room again: %v", e)
	}
	probe(false, composeRoom)
	for deadline := room.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if at, ok := recovered(ld.since(room)); ok && time.Since(at) > time.Second && time.Since(room) > time.Second {
			break
		}
	}
	ld.stop()
	all := ld.since(time.Time{})
	t.Logf("before: %s", summary(all[:len(all)-len(ld.since(full))]))
	t.Logf("disk full: %s", summary(ld.since(full)[:len(ld.since(full))-len(ld.since(room))]))
	t.Logf("room again: %s", summary(ld.since(room)))
	for _, o := range wrong(all) {
		t.Errorf("%s at %v after the disk filled: %s", o.kind, o.at.Sub(full).Round(time.Millisecond), o.detail)
	}
	if at, ok := recovered(ld.since(room)); !ok || at.Sub(room) > 5*time.Second {
		t.Errorf("not working again within 5 s of room being made: %s", summary(ld.since(room)))
	}
	acked, found := verify(t, n, l, users)
	t.Logf("messages acknowledged %d, found whole %d", acked, found)
	n.stop()

	// Nothing half-written: no temporary file of a message left behind,
	// and the database intact.
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("a partial message file is left: %s", p)
		}
		return nil
	})
	svc, err := server.Open(context.Background(), n.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	var check string
	if err := svc.DB.Get(context.Background(), &check, "PRAGMA integrity_check"); err != nil || check != "ok" {
		t.Errorf("SQLite integrity_check: %q %v", check, err)
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", tail(n.d.Log.String(), 60))
	}
}
