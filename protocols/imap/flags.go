package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"basalt/store"
)

// flagJunk is the store's junk bit as IMAP clients know it (RFC 5788's
// registered keyword, which Thunderbird and Apple Mail use).
const flagJunk imap.Flag = "$Junk"

// flagRecent is IMAP4rev1's \Recent (RFC 3501 2.3.2), which the server
// sets and IMAP4rev2 dropped.
const flagRecent imap.Flag = `\Recent`

var systemFlags = []struct {
	bit  store.Flags
	flag imap.Flag
}{
	{store.FlagSeen, imap.FlagSeen},
	{store.FlagAnswered, imap.FlagAnswered},
	{store.FlagFlagged, imap.FlagFlagged},
	{store.FlagDeleted, imap.FlagDeleted},
	{store.FlagDraft, imap.FlagDraft},
	{store.FlagJunk, flagJunk},
}

// imapFlags are a message's flags as IMAP shows them: the system flags,
// $Junk and the keywords. The store's other bits (filter verdicts, the
// webmail's own marks) are not the client's.
func imapFlags(f store.Flags, keywords []string) []imap.Flag {
	out := make([]imap.Flag, 0, 2+len(keywords))
	for _, sf := range systemFlags {
		if f.Has(sf.bit) {
			out = append(out, sf.flag)
		}
	}
	for _, k := range keywords {
		out = append(out, imap.Flag(k))
	}
	return out
}

// visibleFlags are the store bits imapFlags shows and STORE may change.
const visibleFlags = store.FlagSeen | store.FlagAnswered | store.FlagFlagged | store.FlagDeleted | store.FlagDraft | store.FlagJunk

// storeFlags turns a client's flag list into store bits and keywords.
// \Recent is the server's (RFC 3501 2.3.2) and is dropped; any other
// system flag the server does not know is an error.
func storeFlags(flags []imap.Flag) (store.Flags, []string, error) {
	var (
		bits store.Flags
		kws  []string
	)
next:
	for _, f := range flags {
		for _, sf := range systemFlags {
			if strings.EqualFold(string(f), string(sf.flag)) {
				bits |= sf.bit
				continue next
			}
		}
		switch {
		case strings.EqualFold(string(f), `\Recent`):
		case strings.HasPrefix(string(f), `\`):
			return 0, nil, bad("Unknown system flag " + string(f))
		default:
			kws = append(kws, string(f))
		}
	}
	return bits, kws, nil
}
