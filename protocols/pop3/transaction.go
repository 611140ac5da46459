package pop3

import (
	"errors"
	"fmt"
	"strconv"

	"basalt/store"
)

// The TRANSACTION and UPDATE states (RFC 1939 5 and 6). Messages are
// numbered from 1 in the list fixed at login; a number stays with its
// message until the session ends, deleted or not.

// totals counts the messages not marked deleted and their octets.
func (p *popSession) totals() (n int, size int64) {
	for i, m := range p.drop.Messages {
		if !p.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

// number parses a message number argument: decimal digits naming a
// message of the list that is not marked deleted (RFC 1939 5). It
// returns the message's index.
func (p *popSession) number(arg string) (int, *reply) {
	if len(arg) == 0 || len(arg) > 10 {
		return 0, errNoMessage
	}
	for _, c := range arg {
		if c < '0' || c > '9' {
			return 0, bad("Message numbers are decimal digits")
		}
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > len(p.drop.Messages) {
		return 0, errNoMessage
	}
	if p.deleted[n-1] {
		return 0, bad("Message %d already deleted", n)
	}
	return n - 1, nil
}

// oneNumber takes the single message number a command needs.
func (p *popSession) oneNumber(args []string) (int, *reply) {
	switch {
	case len(args) == 0:
		return 0, bad("Message number required")
	case len(args) > 1:
		return 0, errTooManyArgs
	}
	return p.number(args[0])
}

func (p *popSession) stat(args []string) bool {
	if len(args) > 0 {
		return p.refuse(errTooManyArgs)
	}
	n, size := p.totals()
	p.ok("%d %d", n, size) // RFC 1939 5: exactly "+OK nn mm"
	return true
}

// list answers LIST (RFC 1939 5) with the sizes of crlfLines' form, which is
// what RETR sends before dot-stuffing.
func (p *popSession) list(args []string) bool {
	return p.scan(args, func(i int) string { return strconv.FormatInt(p.drop.Messages[i].Size, 10) })
}

// uidl answers UIDL (RFC 1939 7). The id is the INBOX's UIDVALIDITY and
// the message's UID: unique, and the same in every session for as long as
// the message exists, since the INBOX can be neither deleted nor renamed.
func (p *popSession) uidl(args []string) bool {
	return p.scan(args, func(i int) string { return p.uniqueID(i) })
}

func (p *popSession) uniqueID(i int) string {
	return fmt.Sprintf("%08x%08x", p.drop.UIDValidity, p.drop.Messages[i].UID)
}

// scan is LIST and UIDL: one message's line, or every message not marked
// deleted as a multi-line answer.
func (p *popSession) scan(args []string, value func(i int) string) bool {
	switch len(args) {
	case 0:
	case 1:
		i, r := p.number(args[0])
		if r != nil {
			return p.refuse(r)
		}
		p.ok("%d %s", i+1, value(i))
		return true
	default:
		return p.refuse(errTooManyArgs)
	}
	n, size := p.totals()
	p.ok("%d messages (%d octets)", n, size)
	for i := range p.drop.Messages {
		if !p.deleted[i] {
			fmt.Fprintf(p.w, "%d %s\r\n", i+1, value(i))
		}
	}
	p.w.WriteString(".\r\n")
	return true
}

func (p *popSession) dele(args []string) bool {
	i, r := p.oneNumber(args)
	if r != nil {
		return p.refuse(r)
	}
	// Marking changes nothing yet (QUIT checks the lock again before it
	// removes anything), so the renewal loop's word is enough here.
	select {
	case <-p.lock.Lost():
		return p.refuse(errLockLost)
	default:
	}
	p.deleted[i] = true
	p.ok("Message %d deleted", i+1)
	return true
}

func (p *popSession) rset(args []string) bool {
	if len(args) > 0 {
		return p.refuse(errTooManyArgs)
	}
	clear(p.deleted)
	n, size := p.totals()
	p.ok("Maildrop has %d messages (%d octets)", n, size)
	return true
}

func (p *popSession) retr(args []string) bool {
	i, r := p.oneNumber(args)
	if r != nil {
		return p.refuse(r)
	}
	return p.send(i, -1)
}

// top answers TOP msg n (RFC 1939 7): the header, the blank line and the
// first n lines of the body.
func (p *popSession) top(args []string) bool {
	switch {
	case len(args) < 2:
		return p.refuse(bad("TOP needs a message number and a line count"))
	case len(args) > 2:
		return p.refuse(errTooManyArgs)
	}
	i, r := p.number(args[0])
	if r != nil {
		return p.refuse(r)
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || n < 0 || args[1][0] == '+' {
		return p.refuse(bad("The line count must be a non-negative number"))
	}
	return p.send(i, n)
}

// send streams message i from the store (all of it when bodyLines < 0,
// else the header and that many lines of the body), then marks it \Seen
// when it was sent whole. Once the +OK is out the message is committed:
// a failure after it leaves no way to tell the client, so the connection
// is closed and the client sees the missing terminator.
func (p *popSession) send(i int, bodyLines int64) bool {
	m := &p.drop.Messages[i]
	rc, err := p.acct.Open(p.ctx(), m.ID)
	if err == nil {
		rc = crlfLines(rc)
	}
	if errors.Is(err, store.ErrNotFound) {
		return p.refuse(&reply{text: fmt.Sprintf("Message %d was removed by another client", i+1)})
	}
	if err != nil {
		p.log.Error("pop3 open message", "id", m.ID, "err", err)
		return p.refuse(errTemporary)
	}
	defer rc.Close()
	if bodyLines < 0 {
		p.ok("%d octets", m.Size)
	} else {
		p.ok("Top of message %d follows", i+1)
	}
	n, err := writeMessage(p.w, rc, bodyLines)
	if err != nil {
		p.log.Error("pop3 send message", "id", m.ID, "err", err)
		return false
	}
	p.w.WriteString(".\r\n")
	if bodyLines >= 0 {
		return true
	}
	if n != m.Size {
		// The listing promised m.Size; the client may have been told wrong.
		p.log.Error("pop3 message size differs from its listing", "id", m.ID, "listed", m.Size, "sent", n)
	}
	if !m.Flags.Has(store.FlagSeen) {
		// \Seen is a change to the maildrop: only its holder makes it.
		if err := p.lock.Check(p.ctx()); err != nil {
			p.log.Warn("pop3 message not marked seen: maildrop lock not confirmed", "id", m.ID, "err", err)
			return true
		}
		uid := store.UIDSet{{Start: m.UID, Stop: m.UID}}
		if _, err := p.acct.SetFlags(p.ctx(), p.drop.MailboxID, uid, store.FlagAdd, store.FlagSeen, nil); err != nil {
			p.log.Warn("pop3 mark message seen", "id", m.ID, "err", err)
		} else {
			m.Flags |= store.FlagSeen
		}
	}
	return true
}

// maxRangesPerRemove keeps each removal within what one store call takes.
const maxRangesPerRemove = 1000

// update is QUIT in TRANSACTION (RFC 1939 6): the messages marked deleted
// are removed, and only now. If the maildrop lock was lost meanwhile
// another session may have the maildrop, and nothing is removed.
func (p *popSession) update() {
	p.state = stateUpdate
	var set store.UIDSet
	marked := 0
	for i, m := range p.drop.Messages {
		if !p.deleted[i] {
			continue
		}
		marked++
		// Neighbours in the list merge into one range: no message can
		// lie between them, as every UID given since login is larger.
		if i > 0 && p.deleted[i-1] {
			set[len(set)-1].Stop = m.UID
			continue
		}
		set = append(set, store.UIDRange{Start: m.UID, Stop: m.UID})
	}
	left, _ := p.totals()
	if marked == 0 {
		p.release()
		p.ok("Bye, %d messages left", left)
		return
	}
	// Ask the database, not only the renewal loop: a lease that ran out a
	// moment ago may already be another session's (RFC 1939 8: exclusive
	// access), and then this session removes nothing.
	if err := p.lock.Check(p.ctx()); err != nil {
		p.release()
		if errors.Is(err, store.ErrLockLost) {
			p.log.Warn("pop3 maildrop lock lost before QUIT; nothing removed")
			p.err("[IN-USE] Maildrop lock lost to another session; no messages removed")
			return
		}
		p.log.Error("pop3 check maildrop lock", "err", err)
		p.err("[SYS/TEMP] Maildrop lock not confirmed; no messages removed")
		return
	}
	removed := 0
	for len(set) > 0 {
		chunk := set[:min(len(set), maxRangesPerRemove)]
		set = set[len(chunk):]
		uids, err := p.acct.Remove(p.ctx(), p.drop.MailboxID, chunk)
		removed += len(uids)
		if err != nil {
			p.release()
			p.log.Error("pop3 remove deleted messages", "err", err, "removed", removed, "marked", marked)
			p.err("[SYS/TEMP] Some deleted messages not removed")
			return
		}
	}
	// The lock goes before the +OK: a client may reconnect the moment it
	// reads it, and must find the maildrop free.
	p.release()
	p.log.Info("pop3 logout", "removed", removed)
	p.ok("Bye, %d messages removed, %d left", marked, left)
}
