package emulator

import (
	"bufio"

	"github.com/entraredis/entraredis/internal/resp"
)

// cmdReader holds the client command being forwarded: read by resp.Reader
// (RESP arrays of bulk strings, or inline commands re-encoded), possibly
// rewritten. A command that needs no rewriting is forwarded byte for byte;
// the steady state allocates nothing per command.
type cmdReader struct {
	rd   *resp.Reader
	raw  []byte   // the command as RESP
	argv [][]byte // its arguments, views into raw (or the rewritten arguments)
	buf  []byte   // the encoding of a rewritten command
}

func newCmdReader(r *bufio.Reader) *cmdReader {
	return &cmdReader{rd: resp.NewReader(r)}
}

// next reads one command. It returns io.EOF (or the read error) at the end
// of the stream and an error wrapping resp.ErrProtocol on malformed input.
func (c *cmdReader) next() error {
	args, err := c.rd.ReadCommand()
	if err != nil {
		return err
	}
	c.argv, c.raw = args, c.rd.Raw()
	return nil
}

// nargs returns the number of arguments of the current command.
func (c *cmdReader) nargs() int { return len(c.argv) }

// arg returns argument i of the current command.
func (c *cmdReader) arg(i int) []byte { return c.argv[i] }

// encode replaces the current command by args.
func (c *cmdReader) encode(args [][]byte) {
	c.buf = resp.AppendCommand(c.buf[:0], args...)
	c.raw, c.argv = c.buf, args
}

// args copies the arguments of the current command (for rewriting).
func (c *cmdReader) args() [][]byte {
	out := make([][]byte, c.nargs())
	for i := range out {
		out[i] = append([]byte(nil), c.arg(i)...)
	}
	return out
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
