package imap

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"basalt/message"
	"basalt/store"
)

// Search is SEARCH and UID SEARCH (RFC 9051 6.4.4) with ESEARCH's result
// options (RFC 4731) and SEARCHRES (RFC 5182); the library writes the
// response the client asked for. Conditions the metadata rows hold are
// asked of the store; the rest are checked here, on the stored parse
// (ENVELOPE fields, sent dates) and, for BODY, TEXT and other header
// fields, on the message itself. All string matches are substring matches
// that ignore case, after MIME decoding.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.settle()
	sel, err := s.selection()
	if err != nil {
		return nil, err
	}
	idx, err := s.search(criteria)
	if err != nil {
		if options.ReturnSave {
			s.searchRes = nil // RFC 5182 2.1: a failed SEARCH empties $
		}
		return nil, err
	}
	data := &imap.SearchData{Count: uint32(len(idx))}
	uids := make([]uint32, len(idx))
	for k, i := range idx {
		uids[k] = sel.uids[i]
	}
	if kind == imapserver.NumKindUID {
		set := imap.UIDSet{}
		for _, u := range uids {
			set.AddNum(imap.UID(u))
		}
		data.All = set
		if len(uids) > 0 {
			data.Min, data.Max = uids[0], uids[len(uids)-1]
		}
	} else {
		set := imap.SeqSet{}
		for _, i := range idx {
			set.AddNum(uint32(i + 1))
		}
		data.All = set
		if len(idx) > 0 {
			data.Min, data.Max = uint32(idx[0]+1), uint32(idx[len(idx)-1]+1)
		}
	}
	if options.ReturnSave {
		s.searchRes = uids
	}
	return data, nil
}

// searchChunk is how many candidates have their parse read at once.
const searchChunk = 256

// search returns the positions in the view of the messages matching c.
func (s *session) search(c *imap.SearchCriteria) ([]int, error) {
	sel := s.sel
	if len(sel.uids) == 0 {
		return nil, nil
	}
	q, none := s.pushDown(c)
	if none {
		return nil, nil
	}
	acct, id := sel.ref.acct, sel.ref.mb.ID
	if s.srv.beforeSearch != nil {
		s.srv.beforeSearch(s.ctx())
	}
	rows, err := acct.Search(s.ctx(), id, q)
	if err != nil {
		return nil, s.storeErr("search", err)
	}
	needInfo := needsInfo(c)
	var out []int
	for start := 0; start < len(rows); start += searchChunk {
		chunk := rows[start:min(start+searchChunk, len(rows))]
		var infos map[uint32]*message.Info
		if needInfo {
			uids := make([]uint32, len(chunk))
			for k, m := range chunk {
				uids[k] = m.UID
			}
			full, err := acct.List(s.ctx(), id, store.ListQuery{UIDs: uidRanges(uids), WithInfo: true})
			if err != nil {
				return nil, s.storeErr("search", err)
			}
			infos = make(map[uint32]*message.Info, len(full))
			for _, m := range full {
				infos[m.UID] = m.Info
			}
		}
		for k := range chunk {
			m := &chunk[k]
			i, ok := slices.BinarySearch(sel.uids, m.UID)
			if !ok {
				continue // not announced to this client yet
			}
			if _, gone := sel.gone[m.UID]; gone {
				continue
			}
			cand := &candidate{s: s, seq: uint32(i + 1), m: m, info: infos[m.UID]}
			match, err := cand.matches(c)
			if err != nil {
				return nil, err
			}
			if match {
				out = append(out, i)
			}
		}
	}
	return out, nil
}

// pushDown turns the top-level conditions the store can check into a
// store query; none reports that nothing can match.
func (s *session) pushDown(c *imap.SearchCriteria) (q store.SearchQuery, none bool) {
	sel := s.sel
	n := len(sel.uids)
	// Only messages the client knows about, and of those only the ones a
	// single UID or sequence set names.
	q.UIDs = store.UIDSet{{Start: sel.uids[0], Stop: sel.uids[n-1]}}
	switch {
	case len(c.UID) == 1 && !imap.IsSearchRes(c.UID[0]):
		if idx, err := s.indexes(c.UID[0]); err == nil {
			q.UIDs = s.uidSetOf(idx)
		}
	case len(c.SeqNum) == 1:
		if idx, err := s.indexes(c.SeqNum[0]); err == nil {
			q.UIDs = s.uidSetOf(idx)
		}
	}
	if len(q.UIDs) == 0 || len(q.UIDs) > 1000 {
		if len(q.UIDs) == 0 {
			return q, true
		}
		q.UIDs = store.UIDSet{{Start: sel.uids[0], Stop: sel.uids[n-1]}}
	}
	for _, f := range c.Flag {
		if bit, ok := flagBit(f); ok {
			q.FlagsSet |= bit
		}
	}
	for _, f := range c.NotFlag {
		if bit, ok := flagBit(f); ok {
			q.FlagsClear |= bit
		}
	}
	if q.FlagsSet&q.FlagsClear != 0 {
		return q, true
	}
	q.Larger, q.Smaller = c.Larger, c.Smaller
	q.Since, q.Before = c.Since, c.Before
	return q, false
}

func (s *session) uidSetOf(idx []int) store.UIDSet {
	uids := make([]uint32, len(idx))
	for k, i := range idx {
		uids[k] = s.sel.uids[i]
	}
	return uidRanges(uids)
}

func flagBit(f imap.Flag) (store.Flags, bool) {
	for _, sf := range systemFlags {
		if strings.EqualFold(string(f), string(sf.flag)) {
			return sf.bit, true
		}
	}
	return 0, false
}

// needsInfo reports whether c looks at the stored parse.
func needsInfo(c *imap.SearchCriteria) bool {
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if needsInfo(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if needsInfo(&c.Or[i][0]) || needsInfo(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// candidate is one message being matched; its text is read only when a
// condition needs it.
type candidate struct {
	s    *session
	seq  uint32
	m    *store.Message
	info *message.Info
	raw  []byte
	read bool
}

func (c *candidate) matches(k *imap.SearchCriteria) (bool, error) {
	m, sel := c.m, c.s.sel
	for _, set := range k.SeqNum {
		if !inSeqSet(set, c.seq, uint32(len(sel.uids))) {
			return false, nil
		}
	}
	for _, set := range k.UID {
		if imap.IsSearchRes(set) {
			if _, ok := slices.BinarySearch(c.s.searchRes, m.UID); !ok {
				return false, nil
			}
		} else if !inUIDSet(set, m.UID, sel.uids[len(sel.uids)-1]) {
			return false, nil
		}
	}
	for _, f := range k.Flag {
		if !hasFlag(c.s.sel, m, f) {
			return false, nil
		}
	}
	for _, f := range k.NotFlag {
		if hasFlag(c.s.sel, m, f) {
			return false, nil
		}
	}
	if k.Larger > 0 && m.Size <= k.Larger || k.Smaller > 0 && m.Size >= k.Smaller {
		return false, nil
	}
	if !k.Since.IsZero() && m.InternalDate.Before(k.Since) || !k.Before.IsZero() && !m.InternalDate.Before(k.Before) {
		return false, nil
	}
	if !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
		d := c.info.Envelope.Date
		if d.IsZero() {
			return false, nil
		}
		// The date as the Date header wrote it, time and zone left out.
		day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
		if !k.SentSince.IsZero() && day.Before(k.SentSince) || !k.SentBefore.IsZero() && !day.Before(k.SentBefore) {
			return false, nil
		}
	}
	for _, h := range k.Header {
		ok, err := c.header(h.Key, h.Value)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, b := range k.Body {
		ok, err := c.body(b, false)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, t := range k.Text {
		ok, err := c.body(t, true)
		if err != nil || !ok {
			return false, err
		}
	}
	for i := range k.Not {
		ok, err := c.matches(&k.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range k.Or {
		a, err := c.matches(&k.Or[i][0])
		if err != nil {
			return false, err
		}
		if !a {
			b, err := c.matches(&k.Or[i][1])
			if err != nil || !b {
				return false, err
			}
		}
	}
	return true, nil
}

func inSeqSet(set imap.SeqSet, seq, n uint32) bool {
	for _, r := range set {
		start, stop := r.Start, r.Stop
		if start == 0 {
			start = n
		}
		if stop == 0 {
			stop = n
		}
		if start > stop {
			start, stop = stop, start
		}
		if seq >= start && seq <= stop {
			return true
		}
	}
	return false
}

func inUIDSet(set imap.UIDSet, uid, top uint32) bool {
	for _, r := range set {
		start, stop := uint32(r.Start), uint32(r.Stop)
		if start == 0 {
			start = top
		}
		if stop == 0 {
			stop = top
		}
		if start > stop {
			start, stop = stop, start
		}
		if uid >= start && uid <= stop {
			return true
		}
	}
	return false
}

func hasFlag(sel *selected, m *store.Message, f imap.Flag) bool {
	if bit, ok := flagBit(f); ok {
		return m.Flags.Has(bit)
	}
	if strings.EqualFold(string(f), string(flagRecent)) {
		// RFC 3501 6.4.4 NEW, OLD, RECENT: recent to this session.
		return sel.isRecent(m.UID)
	}
	if strings.HasPrefix(string(f), `\`) {
		return false // system flags never stored
	}
	for _, k := range m.Keywords {
		if strings.EqualFold(k, string(f)) {
			return true
		}
	}
	return false
}

// contains is IMAP's string match: substring, case ignored.
func contains(hay, needle string) bool {
	return strings.Contains(strings.ToLower(hay), strings.ToLower(needle))
}

// header matches HEADER field value (and FROM, TO, CC, BCC, SUBJECT): the
// message has the field and, unless value is empty, it contains value.
// Fields in the ENVELOPE are matched there, already decoded; others in
// the message's header.
func (c *candidate) header(key, value string) (bool, error) {
	e := &c.info.Envelope
	var addrs []message.Address
	switch strings.ToLower(key) {
	case "subject":
		return e.Subject != "" && contains(e.Subject, value), nil
	case "from":
		addrs = e.From
	case "to":
		addrs = e.To
	case "cc":
		addrs = e.Cc
	case "bcc":
		addrs = e.Bcc
	default:
		raw, err := c.message()
		if err != nil {
			return false, err
		}
		hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(cut(raw, 0, c.info.HeaderSize))))
		if err != nil && hdr.Len() == 0 {
			return false, nil
		}
		for _, v := range hdr.Values(key) {
			if contains(message.HeaderText(v), value) {
				return true, nil
			}
		}
		return false, nil
	}
	for _, a := range addrs {
		s := a.Name + " <" + a.Mailbox + "@" + a.Host + ">"
		if a.IsGroupStart() || a.IsGroupEnd() {
			s = a.Mailbox
		}
		if contains(s, value) {
			return true, nil
		}
	}
	return false, nil
}

// body matches BODY (withHeader false) and TEXT: the decoded text of the
// message's text parts, and for TEXT its header too.
func (c *candidate) body(value string, withHeader bool) (bool, error) {
	raw, err := c.message()
	if err != nil {
		return false, err
	}
	if withHeader && contains(message.HeaderText(string(cut(raw, 0, c.info.HeaderSize))), value) {
		return true, nil
	}
	return textContains(raw, &c.info.Body, value, 0), nil
}

// textContains looks for value in the text parts under p, decoded from
// their transfer encoding and charset.
func textContains(raw []byte, p *message.Part, value string, depth int) bool {
	if depth > message.MaxDepth {
		return false
	}
	switch {
	case p.IsMultipart():
		for i := range p.Parts {
			if textContains(raw, &p.Parts[i], value, depth+1) {
				return true
			}
		}
		return false
	case p.IsMessage():
		return contains(message.HeaderText(string(cut(raw, p.Body.HeaderStart, p.Body.BodyStart))), value) ||
			textContains(raw, p.Body, value, depth+1)
	case p.Type != "text":
		return false
	}
	text, _ := p.Text(raw, 0) // as the webmail shows it
	return contains(text, value)
}

// message reads the candidate's raw message once.
func (c *candidate) message() ([]byte, error) {
	if c.read {
		return c.raw, nil
	}
	rc, err := c.s.sel.ref.acct.OpenListed(c.s.ctx(), *c.m)
	if err != nil {
		return nil, c.s.storeErr("search: open message", err)
	}
	defer rc.Close()
	if c.raw, err = io.ReadAll(rc); err != nil {
		return nil, c.s.storeErr("search: read message", err)
	}
	c.read = true
	return c.raw, nil
}
