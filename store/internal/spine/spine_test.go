package spine

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestChangeCap: past maxEventsPerChange a change announces one event per
// mailbox (UID 0: re-read it), of the last kind seen there, instead of
// one per message.
func TestChangeCap(t *testing.T) {
	c := NewChange(7)
	for i := range maxEventsPerChange {
		c.Add(1, "flags", uint32(i+1), uint64(i+1))
	}
	if evs := c.List(); len(evs) != maxEventsPerChange || evs[0].UserID != 7 || evs[0].UID != 1 {
		t.Fatalf("at the cap: %d events, first %+v", len(evs), evs[0])
	}
	c.Add(2, "append", 1, 1)
	c.Add(1, "expunge", 5, 9)
	evs := c.List()
	if len(evs) != 2 {
		t.Fatalf("past the cap: %d events, want one per mailbox", len(evs))
	}
	kinds := map[int64]string{}
	for _, ev := range evs {
		if ev.UID != 0 || ev.UserID != 7 {
			t.Errorf("bulk event %+v: want UID 0 of user 7", ev)
		}
		kinds[ev.MailboxID] = ev.Kind
	}
	if kinds[1] != "expunge" || kinds[2] != "append" {
		t.Fatalf("bulk kinds %v", kinds)
	}
}

// TestClip: a text that fits is kept whole; a longer one is cut to at
// most 1000 bytes, never inside a UTF-8 character, losing at most the
// last character that would fit.
func TestClip(t *testing.T) {
	for _, in := range []string{
		"",
		"short é",
		strings.Repeat("a", 1000),
		strings.Repeat("a", 1001),
		strings.Repeat("a", 998) + "é",  // ends at 1000 exactly
		strings.Repeat("a", 999) + "éé", // é split at 1000
		strings.Repeat("a", 997) + "€x", // € ends at 1000
		strings.Repeat("a", 998) + "😀x", // a 4-byte character split
	} {
		got := Clip(in)
		switch {
		case len(in) <= 1000 && got != in:
			t.Errorf("Clip(%d bytes) = %d bytes: a text that fits was cut", len(in), len(got))
		case len(got) > 1000 || !utf8.ValidString(got) || !strings.HasPrefix(in, got):
			t.Errorf("Clip(%d bytes) = %d bytes, valid UTF-8 %v", len(in), len(got), utf8.ValidString(got))
		case len(got) < min(len(in), 1000)-utf8.UTFMax+1:
			t.Errorf("Clip(%d bytes) = %d bytes: more than one character lost", len(in), len(got))
		case len(in) > 1000 && utf8.RuneStart(in[1000]) && len(got) != 1000:
			t.Errorf("Clip(%d bytes) = %d bytes: a cut on a character boundary lost a character", len(in), len(got))
		}
	}
}
