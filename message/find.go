package message

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors returned by Part.Find; test with errors.Is.
var (
	// ErrBadPath means the section path is not dot-separated non-zero
	// numbers (RFC 3501 section-part).
	ErrBadPath = errors.New("invalid section path")
	// ErrNoPart means the message has no part at that path.
	ErrNoPart = errors.New("no such part")
)

// Find returns the part at an IMAP section path such as "1", "1.2" or
// "2.1.3" (RFC 3501 6.4.5, RFC 9051 6.4.5), p being the body of a message
// (Info.Body, or the Body of a message/rfc822 part):
//   - the parts of a multipart are numbered from 1;
//   - a message whose body is not multipart has one part, "1", its body;
//   - the numbers after that of a message/rfc822 part address the parts of
//     the message inside it, by the same two rules.
//
// The HEADER and TEXT of a message/rfc822 part q are those of q.Body, and
// its MIME header is raw[q.HeaderStart:q.BodyStart].
func (p *Part) Find(path string) (*Part, error) {
	if p == nil {
		return nil, fmt.Errorf("find part %q: %w", path, ErrNoPart)
	}
	nums, err := parseSectionPath(path)
	if err != nil {
		return nil, fmt.Errorf("find part %q: %w", path, err)
	}
	cur, msgBody := p, true // msgBody: cur is the body of a message
	for i, n := range nums {
		switch {
		case msgBody && !cur.IsMultipart():
			// The body of a message with a single-part body is its part 1.
			if n != 1 {
				return nil, fmt.Errorf("find part %q: %w", path, ErrNoPart)
			}
		case cur.IsMultipart():
			if n > len(cur.Parts) {
				return nil, fmt.Errorf("find part %q: %w", path, ErrNoPart)
			}
			cur = &cur.Parts[n-1]
		default:
			return nil, fmt.Errorf("find part %q: %s has no parts: %w", path, strings.Join(strings.Split(path, ".")[:i], "."), ErrNoPart)
		}
		// The next number addresses the inside of an encapsulated message.
		msgBody = false
		if cur.Body != nil && i+1 < len(nums) {
			cur, msgBody = cur.Body, true
		}
	}
	return cur, nil
}

// parseSectionPath parses "1.2.3" into its numbers: each a non-zero number
// without leading zeros (RFC 3501 nz-number) that fits in 32 bits.
func parseSectionPath(path string) ([]int, error) {
	if path == "" {
		return nil, ErrBadPath
	}
	fields := strings.Split(path, ".")
	nums := make([]int, len(fields))
	for i, f := range fields {
		if f == "" || f[0] < '1' || f[0] > '9' {
			return nil, ErrBadPath
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, ErrBadPath
		}
		nums[i] = int(n)
	}
	return nums, nil
}
