package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits of the command reader. They match Redis' defaults closely enough
// for tests: a larger command is a protocol error and closes the connection.
const (
	maxArgs      = 1 << 20   // Redis: 1024*1024 multibulk length
	maxBulkLen   = 512 << 20 // Redis: proto-max-bulk-len 512mb
	maxInlineLen = 64 << 10  // Redis: PROTO_INLINE_MAX_SIZE
	keepRawBelow = 1 << 20   // a buffer that grew past this is dropped after use
)

// errProtocol is wrapped by every malformed-input error of the command reader.
var errProtocol = errors.New("protocol error")

// cmdReader reads client commands (RESP arrays of bulk strings, or inline
// commands) and keeps the raw bytes of the last one, so that a command that
// needs no rewriting is forwarded byte for byte. Buffers are reused: the
// steady state allocates nothing per command.
type cmdReader struct {
	r    *bufio.Reader
	raw  []byte // the command as RESP (inline commands are re-encoded)
	offs []int  // start,end pairs into raw, one per argument
}

func newCmdReader(r *bufio.Reader) *cmdReader {
	return &cmdReader{r: r, raw: make([]byte, 0, 4096), offs: make([]int, 0, 16)}
}

// nargs returns the number of arguments of the last command.
func (c *cmdReader) nargs() int { return len(c.offs) / 2 }

// arg returns argument i of the last command (a view into the raw buffer).
func (c *cmdReader) arg(i int) []byte { return c.raw[c.offs[2*i]:c.offs[2*i+1]] }

// next reads one command. It returns io.EOF (or the read error) at the end
// of the stream and an error wrapping errProtocol on malformed input.
// Empty inline lines are skipped, as Redis does.
func (c *cmdReader) next() error {
	if cap(c.raw) > keepRawBelow {
		c.raw = make([]byte, 0, 4096)
	}
	c.raw = c.raw[:0]
	c.offs = c.offs[:0]
	for {
		b, err := c.r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] == '*' {
			return c.readArray()
		}
		empty, err := c.readInline()
		if err != nil || !empty {
			return err
		}
	}
}

func (c *cmdReader) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line too long", errProtocol)
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not terminated by CRLF", errProtocol)
	}
	return line, nil
}

func (c *cmdReader) readArray() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	n, ok := parseLen(line[1 : len(line)-2])
	if !ok || n > maxArgs {
		return fmt.Errorf("%w: invalid multibulk length", errProtocol)
	}
	c.raw = append(c.raw, line...)
	for i := 0; i < n; i++ {
		line, err := c.readLine()
		if err != nil {
			return unexpected(err)
		}
		if line[0] != '$' {
			return fmt.Errorf("%w: expected '$', got '%c'", errProtocol, line[0])
		}
		l, ok := parseLen(line[1 : len(line)-2])
		if !ok || l > maxBulkLen {
			return fmt.Errorf("%w: invalid bulk length", errProtocol)
		}
		c.raw = append(c.raw, line...)
		start := len(c.raw)
		end := start + l + 2
		if cap(c.raw) < end {
			grown := make([]byte, start, end+end/4)
			copy(grown, c.raw)
			c.raw = grown
		}
		c.raw = c.raw[:end]
		if _, err := io.ReadFull(c.r, c.raw[start:end]); err != nil {
			return unexpected(err)
		}
		if c.raw[end-2] != '\r' || c.raw[end-1] != '\n' {
			return fmt.Errorf("%w: bulk string not terminated by CRLF", errProtocol)
		}
		c.offs = append(c.offs, start, start+l)
	}
	return nil
}

// readInline reads an inline command ("PING\r\n", "AUTH u p\n") and
// re-encodes it as a RESP array. Quoting is not supported (arguments are
// split on spaces and tabs): tests send inline commands only by hand.
func (c *cmdReader) readInline() (empty bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return false, fmt.Errorf("%w: too big inline request", errProtocol)
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return false, err
	}
	if len(line) > maxInlineLen {
		return false, fmt.Errorf("%w: too big inline request", errProtocol)
	}
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return true, nil
	}
	c.encode(fields)
	return false, nil
}

// encode replaces the current command by args, encoded as a RESP array.
func (c *cmdReader) encode(args [][]byte) {
	c.raw = c.raw[:0]
	c.offs = c.offs[:0]
	c.raw = append(c.raw, '*')
	c.raw = strconv.AppendInt(c.raw, int64(len(args)), 10)
	c.raw = append(c.raw, '\r', '\n')
	for _, a := range args {
		c.raw = append(c.raw, '$')
		c.raw = strconv.AppendInt(c.raw, int64(len(a)), 10)
		c.raw = append(c.raw, '\r', '\n')
		start := len(c.raw)
		c.raw = append(c.raw, a...)
		c.offs = append(c.offs, start, len(c.raw))
		c.raw = append(c.raw, '\r', '\n')
	}
}

// args copies the arguments of the current command (for rewriting).
func (c *cmdReader) args() [][]byte {
	out := make([][]byte, c.nargs())
	for i := range out {
		out[i] = append([]byte(nil), c.arg(i)...)
	}
	return out
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseLen parses a non-negative decimal length; "-1" and other negative
// numbers are refused (a client never sends null arrays).
func parseLen(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	return n, true
}

// isCmd reports whether b equals the upper-case ASCII name, ignoring case.
func isCmd(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		if ch != upper[i] {
			return false
		}
	}
	return true
}
