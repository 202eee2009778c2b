// Package resp is the project's one RESP reader and writer: an incremental
// scanner of RESP2 and RESP3 frames (commands written by a client and replies
// read from a server) that accepts input split at any byte and allocates
// nothing per frame in the steady state, and value-level helpers built on it.
//
// The Scanner reads every RESP3 type: simple strings and errors, integers,
// bulk strings and errors, verbatim strings, doubles, booleans, big numbers,
// nulls, arrays, maps, sets, pushes and attributes, nested to any depth up to
// MaxDepth. Three things are refused with an error wrapping ErrProtocol:
//   - inline commands ("PING\r\n" without a type byte): a client library never
//     sends them; Reader.ReadCommand accepts them for hand-typed sessions;
//   - RESP3 streamed strings and aggregates ("$?", "*?", ";" chunks, "."):
//     redis-server never sends them and no client library writes them;
//   - lengths that are absurd: negative other than the RESP2 nulls "$-1" and
//     "*-1", above MaxBulkLen or MaxAggregateLen, or overflowing int64.
//
// A top-level attribute ("|1 ...") is a frame of its own (Frame.Kind is
// Attribute): it precedes the reply it annotates and is not one. An attribute
// inside an aggregate is consumed with it and counts neither as an element of
// the aggregate nor in its Head.
package resp

import (
	"bytes"
	"errors"
	"fmt"
)

// Kind is a RESP type byte.
type Kind byte

// The RESP2 and RESP3 types.
const (
	SimpleString Kind = '+'
	SimpleError  Kind = '-'
	Integer      Kind = ':'
	BulkString   Kind = '$'
	Array        Kind = '*'
	Map          Kind = '%'
	Set          Kind = '~'
	Push         Kind = '>'
	Attribute    Kind = '|'
	Verbatim     Kind = '='
	Double       Kind = ','
	Boolean      Kind = '#'
	BigNumber    Kind = '('
	Null         Kind = '_'
	BulkError    Kind = '!'
)

// String returns the name of the type ("array", "push", ...).
func (k Kind) String() string {
	switch k {
	case SimpleString:
		return "simple string"
	case SimpleError:
		return "simple error"
	case Integer:
		return "integer"
	case BulkString:
		return "bulk string"
	case Array:
		return "array"
	case Map:
		return "map"
	case Set:
		return "set"
	case Push:
		return "push"
	case Attribute:
		return "attribute"
	case Verbatim:
		return "verbatim string"
	case Double:
		return "double"
	case Boolean:
		return "boolean"
	case BigNumber:
		return "big number"
	case Null:
		return "null"
	case BulkError:
		return "bulk error"
	}
	return fmt.Sprintf("kind(%q)", byte(k))
}

// IsAggregate reports whether frames of this kind hold elements
// (array, map, set, push, attribute).
func (k Kind) IsAggregate() bool {
	switch k {
	case Array, Map, Set, Push, Attribute:
		return true
	}
	return false
}

// isLength reports whether the line of this kind is a length (bulk types and aggregates).
func (k Kind) isLength() bool {
	switch k {
	case BulkString, Verbatim, BulkError:
		return true
	}
	return k.IsAggregate()
}

// Limits of the Scanner. A frame beyond them is a protocol error.
const (
	// MaxHead is the number of leading elements of a top-level aggregate kept in Frame.Head.
	MaxHead = 4
	// MaxHeadBytes is the number of bytes kept of each element of Frame.Head.
	MaxHeadBytes = 64
	// MaxBulkLen is the longest bulk string, verbatim string or bulk error:
	// redis-server's default proto-max-bulk-len (512 MiB).
	MaxBulkLen = 512 << 20
	// MaxAggregateLen is the largest element count of an aggregate
	// (a map or attribute of n pairs counts 2n).
	MaxAggregateLen = 1 << 32
	// MaxDepth is the deepest nesting of aggregates (a top-level aggregate is depth 1).
	MaxDepth = 1000
)

// ErrProtocol is wrapped by every error of the Scanner: the input is not RESP.
var ErrProtocol = errors.New("protocol error")

// Elem is one leading element of a top-level frame: a direct child of a
// top-level aggregate, or the frame itself when it is not an aggregate.
type Elem struct {
	kind  Kind
	n     uint8 // bytes kept in buf
	trunc bool  // the element is longer than MaxHeadBytes
	isInt bool  // ival holds the value of an Integer
	buf   [MaxHeadBytes]byte
	size  int64 // string length, aggregate count (-1: RESP2 null)
	ival  int64
}

// Kind returns the type of the element.
func (e *Elem) Kind() Kind { return e.kind }

// Bytes returns the kept bytes of the element: the payload of a bulk or
// verbatim string or bulk error, the text of a line type (simple string or
// error, integer, double, big number, "t"/"f" for a boolean), nothing for a
// null or an aggregate. At most MaxHeadBytes; valid until the next Scan.
func (e *Elem) Bytes() []byte { return e.buf[:e.n] }

// Truncated reports that the element was longer than MaxHeadBytes.
func (e *Elem) Truncated() bool { return e.trunc }

// Len returns the length of a string element (bulk, verbatim, bulk error or
// the text of a line type), the element count of an aggregate (a map counts
// its keys and values), -1 for a RESP2 null and 0 for a RESP3 null.
func (e *Elem) Len() int64 { return e.size }

// Int returns the value of an Integer element, or of a bulk or simple string
// holding a decimal int64 (as a command's arguments do).
func (e *Elem) Int() (int64, bool) {
	if e.isInt {
		return e.ival, true
	}
	switch e.kind {
	case BulkString, SimpleString:
	default:
		return 0, false
	}
	if e.trunc {
		return 0, false
	}
	return parseInt(e.buf[:e.n])
}

// EqualFold reports whether the whole element equals s, ignoring ASCII case.
func (e *Elem) EqualFold(s string) bool {
	if e.trunc || int(e.n) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := e.buf[i], s[i]
		if 'a' <= a && a <= 'z' {
			a -= 'a' - 'A'
		}
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// parseInt parses an optionally signed decimal int64, byte by byte.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' || !accumulate(&n, c, neg) {
			return 0, false
		}
	}
	if neg {
		return int64(-n), true
	}
	return int64(n), true
}

// accumulate adds the decimal digit c to *n; it reports false when the
// result would not fit an int64 (of the given sign).
func accumulate(n *uint64, c byte, neg bool) bool {
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	d := uint64(c - '0')
	if *n > (limit-d)/10 {
		return false
	}
	*n = *n*10 + d
	return true
}

// Frame describes one complete top-level RESP frame.
type Frame struct {
	// Kind is the type of the frame.
	Kind Kind
	// N is the element count of an aggregate (a map or attribute counts its
	// keys and values: pairs*2), the length of a bulk string, verbatim
	// string or bulk error, the length of the text of a line type, and -1
	// for a RESP2 null ("$-1", "*-1").
	N int64
	// Head holds the first MaxHead direct children of a top-level aggregate
	// (a nested aggregate among them is kept with its Kind and Len only), or
	// in Head[0] the value itself when the frame is not an aggregate.
	Head [MaxHead]Elem
	// HeadLen is the number of valid entries in Head.
	HeadLen int
	// Size is the number of bytes of the whole frame on the wire.
	Size int64
}

// IsNull reports whether the frame is a null: RESP3 "_" or RESP2 "$-1"/"*-1".
func (f *Frame) IsNull() bool { return f.Kind == Null || f.N == -1 }

type state uint8

const (
	stType      state = iota // expecting the type byte of an element
	stLine                   // reading the text of a line after its type byte
	stLF                     // the line's '\r' was read, expecting '\n'
	stPayload                // reading the payload of a bulk type
	stPayloadCR              // expecting the '\r' after a payload
	stPayloadLF              // expecting the '\n' after a payload
)

// level is one open aggregate.
type level struct {
	rem  int64 // elements still to read
	attr bool  // the aggregate is a (nested) attribute
}

// token is one element of a frame, recorded for the value helpers.
type token struct {
	kind       Kind
	n          int64 // length, count (-1: RESP2 null) or integer value
	start, end int64 // payload or line text, as offsets into the frame
}

// Scanner is an incremental RESP2/RESP3 frame scanner. The zero value is
// ready to use; a Scanner is not safe for concurrent use. Its memory grows
// only with the deepest nesting seen, so that the steady state allocates
// nothing.
type Scanner struct {
	inFrame bool
	st      state
	err     error // final
	frame   Frame

	kind    Kind   // type of the element being read
	neg     bool   // the number being parsed has a '-'
	digits  int    // digits of the number so far
	num     uint64 // absolute value of the number so far
	lineLen int64  // bytes of the line text so far
	rem     int64  // payload bytes still to read
	blen    int64  // payload length
	rec     *Elem  // head element being filled, or nil

	stack []level // open aggregates; stack[:depth] are live
	depth int

	// Recording for the value helpers (Reader): one token per element.
	record bool
	toks   []token
}

// Reset makes the Scanner ready for a new stream, forgetting any error.
func (s *Scanner) Reset() {
	stack, toks, record := s.stack, s.toks[:0], s.record
	*s = Scanner{stack: stack, toks: toks, record: record}
}

// Frame returns the last complete frame; valid until the next Scan.
func (s *Scanner) Frame() *Frame { return &s.frame }

// InFrame reports whether bytes of an unfinished frame have been consumed.
func (s *Scanner) InFrame() bool { return s.inFrame }

// Scan consumes bytes of p until one top-level frame is complete or p is
// exhausted. n is the number of bytes consumed; done reports that a frame
// ended exactly at p[n-1], and s.Frame() then describes it (valid until the
// next Scan). An error wraps ErrProtocol and is final: every later Scan
// returns it until Reset.
func (s *Scanner) Scan(p []byte) (n int, done bool, err error) {
	if s.err != nil {
		return 0, false, s.err
	}
	i := 0
	for i < len(p) {
		switch s.st {
		case stType:
			if !s.inFrame {
				s.beginFrame()
			}
			if err := s.beginElem(Kind(p[i]), i); err != nil {
				return s.fail(i, err)
			}
			i++
		case stLine:
			i = s.fastLine(p, i)
			for i < len(p) {
				c := p[i]
				if c == '\r' {
					s.st = stLF
					i++
					break
				}
				if err := s.lineByte(c); err != nil {
					return s.fail(i, err)
				}
				i++
			}
		case stLF:
			if p[i] != '\n' {
				return s.fail(i, errors.New("line not terminated by CRLF"))
			}
			i++
			end, err := s.endLine(i)
			if err != nil {
				return s.fail(i, err)
			}
			if end {
				s.frame.Size += int64(i)
				s.inFrame = false
				return i, true, nil
			}
		case stPayload:
			k := len(p) - i
			if int64(k) > s.rem {
				k = int(s.rem)
			}
			chunk := p[i : i+k]
			off := s.blen - s.rem // offset of chunk in the payload
			if s.kind == Verbatim && off <= 3 && off+int64(k) > 3 && chunk[3-off] != ':' {
				return s.fail(i+int(3-off), errors.New("verbatim string without a format"))
			}
			if e := s.rec; e != nil {
				c := copy(e.buf[e.n:], chunk)
				e.n += uint8(c)
			}
			s.rem -= int64(k)
			i += k
			if s.rem == 0 {
				s.st = stPayloadCR
			}
		case stPayloadCR:
			if p[i] != '\r' {
				return s.fail(i, errors.New("bulk payload not terminated by CRLF"))
			}
			s.st = stPayloadLF
			i++
		case stPayloadLF:
			if p[i] != '\n' {
				return s.fail(i, errors.New("bulk payload not terminated by CRLF"))
			}
			i++
			s.st = stType
			if s.elemDone(false) {
				s.frame.Size += int64(i)
				s.inFrame = false
				return i, true, nil
			}
		}
	}
	s.frame.Size += int64(i)
	return i, false, nil
}

// fail records a final error at byte i of the current call.
func (s *Scanner) fail(i int, err error) (int, bool, error) {
	if s.frame.Kind == 0 {
		s.err = fmt.Errorf("%w: %v", ErrProtocol, err)
	} else {
		s.err = fmt.Errorf("%w: %v (byte %d of %s frame)", ErrProtocol, err, s.off(i), s.frame.Kind)
	}
	return i, false, s.err
}

// off returns the offset in the frame of byte i of the current call.
func (s *Scanner) off(i int) int64 { return s.frame.Size + int64(i) }

func (s *Scanner) beginFrame() {
	for i := 0; i < s.frame.HeadLen; i++ {
		s.frame.Head[i] = Elem{}
	}
	s.frame.Kind, s.frame.N, s.frame.HeadLen, s.frame.Size = 0, 0, 0, 0
	s.toks = s.toks[:0]
	s.inFrame = true
}

// beginElem starts an element of type k whose type byte is byte i of the call.
func (s *Scanner) beginElem(k Kind, i int) error {
	switch k {
	case SimpleString, SimpleError, Integer, BulkString, Array, Map, Set, Push, Attribute,
		Verbatim, Double, Boolean, BigNumber, Null, BulkError:
	case ';', '.':
		return errors.New("streamed RESP3 types are not supported")
	default:
		if s.depth == 0 {
			return fmt.Errorf("not RESP: unknown type byte %q (an inline command, or another protocol)", byte(k))
		}
		return fmt.Errorf("unknown type byte %q", byte(k))
	}
	s.kind, s.neg, s.digits, s.num, s.lineLen = k, false, 0, 0, 0
	s.rec = nil
	switch {
	case s.depth == 0:
		s.frame.Kind = k
		if !k.IsAggregate() {
			s.rec = &s.frame.Head[0]
		}
	case s.depth == 1 && k != Attribute && s.frame.HeadLen < MaxHead:
		s.rec = &s.frame.Head[s.frame.HeadLen]
		s.frame.HeadLen++
	}
	if s.rec != nil {
		s.rec.kind = k
		if s.depth == 0 {
			s.frame.HeadLen = 1
		}
	}
	if s.record {
		off := s.off(i) + 1
		s.toks = append(s.toks, token{kind: k, start: off, end: off})
	}
	s.st = stLine
	return nil
}

// fastLine takes the bytes of a line's text from p[i:] that lineByte would
// take without an error, in bulk: the digits of a length or an integer, or
// the text of a simple string or error up to its '\r'. It returns the index
// of the first byte it did not take, which the byte-by-byte path then takes
// (a sign, the '\r', an error). The fuzz test holds the two paths to the
// same results, as the input is split at every byte.
func (s *Scanner) fastLine(p []byte, i int) int {
	switch k := s.kind; {
	case k == SimpleString || k == SimpleError:
		j := bytes.IndexByte(p[i:], '\r')
		if j < 0 {
			j = len(p) - i
		}
		text := p[i : i+j]
		if bytes.IndexByte(text, '\n') >= 0 {
			return i // lineByte reports it
		}
		s.lineLen += int64(len(text))
		if e := s.rec; e != nil {
			c := copy(e.buf[e.n:], text)
			e.n += uint8(c)
			if c < len(text) {
				e.trunc = true
			}
		}
		return i + j
	case k.isLength() || k == Integer:
		e := s.rec
		if k.isLength() {
			e = nil // lengths are not kept as text
		}
		for ; i < len(p); i++ {
			c := p[i]
			if c < '0' || c > '9' || !accumulate(&s.num, c, s.neg) {
				return i
			}
			s.lineLen++
			s.digits++
			if e != nil {
				if e.n < MaxHeadBytes {
					e.buf[e.n] = c
					e.n++
				} else {
					e.trunc = true
				}
			}
		}
	}
	return i
}

// lineByte takes one byte of a line's text.
func (s *Scanner) lineByte(c byte) error {
	if c == '\n' {
		return errors.New("line feed without carriage return")
	}
	s.lineLen++
	if e := s.rec; e != nil && !s.kind.isLength() {
		if e.n < MaxHeadBytes {
			e.buf[e.n] = c
			e.n++
		} else {
			e.trunc = true
		}
	}
	switch s.kind {
	case SimpleString, SimpleError:
		return nil
	case Double:
		switch {
		case '0' <= c && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E',
			c == 'i', c == 'n', c == 'f', c == 'a':
			return nil
		}
		return errors.New("invalid double")
	case Boolean:
		if s.lineLen > 1 || (c != 't' && c != 'f') {
			return errors.New("invalid boolean")
		}
		return nil
	case Null:
		return errors.New("invalid null")
	}
	// Integer, big number and lengths.
	if s.lineLen == 1 {
		switch {
		case c == '-':
			s.neg = true
			return nil
		case c == '+' && (s.kind == Integer || s.kind == BigNumber):
			return nil
		case c == '?' && s.kind.isLength():
			return errors.New("streamed RESP3 types are not supported")
		}
	}
	if c < '0' || c > '9' {
		if s.kind.isLength() {
			return errors.New("invalid length")
		}
		return fmt.Errorf("invalid %s", s.kind)
	}
	s.digits++
	if s.kind == BigNumber {
		return nil
	}
	if !accumulate(&s.num, c, s.neg) {
		if s.kind.isLength() {
			return errors.New("invalid length")
		}
		return errors.New("integer overflow")
	}
	return nil
}

// endLine ends the line whose '\n' is byte i-1 of the call. end reports that
// the frame is complete.
func (s *Scanner) endLine(i int) (end bool, err error) {
	k := s.kind
	var n int64 // for the token and the head: length, count or value
	switch k {
	case SimpleString, SimpleError, Double, BigNumber, Boolean, Null:
		if (k == Double || k == Boolean) && s.lineLen == 0 || k == BigNumber && s.digits == 0 {
			return false, fmt.Errorf("invalid %s", k)
		}
		n = s.lineLen
	case Integer:
		if s.digits == 0 {
			return false, errors.New("invalid integer")
		}
		n = int64(s.num)
		if s.neg {
			n = int64(-s.num)
		}
		if e := s.rec; e != nil {
			e.isInt, e.ival = true, n
		}
	default: // lengths
		if s.digits == 0 {
			return false, errors.New("invalid length")
		}
		if s.num > 1<<63-1 {
			return false, errors.New("invalid length")
		}
		n = int64(s.num)
		if s.neg {
			if n != 1 || (k != BulkString && k != Array) {
				return false, errors.New("invalid length")
			}
			n = -1
		}
		if k.IsAggregate() {
			if n > MaxAggregateLen {
				return false, errors.New("aggregate too long")
			}
			if k == Map || k == Attribute {
				n *= 2
				if n > MaxAggregateLen {
					return false, errors.New("aggregate too long")
				}
			}
		} else if n > MaxBulkLen {
			return false, errors.New("bulk length above 512 MiB")
		} else if k == Verbatim && n < 4 {
			return false, errors.New("verbatim string without a format")
		}
	}
	if e := s.rec; e != nil {
		e.size = n
		if k == Integer {
			e.size = s.lineLen
		}
		if k.isLength() && !k.IsAggregate() && n > MaxHeadBytes {
			e.trunc = true
		}
	}
	if s.depth == 0 {
		s.frame.N = n
		if k == Integer {
			s.frame.N = s.lineLen
		}
	}
	if s.record {
		t := &s.toks[len(s.toks)-1]
		t.n = n
		t.end = t.start + s.lineLen
	}
	switch {
	case k.IsAggregate() && n > 0:
		if s.depth >= MaxDepth {
			return false, errors.New("aggregates nested too deeply")
		}
		if s.depth == len(s.stack) {
			s.stack = append(s.stack, level{})
		}
		s.stack[s.depth] = level{rem: n, attr: k == Attribute}
		s.depth++
		s.st = stType
		return false, nil
	case k.isLength() && !k.IsAggregate() && n >= 0:
		s.rem, s.blen = n, n
		s.st = stPayload
		if n == 0 {
			s.st = stPayloadCR
		}
		if s.record {
			t := &s.toks[len(s.toks)-1]
			t.start = s.off(i)
			t.end = t.start + n
		}
		return false, nil
	}
	s.st = stType
	return s.elemDone(k == Attribute), nil
}

// elemDone ends an element (isAttr: an empty attribute); it reports that the
// top-level frame is complete.
func (s *Scanner) elemDone(isAttr bool) bool {
	for s.depth > 0 {
		if isAttr {
			return false // an attribute inside an aggregate is not one of its elements
		}
		top := &s.stack[s.depth-1]
		top.rem--
		if top.rem > 0 {
			return false
		}
		isAttr = top.attr
		s.depth--
	}
	return true
}
