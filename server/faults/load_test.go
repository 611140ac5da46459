package faults

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ledger records every message the load tried to store, and which of
// them a client was told were stored.
type ledger struct {
	mu    sync.Mutex
	seq   atomic.Int64
	sent  map[string]sentMsg // by Message-ID, or by Subject for webmail sends
	acked map[string]bool
}

// sentMsg is what a stored copy must end with: the message as sent
// (delivery puts its trace headers before it). A webmail send is built by
// the server, so only its presence is checked (size 0).
type sentMsg struct {
	user string // whose INBOX it goes to
	size int
	sum  [32]byte
}

func newLedger() *ledger {
	return &ledger{sent: map[string]sentMsg{}, acked: map[string]bool{}}
}

// message makes a message for user with a Message-ID of its own and
// records it as sent. One in five is larger than storage.inline_max's
// default (64 KiB), so both message files and inline rows are written.
func (l *ledger) message(kind, user string) (string, []byte) {
	n := l.seq.Add(1)
	id := fmt.Sprintf("%s.%d.%08x@faults.test", kind, n, rand.Uint32())
	size := 500 + rand.IntN(4000)
	if n%5 == 0 {
		size = 70_000 + rand.IntN(60_000)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: load@load.test\r\nTo: %s\r\nMessage-ID: <%s>\r\nSubject: %s %d\r\nDate: %s\r\n\r\n",
		user, id, kind, n, time.Now().Format(time.RFC1123Z))
	line := make([]byte, 0, 80)
	for b.Len() < size {
		line = line[:0]
		for range 19 {
			line = fmt.Appendf(line, "%04x", rand.Uint32()&0xffff)
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	raw := b.Bytes()
	l.note(id, user, raw)
	return id, raw
}

// note records raw as sent to user under id.
func (l *ledger) note(id, user string, raw []byte) {
	l.mu.Lock()
	l.sent[id] = sentMsg{user: user, size: len(raw), sum: sha256.Sum256(raw)}
	l.mu.Unlock()
}

// presence records a message that is checked by key alone.
func (l *ledger) presence(key, user string) {
	l.mu.Lock()
	l.sent[key] = sentMsg{user: user}
	l.mu.Unlock()
}

func (l *ledger) ack(key string) {
	l.mu.Lock()
	l.acked[key] = true
	l.mu.Unlock()
}

func (l *ledger) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// obs is the outcome of one operation of the load.
type obs struct {
	at     time.Time
	kind   string // "smtp", "imap", "rpc"
	ok     bool
	detail string // the refusal: "451 4.3.0", "NO UNAVAILABLE", "-32006"
}

// load runs SMTP ingest, IMAP sessions and webmail calls against a node
// until stopped, recording every outcome.
type load struct {
	n     *node
	l     *ledger
	users []string
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	obs   []obs
}

func startLoad(n *node, l *ledger, users []string) *load {
	ld := &load{n: n, l: l, users: users, stopc: make(chan struct{})}
	for i := range 3 {
		ld.wg.Add(1)
		go ld.smtp(i)
	}
	for i := range 2 {
		ld.wg.Add(1)
		go ld.imap(i)
	}
	ld.wg.Add(1)
	go ld.rpc()
	return ld
}

func (ld *load) stop() {
	close(ld.stopc)
	ld.wg.Wait()
}

func (ld *load) stopped() bool {
	select {
	case <-ld.stopc:
		return true
	default:
		return false
	}
}

// pause waits d, or less when the load stops.
func (ld *load) pause(d time.Duration) {
	select {
	case <-ld.stopc:
	case <-time.After(d):
	}
}

func (ld *load) record(kind string, ok bool, detail string) {
	ld.mu.Lock()
	ld.obs = append(ld.obs, obs{at: time.Now(), kind: kind, ok: ok, detail: detail})
	ld.mu.Unlock()
}

// since returns the outcomes from t on.
func (ld *load) since(t time.Time) []obs {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	var out []obs
	for _, o := range ld.obs {
		if !o.at.Before(t) {
			out = append(out, o)
		}
	}
	return out
}

func (ld *load) smtp(i int) {
	defer ld.wg.Done()
	c := &smtpClient{addr: ld.n.smtp}
	defer c.close()
	for k := 0; !ld.stopped(); k++ {
		user := ld.users[(i+k)%len(ld.users)]
		id, raw := ld.l.message("smtp", user)
		r := c.send("load@load.test", user, raw)
		if r.code == 250 {
			ld.l.ack(id)
		}
		ld.record("smtp", r.code == 250, r.String())
		if r.code != 250 {
			ld.pause(50 * time.Millisecond)
		} else {
			ld.pause(10 * time.Millisecond)
		}
	}
}

func (ld *load) imap(i int) {
	defer ld.wg.Done()
	user := ld.users[i%len(ld.users)]
	var c *imapClient
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	for k := 0; !ld.stopped(); k++ {
		if c == nil {
			var err error
			if c, err = loginIMAP(ld.n.imap, user); err != nil {
				ld.record("imap", false, "login: "+err.Error())
				c = nil
				ld.pause(100 * time.Millisecond)
				continue
			}
		}
		var r imapResp
		var err error
		switch k % 5 {
		case 0:
			r, err = c.cmd("NOOP")
		case 1:
			r, err = c.cmd("STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
		case 2:
			r, err = c.cmd("FETCH 1:* (FLAGS)")
		case 3:
			var id string
			var raw []byte
			id, raw = ld.l.message("imap", user)
			if r, err = c.appendMsg("INBOX", raw); err == nil && r.status == "OK" {
				ld.l.ack(id)
			}
		case 4:
			r, err = c.cmd("UID SEARCH ALL")
		}
		if err != nil {
			ld.record("imap", false, "connection: "+err.Error())
			c.close()
			c = nil
			ld.pause(50 * time.Millisecond)
			continue
		}
		detail := r.status
		if code := r.code(); code != "" {
			detail += " " + code
		}
		ld.record("imap", r.status == "OK", detail)
		if r.status != "OK" {
			ld.pause(50 * time.Millisecond)
		} else {
			ld.pause(10 * time.Millisecond)
		}
	}
}

func (ld *load) rpc() {
	defer ld.wg.Done()
	user, to := ld.users[0], ld.users[len(ld.users)-1]
	var c *rpcClient
	var inbox int64
	for k := 0; !ld.stopped(); k++ {
		var e *rpcError
		if c == nil {
			c = newRPC(ld.n.http)
			if e = c.login(user); e == nil {
				inbox, e = c.inboxID()
			}
			if e != nil {
				ld.record("rpc", false, "login: "+rpcDetail(e))
				c = nil
				ld.pause(100 * time.Millisecond)
				continue
			}
		}
		switch k % 4 {
		case 0:
			e = c.call("folders.list", map[string]any{}, nil)
		case 1, 2:
			e = c.call("messages.list", map[string]any{"folderID": inbox, "limit": 20}, nil)
		case 3:
			subject := fmt.Sprintf("rpc-%d-%08x", ld.l.seq.Add(1), rand.Uint32())
			ld.l.presence(subject, to)
			if e = c.send([]string{to}, subject, "sent from the webmail under load\r\n"); e == nil {
				ld.l.ack(subject)
			}
		}
		ld.record("rpc", e == nil, rpcDetail(e))
		if e != nil && (e.Code == -32001 || e.Code == -32002) {
			c = nil // log in again
		}
		if e != nil {
			ld.pause(50 * time.Millisecond)
		} else {
			ld.pause(10 * time.Millisecond)
		}
	}
}

func rpcDetail(e *rpcError) string {
	if e == nil {
		return ""
	}
	if e.Code == 0 {
		return "connection: " + e.Error()
	}
	return fmt.Sprintf("%d %s", e.Code, e.Message)
}

// wrong lists the outcomes no fault may ever cause: a permanent SMTP
// refusal, an IMAP BAD or SERVERBUG, a JSON-RPC internal error.
func wrong(os []obs) []obs {
	var out []obs
	for _, o := range os {
		if o.ok {
			continue
		}
		d := strings.TrimPrefix(o.detail, "login: ")
		switch o.kind {
		case "smtp":
			if strings.HasPrefix(d, "5") {
				out = append(out, o)
			}
		case "imap":
			if strings.Contains(d, "BAD") || strings.Contains(d, "SERVERBUG") {
				out = append(out, o)
			}
		case "rpc":
			if strings.HasPrefix(d, "-32603") || strings.HasPrefix(d, "-32600") || strings.HasPrefix(d, "-32602") {
				out = append(out, o)
			}
		}
	}
	return out
}

// summary counts outcomes by kind and detail, for the test's log.
func summary(os []obs) string {
	counts := map[string]int{}
	for _, o := range os {
		d := o.detail
		if o.ok {
			d = "ok"
		}
		if strings.HasPrefix(d, "connection: ") {
			d = "connection"
		}
		d, _, _ = strings.Cut(d, " (")
		counts[o.kind+" "+d]++
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, counts[k])
	}
	return b.String()
}

// recovered returns when every kind of operation last failed after t, and
// whether each kind has succeeded since its last failure.
func recovered(os []obs) (time.Time, bool) {
	last := map[string]time.Time{}
	okAfter := map[string]bool{}
	var at time.Time
	for _, o := range os {
		if !o.ok {
			last[o.kind] = o.at
			okAfter[o.kind] = false
			if o.at.After(at) {
				at = o.at
			}
		} else {
			okAfter[o.kind] = true
		}
	}
	for _, k := range []string{"smtp", "imap", "rpc"} {
		if !okAfter[k] {
			return at, false
		}
	}
	return at, true
}

var (
	messageIDRE = regexp.MustCompile(`(?im)^Message-ID: <([^>]+)>\r?$`)
	subjectRE   = regexp.MustCompile(`(?im)^Subject: (rpc-[0-9]+-[0-9a-f]+)\r?$`)
)

// mailbox is what verification has seen of one user's INBOX.
type mailbox struct {
	next uint32          // the UID to fetch from next time
	seen map[string]bool // ledger keys found
}

// census checks the messages of users' INBOXes with UIDs from where the
// last census stopped: each one the load sent must be whole (its stored
// copy ends with exactly the bytes sent). It returns the problems found.
func census(n *node, l *ledger, boxes map[string]*mailbox) []string {
	var problems []string
	l.mu.Lock()
	defer l.mu.Unlock()
	for user, box := range boxes {
		c, err := loginIMAP(n.imap, user)
		if err != nil {
			return append(problems, fmt.Sprintf("%s: %v", user, err))
		}
		if box.next == 0 {
			box.next = 1
		}
		msgs, err := c.fetchAll(box.next)
		c.close()
		if err != nil {
			return append(problems, fmt.Sprintf("%s: %v", user, err))
		}
		for uid, raw := range msgs {
			if uid >= box.next {
				box.next = uid + 1
			}
			key := ""
			if m := messageIDRE.FindSubmatch(raw); m != nil && strings.HasSuffix(string(m[1]), "@faults.test") {
				key = string(m[1])
			} else if m := subjectRE.FindSubmatch(raw); m != nil {
				key = string(m[1])
			}
			s, ok := l.sent[key]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s UID %d: a message the load did not send (%d bytes)", user, uid, len(raw)))
				continue
			}
			if s.size > 0 && (len(raw) < s.size || sha256.Sum256(raw[len(raw)-s.size:]) != s.sum) {
				problems = append(problems, fmt.Sprintf("%s UID %d: %s is not whole: %d bytes stored, %d sent", user, uid, key, len(raw), s.size))
				continue
			}
			box.seen[key] = true
		}
	}
	return problems
}

// missing lists the acknowledged messages no census has found.
func missing(l *ledger, boxes map[string]*mailbox) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for key := range l.acked {
		if !boxes[l.sent[key].user].seen[key] {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

func newBoxes(users ...string) map[string]*mailbox {
	m := map[string]*mailbox{}
	for _, u := range users {
		m[u] = &mailbox{seen: map[string]bool{}}
	}
	return m
}

// verify takes a census of every message and fails the test for any that
// is not whole and for any acknowledged one that is missing.
func verify(t *testing.T, n *node, l *ledger, users []string) (acked, found int) {
	t.Helper()
	boxes := newBoxes(users...)
	for _, p := range census(n, l, boxes) {
		t.Error(p)
	}
	lost := missing(l, boxes)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages lost, first %v", len(lost), lost[:min(5, len(lost))])
	}
	for _, b := range boxes {
		found += len(b.seen)
	}
	return l.ackCount(), found
}
