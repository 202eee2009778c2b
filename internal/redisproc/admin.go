package redisproc

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/entraredis/entraredis/internal/resp"
)

// RedisError is an error reply from redis-server (for example "NOPERM ..." or
// "WRONGPASS ..."), as opposed to a network or protocol error.
type RedisError string

// Error returns the reply text.
func (e RedisError) Error() string { return string(e) }

// respConn is the administration connection: a resp.Client, which keeps the
// package free of client-library dependencies.
type respConn struct {
	c *resp.Client
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
	rc := &respConn{c: resp.NewClient(c)}
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
// (null), []any (array; see resp.Value.Any) or a RedisError returned as the error.
func (rc *respConn) do(args ...string) (any, error) {
	v, err := rc.c.Do(args...)
	if err != nil {
		return nil, err
	}
	if e := v.Err(); e != nil {
		return nil, RedisError(e.Error())
	}
	return v.Any(), nil
}
