package entraredis

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/internal/resp"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// Hook returns the go-redis hook that a client you build yourself with these
// Credentials needs (Client and ClusterClient have it already):
//
//	rdb := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsConfig, StreamingCredentialsProvider: creds})
//	rdb.AddHook(creds.Hook())
//
// While no usable token exists (the token service has been down past the
// token's expiry), or after the server refused the token in use for a new
// connection, it fails new connections at once with the explained error,
// without dialing (go-redis alone redials in a tight loop). After a refusal,
// one new connection is tried 1 second later, then after twice as long each
// time, up to Options.RetryMaxDelay; a new token, or a connection the server
// accepts, ends the wait. Status.Dial shows it. It also replaces WRONGPASS
// and NOPERM replies with an AuthError and reports refused re-AUTHs
// (Options.OnReauthFailed).
//
// go-redis retries a dial that failed DialerRetries times, DialerRetryTimeout
// apart (5 times, 100 ms apart, by default) before the command fails: set
// DialerRetries to 1 for commands to fail at once too. For a
// redis.ClusterClient, add the hook to every node:
// rdb.OnNewNode(func(node *redis.Client) { node.AddHook(h) }).
func (c *Credentials) Hook() redis.Hook { return &hook{creds: c} }

// reportHello reports the outcome of the HELLO ... AUTH with which go-redis
// authenticates a new connection to the Source's dial gate: accepted, or
// refused with WRONGPASS. Other HELLOs, and other errors, say nothing about
// the token.
func (h *hook) reportHello(cmd redis.Cmder, err error) {
	if _, ok := cmd.(*redis.MapStringInterfaceCmd); !ok {
		return
	}
	args := cmd.Args()
	if len(args) < 3 {
		return
	}
	name, _ := args[0].(string)
	auth, _ := args[2].(string)
	if !strings.EqualFold(name, "hello") || !strings.EqualFold(auth, "auth") {
		return
	}
	switch {
	case err == nil:
		h.creds.src.ReportDialAuth(nil)
	case redis.HasErrorPrefix(err, "WRONGPASS"):
		h.creds.src.ReportDialAuth(h.authErr(err))
	}
}

// authErr explains a WRONGPASS or NOPERM reply (see tokensource.ExplainAuth).
func (h *hook) authErr(err error) error {
	return tokensource.ExplainAuth(err, h.creds.username(), h.creds.src.Scope())
}

// dialRetryBackoff is the go-redis DialerRetryBackoff of Client and
// ClusterClient: no wait between go-redis' dial retries while new
// connections are held back (the dial hook refuses them without touching
// the network, so that a command fails at once), else the user's backoff, or
// the constant base (DialerRetryTimeout, default 100 ms).
func (c *Credentials) dialRetryBackoff(user func(int) time.Duration, base time.Duration) func(int) time.Duration {
	if base == 0 {
		base = 100 * time.Millisecond // go-redis' default DialerRetryTimeout
	}
	return func(attempt int) time.Duration {
		if !c.src.Status().Valid(time.Now()) {
			return 0
		}
		if user != nil {
			return user(attempt)
		}
		return base
	}
}

// replyError is a server's error reply read by probeAuth. It is a
// redis.Error, as go-redis' own replies are.
type replyError string

func (e replyError) Error() string { return string(e) }

// RedisError marks the reply as a redis.Error.
func (replyError) RedisError() {}

// ownClientConn is the dial hook's end on a client built with
// Credentials.Hook, where go-redis authenticates connections itself: the
// probe that tries a refused token again (see tokensource.Source.ProbeDial)
// is authenticated here first (probeAuth), because go-redis' pool also dials
// connections that it closes unused (to learn that dialing works again after
// repeated dial errors), which would never tell whether the token is
// accepted now. Client and ClusterClient need no such AUTH: their
// connection wrapper reports its own first AUTH, and a probe closed unused
// (see conns.wrap).
func (h *hook) ownClientConn(ctx context.Context, nc net.Conn, probe bool) (net.Conn, error) {
	if !probe {
		return nc, nil
	}
	return h.probeAuth(ctx, nc)
}

// probeAuth authenticates conn and reports the outcome. It returns conn, or
// closes it and returns the explained refusal.
func (h *hook) probeAuth(ctx context.Context, conn net.Conn) (net.Conn, error) {
	tok, err := h.creds.src.Token()
	if err != nil {
		conn.Close()
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(dialTimeout)
	}
	conn.SetDeadline(deadline)
	kind, text, err := authOnce(conn, tok.Username(), tok.Password())
	conn.SetDeadline(time.Time{})
	switch {
	case err != nil:
		conn.Close()
		return nil, fmt.Errorf("entraredis: authenticating a new connection: %w", err)
	case kind == resp.SimpleString:
		h.creds.src.ReportDialAuth(nil)
		return conn, nil
	case kind == resp.SimpleError || kind == resp.BulkError:
		conn.Close()
		xerr := h.authErr(replyError(text))
		if redis.HasErrorPrefix(xerr, "WRONGPASS") {
			h.creds.src.ReportDialAuth(xerr)
		}
		return nil, xerr
	default:
		conn.Close()
		return nil, fmt.Errorf("entraredis: unexpected %s reply to AUTH on a new connection", kind)
	}
}

// authOnce sends AUTH user pass on conn and returns the reply's type and
// its first bytes (resp.MaxHeadBytes of an error's text). It reads one byte
// at a time, so that nothing after the reply is consumed.
func authOnce(conn net.Conn, user, pass string) (resp.Kind, string, error) {
	if _, err := conn.Write(resp.AppendCommand(nil, "AUTH", user, pass)); err != nil {
		return 0, "", err
	}
	var sc resp.Scanner
	one := make([]byte, 1)
	for {
		if _, err := conn.Read(one); err != nil {
			return 0, "", err
		}
		_, done, err := sc.Scan(one)
		if err != nil {
			return 0, "", err
		}
		if done {
			f := sc.Frame()
			return f.Kind, string(f.Head[0].Bytes()), nil
		}
	}
}
