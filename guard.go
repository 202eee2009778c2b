package entraredis

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/resp"
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
// accepts, ends the wait. Status.Dial shows it. It also explains (AuthError)
// the WRONGPASS or NOPERM replies to go-redis' HELLO AUTH and AUTH with the
// token, and NOPERM replies until the application authenticates a
// connection itself, and reports refused re-AUTHs (Options.OnReauthFailed);
// every other reply reaches the application as go-redis gives it.
//
// go-redis retries a dial that failed DialerRetries times, DialerRetryTimeout
// apart (5 times, 100 ms apart, by default) before the command fails: set
// DialerRetries to 1 for commands to fail at once too. For a
// redis.ClusterClient, add the hook to every node:
// rdb.OnNewNode(func(node *redis.Client) { node.AddHook(h) }).
func (c *Credentials) Hook() redis.Hook { return &hook{creds: c} }

// ProcessHook passes the outcome of the library's own authentication on,
// explained, and leaves every other reply as go-redis gives it (see explain).
func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.conns == nil {
			err = h.ownClientAuth(cmd, err)
		}
		if err == nil {
			return nil
		}
		return h.explain(cmd, err)
	}
}

// ProcessPipelineHook is ProcessHook for pipelines and transactions.
func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if h.conns == nil {
			for _, cmd := range cmds {
				h.ownClientAuth(cmd, cmd.Err())
			}
		}
		if err == nil {
			return nil
		}
		var first redis.Cmder // the command whose error the pipeline returns
		for _, cmd := range cmds {
			if cerr := cmd.Err(); cerr != nil {
				if first == nil && errors.Is(cerr, err) { // Is: == would panic on an error type that is not comparable
					first = cmd
				}
				h.explain(cmd, cerr)
			}
		}
		if first != nil {
			return first.Err()
		}
		return h.explainRefused(err)
	}
}

// explain replaces the error of cmd with an AuthError, and returns it, when
// it is the library's own authentication failing, or NOPERM on a connection
// authenticated by the library's token; it returns err unchanged otherwise,
// so that every other reply reaches the application exactly as go-redis
// gives it (the application's own AUTH or HELLO AUTH refused, a script's
// error_reply("WRONGPASS ..."), any error that is not the answer to one of
// the library's AUTHs).
//
// On the library's clients (Client, ClusterClient) the library's AUTHs are
// written by the connection wrapper: a refused first AUTH reaches go-redis
// as a *reauth.RefusedError (a connection error), and a refused re-AUTH
// never reaches it (it goes to OnReauthFailed). On a client built with
// Credentials.Hook, go-redis writes them: they are the HELLO ... AUTH and
// AUTH commands whose password is the Source's current token (ownClientAuth).
//
// NOPERM is explained (it says which access policy to extend) when the
// command ran on a connection authenticated by the library's token: on the
// library's clients, while no connection of the client carries an
// authentication of the application's own (conns.foreign); on a client
// built with Credentials.Hook, until the application sends its first AUTH
// or HELLO AUTH with another password (hook.foreign). It is never explained
// for a script (EVAL, EVALSHA, FCALL and their _RO forms), whose error
// replies are the script's own text.
func (h *hook) explain(cmd redis.Cmder, err error) error {
	var xerr error
	switch {
	case isRefused(err):
		xerr = explainAuth(h.creds.src, err)
	case hasNoPerm(err) && !isScript(cmd) && h.libraryAuthenticated():
		xerr = explainAuth(h.creds.src, err)
	case h.conns == nil && h.carriesToken(cmd) && (redis.HasErrorPrefix(err, "WRONGPASS") || hasNoPerm(err)):
		xerr = explainAuth(h.creds.src, err)
		if cmd.Name() == "auth" {
			// go-redis' own AUTH with the token, on a client built with
			// Credentials.Hook.
			h.creds.src.ReportReauth(xerr)
		}
	default:
		return err
	}
	cmd.SetErr(xerr)
	return xerr
}

// explainRefused explains the refusal of a connection's first AUTH written
// by the wrapper (a *reauth.RefusedError); other errors stay as they are.
func (h *hook) explainRefused(err error) error {
	if !isRefused(err) {
		return err
	}
	return explainAuth(h.creds.src, err)
}

// isRefused reports the refusal of an AUTH the connection wrapper wrote.
func isRefused(err error) bool {
	var ref *reauth.RefusedError
	return errors.As(err, &ref)
}

// hasNoPerm reports a NOPERM reply.
func hasNoPerm(err error) bool { return redis.HasErrorPrefix(err, "NOPERM") }

// isScript reports the commands whose error replies are a script's text.
func isScript(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return true
	}
	return false
}

// libraryAuthenticated reports that every connection of the client is
// authenticated by the library's token, so the one a command ran on too.
func (h *hook) libraryAuthenticated() bool {
	if h.conns != nil {
		return h.conns.foreign.Load() == 0
	}
	return !h.foreign.Load()
}

// ownClientAuth follows the authentication of a client built with
// Credentials.Hook, where go-redis authenticates connections itself: the
// outcome of a HELLO ... AUTH carrying the Source's current token goes to
// the Source's dial gate (accepted, or refused with WRONGPASS, explained;
// it returns the explained error), and an AUTH or HELLO AUTH with any other
// password (the application authenticating as someone else) turns the
// NOPERM explanations off (hook.foreign). It never guesses: a command that
// does not carry the token says nothing about it.
func (h *hook) ownClientAuth(cmd redis.Cmder, err error) error {
	pass, ok := authPassword(cmd)
	if !ok {
		return err
	}
	if !h.isToken(pass) {
		h.foreign.Store(true)
		return err
	}
	if cmd.Name() != "hello" {
		return err
	}
	switch {
	case err == nil:
		h.creds.src.ReportDialAuth(nil)
	case redis.HasErrorPrefix(err, "WRONGPASS"):
		xerr := explainAuth(h.creds.src, err)
		cmd.SetErr(xerr)
		h.creds.src.ReportDialAuth(xerr)
		return xerr
	}
	return err
}

// carriesToken reports an AUTH or HELLO ... AUTH whose password is the
// Source's current token.
func (h *hook) carriesToken(cmd redis.Cmder) bool {
	pass, ok := authPassword(cmd)
	return ok && h.isToken(pass)
}

// isToken reports whether pass is the Source's current token. A token
// replaced between the command and its reply is not recognised: the reply
// is then left as go-redis gives it, never taken for another's.
func (h *hook) isToken(pass string) bool {
	tok, err := h.creds.src.Token()
	return err == nil && pass != "" && subtle.ConstantTimeCompare([]byte(pass), []byte(tok.Password())) == 1
}

// authPassword returns the password of an AUTH [user] pass or a HELLO
// proto AUTH user pass [SETNAME name] command.
func authPassword(cmd redis.Cmder) (string, bool) {
	args := cmd.Args()
	switch cmd.Name() {
	case "auth":
		if len(args) == 2 || len(args) == 3 {
			pass, ok := args[len(args)-1].(string)
			return pass, ok
		}
	case "hello":
		for i := 2; i+2 < len(args); i++ {
			if a, _ := args[i].(string); strings.EqualFold(a, "auth") {
				pass, ok := args[i+2].(string)
				return pass, ok
			}
		}
	}
	return "", false
}

// errClientSideCache is NewClient's refusal of go-redis' client-side cache.
var errClientSideCache = errors.New("entraredis: go-redis' client-side cache (redis.Options.ClientSideCacheConfig or ClientSideCache) is not supported: " +
	"go-redis learns of invalidations between commands by peeking at the socket, which the connection wrapper that re-authenticates in place cannot let it do " +
	"(the peek could see the reply of an AUTH the wrapper has not read yet), so cached values would stay stale until the connection's next reply " +
	"(measured: a write seen after 82 ms at the median instead of 4 ms); leave both options nil")

// refuseClientSideCache refuses go-redis' client-side cache on the library's
// clients. go-redis reads pending invalidation pushes between commands only
// when the connection's socket has data (pool.Conn.MaybeHasData and
// CheckForData, a non-blocking MSG_PEEK through syscall.Conn or NetConn()).
// A reauth.Conn offers neither: go-redis would peek at raw bytes that may
// hold an AUTH reply the wrapper must remove first, and a fake answer
// ("always data", "never data") would either make go-redis block on reads
// between commands or serve stale values silently. So the cache is refused
// with an explicit error rather than degraded without a word.
// ClusterOptions has no client-side cache.
func refuseClientSideCache(o *redis.Options) error {
	if o.ClientSideCacheConfig == nil && o.ClientSideCache == nil {
		return nil
	}
	return errClientSideCache
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
	reply, err := resp.NewExactClient(conn).Do("AUTH", tok.Username(), tok.Password())
	conn.SetDeadline(time.Time{})
	switch {
	case err != nil:
		conn.Close()
		return nil, fmt.Errorf("entraredis: authenticating a new connection: %w", err)
	case reply.Kind == resp.SimpleString:
		h.creds.src.ReportDialAuth(nil)
		return conn, nil
	case reply.Err() != nil:
		conn.Close()
		xerr := explainAuth(h.creds.src, reply.Err())
		if redis.HasErrorPrefix(xerr, "WRONGPASS") {
			h.creds.src.ReportDialAuth(xerr)
		}
		return nil, xerr
	default:
		conn.Close()
		return nil, fmt.Errorf("entraredis: unexpected %s reply to AUTH on a new connection", reply.Kind)
	}
}
