package resp

import (
	"bufio"
	"io"
	"net"
)

// Client is a minimal synchronous RESP client over one connection, for
// tools that must see each command on its own (the doctor, redisproc's
// administration). It never puts the arguments it sent (a token may be one
// of them) in an error. A Client is not safe for concurrent use.
type Client struct {
	conn net.Conn
	r    *Reader
	buf  []byte // the encoding of the last command
}

// NewClient returns a Client on conn; deadlines are the caller's (set them on conn).
func NewClient(conn net.Conn) *Client {
	return &Client{conn: conn, r: NewReader(bufio.NewReader(conn))}
}

// NewExactClient is NewClient for a connection that is handed on after the
// exchange: it reads one byte at a time, so that no byte past a reply is
// consumed.
func NewExactClient(conn net.Conn) *Client {
	return &Client{conn: conn, r: NewReader(bufio.NewReaderSize(oneByteReader{conn}, 16))}
}

// oneByteReader reads at most one byte per Read.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// Do sends one command and reads its reply. The error is a write, read or
// protocol error; an error reply is a Value (see Value.Err).
func (c *Client) Do(args ...string) (Value, error) {
	c.buf = AppendCommand(c.buf[:0], args...)
	if _, err := c.conn.Write(c.buf); err != nil {
		return Value{}, &IOError{Op: "send", Err: err}
	}
	v, err := c.r.ReadValue()
	if err != nil {
		return Value{}, &IOError{Op: "read the reply", Err: err}
	}
	return v, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// IOError is a Client's failure to send a command or read its reply.
type IOError struct {
	Op  string // "send" or "read the reply"
	Err error
}

// Error returns Op and Err's text.
func (e *IOError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *IOError) Unwrap() error { return e.Err }
