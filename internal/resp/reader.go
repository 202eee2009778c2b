package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of the Reader's command reading (Redis' own defaults).
const (
	// MaxCommandArgs is the most arguments of one command (Redis: 1024*1024).
	MaxCommandArgs = 1 << 20
	// MaxInlineLen is the longest inline command (Redis: PROTO_INLINE_MAX_SIZE, 64 KiB).
	MaxInlineLen = 64 << 10
	// keepRawBelow: a frame buffer that grew past this is dropped after use.
	keepRawBelow = 1 << 20
)

// Reader reads whole frames, commands and values from a bufio.Reader with a
// Scanner: the bytes of a frame are kept (so that a frame can be forwarded
// byte for byte) and its elements located by the Scanner. Buffers are
// reused: reading commands allocates nothing per command in the steady
// state. A Reader is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	s       Scanner
	raw     []byte   // bytes of the last frame
	args    [][]byte // the last command's arguments, views into raw
	checked int      // tokens of the command being read that checkCommand saw
	err     error    // a protocol error: final
}

// NewReader returns a Reader that reads from br.
func NewReader(br *bufio.Reader) *Reader {
	r := &Reader{br: br, raw: make([]byte, 0, 4096)}
	r.s.record = true
	return r
}

// Raw returns the bytes of the last frame or command read (an inline
// command re-encoded as RESP); valid until the next read.
func (r *Reader) Raw() []byte { return r.raw }

// ReadFrame reads the next frame and returns its bytes (valid until the next
// read) and its description. At the end of the stream it returns io.EOF
// (io.ErrUnexpectedEOF inside a frame) or the read error; on malformed input
// an error wrapping ErrProtocol, after which the Reader is unusable.
func (r *Reader) ReadFrame() ([]byte, *Frame, error) {
	if err := r.readFrame(nil); err != nil {
		return nil, nil, err
	}
	return r.raw, r.s.Frame(), nil
}

// readFrame reads one frame into r.raw; check, when not nil, runs after each
// step and may end the frame with an error.
func (r *Reader) readFrame(check func() error) error {
	if r.err != nil {
		return r.err
	}
	if !r.s.InFrame() { // else: a read error interrupted the frame, go on with it
		if cap(r.raw) > keepRawBelow {
			r.raw = make([]byte, 0, 4096)
		}
		r.raw = r.raw[:0]
		r.checked = 0
	}
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				if err == io.EOF && r.s.InFrame() {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		p, _ := r.br.Peek(r.br.Buffered())
		n, done, err := r.s.Scan(p)
		r.raw = append(r.raw, p[:n]...)
		_, _ = r.br.Discard(n)
		if err == nil && check != nil {
			err = check()
		}
		if err != nil {
			r.err = err
			return err
		}
		if done {
			return nil
		}
	}
}

// ReadCommand reads one client command: an array of bulk strings, or an
// inline command ("PING\r\n", "AUTH u p\n": the line split on blanks, no
// quoting; empty lines are skipped, as Redis does), which is re-encoded as
// RESP in Raw. The arguments are views into Raw, valid until the next read.
// An empty array ("*0") is a command of no arguments.
func (r *Reader) ReadCommand() ([][]byte, error) {
	r.args = r.args[:0]
	if r.err != nil {
		return nil, r.err
	}
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			if err == io.EOF && r.s.InFrame() {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b[0] != byte(Array) && !r.s.InFrame() {
			if err := r.readInline(); err != nil {
				return nil, err
			}
			if len(r.raw) == 0 {
				continue // empty line
			}
		} else if err := r.readFrame(r.checkCommand); err != nil {
			return nil, err
		}
		break
	}
	f := r.s.Frame()
	if f.N < 0 {
		return nil, fmt.Errorf("%w: invalid multibulk length", ErrProtocol)
	}
	for _, t := range r.s.toks[1:] {
		r.args = append(r.args, r.raw[t.start:t.end])
	}
	return r.args, nil
}

// checkCommand refuses, as soon as they are seen, a command of too many
// arguments and an argument that is not a bulk string.
func (r *Reader) checkCommand() error {
	t := r.s.toks
	if len(t) > 0 && t[0].n > MaxCommandArgs {
		return fmt.Errorf("%w: invalid multibulk length", ErrProtocol)
	}
	if r.checked == 0 {
		r.checked = 1
	}
	for ; r.checked < len(t); r.checked++ {
		if k := t[r.checked].kind; k != BulkString {
			return fmt.Errorf("%w: expected '$', got '%c'", ErrProtocol, byte(k))
		}
	}
	// The last token's line may be incomplete: its length is checked once known.
	if len(t) > 1 && t[len(t)-1].n < 0 {
		return fmt.Errorf("%w: invalid bulk length", ErrProtocol)
	}
	return nil
}

// readInline reads an inline command line and leaves it, re-encoded, in
// r.raw and the Scanner's tokens (r.raw is empty for an empty line).
func (r *Reader) readInline() error {
	r.raw = r.raw[:0]
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			r.err = fmt.Errorf("%w: too big inline request", ErrProtocol)
			return r.err
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if len(line) > MaxInlineLen {
		r.err = fmt.Errorf("%w: too big inline request", ErrProtocol)
		return r.err
	}
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	r.raw = AppendCommand(r.raw, fields...)
	// The same Scanner locates the arguments of the re-encoded command.
	r.s.Reset()
	if _, done, err := r.s.Scan(r.raw); err != nil || !done {
		return fmt.Errorf("%w: inline command not re-encoded (%v)", ErrProtocol, err)
	}
	return nil
}

// AppendCommand appends args to dst as a RESP command (an array of bulk strings).
func AppendCommand[S ~string | ~[]byte](dst []byte, args ...S) []byte {
	dst = append(dst, byte(Array))
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, byte(BulkString))
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// Value is one RESP value as a tree, as ReadValue returns it.
type Value struct {
	// Kind is the RESP type.
	Kind Kind
	// Str is the payload of a bulk string, verbatim string (with its
	// "txt:" format) or bulk error, or the text of a line type (simple
	// string or error, integer, double, big number, "t"/"f").
	Str string
	// Int is the value of an Integer.
	Int int64
	// Elems are the elements of an aggregate; a map's are key, value, key, value, ...
	Elems []Value
	// Null is set for a RESP3 null and for the RESP2 nulls "$-1" and "*-1".
	Null bool
}

// Error is an error reply ("-ERR ...", "!len ..."): the one type of a
// server's error reply in the library. It has go-redis' redis.Error method
// set, so that redis.HasErrorPrefix reads it as go-redis reads its own.
type Error struct {
	// Msg is the reply's text, e.g. "WRONGPASS invalid username-password pair".
	Msg string
}

// Error returns the reply's text.
func (e *Error) Error() string { return e.Msg }

// RedisError marks the reply as go-redis' redis.Error.
func (*Error) RedisError() {}

// Code returns the first word of the reply ("ERR", "WRONGPASS", "NOPERM").
func (e *Error) Code() string {
	code, _, _ := strings.Cut(e.Msg, " ")
	return code
}

// Err returns the value as an *Error if it is an error reply, else nil.
func (v *Value) Err() error {
	if v.Kind == SimpleError || v.Kind == BulkError {
		return &Error{Msg: v.Str}
	}
	return nil
}

// Any returns the value as plain Go values: string (simple, bulk and
// verbatim strings without their format, doubles and big numbers as text),
// int64, bool, nil (nulls), []any (arrays, sets, pushes; maps as key, value,
// key, value, ...) and *Error for error replies.
func (v *Value) Any() any {
	switch {
	case v.Null:
		return nil
	case v.Kind == Integer:
		return v.Int
	case v.Kind == Boolean:
		return v.Str == "t"
	case v.Kind == Verbatim:
		return v.Str[4:]
	case v.Err() != nil:
		return v.Err()
	case v.Kind.IsAggregate():
		out := make([]any, len(v.Elems))
		for i := range v.Elems {
			out[i] = v.Elems[i].Any()
		}
		return out
	}
	return v.Str
}

// ReadValue reads the next value. Attributes are dropped: a top-level
// attribute frame is skipped and a nested one is left out of its aggregate.
// Pushes are returned like any other value (Kind Push). An error reply is a
// Value (see Value.Err), not an error.
func (r *Reader) ReadValue() (Value, error) {
	for {
		if err := r.readFrame(nil); err != nil {
			return Value{}, err
		}
		if r.s.Frame().Kind == Attribute {
			continue
		}
		v, rest := r.value(r.s.toks)
		if len(rest) != 0 {
			return Value{}, fmt.Errorf("%w: %d tokens left over (a Scanner bug)", ErrProtocol, len(rest))
		}
		return v, nil
	}
}

// value builds the value of the first element of toks (dropping the
// attributes before it) and returns the tokens that follow it.
func (r *Reader) value(toks []token) (Value, []token) {
	for toks[0].kind == Attribute {
		a := toks[0]
		toks = toks[1:]
		for i := int64(0); i < a.n; i++ {
			toks = skip(toks)
		}
	}
	t := toks[0]
	toks = toks[1:]
	v := Value{Kind: t.kind}
	switch {
	case t.kind == Null || t.n < 0 && (t.kind == BulkString || t.kind == Array):
		v.Null = true
	case t.kind == Integer:
		v.Int = t.n
		v.Str = string(r.raw[t.start:t.end])
	case t.kind.IsAggregate():
		v.Elems = make([]Value, t.n)
		for i := range v.Elems {
			v.Elems[i], toks = r.value(toks)
		}
	default:
		v.Str = string(r.raw[t.start:t.end])
	}
	return v, toks
}

// skip returns the tokens after the first element of toks and the
// attributes before it.
func skip(toks []token) []token {
	for {
		t := toks[0]
		toks = toks[1:]
		if t.kind.IsAggregate() {
			for i := int64(0); i < t.n; i++ {
				toks = skip(toks)
			}
		}
		if t.kind != Attribute {
			return toks
		}
	}
}
