package entraredis

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/resp"
)

// hook is the go-redis hook of every client (and, without conns, of
// Credentials.Hook). Its dial hook keeps connections from being dialed while
// no usable token exists or the server has just refused the token in use (a
// dial would only be refused, and go-redis would retry in a tight loop). On
// the library's clients its dialer (the go-redis Dialer, below every hook)
// wraps every connection so that it authenticates and re-authenticates itself
// (see conns; the outcome of its first AUTH goes to Source.ReportDialAuth).
// Its process hooks explain the refusals of the library's own AUTHs, and
// NOPERM on connections authenticated by its token (see hook.explain).
type hook struct {
	creds   *Credentials
	conns   *conns      // nil for Credentials.Hook: go-redis authenticates its connections itself (see ownClientConn)
	foreign atomic.Bool // Credentials.Hook: the application sent an AUTH or HELLO AUTH of its own (see hook.explain)
}

func newHook(creds *Credentials) *hook { return &hook{creds: creds, conns: newConns(creds.src)} }

// DialHook guards the dials of a client built around Credentials.Hook. The
// library's own clients authenticate in their Dialer instead (see dialer),
// below every go-redis hook, so their DialHook passes dials through.
func (h *hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		probe, err := h.creds.src.ProbeDial()
		if err != nil {
			return nil, err // no usable token, or the server refused it a moment ago: fail fast, without dialing
		}
		if h.conns != nil {
			// The library's own client: its dialer, below every hook, wraps the
			// connection (see dialer).
			return next(context.WithValue(ctx, probeKey{}, probe), network, addr)
		}
		nc, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return h.ownClientConn(ctx, nc, probe)
	}
}

// probeKey is the context key under which the DialHook tells the dialer that
// the Source let this dial through to try a refused token again.
type probeKey struct{}

// dialer returns the go-redis Dialer of NewClient's and NewClusterClient's
// connections: it fails fast without dialing while no usable token exists or
// the server has just refused the token in use (the client's DialHook, the
// outermost, checks that first, so that no other hook sees a dial that could
// not happen), dials with the user's Dialer
// (or go-redis' own, with tlsConf), refuses a connection that is not TLS
// unless Options.Plaintext turned TLS off (tlsConf nil), and wraps it so that
// it authenticates and re-authenticates itself (see conns). Being the Dialer,
// the wrapper sits below every go-redis hook: a DialHook of the user's that
// wraps the net.Conn sees go-redis' bytes only, never an AUTH.
func (h *hook) dialer(user dialFunc, timeout time.Duration, tlsConf *tls.Config) dialFunc {
	dial := checkedDialer(user, timeout, tlsConf)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		probe, checked := ctx.Value(probeKey{}).(bool)
		if !checked { // not dialed through the client's DialHook
			var err error
			if probe, err = h.creds.src.ProbeDial(); err != nil {
				return nil, err
			}
		}
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return h.conns.wrap(nc, probe)
	}
}

// dialFunc is the type of go-redis' Options.Dialer.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// checkedDialer dials with the user's Dialer, or go-redis' own with tlsConf
// when there is none, and refuses a connection that is not TLS, before
// anything is written on it, unless tlsConf is nil (Options.Plaintext, checked
// to be loopback). Every connection the library authenticates is dialed
// through it.
func checkedDialer(user dialFunc, timeout time.Duration, tlsConf *tls.Config) dialFunc {
	dial := user
	if dial == nil {
		dial = redis.NewDialer(&redis.Options{DialTimeout: timeout, TLSConfig: tlsConf})
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if _, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); tlsConf != nil && !ok {
			nc.Close()
			return nil, fmt.Errorf("entraredis: redis.Options.Dialer returned a %T, not a TLS connection, and the token would cross the network in clear: return tls.Client(conn, TLSConfig) from it (with the TLSConfig of the options, which entraredis completes), or set Options.Plaintext for a local emulator", nc)
		}
		return nc, nil
	}
}

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
