// Package emulator is the proxy behind entraredistest: an endpoint that
// speaks RESP2/RESP3 to clients (TLS by default), checks Microsoft Entra
// style AUTH and HELLO AUTH commands against a token verifier, forwards
// everything else to a backend Redis and closes each connection when the
// token it last authenticated with expires.
//
// How it works: per client connection the endpoint opens one plaintext
// connection to the backend. Commands from the client are parsed and their
// raw bytes forwarded, except authentication commands, which are rewritten
// so that the backend itself gives the right reply at the right place in a
// pipeline: a valid `AUTH <oid> <token>` becomes `AUTH <role-user>
// <role-password>` (the backend answers +OK and switches to the ACL user of
// the principal's role, so NOPERM is real), a refused one becomes `AUTH
// entra-refused refused` (the backend answers WRONGPASS itself). HELLO ...
// AUTH is rewritten the same way. `ACL WHOAMI` on an authenticated
// connection becomes `ECHO <oid>`, as Azure answers with the object ID.
// Replies are copied back without parsing.
package emulator

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entraredis/entraredis/internal/resp"
)

// RefusedUser is the backend user name that refused authentications are
// rewritten to. It must not exist on the backend, so that the backend
// answers WRONGPASS.
const RefusedUser = "entra-refused"

// Identity is what a successful token check yields.
type Identity struct {
	ObjectID string    // the principal's object ID (the username the client sent)
	Role     string    // key into EndpointConfig.Users
	Expires  time.Time // the token's exp; the connection is closed at Expires+Grace
}

// BackendUser is the ACL user (and password) of the backend Redis that a
// role maps to.
type BackendUser struct {
	Name     string
	Password string
}

// Stats are the counters of an Endpoint. All are totals since the start,
// except Open.
type Stats struct {
	Accepted     int64 // client connections accepted (not counting refused ones)
	Refused      int64 // client connections closed at accept by RefuseConnections
	Open         int64 // client connections open now
	Auths        int64 // valid AUTH/HELLO AUTH on a not-yet-authenticated connection
	ReAuths      int64 // valid AUTH/HELLO AUTH on an already authenticated connection
	RefusedAuths int64 // AUTH/HELLO AUTH refused
	ExpiryCloses int64 // connections closed because their token expired
	Commands     int64 // commands forwarded
}

// EndpointConfig configures NewEndpoint.
type EndpointConfig struct {
	// Listener to serve on. Default: a new listener on Addr.
	Listener net.Listener
	// Addr to listen on when Listener is nil. Default "127.0.0.1:0".
	Addr string
	// TLS config of the server side. Nil means plaintext.
	TLS *tls.Config
	// Authenticate checks a username/token pair (required). A nil error
	// accepts it; the Identity's Role must be a key of Users.
	Authenticate func(username, token string) (Identity, error)
	// BackendAddr is the backend Redis' address (required; see SetBackendAddr).
	BackendAddr string
	// BackendNetwork is "tcp" (the default) or "unix" (BackendAddr is then
	// a socket path: cheaper than TCP loopback).
	BackendNetwork string
	// Users maps each role to a backend ACL user (required).
	Users map[string]BackendUser
	// Grace is added to a token's expiry before its connection is closed. Default 0.
	Grace time.Duration
	// FixWrongPass rewrites the backend's "-WRONGPASS invalid
	// username-password pair" into Redis 7's exact text (which adds " or user
	// is disabled."). Needed for miniredis; it parses every reply, so it is
	// slower. Default false.
	FixWrongPass bool
	// NoAuthWhileSubscribed says the backend refuses AUTH/HELLO on any
	// subscribed connection, RESP3 included (miniredis); Redis refuses it
	// only in RESP2. Default false.
	NoAuthWhileSubscribed bool
	// Logf receives diagnostics (never a token). Default: discard.
	Logf func(format string, args ...any)
}

// Endpoint is a running emulated Entra Redis endpoint. Its methods are safe
// for concurrent use.
type Endpoint struct {
	cfg     EndpointConfig
	ln      net.Listener
	backend atomic.Pointer[string]
	refuse  atomic.Int64 // unix nanos until which new connections are refused

	accepted, refused, open, auths, reauths, refusedAuths, expiryCloses, commands atomic.Int64

	mu     sync.Mutex
	conns  map[*proxyConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewEndpoint starts serving. Close it when done.
func NewEndpoint(cfg EndpointConfig) (*Endpoint, error) {
	if cfg.Authenticate == nil {
		return nil, errors.New("emulator: EndpointConfig.Authenticate is required")
	}
	if cfg.BackendAddr == "" {
		return nil, errors.New("emulator: EndpointConfig.BackendAddr is required")
	}
	if len(cfg.Users) == 0 {
		return nil, errors.New("emulator: EndpointConfig.Users is required")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.BackendNetwork == "" {
		cfg.BackendNetwork = "tcp"
	}
	ln := cfg.Listener
	if ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var err error
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("emulator: listen: %w", err)
		}
	}
	e := &Endpoint{cfg: cfg, ln: ln, conns: make(map[*proxyConn]struct{})}
	b := cfg.BackendAddr
	e.backend.Store(&b)
	e.wg.Add(1)
	go e.acceptLoop()
	return e, nil
}

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() net.Addr { return e.ln.Addr() }

// SetBackendAddr changes the backend address used by new connections
// (after a backend restart on another port, say).
func (e *Endpoint) SetBackendAddr(addr string) { e.backend.Store(&addr) }

// BackendAddr returns the backend address new connections use.
func (e *Endpoint) BackendAddr() string { return *e.backend.Load() }

// Stats returns a snapshot of the counters.
func (e *Endpoint) Stats() Stats {
	return Stats{
		Accepted:     e.accepted.Load(),
		Refused:      e.refused.Load(),
		Open:         e.open.Load(),
		Auths:        e.auths.Load(),
		ReAuths:      e.reauths.Load(),
		RefusedAuths: e.refusedAuths.Load(),
		ExpiryCloses: e.expiryCloses.Load(),
		Commands:     e.commands.Load(),
	}
}

// DropConnections closes every client connection now (as a failover would)
// and returns how many it closed.
func (e *Endpoint) DropConnections() int {
	e.mu.Lock()
	cs := make([]*proxyConn, 0, len(e.conns))
	for c := range e.conns {
		cs = append(cs, c)
	}
	e.mu.Unlock()
	n := 0
	for _, c := range cs {
		if c.close(false) {
			n++
		}
	}
	return n
}

// RefuseConnections makes the endpoint close new connections as soon as
// they are accepted, for d from now. d <= 0 ends a refusal period.
func (e *Endpoint) RefuseConnections(d time.Duration) {
	if d <= 0 {
		e.refuse.Store(0)
		return
	}
	e.refuse.Store(time.Now().Add(d).UnixNano())
}

// Close stops listening, closes every connection and waits for the
// endpoint's goroutines to end. It is idempotent.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	err := e.ln.Close()
	e.DropConnections()
	e.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (e *Endpoint) acceptLoop() {
	defer e.wg.Done()
	var delay time.Duration
	for {
		nc, err := e.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Temporary errors (EMFILE...): back off a little, like net/http.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			e.cfg.Logf("emulator: accept: %v", err)
			time.Sleep(delay)
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		delay = 0
		if until := e.refuse.Load(); until != 0 && time.Now().UnixNano() < until {
			e.refused.Add(1)
			nc.Close()
			continue
		}
		c := &proxyConn{e: e, raw: nc}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			nc.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		e.accepted.Add(1)
		e.open.Add(1)
		go c.serve()
	}
}

// proxyConn is one client connection and its backend connection.
type proxyConn struct {
	e      *Endpoint
	raw    net.Conn // the accepted TCP connection
	client net.Conn // raw, or the TLS server on top of it

	mu       sync.Mutex
	backend  net.Conn
	authed   bool
	oid      string
	deadline time.Time
	timer    *time.Timer
	isClosed bool

	// Used by the forwarding goroutine only.
	proto   int                 // 2 or 3, as last set by HELLO
	subs    map[string]struct{} // kind byte + channel, while subscribed
	inMulti bool                // MULTI sent on an authenticated connection
	pending []Identity          // valid AUTHs queued in the transaction
}

func (c *proxyConn) serve() {
	defer c.e.wg.Done()
	defer c.close(false)
	c.client = c.raw
	if c.e.cfg.TLS != nil {
		tc := tls.Server(c.raw, c.e.cfg.TLS)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.e.cfg.Logf("emulator: TLS handshake from %s: %v", c.raw.RemoteAddr(), err)
			return
		}
		tc.SetDeadline(time.Time{})
		c.client = tc
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	bc, err := d.DialContext(ctx, c.e.cfg.BackendNetwork, c.e.BackendAddr())
	cancel()
	if err != nil {
		c.e.cfg.Logf("emulator: dial backend: %v", err)
		return
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		bc.Close()
		return
	}
	c.backend = bc
	c.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.close(false)
		c.copyReplies(bc)
	}()
	c.forwardCommands(bc)
	c.close(false)
	<-done
}

// close closes both sides once. It reports whether this call closed them.
func (c *proxyConn) close(expired bool) bool {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return false
	}
	c.isClosed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	bc := c.backend
	c.mu.Unlock()
	if expired {
		c.e.expiryCloses.Add(1)
	}
	c.raw.Close()
	if bc != nil {
		bc.Close()
	}
	c.e.mu.Lock()
	delete(c.e.conns, c)
	c.e.mu.Unlock()
	c.e.open.Add(-1)
	return true
}

func (c *proxyConn) copyReplies(bc net.Conn) {
	if !c.e.cfg.FixWrongPass {
		// A plain read/write loop: for small replies it costs fewer
		// syscalls than io.Copy's splice between two TCP connections.
		buf := make([]byte, 32<<10)
		for {
			n, err := bc.Read(buf)
			if n > 0 {
				if _, werr := c.client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	br := bufio.NewReaderSize(bc, 32<<10)
	bw := bufio.NewWriterSize(c.client, 32<<10)
	rd := resp.NewReader(br)
	for {
		if err := copyReply(rd, bw); err != nil {
			bw.Flush()
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

func (c *proxyConn) forwardCommands(bc net.Conn) {
	br := bufio.NewReaderSize(c.client, 32<<10)
	bw := bufio.NewWriterSize(bc, 32<<10)
	cr := newCmdReader(br)
	for {
		if err := cr.next(); err != nil {
			if errors.Is(err, resp.ErrProtocol) {
				c.e.cfg.Logf("emulator: %v", err)
			}
			bw.Flush()
			return
		}
		c.e.commands.Add(1)
		if c.special(cr) {
			c.rewrite(cr)
		}
		if _, err := bw.Write(cr.raw); err != nil {
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// special is the hot-path test: only authentication, ACL, RESET and the
// (un)subscribe commands need a look.
func (c *proxyConn) special(cr *cmdReader) bool {
	if cr.nargs() == 0 {
		return false
	}
	name := cr.arg(0)
	switch len(name) {
	case 3:
		return isCmd(name, "ACL")
	case 4:
		return isCmd(name, "AUTH") || isCmd(name, "EXEC")
	case 5:
		return isCmd(name, "HELLO") || isCmd(name, "RESET") || isCmd(name, "MULTI")
	case 7:
		return isCmd(name, "DISCARD")
	case 9, 10, 11, 12:
		return c.trackSubscriptions(cr)
	}
	return false
}

// trackSubscriptions follows which channels the connection is subscribed
// to, because a RESP2 connection in subscribe mode cannot re-authenticate
// (Redis refuses AUTH there), so its deadline must not move. It never
// needs a rewrite, so it always returns false.
func (c *proxyConn) trackSubscriptions(cr *cmdReader) bool {
	name := cr.arg(0)
	var kind byte
	var sub bool
	switch {
	case isCmd(name, "SUBSCRIBE"):
		kind, sub = 'c', true
	case isCmd(name, "PSUBSCRIBE"):
		kind, sub = 'p', true
	case isCmd(name, "SSUBSCRIBE"):
		kind, sub = 's', true
	case isCmd(name, "UNSUBSCRIBE"):
		kind = 'c'
	case isCmd(name, "PUNSUBSCRIBE"):
		kind = 'p'
	case isCmd(name, "SUNSUBSCRIBE"):
		kind = 's'
	default:
		return false
	}
	if c.subs == nil {
		c.subs = make(map[string]struct{})
	}
	if !sub && cr.nargs() == 1 { // unsubscribe from every channel of that kind
		for k := range c.subs {
			if k[0] == kind {
				delete(c.subs, k)
			}
		}
		return false
	}
	for i := 1; i < cr.nargs(); i++ {
		k := string(kind) + string(cr.arg(i))
		if sub {
			c.subs[k] = struct{}{}
		} else {
			delete(c.subs, k)
		}
	}
	return false
}

// inResp2SubscribeMode reports whether Redis would refuse AUTH on the
// connection (RESP2 with at least one subscription).
func (c *proxyConn) inResp2SubscribeMode() bool {
	return len(c.subs) > 0 && (c.proto != 3 || c.e.cfg.NoAuthWhileSubscribed)
}

func (c *proxyConn) rewrite(cr *cmdReader) {
	name := cr.arg(0)
	n := cr.nargs()
	switch {
	case isCmd(name, "AUTH"):
		switch n {
		case 2: // AUTH <password>: the default user, never an Entra identity.
			c.e.refusedAuths.Add(1)
			cr.encode(refusedAuth("AUTH"))
		case 3:
			if c.inResp2SubscribeMode() {
				// Redis refuses AUTH in RESP2 subscribe mode; keep the
				// token away from the backend, which answers the error.
				cr.encode(refusedAuth("AUTH"))
				return
			}
			user, pw, ok := c.authenticate(cr.arg(1), cr.arg(2))
			if ok {
				cr.encode([][]byte{[]byte("AUTH"), user, pw})
			} else {
				cr.encode(refusedAuth("AUTH"))
			}
		}
		// Other arities: the backend answers the syntax error.
	case isCmd(name, "HELLO"):
		if n < 2 {
			return
		}
		v := cr.arg(1)
		if len(v) != 1 || (v[0] != '2' && v[0] != '3') {
			return // the backend answers NOPROTO or a syntax error
		}
		proto := int(v[0] - '0')
		for i := 2; i+2 < n; i++ {
			if isCmd(cr.arg(i), "AUTH") {
				args := cr.args()
				if c.inResp2SubscribeMode() { // Redis refuses HELLO there
					args[i+1], args[i+2] = []byte(RefusedUser), []byte("refused")
					cr.encode(args)
					return
				}
				user, pw, ok := c.authenticate(args[i+1], args[i+2])
				if !ok {
					user, pw = []byte(RefusedUser), []byte("refused")
				} else {
					c.proto = proto
				}
				args[i+1], args[i+2] = user, pw
				cr.encode(args)
				return
			}
			if isCmd(cr.arg(i), "SETNAME") {
				i++
			}
		}
		c.mu.Lock()
		if c.authed {
			c.proto = proto
		}
		c.mu.Unlock()
	case isCmd(name, "ACL"):
		if n == 2 && isCmd(cr.arg(1), "WHOAMI") {
			c.mu.Lock()
			authed, oid := c.authed, c.oid
			c.mu.Unlock()
			if authed {
				cr.encode([][]byte{[]byte("ECHO"), []byte(oid)})
			}
		}
	case isCmd(name, "MULTI"):
		c.mu.Lock()
		c.inMulti = c.inMulti || (n == 1 && c.authed)
		c.mu.Unlock()
	case isCmd(name, "EXEC"):
		// An aborted transaction (EXECABORT) is not told apart: its AUTHs
		// are applied too. Rare enough for an emulator.
		for _, id := range c.pending {
			c.apply(id)
		}
		c.inMulti, c.pending = false, nil
	case isCmd(name, "DISCARD"):
		c.inMulti, c.pending = false, nil
	case isCmd(name, "RESET"):
		c.inMulti, c.pending = false, nil
		if n == 1 {
			c.mu.Lock()
			c.authed, c.oid = false, ""
			c.deadline = time.Time{}
			c.proto, c.subs = 2, nil
			if c.timer != nil {
				c.timer.Stop()
			}
			c.mu.Unlock()
		}
	}
}

func refusedAuth(cmd string) [][]byte {
	return [][]byte{[]byte(cmd), []byte(RefusedUser), []byte("refused")}
}

// authenticate checks a username/token pair and, when valid, moves the
// connection's identity and expiry deadline. A refused pair changes nothing.
func (c *proxyConn) authenticate(user, token []byte) (buser, bpw []byte, ok bool) {
	id, err := c.e.cfg.Authenticate(string(user), string(token))
	if err != nil {
		c.e.refusedAuths.Add(1)
		c.e.cfg.Logf("emulator: AUTH refused for %q: %v", user, err)
		return nil, nil, false
	}
	bu, found := c.e.cfg.Users[id.Role]
	if !found {
		c.e.refusedAuths.Add(1)
		c.e.cfg.Logf("emulator: AUTH refused for %q: role %q has no backend user", user, id.Role)
		return nil, nil, false
	}
	if c.inMulti {
		// Redis queues AUTH inside MULTI and runs it at EXEC.
		c.pending = append(c.pending, id)
	} else {
		c.apply(id)
	}
	return []byte(bu.Name), []byte(bu.Password), true
}

// apply makes id the connection's identity and moves its deadline.
func (c *proxyConn) apply(id Identity) {
	deadline := id.Expires.Add(c.e.cfg.Grace)
	c.mu.Lock()
	if c.authed {
		c.e.reauths.Add(1)
	} else {
		c.e.auths.Add(1)
	}
	c.authed = true
	c.oid = id.ObjectID
	c.deadline = deadline
	wait := time.Until(deadline)
	if c.timer == nil {
		c.timer = time.AfterFunc(wait, c.expire)
	} else {
		c.timer.Reset(wait)
	}
	c.mu.Unlock()
}

// expire runs when the deadline timer fires. A re-AUTH may have moved the
// deadline in the meantime; then the timer is re-armed.
func (c *proxyConn) expire() {
	c.mu.Lock()
	if c.isClosed || !c.authed {
		c.mu.Unlock()
		return
	}
	if wait := time.Until(c.deadline); wait > 0 {
		c.timer.Reset(wait)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.close(true)
}

// wrongPassShort is miniredis' WRONGPASS text; wrongPassReply is Redis'.
const (
	wrongPassShort = "WRONGPASS invalid username-password pair"
	wrongPassReply = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
)

// copyReply copies one reply and fixes miniredis' short WRONGPASS text
// (of a top-level error reply: AUTH and HELLO answer it there).
func copyReply(rd *resp.Reader, bw *bufio.Writer) error {
	raw, f, err := rd.ReadFrame()
	if err != nil {
		return err
	}
	if f.Kind == resp.SimpleError && !f.Head[0].Truncated() && string(f.Head[0].Bytes()) == wrongPassShort {
		_, err = bw.WriteString(wrongPassReply)
		return err
	}
	_, err = bw.Write(raw)
	return err
}
