package imap

import (
	"strconv"

	"github.com/emersion/go-imap/v2"
)

// The library writes a partial BINARY section as "BINARY[part]", without
// the origin RFC 3516 4.2 asks for ("BINARY[part]<origin>"), and has no
// way to be told otherwise (imapserver/fetch.go:434-443; quirks.go). So the
// session marks such a section: its part numbers, which the library
// writes as they are, start with -(origin+1), a number no section part
// can be. The guard's scan of what the server sends (scanOut) finds
// "BINARY[" followed by "-" outside quoted strings and literals, holds
// the marked part back up to its "]" and writes "part]<origin>" instead.

// markedBinary returns the section to hand the library for a BINARY
// section: a partial one marked with its origin.
func markedBinary(bs *imap.FetchItemBinarySection) *imap.FetchItemBinarySection {
	if bs.Partial == nil {
		return bs
	}
	m := *bs
	m.Part = append([]int{-int(bs.Partial.Offset) - 1}, bs.Part...)
	return &m
}

const binaryItem = "BINARY["

// binOrigin follows one byte of the rest of a response line. It returns
// what to write in its place, if anything else than the byte, and whether
// the byte is held back (then emit is what is released with it, if any).
func (out *outScan) binOrigin(b byte) (emit []byte, held bool) {
	if out.mark != nil {
		if b != ']' {
			if (b >= '0' && b <= '9') || b == '.' {
				out.mark = append(out.mark, b)
				return nil, true
			}
			// Not a mark after all: let it through as it came.
			emit = append(append([]byte{'-'}, out.mark...), b)
			out.mark = nil
			return emit, true
		}
		emit, out.mark = unmark(out.mark), nil
		return emit, true
	}
	switch {
	case out.escaped:
		out.escaped = false
	case out.quoted:
		out.quoted = b != '"'
		out.escaped = b == '\\'
	case b == '"':
		out.quoted, out.bin = true, 0
	case out.bin == len(binaryItem) && b == '-':
		out.bin, out.mark = 0, []byte{}
		return nil, true
	case out.bin < len(binaryItem) && b == binaryItem[out.bin]:
		out.bin++
	default:
		out.bin = 0
		if b == binaryItem[0] {
			out.bin = 1
		}
	}
	return nil, false
}

// unmark turns a marked part ("6.1.2": the "-" dropped, the origin plus
// one, then the part) into what the library should have written:
// "1.2]<5>".
func unmark(mark []byte) []byte {
	first, rest := string(mark), ""
	for i, c := range mark {
		if c == '.' {
			first, rest = string(mark[:i]), string(mark[i+1:])
			break
		}
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil || n < 1 {
		return append(append([]byte{'-'}, mark...), ']')
	}
	return []byte(rest + "]<" + strconv.FormatInt(n-1, 10) + ">")
}
