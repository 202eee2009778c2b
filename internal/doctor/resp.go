package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// respConn is a minimal RESP2 client over one connection: the doctor needs to
// see each step (AUTH, PING, ...) on its own, which a pooled client hides.
// It never includes the arguments it sent (the token is one of them) in an error.
type respConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// redisError is an error reply from the server ("-WRONGPASS ...").
type redisError struct{ msg string }

func (e *redisError) Error() string { return e.msg }

// prefix returns the error code: the first word of the reply ("WRONGPASS", "NOPERM", "ERR").
func (e *redisError) prefix() string {
	code, _, _ := strings.Cut(e.msg, " ")
	return code
}

// nilReply is the value of a RESP2 null bulk string or null array.
type nilReply struct{}

func newRESPConn(c net.Conn) *respConn {
	return &respConn{conn: c, r: bufio.NewReader(c)}
}

// do sends one command and reads its reply. Replies are string, int64,
// nilReply, []any or *redisError (returned as the error).
func (c *respConn) do(timeout time.Duration, args ...string) (any, error) {
	if err := c.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return nil, fmt.Errorf("send %s: %w", args[0], err)
	}
	v, err := c.read(0)
	if err != nil {
		var re *redisError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("read the reply to %s: %w", args[0], err)
	}
	return v, nil
}

func (c *respConn) readLine() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return "", errors.New("protocol error: line does not end with CRLF")
	}
	return line[:len(line)-2], nil
}

const maxReplyDepth = 8

func (c *respConn) read(depth int) (any, error) {
	if depth > maxReplyDepth {
		return nil, errors.New("protocol error: reply nested too deeply")
	}
	line, err := c.readLine()
	if err != nil {
		return nil, err
	}
	if line == "" {
		return nil, errors.New("protocol error: empty line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, &redisError{msg: body}
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("protocol error: bad integer: %w", err)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("protocol error: bad bulk length: %w", err)
		}
		if n < 0 {
			return nilReply{}, nil
		}
		if n > 1<<20 {
			return nil, errors.New("protocol error: bulk string too long")
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("protocol error: bad array length: %w", err)
		}
		if n < 0 {
			return nilReply{}, nil
		}
		if n > 1<<16 {
			return nil, errors.New("protocol error: array too long")
		}
		out := make([]any, 0, n)
		for range n {
			v, err := c.read(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	default:
		// A reply that is not RESP: the port speaks something else (an HTTP
		// proxy, a TLS alert read as plaintext, ...). Do not echo it.
		return nil, fmt.Errorf("protocol error: the server's reply is not RESP (first byte %q)", line[0])
	}
}

func (c *respConn) Close() error { return c.conn.Close() }
