package rpc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"basalt/store"
)

// show renders a parsed query compactly: groups joined by " & ", terms
// of a group by " | ", then the folders.
func (q parsedQuery) show() string {
	kinds := map[store.TermKind]string{store.TermText: "text", store.TermFrom: "from", store.TermTo: "to", store.TermSubject: "subject",
		store.TermAttachment: "attachment", store.TermUnread: "unread", store.TermRead: "read", store.TermFlagged: "flagged",
		store.TermBefore: "before", store.TermAfter: "after", store.TermLarger: "larger", store.TermSmaller: "smaller"}
	var gs []string
	for _, g := range q.groups {
		var ts []string
		for _, t := range g {
			s := kinds[t.Kind]
			switch {
			case len(t.Words) > 0:
				s += "(" + strings.Join(t.Words, " ") + ")"
			case !t.Time.IsZero():
				s += "(" + t.Time.Format(time.DateOnly) + ")"
			case t.Size > 0:
				s += fmt.Sprintf("(%d)", t.Size)
			}
			if t.Not {
				s = "-" + s
			}
			ts = append(ts, s)
		}
		gs = append(gs, strings.Join(ts, " | "))
	}
	out := strings.Join(gs, " & ")
	if len(q.in) > 0 {
		out += " in" + fmt.Sprint(q.in)
	}
	if len(q.notIn) > 0 {
		out += " notin" + fmt.Sprint(q.notIn)
	}
	if q.anywhere {
		out += " anywhere"
	}
	return out
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		q, want string
		bad     string // the term the error names
	}{
		{q: "", want: ""},
		{q: "hello world", want: "text(hello) & text(world)"},
		{q: `"hello world" again`, want: "text(hello world) & text(again)"},
		{q: "Bob@Example.org", want: "text(bob example org)"},
		{q: "from:bob to:alice subject:lunch", want: "from(bob) & to(alice) & subject(lunch)"},
		{q: `from:"Bob Smith"`, want: "from(bob smith)"},
		{q: "FROM:bob", want: "from(bob)"},
		{q: "has:attachment is:unread is:read is:flagged", want: "attachment & unread & read & flagged"},
		{q: "before:2026-01-31 after:2026/01/01", want: "before(2026-01-31) & after(2026-01-01)"},
		{q: "larger:10M smaller:500k larger:12", want: "larger(10485760) & smaller(512000) & larger(12)"},
		{q: "larger:1GB", want: "larger(1073741824)"},
		{q: "-from:bob -spam", want: "-from(bob) & -text(spam)"},
		{q: `-"bad phrase"`, want: "-text(bad phrase)"},
		{q: "a OR b c", want: "text(a) | text(b) & text(c)"},
		{q: "a OR b OR is:unread", want: "text(a) | text(b) | unread"},
		{q: "a or b", want: "text(a) & text(or) & text(b)"},
		{q: "in:Archive noodle", want: "text(noodle) in[Archive]"},
		{q: `in:"My Folder" -in:Lists`, want: " in[My Folder] notin[Lists]"},
		{q: "in:anywhere x", want: "text(x) anywhere"},
		{q: "re: hello", want: "text(re) & text(hello)"},
		{q: "http://example.org/x", want: "text(http example org x)"},
		{q: "- & hello", want: "text(hello)"},
		{q: "-", want: ""},
		{q: `"unclosed`, bad: `"unclosed`},
		{q: "from:", bad: "from:"},
		{q: "from:@@", bad: "from:@@"},
		{q: "has:pictures", bad: "has:pictures"},
		{q: "is:important", bad: "is:important"},
		{q: "before:yesterday", bad: "before:yesterday"},
		{q: "after:2026-13-01", bad: "after:2026-13-01"},
		{q: "larger:lots", bad: "larger:lots"},
		{q: "smaller:-5", bad: "smaller:-5"},
		{q: "OR a", bad: "OR"},
		{q: "a OR", bad: "OR"},
		{q: "a OR OR b", bad: "OR"},
		{q: "in:", bad: "in:"},
		{q: "a OR in:Trash", bad: "in:Trash"},
		{q: "in:Trash OR a", bad: "in:Trash"},
		{q: "-in:anywhere", bad: "-in:anywhere"},
		{q: "a OR &", bad: "&"},
	} {
		got, err := parseQuery(tc.q)
		if tc.bad != "" {
			var qe *queryError
			if !errors.As(err, &qe) || qe.term != tc.bad {
				t.Errorf("%q: error %v, want one naming %q", tc.q, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.q, err)
			continue
		}
		if s := got.show(); s != tc.want {
			t.Errorf("%q: %q, want %q", tc.q, s, tc.want)
		}
	}
}
