package faults

import (
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// TestMariaDBRestart stops the database under the load and starts it
// again. While it is gone every client is told to come back later: SMTP
// 4xx, IMAP NO [UNAVAILABLE], JSON-RPC the unavailable code (-32006),
// never a permanent refusal or an internal error. Within 5 seconds of
// its return every kind of call works again, without restarting Basalt,
// and every message acknowledged is in the store, whole.
func TestMariaDBRestart(t *testing.T) {
	db := testsupport.StartMariaDB(t)
	redisAddr, prefix := testsupport.Redis(t)
	users := []string{"a@example.org", "b@example.org"}
	n := newNode(t, options{driver: "mysql", dsn: db.CreateDatabase("basalt"), redisAddr: redisAddr, prefix: prefix}, users...)
	n.start()
	l := newLedger()
	ld := startLoad(n, l, users)
	time.Sleep(1500 * time.Millisecond)

	down := time.Now()
	db.Stop()
	stopped := time.Now()
	time.Sleep(3 * time.Second)
	db.Start()
	back := time.Now()
	t.Logf("MariaDB stopped in %v, down for %v", stopped.Sub(down).Round(time.Millisecond), back.Sub(down).Round(time.Millisecond))

	// The load runs on until every kind of call has worked for a second
	// since its last failure, or 10 seconds.
	var lastFail time.Time
	for deadline := back.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		at, ok := recovered(ld.since(back))
		lastFail = at
		if ok && time.Since(at) > time.Second && time.Since(back) > time.Second {
			break
		}
	}
	ld.stop()

	during := ld.since(down)
	var outage []obs
	for _, o := range during {
		if o.at.Before(back) {
			outage = append(outage, o)
		}
	}
	t.Logf("before: %s", summary(ld.since(time.Time{})[:len(ld.since(time.Time{}))-len(during)]))
	t.Logf("outage: %s", summary(outage))
	t.Logf("after:  %s", summary(ld.since(back)))
	// An IMAP session outlives the outage: the server answers, it does
	// not hang up (go-imap ends the connection when a poll fails).
	for _, o := range during {
		if o.kind == "imap" && strings.HasPrefix(o.detail, "connection: ") {
			t.Errorf("IMAP connection lost %v into the outage: %s", o.at.Sub(down).Round(time.Millisecond), o.detail)
		}
	}
	for _, o := range wrong(ld.since(time.Time{})) {
		t.Errorf("%s at %v into the outage: %s", o.kind, o.at.Sub(down).Round(time.Millisecond), o.detail)
	}
	// Each kind was refused, as it should be, during the outage.
	want := map[string]func(string) bool{
		"smtp": func(d string) bool { return strings.HasPrefix(d, "4") },
		"imap": func(d string) bool { return d == "NO UNAVAILABLE" },
		"rpc":  func(d string) bool { return strings.HasPrefix(d, "-32006") },
	}
	for kind, ok := range want {
		seen := false
		for _, o := range outage {
			if o.kind == kind && !o.ok && ok(o.detail) {
				seen = true
			}
		}
		if !seen {
			t.Errorf("%s: no temporary refusal during the outage (%s)", kind, summary(outage))
		}
	}
	recovery := time.Duration(0)
	if lastFail.After(back) {
		recovery = lastFail.Sub(back)
	}
	first := map[string]time.Duration{}
	for _, o := range ld.since(back) {
		if _, ok := first[o.kind]; !ok && o.ok {
			first[o.kind] = o.at.Sub(back).Round(time.Millisecond)
		}
	}
	t.Logf("last failure %v after MariaDB answered again; first success after it: %v", recovery.Round(time.Millisecond), first)
	if _, ok := recovered(ld.since(back)); !ok || recovery > 5*time.Second {
		t.Errorf("not working again within 5 s of MariaDB's return (last failure %v after): %s", recovery, summary(ld.since(back)))
	}
	acked, found := verify(t, n, l, users)
	t.Logf("messages acknowledged %d, found whole %d", acked, found)
	n.stop()
	if t.Failed() {
		t.Logf("daemon log:\n%s", tail(n.d.Log.String(), 60))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
