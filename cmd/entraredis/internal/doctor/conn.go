package doctor

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/entraredis/entraredis/internal/resp"
)

// respConn is the doctor's connection: the doctor needs to see each step
// (AUTH, PING, ...) on its own, which a pooled client hides. It never
// includes the arguments it sent (the token is one of them) in an error.
type respConn struct {
	conn net.Conn
	c    *resp.Client
}

func newRESPConn(c net.Conn) *respConn {
	return &respConn{conn: c, c: resp.NewClient(c)}
}

// do sends one command and reads its reply: string, int64, bool, nil, []any
// (see resp.Value.Any), or an error reply as a *resp.Error error.
func (c *respConn) do(timeout time.Duration, args ...string) (any, error) {
	if err := c.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	v, err := c.c.Do(args...)
	if err != nil {
		var ioe *resp.IOError
		if errors.As(err, &ioe) && ioe.Op == "send" {
			return nil, fmt.Errorf("send %s: %w", args[0], ioe.Err)
		}
		return nil, fmt.Errorf("read the reply to %s: %w", args[0], errors.Unwrap(err))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return v.Any(), nil
}

func (c *respConn) Close() error { return c.c.Close() }
