package entraredis

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// conns is the set of live connections of one client (every pool, every
// cluster node). Each is a reauth.Conn: it authenticates with the token in
// use before go-redis' HELLO, and moves itself to each new token with an
// AUTH written between two of go-redis' commands, whose reply go-redis
// never sees. go-redis' options carry no credentials at all, so no token
// passes through its options, logs or hooks. Each connection is a Listener
// of the Source, which hands it each new token in turn over
// Options.ReauthSpread; refused re-AUTHs are reported to the Source, and
// the connections' states feed Status.Conns.
type conns struct {
	src   *tokensource.Source
	watch reauth.WriteWatch // the connections' blocked writes

	// foreign counts the live connections on which the application sent an
	// AUTH or HELLO AUTH of its own: they may run as another identity, so
	// NOPERM is not explained while any exists (see hook.explain).
	foreign atomic.Int64

	mu  sync.Mutex // guards set
	set map[*reauth.Conn[tokensource.Token]]struct{}
}

func newConns(src *tokensource.Source) *conns {
	c := &conns{src: src, set: make(map[*reauth.Conn[tokensource.Token]]struct{})}
	src.SetConnStats(c.stats)
	return c
}

// wrap makes nc re-authenticate itself. It fails, closing nc, when no usable
// token exists. The outcome of its first AUTH goes to Source.ReportDialAuth;
// probe says that the Source let this dial through to try a refused token
// again (see tokensource.Source.ProbeDial).
func (l *conns) wrap(nc net.Conn, probe bool) (net.Conn, error) {
	var c *reauth.Conn[tokensource.Token]
	var detach func()
	var authed atomic.Bool // the first AUTH's reply was read
	var own atomic.Int32   // ownNone, ownCounted (the application's own AUTH, counted in foreign), ownClosed
	c, err := reauth.New[tokensource.Token](nc, l.src, reauth.Config{
		Logger: l.src.Logger(),
		Watch:  &l.watch,
		OnAuth: func(r reauth.Result) {
			if r.First {
				authed.Store(true)
				l.src.ReportDialAuth(explainAuth(l.src, r.Err)) // nil: accepted
				return
			}
			l.src.ReportReauth(explainAuth(l.src, r.Err))
		},
		OnOwnAuth: func() {
			if own.CompareAndSwap(ownNone, ownCounted) {
				l.foreign.Add(1)
			}
		},
		OnClose: func() {
			if own.Swap(ownClosed) == ownCounted {
				l.foreign.Add(-1)
			}
			if probe && !authed.Load() {
				// Closed before its first AUTH (go-redis' pool dials and
				// closes a connection to learn that dialing works again):
				// the next dial probes instead.
				l.src.ProbeUnused()
			}
			if detach != nil {
				detach()
			}
			l.mu.Lock()
			delete(l.set, c)
			l.mu.Unlock()
		},
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	l.mu.Lock()
	l.set[c] = struct{}{}
	l.mu.Unlock()
	tok, d, err := l.src.Attach(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	detach = d
	c.OnToken(tok) // a token installed since New is written at once
	return c, nil
}

// The states of a connection for conns.foreign.
const (
	ownNone    = iota // no AUTH of the application's own seen
	ownCounted        // one seen, counted in foreign
	ownClosed         // closed: counted no more
)

// stats counts the connections on the token in use, on an older one, and
// those that cannot move now.
func (l *conns) stats() entratoken.ConnStats {
	tok, err := l.src.Token()
	l.mu.Lock()
	defer l.mu.Unlock()
	var s entratoken.ConnStats
	for c := range l.set {
		st := c.State()
		switch {
		case st.Unmovable:
			s.Unmovable++
		case err == nil && st.Generation == tok.Generation():
			s.Current++
		default:
			s.Older++
		}
	}
	return s
}
