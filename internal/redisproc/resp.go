package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// RedisError is an error reply from redis-server (for example "NOPERM ..." or
// "WRONGPASS ..."), as opposed to a network or protocol error.
type RedisError string

// Error returns the reply text.
func (e RedisError) Error() string { return string(e) }

// respConn is a minimal RESP2 client used for administration only. It keeps the
// package free of client-library dependencies.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialResp connects to addr and, when user is not empty, authenticates with AUTH.
// The context bounds the dial and every later command (via the connection deadline).
func dialResp(ctx context.Context, addr, user, pass string) (*respConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	rc := &respConn{c: c, r: bufio.NewReader(c)}
	if user != "" {
		if _, err := rc.do("AUTH", user, pass); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH %s: %w", user, err)
		}
	}
	return rc, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

// do sends one command and reads its reply: string (simple or bulk), int64, nil
// (null), []any (array) or a RedisError returned as the error.
func (rc *respConn) do(args ...string) (any, error) {
	buf := make([]byte, 0, 64)
	buf = append(buf, '*')
	buf = strconv.AppendInt(buf, int64(len(args)), 10)
	buf = append(buf, '\r', '\n')
	for _, a := range args {
		buf = append(buf, '$')
		buf = strconv.AppendInt(buf, int64(len(a)), 10)
		buf = append(buf, '\r', '\n')
		buf = append(buf, a...)
		buf = append(buf, '\r', '\n')
	}
	if _, err := rc.c.Write(buf); err != nil {
		return nil, err
	}
	v, err := readReply(rc.r)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(RedisError); ok {
		return nil, e
	}
	return v, nil
}

const maxBulk = 64 << 20

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, errors.New("redisproc: malformed RESP line")
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return RedisError(body), nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisproc: malformed integer reply: %w", err)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n > maxBulk {
			return nil, errors.New("redisproc: malformed bulk length")
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n > 1<<20 {
			return nil, errors.New("redisproc: malformed array length")
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			v, err := readReply(r)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	default:
		return nil, fmt.Errorf("redisproc: unexpected RESP type %q", line[0])
	}
}
