package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// TestRedisRestart restarts Redis (without persistence: it comes back
// empty) under the load. The cache and the change bus reconnect by
// themselves: an IMAP session in IDLE and a webmail event stream opened
// before the restart both learn of a message delivered while Redis was
// down and of one delivered after it came back, and every kind of call
// works again within 5 seconds.
func TestRedisRestart(t *testing.T) {
	rd := testsupport.StartRedis(t)
	users := []string{"a@example.org", "b@example.org"}
	const watcher = "w@example.org" // whom the load leaves alone
	n := newNode(t, options{driver: "mysql", dsn: testsupport.MySQLDSN(t), redisAddr: rd.Addr, prefix: "basalt:"}, append(users, watcher)...)
	n.start()
	l := newLedger()

	// The watchers: an IDLE session and an event stream, with the state
	// they start from.
	idle, err := loginIMAP(n.imap, watcher)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.close()
	fmt.Fprintf(idle.c, "i1 IDLE\r\n")
	idle.c.SetDeadline(time.Now().Add(time.Minute))
	if l, err := idle.line(); err != nil || !strings.HasPrefix(l.text, "+") {
		t.Fatalf("IDLE: %q %v", l.text, err)
	}
	web := newRPC(n.http)
	if e := web.login(watcher); e != nil {
		t.Fatal(e)
	}
	var start struct {
		State string `json:"state"`
	}
	if e := web.call("folders.list", map[string]any{}, &start); e != nil {
		t.Fatal(e)
	}
	ev, err := web.events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.close()
	if e := <-ev.C; e[0] != "state" {
		t.Fatalf("first event %v, want the state", e)
	}

	ld := startLoad(n, l, users)
	time.Sleep(time.Second)
	smtp := &smtpClient{addr: n.smtp}
	defer smtp.close()
	deliver := func(what string) {
		t.Helper()
		id, raw := l.message(what, watcher)
		if r := smtp.send("load@load.test", watcher, raw); r.code != 250 {
			t.Fatalf("delivery %s: %s", what, r)
		}
		l.ack(id)
	}

	down := time.Now()
	rd.Stop()
	time.Sleep(500 * time.Millisecond)
	// Mail keeps arriving with the cache gone: the store is the truth,
	// the cache only a copy of it.
	deliver("during")
	time.Sleep(time.Second)
	rd.Start()
	back := time.Now()
	t.Logf("Redis down for %v", back.Sub(down).Round(time.Millisecond))
	deliver("after")

	// IDLE shows both messages. It takes a few hundred milliseconds (the
	// bus resubscribing); the bound is wide for a loaded CI machine, where
	// it was once seen to take 5.8 s.
	const within = 10 * time.Second
	idleSaw := time.Duration(-1)
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		idle.c.SetReadDeadline(deadline)
		line, err := idle.line()
		if err != nil {
			break
		}
		if line.text == "* 2 EXISTS" {
			idleSaw = time.Since(back)
			break
		}
	}
	if idleSaw < 0 {
		t.Errorf("the IDLE session did not show both messages within %v of Redis's return", within)
	}
	// The event stream says something changed, and changes since the
	// state the client had lists both messages.
	streamSaw := time.Duration(-1)
	for deadline := time.After(within); streamSaw < 0; {
		select {
		case evt, ok := <-ev.C:
			if !ok {
				t.Errorf("the event stream ended")
				streamSaw = 0
				break
			}
			if evt[0] != "change" {
				continue
			}
			var ch struct {
				Messages struct {
					Created []string `json:"created"`
				} `json:"messages"`
			}
			e := web.call("changes", map[string]any{"since": start.State}, &ch)
			if e != nil && e.Code == -32002 {
				// Web sessions kept only in Redis end with its restart:
				// issue 9 part 5, another change's. The stream was open
				// before, and the state is the account's, so a new
				// login asks the same question.
				t.Logf("the webmail session did not survive the restart (%v); logging in again", e)
				if e = web.login(watcher); e == nil {
					e = web.call("changes", map[string]any{"since": start.State}, &ch)
				}
			}
			if e != nil {
				t.Errorf("changes: %v", e)
				streamSaw = 0
				break
			}
			if len(ch.Messages.Created) == 2 {
				streamSaw = time.Since(back)
			}
		case <-deadline:
			t.Errorf("the event stream did not announce both messages within %v of Redis's return", within)
			streamSaw = 0
		}
	}
	t.Logf("after Redis's return: IDLE saw both messages in %v, the event stream in %v", idleSaw.Round(time.Millisecond), streamSaw.Round(time.Millisecond))

	var lastFail time.Time
	for deadline := back.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		at, ok := recovered(ld.since(back))
		lastFail = at
		if ok && time.Since(at) > time.Second && time.Since(back) > time.Second {
			break
		}
	}
	ld.stop()
	all := ld.since(time.Time{})
	during := ld.since(down)
	t.Logf("before: %s", summary(all[:len(all)-len(during)]))
	t.Logf("outage and after: %s", summary(during))
	for _, o := range wrong(all) {
		t.Errorf("%s at %v into the outage: %s", o.kind, o.at.Sub(down).Round(time.Millisecond), o.detail)
	}
	if at, ok := recovered(ld.since(back)); !ok || at.Sub(back) > 5*time.Second {
		t.Errorf("not working again within 5 s of Redis's return (last failure %v after): %s", lastFail.Sub(back), summary(ld.since(back)))
	}
	acked, found := verify(t, n, l, append(users, watcher))
	t.Logf("messages acknowledged %d, found whole %d", acked, found)
	n.stop()
	if t.Failed() {
		t.Logf("daemon log:\n%s", tail(n.d.Log.String(), 60))
	}
}
