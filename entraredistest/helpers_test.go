package entraredistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.uber.org/goleak"

	"github.com/entraredis/entraredis/internal/resp"
)

func TestMain(m *testing.M) {
	OmitExamplesWithoutRedisServer()
	goleak.VerifyTestMain(m)
}

const wrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
const noAuth = "-NOAUTH Authentication required.\r\n"

// forEachBackend runs f against redis-server (skipped, or failed with
// EnvRequireRedisServer=1, when it is absent) and against the in-process
// fallback, in parallel.
func forEachBackend(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range []Backend{BackendRedisServer, BackendInProcess} {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			if b == BackendRedisServer {
				RequireRedisServer(t)
			}
			f(t, b)
		})
	}
}

// requireACL skips on the in-process backend, which has no ACL.
func requireACL(t *testing.T, srv *Server) {
	t.Helper()
	if srv.Backend() != BackendRedisServer {
		t.Skip("the in-process backend (miniredis) has no ACL, so no NOPERM: this test needs redis-server (see Server.Limitations)")
	}
}

func token(t *testing.T, c *Credential) string {
	t.Helper()
	tok, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://redis.azure.com/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	return tok.Token
}

// rawConn is a RESP connection that shows the exact reply bytes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	rd *resp.Reader // reads replies from r
}

func dialRaw(t *testing.T, srv *Server) *rawConn {
	t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tc := srv.TLSConfig(); tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", srv.Addr(), tc)
	} else {
		c, err = d.Dial("tcp", srv.Addr())
	}
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return newRawConn(t, c)
}

func newRawConn(t *testing.T, c net.Conn) *rawConn {
	r := bufio.NewReader(c)
	return &rawConn{t: t, c: c, r: r, rd: resp.NewReader(r)}
}

func encode(args ...string) string { return string(resp.AppendCommand(nil, args...)) }

// send writes the commands in a single write (a pipeline).
func (rc *rawConn) send(cmds ...[]string) {
	rc.t.Helper()
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString(encode(c...))
	}
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(rc.c, b.String()); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *rawConn) reply() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := readReply(rc.rd)
	if err != nil {
		rc.t.Fatalf("read reply: %v", err)
	}
	return s
}

func (rc *rawConn) do(args ...string) string {
	rc.t.Helper()
	rc.send(args)
	return rc.reply()
}

// waitClosed reads until the server closes the connection, at most max.
// It returns how long after start the close was seen.
func (rc *rawConn) waitClosed(start time.Time, max time.Duration) (time.Duration, error) {
	rc.c.SetReadDeadline(start.Add(max))
	buf := make([]byte, 4096)
	for {
		_, err := rc.r.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return time.Since(start), fmt.Errorf("not closed within %v", max)
			}
			return time.Since(start), nil
		}
	}
}

// readReply reads one complete RESP2/RESP3 reply (with the attributes
// before it) and returns its bytes.
func readReply(r *resp.Reader) (string, error) {
	var b strings.Builder
	for {
		raw, f, err := r.ReadFrame()
		if err != nil {
			return b.String(), err
		}
		b.Write(raw)
		if f.Kind != resp.Attribute {
			return b.String(), nil
		}
	}
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
