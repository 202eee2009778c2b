package resp

import "bytes"

// Fast paths for the common frames. A client's connection carries mostly
// small commands and replies that arrive whole in one read or write; walking
// them byte by byte through the Scanner's state machine costs more than the
// rest of the wrapper that needs their boundaries. SkipFrame and ScanCommand
// measure such a frame in one pass. They accept a subset of what the Scanner
// accepts, with the same boundaries: whenever they return ok, the Scanner
// given the same bytes completes a frame of the same size and kind (FuzzFast
// holds them to it). Anything else (a frame split across reads, a type they
// do not handle, a length written in an unusual way, an error) returns ok
// false, and the caller scans the bytes with the Scanner, which decides.

// fastMaxDepth is the deepest nesting SkipFrame follows.
const fastMaxDepth = 8

// SkipFrame returns the size and kind of the complete frame at the start of
// p when it is made only of simple strings and errors, integers, bulk strings,
// nulls, arrays, maps and sets (nested at most 8 deep). ok false: use the
// Scanner.
func SkipFrame(p []byte) (n int, k Kind, ok bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	n, ok = skipElem(p, 0, 1)
	return n, Kind(p[0]), ok
}

// skipElem returns the end of the element that starts at p[i].
func skipElem(p []byte, i, depth int) (end int, ok bool) {
	if i >= len(p) {
		return 0, false
	}
	switch Kind(p[i]) {
	case SimpleString, SimpleError:
		r := bytes.IndexByte(p[i+1:], '\r')
		if r < 0 || bytes.IndexByte(p[i+1:i+1+r], '\n') >= 0 {
			return 0, false
		}
		return crlf(p, i+1+r)
	case Integer:
		j := i + 1
		if j < len(p) && (p[j] == '-' || p[j] == '+') {
			j++
		}
		_, j, ok := digits(p, j, 18)
		if !ok {
			return 0, false
		}
		return crlf(p, j)
	case Null:
		return crlf(p, i+1)
	case BulkString:
		if len(p) >= i+5 && p[i+1] == '-' && p[i+2] == '1' {
			return crlf(p, i+3) // "$-1\r\n"
		}
		size, j, ok := digits(p, i+1, 9)
		if !ok || size > MaxBulkLen {
			return 0, false
		}
		j, ok = crlf(p, j)
		if !ok || len(p)-j < size+2 {
			return 0, false
		}
		return crlf(p, j+size)
	case Array, Map, Set:
		if Kind(p[i]) == Array && len(p) >= i+5 && p[i+1] == '-' && p[i+2] == '1' {
			return crlf(p, i+3) // "*-1\r\n"
		}
		count, j, ok := digits(p, i+1, 9)
		if !ok {
			return 0, false
		}
		if Kind(p[i]) == Map {
			count *= 2
		}
		j, ok = crlf(p, j)
		if !ok || count > (len(p)-j)/3 { // each element takes 3 bytes or more
			return 0, false
		}
		if count > 0 && depth >= fastMaxDepth {
			return 0, false
		}
		for range count {
			if j, ok = skipElem(p, j, depth+1); !ok {
				return 0, false
			}
		}
		return j, true
	}
	return 0, false
}

// digits parses 1 to max decimal digits at p[i:]; j is the index after them.
func digits(p []byte, i, max int) (v, j int, ok bool) {
	for j = i; j < len(p) && j-i < max; j++ {
		c := p[j]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int(c-'0')
	}
	if j == i || (j < len(p) && '0' <= p[j] && p[j] <= '9') {
		return 0, j, false // no digit, or more than max
	}
	return v, j, true
}

// crlf returns the index after the "\r\n" at p[i:].
func crlf(p []byte, i int) (int, bool) {
	if i+1 < len(p) && p[i] == '\r' && p[i+1] == '\n' {
		return i + 2, true
	}
	return 0, false
}

// ScanCommand returns the size of the complete command at the start of p (an
// array of one or more bulk strings, as a client library writes it), its
// first element (the command name, a slice of p) and its element count. ok
// false: use the Scanner.
func ScanCommand(p []byte) (n int, name []byte, count int64, ok bool) {
	if len(p) == 0 || Kind(p[0]) != Array {
		return 0, nil, 0, false
	}
	c, j, ok := digits(p, 1, 9)
	if !ok || c == 0 {
		return 0, nil, 0, false
	}
	if j, ok = crlf(p, j); !ok || c > (len(p)-j)/6 { // "$0\r\n\r\n" is the shortest
		return 0, nil, 0, false
	}
	for e := range c {
		if j >= len(p) || Kind(p[j]) != BulkString {
			return 0, nil, 0, false
		}
		size, k, ok := digits(p, j+1, 9)
		if !ok || size > MaxBulkLen {
			return 0, nil, 0, false
		}
		if k, ok = crlf(p, k); !ok || len(p)-k < size+2 {
			return 0, nil, 0, false
		}
		if e == 0 {
			name = p[k : k+size]
		}
		if j, ok = crlf(p, k+size); !ok {
			return 0, nil, 0, false
		}
	}
	return j, name, int64(c), true
}
