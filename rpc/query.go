package rpc

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"basalt/message"
	"basalt/store"
)

// The search query language of messages.search, in the manner of the
// webmails people know (Gmail's operators):
//
//	words           every word, anywhere (subject, senders, recipients, text)
//	"a phrase"      those words one after the other
//	from:bob  to:alice  subject:lunch   in that field (a quoted value is a phrase)
//	has:attachment  is:unread  is:read  is:flagged
//	before:2026-01-31  after:2026-01-01   arrival, UTC days (after: includes the day)
//	larger:10M  smaller:500K              size in octets, K, M or G (powers of 1024)
//	in:Archive  in:anywhere               the folder to search; anywhere includes Trash and Junk
//	-term           not term (any of the above, in: included)
//	a OR b          either (OR binds tighter than the AND between terms)
//
// A word is matched whole: letters and digits, the rest separates words
// (so an address is the phrase of its parts). An operator that is not one
// of these is read as words ("re:" is the word re); one of these with a
// value it cannot use is an error that names it.

// parsedQuery is a query: the terms for the store, and the folders it
// names.
type parsedQuery struct {
	groups [][]store.SearchTerm
	// in lists the folders of in: terms; anywhere is in:anywhere.
	in       []string
	notIn    []string
	anywhere bool
}

// queryError is a query the language does not allow; term names the
// term at fault.
type queryError struct{ term, why string }

func (e *queryError) Error() string { return fmt.Sprintf("search term %q: %s", e.term, e.why) }

// token is one lexical unit of a query: a term with its operator and
// value, or OR.
type token struct {
	raw    string // as written, for errors
	not    bool
	op     string // lowercased operator, "" for free text
	value  string
	quoted bool // the value was quoted: a phrase
}

// lex splits a query into tokens: runs of text separated by white space,
// with double-quoted values kept whole.
func lex(q string) ([]token, error) {
	var out []token
	rs := []rune(q)
	for i := 0; i < len(rs); {
		if unicode.IsSpace(rs[i]) {
			i++
			continue
		}
		start := i
		var t token
		if rs[i] == '-' && i+1 < len(rs) && !unicode.IsSpace(rs[i+1]) {
			t.not = true
			i++
		}
		// An operator: letters then a colon, before any quote.
		j := i
		for j < len(rs) && unicode.IsLetter(rs[j]) {
			j++
		}
		if j > i && j < len(rs) && rs[j] == ':' {
			t.op = strings.ToLower(string(rs[i:j]))
			i = j + 1
		}
		if i < len(rs) && rs[i] == '"' {
			end := i + 1
			for end < len(rs) && rs[end] != '"' {
				end++
			}
			if end >= len(rs) {
				return nil, &queryError{string(rs[start:]), "the quote is not closed"}
			}
			t.value, t.quoted = string(rs[i+1:end]), true
			i = end + 1
		} else {
			end := i
			for end < len(rs) && !unicode.IsSpace(rs[end]) {
				end++
			}
			t.value = string(rs[i:end])
			i = end
		}
		t.raw = string(rs[start:i])
		if t.op != "" && !knownOps[t.op] {
			// Not an operator of the language: words, as written.
			t.op, t.value = "", strings.TrimPrefix(t.raw, "-")
		}
		out = append(out, t)
	}
	return out, nil
}

var knownOps = map[string]bool{"from": true, "to": true, "subject": true, "has": true, "is": true, "before": true,
	"after": true, "larger": true, "smaller": true, "in": true}

// parseQuery parses a query.
func parseQuery(q string) (parsedQuery, error) {
	toks, err := lex(q)
	if err != nil {
		return parsedQuery{}, err
	}
	var out parsedQuery
	orNext := false
	for i, t := range toks {
		if t.op == "" && !t.not && !t.quoted && t.value == "OR" {
			if i == 0 || i == len(toks)-1 || orNext {
				return parsedQuery{}, &queryError{"OR", "OR must stand between two terms"}
			}
			orNext = true
			continue
		}
		if t.op == "in" {
			if orNext || (i+1 < len(toks) && toks[i+1].value == "OR" && toks[i+1].op == "" && !toks[i+1].quoted) {
				return parsedQuery{}, &queryError{t.raw, "in: cannot be one side of OR"}
			}
			switch {
			case t.value == "":
				return parsedQuery{}, &queryError{t.raw, "in: needs a folder name"}
			case strings.EqualFold(t.value, "anywhere") && !t.quoted:
				if t.not {
					return parsedQuery{}, &queryError{t.raw, "in:anywhere cannot be negated"}
				}
				out.anywhere = true
			case t.not:
				out.notIn = append(out.notIn, t.value)
			default:
				out.in = append(out.in, t.value)
			}
			continue
		}
		term, skip, err := termOf(t)
		if err != nil {
			return parsedQuery{}, err
		}
		if skip {
			// Punctuation alone: no word to look for.
			if orNext {
				return parsedQuery{}, &queryError{t.raw, "no word to search for beside OR"}
			}
			continue
		}
		if orNext {
			last := &out.groups[len(out.groups)-1]
			*last = append(*last, term)
			orNext = false
		} else {
			out.groups = append(out.groups, []store.SearchTerm{term})
		}
	}
	return out, nil
}

// termOf turns a token into a store term; skip says the token holds
// nothing to search for (free text without a letter or digit).
func termOf(t token) (store.SearchTerm, bool, error) {
	term := store.SearchTerm{Not: t.not}
	words := func(kind store.TermKind) (store.SearchTerm, bool, error) {
		term.Kind, term.Words = kind, message.Words(t.value)
		if len(term.Words) == 0 {
			if kind == store.TermText {
				return term, true, nil
			}
			return term, false, &queryError{t.raw, "needs a word to look for"}
		}
		return term, false, nil
	}
	switch t.op {
	case "":
		return words(store.TermText)
	case "from":
		return words(store.TermFrom)
	case "to":
		return words(store.TermTo)
	case "subject":
		return words(store.TermSubject)
	case "has":
		if v := strings.ToLower(t.value); v != "attachment" && v != "attachments" {
			return term, false, &queryError{t.raw, "has: takes attachment"}
		}
		term.Kind = store.TermAttachment
	case "is":
		switch strings.ToLower(t.value) {
		case "unread":
			term.Kind = store.TermUnread
		case "read":
			term.Kind = store.TermRead
		case "flagged", "starred":
			term.Kind = store.TermFlagged
		default:
			return term, false, &queryError{t.raw, "is: takes unread, read or flagged"}
		}
	case "before", "after":
		d, err := time.Parse("2006-01-02", strings.ReplaceAll(t.value, "/", "-"))
		if err != nil {
			return term, false, &queryError{t.raw, t.op + ": takes a date as YYYY-MM-DD"}
		}
		term.Kind, term.Time = store.TermBefore, d
		if t.op == "after" {
			term.Kind = store.TermAfter
		}
	case "larger", "smaller":
		n, err := parseSize(t.value)
		if err != nil {
			return term, false, &queryError{t.raw, t.op + ": takes a size such as 500K or 10M"}
		}
		term.Kind, term.Size = store.TermLarger, n
		if t.op == "smaller" {
			term.Kind = store.TermSmaller
		}
	}
	return term, false, nil
}

// parseSize reads a size: a whole number of octets, or of K, M or G
// (1024, 1024², 1024³), an optional B after the unit.
func parseSize(v string) (int64, error) {
	v = strings.TrimSuffix(strings.ToUpper(v), "B")
	mult := int64(1)
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			v = v[:n-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("bad size %q", v)
	}
	return n * mult, nil
}
