package rueidisentra

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// conns are a client's live connections: rueidis hands AuthCredentialsFn only
// the connection's RemoteAddr, so the dialer wraps every connection so that
// its RemoteAddr carries the connection's state (connAddr).
type conns struct {
	src    *tokensource.Source // set before the first dial
	opened atomic.Uint64       // connections opened: the k of each one's offset

	mu     sync.Mutex // guards live, newest
	live   map[*connState]struct{}
	newest handout
}

// connState is what the client knows of one connection. rueidis calls
// AuthCredentialsFn for one connection at a time; Status reads concurrently.
type connState struct {
	offset  float64
	gen     atomic.Uint64 // generation of the token last given to the connection; 0 none yet
	expires atomic.Int64  // Unix nanoseconds: that token's expiry
}

// connAddr is the RemoteAddr of a tracked connection: the server's address,
// and the connection's state for AuthCredentialsFn.
type connAddr struct {
	net.Addr
	st *connState
}

// trackedConn is a connection dialed by the client. Only RemoteAddr and Close
// differ from the connection it wraps.
type trackedConn struct {
	net.Conn
	addr *connAddr
	reg  *conns
	once sync.Once
}

func (c *trackedConn) RemoteAddr() net.Addr { return c.addr }

// Read explains the end of a connection that the server closed because the
// token it was last given expired: rueidis could not re-authenticate it,
// because it was lent out (a blocking command, a Dedicated client) whenever
// its new token was due.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		if exp := c.addr.st.expires.Load(); exp != 0 && !time.Now().Before(time.Unix(0, exp)) {
			err = fmt.Errorf("%w (%s); rueidis re-authenticates a connection only between the blocking commands or Dedicated sessions that hold it: %w",
				ErrConnTokenExpired, time.Unix(0, exp).UTC().Format(time.RFC3339Nano), err)
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.reg.forget(c.addr.st) })
	return c.Conn.Close()
}

// newConns returns an empty registry.
func newConns() *conns { return &conns{live: make(map[*connState]struct{})} }

// handoutFor returns the hand-out of tok, the first call for a generation
// fixing its arrival (when the Source received it) and its window.
func (r *conns) handoutFor(tok tokensource.Token) handout {
	r.mu.Lock()
	h := r.newest
	r.mu.Unlock()
	if tok.Generation() <= h.gen {
		return h
	}
	arrival := time.Now()
	if st := r.src.Status(); st.ExpiresOn.Equal(tok.ExpiresOn()) && !st.LastRefresh.IsZero() {
		arrival = st.LastRefresh // Status calls stats: not under r.mu
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tok.Generation() <= r.newest.gen {
		return r.newest
	}
	h = handout{gen: tok.Generation(), expires: tok.ExpiresOn(), arrival: arrival}
	if r.newest.gen != 0 {
		h.window = windowFor(tok.ReauthSpread(), arrival, r.newest.expires)
	}
	r.newest = h
	return h
}

// nextAttempt is when the refresher next asks the credential, read from the
// Source itself (zero when unknown, or closed): not from the events, which
// a slow callback of the user's would delay. Status calls stats: not under
// r.mu.
func (r *conns) nextAttempt() time.Time { return r.src.Status().NextRefresh }

// dial returns the client's DialCtxFn: while no usable token exists it fails
// at once without touching the network (a dial could only be refused, and a
// reconnecting client would dial in a loop); else it dials like rueidis (or
// with the user's DialCtxFn) and tracks the connection.
func (r *conns) dial(next func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error), noDelayOff bool) func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
	return func(ctx context.Context, dst string, d *net.Dialer, tc *tls.Config) (net.Conn, error) {
		if _, err := r.src.Token(); err != nil {
			return nil, err
		}
		var c net.Conn
		var err error
		switch {
		case next != nil:
			c, err = next(ctx, dst, d, tc)
		case tc != nil:
			c, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", dst)
		default:
			c, err = d.DialContext(ctx, "tcp", dst)
		}
		if err != nil {
			return nil, err
		}
		if noDelayOff { // rueidis does it on *net.TCPConn and *tls.Conn only, which the wrapper hides
			nc := c
			if t, ok := nc.(*tls.Conn); ok {
				nc = t.NetConn()
			}
			if t, ok := nc.(*net.TCPConn); ok {
				t.SetNoDelay(false)
			}
		}
		return r.track(c), nil
	}
}

func (r *conns) track(c net.Conn) *trackedConn {
	st := &connState{offset: offsetOf(r.opened.Add(1))}
	r.mu.Lock()
	r.live[st] = struct{}{}
	r.mu.Unlock()
	return &trackedConn{Conn: c, addr: &connAddr{Addr: c.RemoteAddr(), st: st}, reg: r}
}

func (r *conns) forget(st *connState) {
	r.mu.Lock()
	delete(r.live, st)
	r.mu.Unlock()
}

// ErrConnTokenExpired is wrapped by the error of a command whose connection
// the server closed because the token it was authenticated with expired.
// rueidis moves a connection to a new token only while the connection is not
// lent out: a blocking command (BLPOP, XREAD BLOCK...) or a Dedicated client
// that holds it past its token's expiry, or takes it again and again without
// a pause, gets this error; the next command uses a new connection.
var ErrConnTokenExpired = errors.New("entraredis: the server closed the connection when its token expired")

// errUntracked: AuthCredentialsFn was called for a connection that the
// client's DialCtxFn did not dial; it cannot happen unless rueidis changes.
var errUntracked = errors.New("entraredis: rueidis asked for credentials of a connection that rueidisentra did not dial")

// credentials is the client's AuthCredentialsFn. It never calls the
// credential: the Source's refresher does, once per rotation. It runs on the
// goroutine rueidis opens the connection on, then on the connection's timer.
func (r *conns) credentials(ac rueidis.AuthCredentialsContext) (rueidis.AuthCredentials, error) {
	a, ok := ac.Address.(*connAddr)
	if !ok {
		return rueidis.AuthCredentials{}, errUntracked
	}
	st, now := a.st, time.Now()
	tok, err := r.src.Token()
	if err != nil {
		if st.gen.Load() == 0 {
			return rueidis.AuthCredentials{}, err // a new connection: rueidis fails the dial with this error
		}
		// No usable token: keep the connection as it is (an error would make
		// rueidis close it) and ask again soon.
		return rueidis.AuthCredentials{RefreshAfter: now.Add(pollFor(0))}, nil
	}
	h := r.handoutFor(tok)
	s := decide(now, st.gen.Load(), time.Unix(0, st.expires.Load()), h, r.nextAttempt(), st.offset)
	if !s.send {
		return rueidis.AuthCredentials{RefreshAfter: s.at}, nil
	}
	st.gen.Store(tok.Generation())
	st.expires.Store(tok.ExpiresOn().UnixNano())
	return rueidis.AuthCredentials{Username: tok.Username(), Password: tok.Password(), RefreshAfter: s.at}, nil
}

// stats counts the live connections by the token they were last given, for
// Status. rueidis closes a connection whose AUTH fails, so an open connection
// given a token is authenticated with it, or its AUTH is in flight.
func (r *conns) stats() entratoken.ConnStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cs entratoken.ConnStats
	for st := range r.live {
		if g := st.gen.Load(); g != 0 && g == r.newest.gen {
			cs.Current++
		} else {
			cs.Older++
		}
	}
	return cs
}
