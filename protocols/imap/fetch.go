package imap

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"basalt/message"
	"basalt/store"
)

// fetchChunk is how many messages one store query reads for FETCH: a
// FETCH 1:* of a large mailbox is read a page at a time, so its memory
// is a page's, not the mailbox's.
const fetchChunk = 256

// Fetch is FETCH and UID FETCH (RFC 9051 6.4.5). ENVELOPE and
// BODYSTRUCTURE come from the parse stored with each message; body
// sections are cut from the message by the offsets recorded there, and
// only they need the message itself (decrypted for a secure user).
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.settle()
	sel, err := s.selection()
	if err != nil {
		return err
	}
	idx, err := s.indexes(numSet)
	if err != nil {
		return err
	}
	_, byUID := numSet.(imap.UIDSet)
	needRaw := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	needInfo := needRaw || options.Envelope || options.BodyStructure != nil
	// RFC 9051 6.4.5: BODY[...] and BINARY[...] without .PEEK set \Seen.
	markSeen := false
	for _, bs := range options.BodySection {
		markSeen = markSeen || !bs.Peek
	}
	for _, bs := range options.BinarySection {
		markSeen = markSeen || !bs.Peek
	}
	// Not in a mailbox opened with EXAMINE, nor without the "s" right,
	// where RFC 4314 4 has the \Seen silently left alone.
	markSeen = markSeen && !sel.readOnly && sel.rights.Has(store.RightSeen)
	acct, id := sel.ref.acct, sel.ref.mb.ID

	issued := false
	for start := 0; start < len(idx); start += fetchChunk {
		chunk := idx[start:min(start+fetchChunk, len(idx))]
		uids := make([]uint32, len(chunk))
		for k, i := range chunk {
			uids[k] = sel.uids[i]
		}
		// What no flag depends on may come from memory (ListQuery.Fixed).
		fixed := !options.Flags && !options.ModSeq && !markSeen
		msgs, err := acct.List(s.ctx(), id, store.ListQuery{UIDs: uidRanges(uids), WithInfo: needInfo, Fixed: fixed})
		if err != nil {
			return s.storeErr("fetch", err)
		}
		var seenNow map[uint32]bool
		if markSeen {
			if seenNow, err = s.markSeen(msgs); err != nil {
				return err
			}
		}
		for k, i := range chunk {
			uid := uids[k]
			j, found := slices.BinarySearchFunc(msgs, uid, func(m store.Message, u uint32) int { return int(m.UID) - int(u) })
			if _, gone := sel.gone[uid]; gone || !found {
				// Expunged by another session; the client has not been
				// told yet (RFC 9051 7.5.1), so nothing can be shown.
				issued = true
				continue
			}
			err := s.fetchOne(w, uint32(i+1), &msgs[j], options, seenNow[uid])
			if errors.Is(err, errExpungedMeanwhile) {
				issued = true
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	if issued && !byUID {
		return no(codeExpungeIssued, "Some of the requested messages no longer exist")
	}
	return nil
}

// markSeen sets \Seen on the messages that lack it, updates msgs, and
// returns which ones changed: their FETCH responses carry FLAGS (RFC 9051
// 6.4.5).
func (s *session) markSeen(msgs []store.Message) (map[uint32]bool, error) {
	var unseen []uint32
	for _, m := range msgs {
		if !m.Flags.Has(store.FlagSeen) {
			unseen = append(unseen, m.UID)
		}
	}
	if len(unseen) == 0 {
		return nil, nil
	}
	done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	ups, err := s.setFlags(unseen, store.FlagAdd, store.FlagSeen, nil)
	if err != nil {
		return nil, s.storeErr("fetch: set \\Seen", err)
	}
	changed := map[uint32]bool{}
	for _, u := range ups {
		if j, ok := slices.BinarySearchFunc(msgs, u.UID, func(m store.Message, uid uint32) int { return int(m.UID) - int(uid) }); ok {
			msgs[j].Flags, msgs[j].Keywords = u.Flags, u.Keywords
			changed[u.UID] = true
		}
	}
	return changed, nil
}

// noteOwn remembers the modseq of a change this session made and
// answered itself.
func (sel *selected) noteOwn(modseq uint64) {
	if modseq > sel.modseq && !slices.Contains(sel.own, modseq) {
		sel.own = append(sel.own, modseq)
	}
}

// errExpungedMeanwhile is fetchOne's word that another session expunged
// the message between its listing and the read of its body: for the
// client it is like any message expunged but not announced yet.
var errExpungedMeanwhile = errors.New("message expunged during FETCH")

// fetchOne writes one message's FETCH response. Everything is computed
// before the response starts, so that an error leaves no half response.
func (s *session) fetchOne(w *imapserver.FetchWriter, seq uint32, m *store.Message, o *imap.FetchOptions, seenChanged bool) error {
	var (
		raw      []byte
		sections [][]byte
		binaries [][]byte
		sizes    []uint32
	)
	if len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 {
		if m.Info == nil {
			return s.storeErr("fetch", errors.New("message without its parse"))
		}
		rc, err := s.sel.ref.acct.OpenListed(s.ctx(), *m)
		if errors.Is(err, store.ErrNotFound) {
			return errExpungedMeanwhile
		}
		if err != nil {
			return s.storeErr("fetch: open message", err)
		}
		raw, err = readMessage(rc, *m, o)
		rc.Close()
		if err != nil {
			return s.storeErr("fetch: read message", err)
		}
		for _, bs := range o.BodySection {
			sections = append(sections, bodySection(raw, m.Info, bs))
		}
		for _, bs := range o.BinarySection {
			b, err := binarySection(raw, m.Info, bs.Part)
			if err != nil {
				return err
			}
			binaries = append(binaries, partial(b, bs.Partial))
		}
		for _, bs := range o.BinarySectionSize {
			n, err := binarySize(raw, m.Info, bs.Part)
			if err != nil {
				return err
			}
			sizes = append(sizes, uint32(n))
		}
	}
	if m.Info != nil && (o.Envelope && envelopeRouted(&m.Info.Envelope) || o.BodyStructure != nil && structureRouted(&m.Info.Body)) {
		// Source routes, which the library cannot write (adl.go), in the
		// order it writes envelopes: ENVELOPE, then those of BODY and
		// BODYSTRUCTURE (both, when both were asked for; what is not
		// found is forgotten at the end of the response).
		var swaps []adlSwap
		if o.Envelope {
			swaps = adlSwaps(&m.Info.Envelope)
		}
		if o.BodyStructure != nil {
			nested := structureSwaps(&m.Info.Body)
			swaps = append(append(swaps, nested...), nested...)
		}
		if len(swaps) > 0 {
			s.g.expectADL(swaps)
		}
	}
	mw := w.CreateMessage(seq)
	if o.UID {
		mw.WriteUID(imap.UID(m.UID))
	}
	if o.Flags || seenChanged {
		mw.WriteFlags(s.sel.flags(m.UID, m.Flags, m.Keywords))
	}
	if o.InternalDate {
		mw.WriteInternalDate(m.InternalDate)
	}
	if o.RFC822Size {
		mw.WriteRFC822Size(m.Size)
	}
	if o.Envelope {
		mw.WriteEnvelope(envelope(&m.Info.Envelope))
	}
	if o.BodyStructure != nil {
		mw.WriteBodyStructure(bodyStructure(&m.Info.Body))
	}
	for k, bs := range o.BodySection {
		if err := writeLiteral(mw.WriteBodySection(bs, int64(len(sections[k]))), sections[k]); err != nil {
			return err
		}
	}
	for k, bs := range o.BinarySection {
		// A partial one goes out with its origin (binorigin.go).
		if err := writeLiteral(mw.WriteBinarySection(markedBinary(bs), int64(len(binaries[k]))), binaries[k]); err != nil {
			return err
		}
	}
	for k, bs := range o.BinarySectionSize {
		mw.WriteBinarySectionSize(bs, sizes[k])
	}
	return mw.Close()
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// cut returns raw[a:b] with the offsets kept inside raw.
func cut(raw []byte, a, b int64) []byte {
	a, b = max(0, min(a, int64(len(raw)))), max(0, min(b, int64(len(raw))))
	if a > b {
		return nil
	}
	return raw[a:b]
}

func partPath(part []int) string {
	parts := make([]string, len(part))
	for i, n := range part {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ".")
}

// bodySection cuts BODY[section]<partial> (RFC 9051 6.4.5) out of raw by
// the offsets of its parse. A part that does not exist is empty.
func bodySection(raw []byte, info *message.Info, bs *imap.FetchItemBodySection) []byte {
	var data []byte
	if len(bs.Part) == 0 {
		switch bs.Specifier {
		case imap.PartSpecifierHeader, imap.PartSpecifierMIME:
			data = cut(raw, 0, info.HeaderSize)
		case imap.PartSpecifierText:
			data = cut(raw, info.HeaderSize, int64(len(raw)))
		default:
			data = raw
		}
	} else if p, err := info.Body.Find(partPath(bs.Part)); err == nil {
		switch bs.Specifier {
		case imap.PartSpecifierMIME:
			data = cut(raw, p.HeaderStart, p.BodyStart)
		case imap.PartSpecifierHeader:
			// The header and text of a part are those of the message it
			// encapsulates (message/rfc822); other parts have none.
			if p.Body != nil {
				data = cut(raw, p.Body.HeaderStart, p.Body.BodyStart)
			}
		case imap.PartSpecifierText:
			if p.Body != nil {
				data = cut(raw, p.Body.BodyStart, p.Body.BodyEnd)
			}
		default:
			data = cut(raw, p.BodyStart, p.BodyEnd)
		}
	}
	if len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
		data = filterHeader(data, bs.HeaderFields, bs.HeaderFieldsNot)
	}
	return partial(data, bs.Partial)
}

// filterHeader keeps the fields named in keep, or drops those in drop
// (HEADER.FIELDS, HEADER.FIELDS.NOT), as they were written, and ends
// with the blank line (RFC 9051 6.4.5). It is one pass over the header:
// a header of many fields (which any sender can plant) costs what
// reading it costs, not a field's removal per field. A line that is no
// field and no continuation of one is left out.
func filterHeader(h []byte, keep, drop []string) []byte {
	names := keep
	if len(keep) == 0 {
		names = drop
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	var out []byte
	include := false
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line = h[:i+1]
		}
		h = h[len(line):]
		switch {
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			// The blank line: the header ends.
			h = nil
			continue
		case line[0] == ' ' || line[0] == '\t':
			// A continuation belongs to the field before (RFC 5322 2.2.3).
		default:
			name, _, ok := bytes.Cut(line, []byte(":"))
			include = ok && set[strings.ToLower(string(bytes.TrimRight(name, " \t")))] == (len(keep) > 0)
		}
		if include {
			out = append(out, line...)
			if line[len(line)-1] != '\n' {
				out = append(out, "\r\n"...)
			}
		}
	}
	return append(out, "\r\n"...)
}

// partial applies <offset.size> (RFC 9051 6.4.5).
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	return cut(b, p.Offset, p.Offset+p.Size)
}

// binarySection is BINARY[part] (RFC 3516): the part's body with its
// content transfer encoding undone, as message.Part.Decode undoes it for
// the webmail too. The whole message has no encoding of its own to undo;
// a part whose encoding is not known is refused with UNKNOWN-CTE (RFC 3516
// 4.3).
func binarySection(raw []byte, info *message.Info, part []int) ([]byte, error) {
	if len(part) == 0 {
		return raw, nil
	}
	p, err := info.Body.Find(partPath(part))
	if err != nil {
		return nil, nil
	}
	dec, err := p.Decode(raw)
	if errors.Is(err, message.ErrUnknownEncoding) {
		return nil, no(imap.ResponseCodeUnknownCTE, "Unknown content transfer encoding "+p.Encoding)
	}
	return dec, nil
}

// binarySize is BINARY.SIZE[part] (RFC 3516 4.2): the length of
// binarySection's answer, counted without decoding.
func binarySize(raw []byte, info *message.Info, part []int) (int64, error) {
	if len(part) == 0 {
		return int64(len(raw)), nil
	}
	p, err := info.Body.Find(partPath(part))
	if err != nil {
		return 0, nil
	}
	n, err := p.DecodedSize(raw)
	if errors.Is(err, message.ErrUnknownEncoding) {
		return 0, no(imap.ResponseCodeUnknownCTE, "Unknown content transfer encoding "+p.Encoding)
	}
	return n, nil
}

// envelope converts the stored ENVELOPE (RFC 9051 7.5.2) to the library's.
func envelope(e *message.Envelope) *imap.Envelope {
	if e == nil {
		return nil
	}
	out := &imap.Envelope{
		Date: e.Date, Subject: e.Subject,
		From: addresses(e.From), Sender: addresses(e.Sender), ReplyTo: addresses(e.ReplyTo),
		To: addresses(e.To), Cc: addresses(e.Cc), Bcc: addresses(e.Bcc),
		// The library puts the angle brackets back.
		MessageID: strings.TrimSuffix(strings.TrimPrefix(e.MessageID, "<"), ">"),
	}
	for _, id := range strings.Fields(e.InReplyTo) {
		out.InReplyTo = append(out.InReplyTo, strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">"))
	}
	return out
}

func addresses(as []message.Address) []imap.Address {
	if len(as) == 0 {
		return nil
	}
	out := make([]imap.Address, len(as))
	for i, a := range as {
		out[i] = imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
	}
	return out
}

// bodyStructure converts the stored BODYSTRUCTURE, always with its
// extension data: the library writes BODY from it by leaving that out.
func bodyStructure(p *message.Part) imap.BodyStructure {
	var disp *imap.BodyStructureDisposition
	if p.Disposition != "" {
		disp = &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispositionParams}
	}
	if p.IsMultipart() {
		mp := &imap.BodyStructureMultiPart{
			Subtype:  p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{Params: p.Params, Disposition: disp, Language: p.Language, Location: p.Location},
		}
		for i := range p.Parts {
			mp.Children = append(mp.Children, bodyStructure(&p.Parts[i]))
		}
		return mp
	}
	sp := &imap.BodyStructureSinglePart{
		Type: p.Type, Subtype: p.Subtype, Params: p.Params, ID: p.ID, Description: p.Description,
		Encoding: p.Encoding, Size: uint32(p.Size),
		Extended: &imap.BodyStructureSinglePartExt{Disposition: disp, Language: p.Language, Location: p.Location},
	}
	switch {
	case p.IsMessage():
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{Envelope: envelope(p.Envelope), BodyStructure: bodyStructure(p.Body), NumLines: p.Lines}
	case p.Type == "text":
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return sp
}

// readMessage reads what the fetch needs of a message: its header alone
// when only top-level header sections are asked for (what clients sync a
// mailbox's list with), otherwise all of it, into one buffer of the size
// the store recorded.
func readMessage(r io.Reader, m store.Message, o *imap.FetchOptions) ([]byte, error) {
	n := m.Size
	if headerOnly(o) && m.Info.HeaderSize > 0 && m.Info.HeaderSize < n {
		n = m.Info.HeaderSize
	}
	if n <= 0 {
		return io.ReadAll(r)
	}
	raw := make([]byte, n)
	k, err := io.ReadFull(r, raw)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return raw[:k], nil // shorter than recorded: what there is
	}
	return raw, err
}

// headerOnly reports whether the fetch asks for nothing of a message's
// content but top-level header sections (RFC 3501 6.4.5 HEADER,
// HEADER.FIELDS, HEADER.FIELDS.NOT).
func headerOnly(o *imap.FetchOptions) bool {
	if len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 || len(o.BodySection) == 0 {
		return false
	}
	for _, bs := range o.BodySection {
		if len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierHeader {
			return false
		}
	}
	return true
}
