package store

import (
	"cmp"
	"slices"
	"time"
)

// What a message never changes is kept in memory by mailbox and UID, so
// that IMAP's most common FETCHes (a message's body, its envelope and
// structure, its size and date: no flags) need no database read at all.
// Those FETCHes were a tenth of IMAP's CPU under imaptest's steady load,
// most of it the driver handing SQLite's columns over one at a time,
// while ten clients fetched the same few recent messages again and again.
//
// An entry cannot go stale: a message keeps its UID in its mailbox for
// good (a move or copy makes a new one), a mailbox's UIDs are never given
// again (its UIDVALIDITY never changes), nor are mailbox ids. An entry may
// outlive its message: a FETCH may then show an expunged message that its
// client has not been told is gone, which RFC 9051 7.5.1 allows, and its
// body is found in the body cache or not at all (errExpungedMeanwhile in
// the IMAP server, as when a message goes between a listing and its read).
const rowCacheEntries = 64 << 10 // about 200 bytes each, with the map's and list's share: 13 MB

// fixedKey names a message for good.
type fixedKey struct {
	mailboxID int64
	uid       uint32
}

// fixedRow is what a message never changes, and whose it is: a listing
// from memory answers only the owner's account, as the database's does
// (its rows are read by user as well as by mailbox), so that not even a
// mailbox id given wrongly, or used again after a restore, shows another
// user's message.
type fixedRow struct {
	userID, id, size, date int64
	blobID                 string
	attachments            bool
}

// maxFixedList is the most UIDs a listing may name to be answered from the
// cache: enough for a FETCH's chunk, and few enough to look up one by one.
const maxFixedList = 512

// fixedList answers what it can of a listing of the messages' fixed parts
// from memory: the messages it found, in UID order, and the UIDs it did
// not, which the caller reads. ok is false when the listing is not one it
// can answer (an account with a key, whose metadata is sealed, or too
// long).
func (a *Account) fixedList(mailboxID int64, q ListQuery) (found []Message, missing UIDSet, ok bool) {
	if a.key != nil || q.UIDs == nil || q.UIDs.span() > maxFixedList {
		return nil, nil, false
	}
	found = make([]Message, 0, q.UIDs.span())
	for _, r := range q.UIDs {
		lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
		for uid := lo; uid <= hi && uid != 0; uid++ {
			row, hit := a.s.files.rows.get(fixedKey{mailboxID, uid})
			hit = hit && row.userID == a.userID
			m := Message{ID: row.id, MailboxID: mailboxID, UID: uid, Size: row.size,
				InternalDate: time.Unix(row.date, 0).UTC(), HasAttachments: row.attachments, blobID: row.blobID}
			if hit && q.WithInfo {
				m.Info, hit = a.s.files.infos.get(row.blobID)
			}
			if !hit {
				missing = append(missing, UIDRange{uid, uid})
				continue
			}
			found = append(found, m)
		}
	}
	slices.SortFunc(found, func(x, y Message) int { return cmp.Compare(x.UID, y.UID) })
	return slices.CompactFunc(found, func(x, y Message) bool { return x.UID == y.UID }), missing, true
}

// noteFixed keeps the fixed parts of listed messages.
func (a *Account) noteFixed(ms []Message) {
	if a.key != nil {
		return
	}
	for _, m := range ms {
		a.s.files.rows.put(fixedKey{m.MailboxID, m.UID}, 1, fixedRow{userID: a.userID, id: m.ID, size: m.Size,
			date: m.InternalDate.Unix(), blobID: m.blobID, attachments: m.HasAttachments})
	}
}
