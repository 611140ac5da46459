package faults

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
)

// TestKill9 kills the daemon with SIGKILL under the load, twenty times,
// at a random moment, and starts it again over the same data directory:
// on SQLite (Basalt's own durability, with nothing of a database
// server's in between) and on MariaDB (the message files' fsyncs against
// another process's commits). After each restart every message a client
// was told was stored before the kill is there, whole, and so is every
// other message the store kept.
func TestKill9(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		kill9(t, options{driver: db.Driver, dsn: db.DSN})
	})
}

func kill9(t *testing.T, o options) {
	const rounds = 20
	users := []string{"a@example.org", "b@example.org"}
	n := newNode(t, o, users...)
	l := newLedger()
	boxes := newBoxes(users...)
	begin := time.Now()
	var lost int
	for round := 1; ; round++ {
		startup := n.start()
		before := l.ackCount()
		problems := census(n, l, boxes)
		for _, p := range problems {
			t.Errorf("round %d: %s", round, p)
		}
		gone := missing(l, boxes)
		lost = len(gone)
		found := 0
		for _, b := range boxes {
			found += len(b.seen)
		}
		if len(gone) > 0 {
			t.Errorf("round %d: %d acknowledged messages lost, first %v", round, len(gone), gone[:min(5, len(gone))])
		}
		if round > rounds {
			t.Logf("after %d kills: %d messages acknowledged, %d found whole (with those sent but not acknowledged), %d lost; %v in all",
				rounds, before, found, lost, time.Since(begin).Round(time.Millisecond))
			break
		}
		// The kill comes at a random moment once the load is flowing:
		// after the round's first acknowledged message.
		ld := startLoad(n, l, users)
		loadStart := time.Now()
		for deadline := loadStart.Add(10 * time.Second); l.ackCount() == before && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
		run := time.Since(loadStart).Round(time.Millisecond)
		n.d.Kill()
		ld.stop()
		n.checkLog()
		acked := l.ackCount() - before
		t.Logf("round %2d: started in %v, killed after %v under load (%s), %d acknowledged this round",
			round, startup.Round(time.Millisecond), run, brief(ld.since(time.Time{})), acked)
		for _, o := range wrong(ld.since(time.Time{})) {
			t.Errorf("round %d: %s: %s", round, o.kind, o.detail)
		}
		if acked == 0 {
			t.Errorf("round %d: the load stored nothing in %v", round, run)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", tail(n.d.Log.String(), 40))
			return
		}
	}
	n.stop()
}

// brief counts the successes of each kind of operation.
func brief(os []obs) string {
	ok := map[string]int{}
	for _, o := range os {
		if o.ok {
			ok[o.kind]++
		}
	}
	var b strings.Builder
	for _, k := range []string{"smtp", "imap", "rpc"} {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " " + strconv.Itoa(ok[k]))
	}
	return b.String()
}
