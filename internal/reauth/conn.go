// Package reauth moves live Redis connections to a new token in place: a
// net.Conn wrapper that writes "AUTH <user> <token>" on the connection itself,
// between two of the client's commands, and removes the reply from what the
// client reads. The client (go-redis) never sees the AUTH, its reply or the
// token.
//
// The wrapper follows the commands written (the write side) and the replies
// read (the read side) with resp.Scanner, and keeps the queue of replies
// still owed. An AUTH is written only where the server runs it between two
// commands and answers it: never inside MULTI…EXEC/DISCARD (hand-built ones
// included), never on a RESP2 subscribed connection, never right after a
// command that applies to the next one (ASKING, CLIENT CACHING); it follows
// HELLO protocol switches and RESET (after which it authenticates the
// connection again at once). Before a blocking command (BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH, BZPOPMIN, BZPOPMAX, BLMPOP, BZMPOP, WAIT, WAITAOF, XREAD and
// XREADGROUP with BLOCK) it moves the connection to the newest token, so that
// a block is cut only if it outlives that token; no AUTH is written behind a
// block. (An XREAD or XREADGROUP with more arguments than the scanner keeps
// is taken as blocking; a command longer than 4 KiB goes out as it comes and
// gets no token moved in front of it: blocking commands are short.)
//
// CLIENT REPLY ON, OFF and SKIP are followed as redis-server runs them: a
// command the server will not answer owes no reply, and no AUTH is written
// while replies are off or right after SKIP (its reply would be suppressed);
// CLIENT REPLY ON makes the connection movable again.
//
// When it meets something it cannot account for (the application's own AUTH,
// a HELLO with AUTH, MONITOR, a subscribe command inside MULTI, CLIENT REPLY
// inside MULTI or with another mode, a command that changes the connection's
// state while its reply is suppressed, bytes that are not RESP, a reply to no
// command) the connection is retired:
// no AUTH is written on it again, it is reported as unmovable, and once the
// replies of the AUTHs already written have been removed it passes bytes
// through untouched. go-redis keeps using it until the server closes it when
// its token expires (the application chose to manage that connection's
// state itself; closing it under the application would lose that state). A
// retired connection is logged at Warn and reported through Config.OnRetire.
// The wrapper never guesses: if the reply of an AUTH it wrote cannot be
// located, the connection fails with an error, and go-redis closes it.
//
// The first AUTH of a connection is written in front of the first bytes the
// client writes (go-redis' HELLO), pipelined; a refused first AUTH fails the
// connection: the Read that would have returned it returns a *RefusedError
// instead (not a Redis error, so that go-redis closes the connection rather
// than carrying on unauthenticated). A refused later AUTH is reported through
// Config.OnAuth, and the connection keeps its previous authentication.
//
// Reads and writes may run at the same time (go-redis pub/sub, full-duplex
// auto-pipelining): each direction has its own lock; the owed-reply queue is
// shared under a third, small one. An idle connection handed a new token gets
// its AUTH from a short-lived goroutine of the wrapper, which also reads the
// reply itself when nothing else reads (under its own deadline, IOTimeout;
// bytes that follow are kept for the client's next Read). go-redis' read and
// write deadlines are recorded and restored around the wrapper's own I/O.
// The read deadline reaches the inner connection lazily (once per half a
// timeout rather than once per command, see deadlines): it may fire there
// early, never late, and a Read it cuts short before the client's own
// deadline goes on reading, so the client sees its timeouts exactly. The
// write deadline reaches the inner connection at the write (at once, exactly,
// while a write runs), lazily too: armed up to 1/64 of its timeout late (50
// ms at most), never early, it changes about once per that slack instead of
// once per command, and a deadline cleared and set again between two writes,
// as go-redis' pool does, costs nothing. A WriteWatch shared by a client's
// Conns (Config.Watch) puts the exact deadline on any write it finds blocked,
// so a blocked write times out at the client's deadline exactly unless that
// comes within two watch ticks (100 ms) of its start.
//
// A Conn implements neither syscall.Conn nor a NetConn() method, on purpose:
// go-redis' connection health check (internal/pool/conn_check.go connCheck)
// peeks only at a syscall.Conn, and its push and client-side-cache probes
// (MaybeHasData, CheckForData) unwrap only through those two, so neither ever
// peeks at the socket underneath and sees an AUTH reply the wrapper has not
// consumed yet. A panic in the wrapper becomes an error of the connection.
// For the same reason go-redis' client-side cache cannot learn of
// invalidations between commands through a Conn; the library's NewClient
// refuses it (see the root package's refuseClientSideCache).
//
// # Locks, in the order they are taken
//
//	wmu   the write side: held by Write for the whole client write, and by
//	      the wrapper's goroutine while it writes an AUTH on an idle
//	      connection (injectIdle). Guards the fields marked wmu and every
//	      write to the inner connection, so that bytes reach the wire in the
//	      order their entries reach the owed-reply queue.
//	rmu   the read side: held by Read, and by the wrapper's own reader
//	      (drain) taken with TryLock only. Guards the fields marked rmu and
//	      every read from the inner connection.
//	mu    the shared state: st (the owed-reply queue and the protocol
//	      state), the pending token, fatal, closed, the goroutine's flags
//	      (fields marked mu). Taken inside wmu or rmu, or alone (OnToken,
//	      State, kick, Close); never held while taking another lock, and
//	      never across I/O or a callback.
//	dl.mu the inner connection's deadlines (see deadlines): a leaf, taken
//	      inside wmu or rmu or alone, never together with mu.
//
// No goroutine holds wmu and rmu together (the wrapper's goroutine releases
// wmu before drain), so reads and writes never wait on each other except
// for mu, which is held only for a few field updates. A WriteWatch's own
// lock is taken before dl.mu (sharpenWrite), never inside any lock above.
// Callbacks (OnAuth, OnRetire, OnOwnAuth) run under wmu or rmu, outside mu:
// they must not call back into the Conn.
//
// A Read that finds rmu held cuts the wrapper's own read short before it
// waits (readWaiting, deadlines.cutOwnRead): the wrapper's reader returns at
// once, keeping what it read for that Read, and the client's Read goes on
// under the client's deadline alone. So no reply ever waits on the reply of
// an AUTH of the wrapper beyond what the server itself makes it wait, and
// go-redis' read deadline bounds every Read. (A write of go-redis may wait
// for wmu while the wrapper writes an AUTH on an idle connection: one small
// write into the socket buffer, bounded by IOTimeout.)
//
// # Atomic hints
//
// Each hint is a lock-free copy of state guarded by mu, stored under mu
// whenever that state changes, so that a plain command and its reply take
// mu at most once each. Only the holder of mu changes them (plainOwed, by
// its CAS protocol, excepted); a stale value costs a lock or a delay, never
// a wrong count:
//
//	fatalHint    fatal != nil; false to true once. A stale false lets one
//	             more operation run, as if it had come a moment earlier.
//	pendingHint  hasPending. A stale false in Write misses a token handed
//	             over at that moment; OnToken stores the hint before it
//	             kicks the wrapper's goroutine, which writes it. A stale true
//	             costs one lock.
//	authsHint    st.auths, the replies of the wrapper's AUTHs still owed.
//	             It is stored when an AUTH is recorded, before that AUTH is
//	             written, so it cannot be zero when the AUTH's reply is read:
//	             a zero lets the read side skip mu, and nothing is removed.
//	plainOwed    the replies owed to plain commands while they are all that
//	             is owed and the state is countable (state.plainOnly), else
//	             countedByQueue. lock() moves the count into st.q with a CAS,
//	             unlock() moves it back; a concurrent countCommand or
//	             countReply either lands in the count moved or fails and
//	             takes mu.
//	readWaiting  Reads of the client waiting for rmu (see above).
//
// # Why the owed-reply count cannot be wrong
//
// Every byte the client writes is scanned, in order, under wmu; each
// complete command adds to the queue, under mu, exactly the replies
// redis-server sends for it (one; none while CLIENT REPLY suppresses it; one
// frame per channel for a subscribe command; ...), and each AUTH of the
// wrapper is added before its bytes are written, under the same wmu: the
// queue's order is the wire's. Every byte read is scanned, in order, under
// rmu; each complete reply frame takes exactly one reply from the head of
// the queue, or none when it answers no command (a push message, an
// attribute). The server answers in the order it reads. Anything outside
// these rules (a command whose reply count the tracker cannot know) retires
// the connection before its reply can arrive; a reply that contradicts the
// queue while an AUTH reply is owed fails the connection, so the wrapper
// never removes a reply it is not sure is its AUTH's.
//
// # What the server sees
//
// An AUTH the wrapper writes is a command like any other: SLOWLOG (with a
// threshold of 0) and INFO commandstats count it, MONITOR shows it, and the
// server redacts its arguments in both. A RESET the application sends is
// followed by an AUTH of the wrapper, so the connection stays authenticated
// (with plain go-redis the next command gets NOAUTH). A blocking command
// that outlives its token ends with the connection (the server closes it at
// the token's expiry): go-redis retries a pipeline that held it whole, so
// the pipeline's non-idempotent commands run twice; keep blocking timeouts
// shorter than the token lifetime and call them in a loop.
package reauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entraredis/entraredis/internal/resp"
)

// Token is one credential. tokensource.Token satisfies it.
type Token interface {
	Username() string
	Password() string // the secret: never logged
	Generation() uint64
	ExpiresOn() time.Time
}

// Source hands out the current token; Token must not block.
// *tokensource.Source satisfies Source[tokensource.Token].
type Source[T Token] interface {
	Token() (T, error)
}

// DefaultIOTimeout bounds each read and write the wrapper does on its own.
const DefaultIOTimeout = time.Second

// holdMax is the most bytes of an unfinished command held back until the
// command is complete, to see whether it blocks before it goes out. A longer
// command goes out as it comes and gets no token moved in front of it.
const holdMax = 4 << 10

// maxStrippedReads bounds the reads of one Read whose bytes were all removed.
const maxStrippedReads = 1 << 16

// Config configures a Conn. The zero value is usable.
type Config struct {
	// IOTimeout bounds each write and read the wrapper does by itself (the
	// AUTH of an idle connection and the read of its reply). default: 1 second
	IOTimeout time.Duration
	// OnAuth, when set, is called with the outcome of every AUTH the wrapper
	// wrote, on the goroutine that read its reply (the client's reader or the
	// wrapper's own); it must not block.
	OnAuth func(Result)
	// OnRetire, when set, is called once when the connection is retired, on
	// the goroutine that found the reason; it must not block.
	OnRetire func(reason string)
	// OnOwnAuth, when set, is called once, on the client's writing goroutine,
	// when the client writes an AUTH of its own, or a HELLO with arguments
	// other than a protocol version and SETNAME (its AUTH): from then on
	// the connection may run as another identity than the wrapper's tokens
	// (the connection is retired, see OnRetire). It must not block.
	OnOwnAuth func()
	// OnClose, when set, is called once by the first Close, after the
	// connection is closed (to unsubscribe it from the token hand-out).
	OnClose func()
	// Logger receives retirements (Warn), and refused AUTHs (Warn) when
	// OnAuth is nil.
	// default: slog.Default()
	Logger *slog.Logger
	// Watch, when set, watches the connection's blocked writes, so that each
	// times out at the client's write deadline exactly (see WriteWatch); the
	// Conns of one client share one.
	// default: none: a blocked write times out up to 1/64 of its timeout
	// late (50 ms at most)
	Watch *WriteWatch
}

// Result is the outcome of one AUTH written by the wrapper.
type Result struct {
	First      bool   // the connection's first AUTH
	Generation uint64 // generation of the token sent
	Err        error  // nil, or a *RefusedError
}

// RefusedError is the server's refusal of an AUTH the wrapper wrote. It
// holds the server's reply (WRONGPASS, NOPERM, ...), never the token. It is
// deliberately not a go-redis Redis error.
type RefusedError struct {
	Username string
	Reply    string // the error reply without its '-'
	First    bool   // the connection's first AUTH
}

func (e *RefusedError) Error() string {
	if e.First {
		return fmt.Sprintf("entraredis: the server refused the new connection's AUTH as user %q: %s", e.Username, e.Reply)
	}
	return fmt.Sprintf("entraredis: the server refused a re-AUTH as user %q (the connection keeps its previous authentication): %s", e.Username, e.Reply)
}

// BlockedError is a read that failed while a blocking command was waiting,
// after the token the connection was authenticated with expired: the server
// closed the connection at the token's expiry. It wraps the read error
// (io.EOF, a reset), so it is retryable for go-redis.
type BlockedError struct {
	Expired time.Time
	Err     error
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("entraredis: the connection was closed while a blocking command waited, after the token it was authenticated with expired at %s; use blocking timeouts shorter than the token lifetime and call them in a loop: %v",
		e.Expired.UTC().Format(time.RFC3339), e.Err)
}

func (e *BlockedError) Unwrap() error { return e.Err }

// State is a snapshot of one connection, for statistics.
type State struct {
	Generation uint64 // generation of the token the server accepted last (0: none yet)
	Unmovable  bool   // no AUTH can be written now: retired, RESP2-subscribed or blocked
	Retired    string // why the connection was retired; "" if it was not
}

// Conn is a net.Conn that re-authenticates itself in place. Create it with New.
type Conn[T Token] struct {
	// The fields a plain command and its reply touch come first, so that a
	// command finds them in a few cache lines (the rest follow by lock).
	nc  net.Conn
	wmu sync.Mutex // guards the write side (fields marked wmu) and writes to nc
	rmu sync.Mutex // guards the read side (fields marked rmu) and reads from nc
	mu  sync.Mutex // guards the shared fields (marked mu)
	dl  deadlines  // the client's deadlines, and the wrapper's own around its own I/O

	// Lock-free copies of three fields guarded by mu, stored under mu whenever
	// the field changes, so that a command and its reply take mu once each in
	// the steady state. A stale value costs at most a lock or a delay (see
	// each use).
	fatalHint   atomic.Bool  // fatal != nil
	pendingHint atomic.Bool  // hasPending
	authsHint   atomic.Int32 // st.auths: replies of the wrapper's AUTHs still owed

	// plainOwed counts, without a lock, the replies owed to plain commands
	// while nothing else is owed and the state is one where a plain command
	// and its reply change nothing but that count (state.countable): a plain
	// command adds one, its reply takes one. Otherwise it holds countedByQueue
	// and st.q counts them. Every section under mu starts by moving the count
	// into st.q (lock) and ends by moving it back when it can (unlock), so
	// code under mu sees st alone.
	plainOwed atomic.Int64

	firstPending bool   // wmu: the first AUTH is still to be written
	curEmitted   bool   // wmu: bytes of the unfinished command were written already
	passW        bool   // wmu: retired: writes pass through
	cmdMid       bool   // wmu: cmd.InFrame(), kept here after each cmd.Scan
	repMid       bool   // rmu: rep.InFrame(), kept here after each rep.Scan
	strip        bool   // rmu: the current reply frame is removed
	passR        bool   // rmu: retired and no AUTH reply owed: reads pass through
	held         []byte // wmu: the start of an unfinished command, not written yet
	carry        []byte // rmu: bytes read by the wrapper itself, for the client's next Read
	rerr         error  // rmu: an error of the wrapper's own read, for the client's next Read
	st           state  // mu

	// Colder fields.
	out      []byte    // wmu: scratch for writes with an AUTH inserted
	firstTok T         // wmu
	rbuf     []byte    // rmu
	src      Source[T] // set by New, then read-only
	cfg      Config    // set by New, then read-only

	authGen     uint64               // mu: highest generation written in an AUTH
	exp         map[uint64]time.Time // mu
	confirmed   time.Time            // mu: expiry of the token the server accepted last
	pending     T                    // mu
	hasPending  bool                 // mu
	fatal       error                // mu
	closed      bool                 // mu
	tending     bool                 // mu
	kicked      bool                 // mu
	retireNoted bool                 // mu
	wg          sync.WaitGroup       // the wrapper's goroutine (tend)

	// readWaiting counts the client's Reads waiting for rmu while the
	// wrapper's own reader (drain) may hold it; the Read increments it
	// before it cuts the own read short, drain loads it after beginOwn and
	// before each read (see drain).
	readWaiting atomic.Int32

	// The scanners last: a command or reply through the fast paths does not
	// touch them (cmdMid and repMid say whether they are inside a frame).
	cmd resp.Scanner // wmu: the commands written
	rep resp.Scanner // rmu: the replies read
}

// New wraps nc. It takes the current token from src for the connection's
// first AUTH (an error from src is returned, and nothing is written).
func New[T Token](nc net.Conn, src Source[T], cfg Config) (*Conn[T], error) {
	tok, err := src.Token()
	if err != nil {
		return nil, err
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Conn[T]{nc: nc, src: src, cfg: cfg, st: newState(), firstPending: true, firstTok: tok, authGen: tok.Generation()}
	c.dl.armedW.Store(unknownNs) // the dialer may have left one: the first write applies the client's
	c.exp = map[uint64]time.Time{tok.Generation(): tok.ExpiresOn()}
	if cfg.Watch != nil {
		cfg.Watch.add(&c.dl, nc)
	}
	return c, nil
}

// OnToken hands the connection a new token: it is written at the next place
// where an AUTH may go (at once, from a goroutine of the wrapper, when the
// connection is idle). It does not block.
func (c *Conn[T]) OnToken(tok T) {
	kick := false
	defer func() {
		if r := recover(); r != nil {
			c.recovered(r)
		}
	}()
	c.locked(func() {
		if tok.Generation() > c.authGen && c.fatal == nil && !c.closed && c.st.retired == "" {
			c.pending, c.hasPending = tok, true
			c.pendingHint.Store(true)
			kick = true
		}
	})
	if kick {
		c.kick()
	}
}

// State returns a snapshot of the connection.
func (c *Conn[T]) State() State {
	var s State
	c.locked(func() {
		s = State{Generation: c.st.gen, Unmovable: c.st.unmovable() || c.fatal != nil, Retired: c.st.retired}
	})
	return s
}

func (c *Conn[T]) locked(f func()) {
	c.lock()
	defer c.unlock()
	f()
}

// countedByQueue in plainOwed says that st.q counts every reply owed.
const countedByQueue = int64(-1)

// lock takes mu and moves the count of plainOwed into st.q. The CAS makes
// the move atomic against a concurrent countCommand or countReply: each one
// either lands in the count moved, or fails and takes mu itself.
func (c *Conn[T]) lock() {
	c.mu.Lock()
	for {
		n := c.plainOwed.Load()
		if n == countedByQueue {
			return
		}
		if c.plainOwed.CompareAndSwap(n, countedByQueue) {
			if n > 0 {
				c.st.q.push(entry{kind: entryPlain, n: n}) // st.q was empty: plainOwed counted everything
			}
			return
		}
	}
}

// unlock hands the owed plain replies back to plainOwed when they are all
// that is owed and the state is countable, and releases mu.
func (c *Conn[T]) unlock() {
	if n, ok := c.st.plainOnly(); ok {
		c.st.q.reset()
		c.plainOwed.Store(n)
	}
	c.mu.Unlock()
}

// countCommand records a plain command without mu when plainOwed counts.
func (c *Conn[T]) countCommand() bool {
	for {
		n := c.plainOwed.Load()
		if n == countedByQueue {
			return false
		}
		if c.plainOwed.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// countReply records the reply to a plain command without mu when
// plainOwed counts one owed.
func (c *Conn[T]) countReply() bool {
	for {
		n := c.plainOwed.Load()
		if n <= 0 { // countedByQueue, or a reply to nothing counted: see reply
			return false
		}
		if c.plainOwed.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// failed returns the connection's final error, if any. A fatal error set by
// another goroutine at the same moment may be seen only by the next call, as
// it would be had that goroutine been a moment later.
func (c *Conn[T]) failed() (err error) {
	if !c.fatalHint.Load() {
		return nil
	}
	c.locked(func() { err = c.fatal })
	return err
}

// fail makes err the connection's final error (the first one wins) and returns it.
func (c *Conn[T]) fail(err error) (final error) {
	c.locked(func() {
		if c.fatal == nil {
			c.fatal = err
			c.fatalHint.Store(true)
		}
		final = c.fatal
	})
	return final
}

// recovered turns a panic into the connection's final error.
func (c *Conn[T]) recovered(r any) error {
	return c.fail(fmt.Errorf("entraredis: internal error in the in-place re-authentication of a connection: %v", r))
}

// noteRetire reports a retirement once, outside the lock.
func (c *Conn[T]) noteRetire() {
	var reason string
	c.locked(func() {
		if c.st.retired != "" && !c.retireNoted {
			c.retireNoted = true
			reason = c.st.retired
		}
	})
	if reason == "" {
		return
	}
	c.cfg.Logger.Warn("entraredis: a connection stops re-authenticating in place; the server closes it when its token expires", "reason", reason, "remote", c.nc.RemoteAddr().String())
	if c.cfg.OnRetire != nil {
		c.cfg.OnRetire(reason)
	}
}

// injectLocked decides whether to write an AUTH now, and with which token.
// newest is the current token when the next command blocks.
func (c *Conn[T]) injectLocked(newest T, blocking bool) (tok T, ok bool) {
	if c.fatal != nil || c.closed || !c.st.canInject() {
		return tok, false
	}
	if c.hasPending && c.pending.Generation() <= c.authGen {
		c.setPendingLocked(false)
	}
	switch {
	case blocking && newest.Generation() > c.authGen:
		tok, ok = newest, true
	case c.hasPending:
		tok, ok = c.pending, true
	default:
		return tok, false
	}
	if c.hasPending && c.pending.Generation() <= tok.Generation() {
		c.setPendingLocked(false)
	}
	c.wroteAuthLocked(tok, false)
	return tok, true
}

func (c *Conn[T]) setPendingLocked(v bool) {
	c.hasPending = v
	c.pendingHint.Store(v)
}

// injectIfPending is injectLocked(zero, false) behind the pending hint: with
// no token pending nothing is written and mu is not taken. A token handed
// over at this very moment is missed here and written by the wrapper's
// goroutine that OnToken starts.
func (c *Conn[T]) injectIfPending() (tok T, ok bool) {
	if !c.pendingHint.Load() {
		return tok, false
	}
	c.locked(func() { tok, ok = c.injectLocked(tok, false) })
	return tok, ok
}

// plainCommand records a command that is not special (state.plainCommand).
func (c *Conn[T]) plainCommand() {
	if c.countCommand() {
		return
	}
	c.lock()
	defer c.unlock()
	c.st.plainCommand()
}

// plainReply records a reply to a plain command (state.plainReply) and
// reports whether it was one, and whether reads may now pass through: the
// connection is retired and no AUTH reply is owed.
func (c *Conn[T]) plainReply() (plain, pass bool) {
	if c.countReply() {
		return true, false // plainOwed counts: the connection is not retired
	}
	c.lock()
	defer c.unlock()
	plain = c.st.plainReply()
	return plain, plain && c.st.retired != "" && c.st.auths == 0
}

// wroteAuthLocked records an AUTH about to be written.
func (c *Conn[T]) wroteAuthLocked(tok T, first bool) {
	g := tok.Generation()
	c.st.pushAuth(g, first)
	c.authsHint.Store(int32(c.st.auths))
	if g > c.authGen {
		c.authGen = g
	}
	c.exp[g] = tok.ExpiresOn()
}

func appendAuth(b []byte, tok Token) []byte {
	return resp.AppendCommand(b, "AUTH", tok.Username(), tok.Password())
}

// Write writes the client's bytes, with AUTHs inserted between commands.
func (c *Conn[T]) Write(p []byte) (n int, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, c.recovered(r)
		}
	}()
	if err := c.failed(); err != nil {
		return 0, err
	}
	if c.passW {
		return c.writeInner(p)
	}
	if err := c.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeInner writes the client's bytes (with any AUTH inserted) to the inner
// connection under the client's write deadline. c.wmu is held.
func (c *Conn[T]) writeInner(b []byte) (int, error) {
	err := c.dl.beginWrite(c.nc)
	defer c.dl.endWrite()
	if err != nil {
		return 0, err
	}
	return c.nc.Write(b)
}

func (c *Conn[T]) write(p []byte) error {
	data := p
	scanned := len(c.held) // the held bytes were scanned already
	if scanned > 0 {
		c.held = append(c.held, p...)
		data = c.held
	}
	var out []byte
	emitted, injected := 0, false
	emit := func(at int, tok Token) { // an AUTH before data[at]
		if !injected {
			out = append(c.out[:0], data[:at]...)
		} else {
			out = append(out, data[emitted:at]...)
		}
		emitted, injected = at, true
		out = appendAuth(out, tok)
	}
	if c.firstPending {
		c.firstPending = false
		c.locked(func() { c.wroteAuthLocked(c.firstTok, true) })
		emit(0, c.firstTok)
	}
	end := len(data) // data[:end] goes out now, data[end:] is held
	retired := false
	for i, start := scanned, 0; i < len(data); {
		if !c.cmdMid {
			start = i
			// The fast path: a whole command that is not special.
			if n, name, _, ok := resp.ScanCommand(data[i:]); ok {
				var buf nameBuf
				if up := upper(name, &buf); !special(up) {
					if !c.pendingHint.Load() {
						// No token to hand over (one handed over at this
						// moment is written by the wrapper's goroutine, as
						// in injectIfPending).
						c.plainCommand()
					} else {
						var tok T
						inject := false
						c.locked(func() {
							tok, inject = c.injectLocked(tok, false)
							c.st.plainCommand()
						})
						if inject {
							emit(start, tok)
						}
					}
					i += n
					continue
				}
			}
		}
		n, done, serr := c.cmd.Scan(data[i:])
		c.cmdMid = c.cmd.InFrame()
		i += n
		if serr != nil {
			c.locked(func() { c.st.retire("the client wrote bytes that are not RESP: " + serr.Error()) })
			retired = true
			break
		}
		if !done {
			if !c.curEmitted && len(data)-start <= holdMax {
				end = start
				break
			}
			if !c.curEmitted {
				if tok, ok := c.injectIfPending(); ok {
					emit(start, tok)
				}
				c.curEmitted = true
			}
			break
		}
		f := c.cmd.Frame()
		var newest T
		blocking := false
		if !c.curEmitted && isBlocking(f) {
			if t, err := c.src.Token(); err == nil {
				newest, blocking = t, true
			}
		}
		var tok T
		inject := false
		var info cmdInfo
		c.locked(func() {
			if !c.curEmitted {
				tok, inject = c.injectLocked(newest, blocking && !c.st.inTx)
			}
			info = c.st.command(f)
		})
		if inject {
			emit(start, tok)
		}
		c.curEmitted = false
		if info.ownAuth && c.cfg.OnOwnAuth != nil {
			c.cfg.OnOwnAuth() // once: the connection is retired, and writes pass through from now on
		}
		if info.retire != "" {
			retired = true
			break
		}
		if info.reset {
			// The connection is unauthenticated after RESET: authenticate it
			// again before anything else runs.
			if t, err := c.src.Token(); err == nil {
				c.locked(func() { c.wroteAuthLocked(t, false) })
				emit(i, t)
			}
		}
	}
	if retired {
		end = len(data)
		c.passW = true
	} else if end == len(data) && c.pendingHint.Load() && !c.cmdMid {
		if tok, ok := c.injectIfPending(); ok {
			emit(len(data), tok)
		}
	}
	buf := data[:end]
	if injected {
		out = append(out, data[emitted:end]...)
		buf = out
	}
	var werr error
	if len(buf) > 0 {
		_, werr = c.writeInner(buf)
	}
	if injected {
		clear(out) // the token
		if cap(out) <= 64<<10 {
			c.out = out[:0]
		} else {
			c.out = nil
		}
	}
	if end < len(data) {
		if len(c.held) > 0 {
			c.held = c.held[:copy(c.held, data[end:])]
		} else {
			c.held = append(c.held[:0], data[end:]...)
		}
	} else {
		c.held = c.held[:0]
	}
	if retired {
		c.noteRetire()
	}
	return werr
}

// Read reads the server's bytes with the replies of the wrapper's AUTHs removed.
func (c *Conn[T]) Read(p []byte) (n int, err error) {
	drain := false
	if !c.rmu.TryLock() {
		// The wrapper's own reader may hold the read side, blocked on the
		// socket for an AUTH reply: cut it short, so that this Read runs
		// under the client's deadline alone (see drain).
		c.readWaiting.Add(1)
		c.dl.cutOwnRead(c.nc)
		c.rmu.Lock()
		c.readWaiting.Add(-1)
	}
	defer func() {
		c.rmu.Unlock()
		if drain {
			c.kick()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, c.recovered(r)
		}
	}()
	if len(c.carry) > 0 {
		n = copy(p, c.carry)
		c.carry = c.carry[n:]
		return n, nil
	}
	if c.rerr != nil {
		return 0, c.rerr
	}
	if err := c.failed(); err != nil {
		return 0, err
	}
	for range maxStrippedReads {
		n, err := c.nc.Read(p)
		if err != nil && c.dl.earlyRead(c.nc, err) {
			// The armed read deadline fired before the client's: read on.
			if err = nil; n == 0 {
				continue
			}
		}
		if c.passR {
			return n, err
		}
		kept, ferr := c.filter(p[:n])
		if ferr != nil {
			return 0, c.fail(ferr)
		}
		if kept > 0 || err != nil || n == 0 {
			if c.authsHint.Load() > 0 { // else nothing is left for the wrapper to read
				c.locked(func() { drain = c.st.onlyAuthsOwed() })
			}
			return kept, c.explain(err)
		}
	}
	return 0, nil
}

// explain turns the read error of a connection closed while it blocked past
// its token's expiry into a *BlockedError.
func (c *Conn[T]) explain(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	var blocked bool
	var exp time.Time
	c.locked(func() { blocked, exp = c.st.blocked > 0, c.confirmed })
	if blocked && !exp.IsZero() && !time.Now().Before(exp) {
		return &BlockedError{Expired: exp, Err: err}
	}
	return err
}

// errDesync is a reply stream the queue cannot account for while the reply
// of an AUTH of the wrapper is owed.
type errDesync struct{ why string }

func (e *errDesync) Error() string {
	return "entraredis: lost track of the server's replies on a connection re-authenticated in place (" + e.why + "); closing it"
}

// filter scans the bytes read into b, removes the replies of the wrapper's
// AUTHs in place, and returns how many bytes are kept.
func (c *Conn[T]) filter(b []byte) (kept int, err error) {
	w, i := 0, 0
	for i < len(b) {
		if c.passR {
			w += copy(b[w:], b[i:])
			break
		}
		if !c.repMid {
			// The fast path: a whole frame that answers a plain command.
			if n, _, ok := resp.SkipFrame(b[i:]); ok {
				if plain, pass := c.plainReply(); plain {
					w += copy(b[w:], b[i:i+n])
					i += n
					if pass {
						c.passR = true
						c.noteRetire()
					}
					continue
				}
			}
			// With no AUTH reply owed nothing is removed. The hint cannot be
			// stale here: an AUTH is recorded before it is written, so before
			// its reply can be read.
			c.strip = false
			if first := b[i]; c.authsHint.Load() > 0 && mayStrip(first) {
				c.locked(func() { c.strip = c.st.stripsNext(first) })
			}
		}
		n, done, serr := c.rep.Scan(b[i:])
		c.repMid = c.rep.InFrame()
		if !c.strip {
			w += copy(b[w:], b[i:i+n])
		}
		i += n
		if serr != nil {
			owed := false
			c.locked(func() {
				owed = c.st.auths > 0
				c.st.retire("the server sent bytes that are not RESP")
			})
			if owed || c.strip {
				return w, &errDesync{"the server sent bytes that are not RESP: " + serr.Error()}
			}
			w += copy(b[w:], b[i:])
			c.passR = true
			c.noteRetire()
			break
		}
		if !done {
			break
		}
		var r replyResult
		var owed, pass, kick bool
		var exp time.Time
		stripped := c.strip
		c.strip = false
		c.locked(func() {
			r = c.st.reply(c.rep.Frame(), stripped)
			c.authsHint.Store(int32(c.st.auths))
			owed = c.st.auths > 0
			pass = c.st.retired != "" && !owed
			if r.auth {
				exp = c.exp[r.gen]
				delete(c.exp, r.gen)
				if r.authErr == "" && r.desync == "" && c.st.gen == r.gen {
					c.confirmed = exp
				}
			}
			kick = c.hasPending && c.st.canInject() && (r.unblocked || r.subChanged || r.auth)
		})
		if r.desync != "" && (owed || r.auth || stripped) {
			return w, &errDesync{r.desync}
		}
		if r.auth {
			if err := c.report(r); err != nil {
				return w, err
			}
		}
		if pass {
			c.passR = true
			c.noteRetire()
		}
		if kick {
			c.kick()
		}
	}
	return w, nil
}

// report passes on the outcome of one AUTH; a refused first AUTH is returned
// as the connection's error.
func (c *Conn[T]) report(r replyResult) error {
	res := Result{First: r.first, Generation: r.gen}
	if r.authErr != "" {
		ref := &RefusedError{Username: c.firstTok.Username(), Reply: r.authErr, First: r.first}
		res.Err = ref
		if !r.first && c.cfg.OnAuth == nil {
			c.cfg.Logger.Warn("entraredis: the server refused a re-AUTH; the connection keeps its previous authentication", "err", ref, "generation", r.gen)
		}
	}
	if c.cfg.OnAuth != nil {
		c.cfg.OnAuth(res)
	}
	if r.first && res.Err != nil {
		return res.Err
	}
	return nil
}

// kick asks the wrapper's goroutine to write a pending AUTH on an idle
// connection and to read replies nobody else reads.
func (c *Conn[T]) kick() {
	start := false
	c.locked(func() {
		if c.closed {
			return
		}
		c.kicked = true
		if !c.tending {
			c.tending, start = true, true
			c.wg.Add(1)
		}
	})
	if start {
		go c.tend()
	}
}

func (c *Conn[T]) tend() {
	defer c.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			c.recovered(r)
			c.locked(func() { c.tending = false })
		}
	}()
	for range 8 {
		again := false
		c.locked(func() {
			again = c.kicked && !c.closed && c.fatal == nil
			c.kicked = false
		})
		if !again {
			break
		}
		c.injectIdle()
		c.drain()
	}
	c.locked(func() { c.tending = false })
}

// injectIdle writes a pending AUTH when the write side is between commands.
func (c *Conn[T]) injectIdle() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.passW || c.firstPending || c.curEmitted || len(c.held) > 0 || c.cmdMid {
		return // the client's next write carries it
	}
	var tok T
	ok := false
	c.locked(func() { tok, ok = c.injectLocked(tok, false) })
	if !ok {
		return
	}
	buf := appendAuth(c.out[:0], tok)
	err := c.dl.beginOwn(c.nc, dlWrite, time.Now().Add(c.cfg.IOTimeout))
	if err == nil {
		_, err = c.nc.Write(buf)
	}
	derr := c.dl.endOwn(c.nc, dlWrite)
	clear(buf)
	c.out = buf[:0]
	if err == nil {
		err = derr
	}
	if err != nil {
		c.fail(err)
	}
}

// drain reads the replies of the wrapper's AUTHs when they are all that is
// owed and nothing else reads; other bytes read meanwhile are kept for the
// client.
func (c *Conn[T]) drain() {
	if !c.rmu.TryLock() {
		return // the client's reader removes them
	}
	defer c.rmu.Unlock()
	only := func() (ok bool) {
		c.locked(func() { ok = c.st.onlyAuthsOwed() && c.fatal == nil && !c.closed })
		return ok
	}
	if c.passR || c.rerr != nil || !only() {
		return
	}
	err := c.dl.beginOwn(c.nc, dlRead, time.Now().Add(c.cfg.IOTimeout))
	defer c.dl.endOwn(c.nc, dlRead)
	if err != nil {
		return
	}
	if c.rbuf == nil {
		c.rbuf = make([]byte, 512)
	}
	for range 1000 {
		if c.readWaiting.Load() > 0 {
			// A Read of the client waits for the read side (it cut this
			// read's deadline short, or will find it ended): it removes
			// the AUTH replies itself, under its own deadline.
			return
		}
		n, err := c.nc.Read(c.rbuf)
		kept, ferr := c.filter(c.rbuf[:n])
		c.carry = append(c.carry, c.rbuf[:kept]...)
		if ferr != nil {
			c.fail(ferr)
			return
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				c.rerr = c.explain(err)
			}
			return
		}
		if !only() {
			return
		}
	}
}

// Close closes the connection and waits for the wrapper's goroutine.
func (c *Conn[T]) Close() error {
	first := false
	c.locked(func() { first, c.closed = !c.closed, true })
	err := c.nc.Close()
	c.wg.Wait()
	if first && c.cfg.Watch != nil {
		c.cfg.Watch.remove(&c.dl)
	}
	if first && c.cfg.OnClose != nil {
		c.cfg.OnClose()
	}
	return err
}

// LocalAddr returns the local address of the connection.
func (c *Conn[T]) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the remote address of the connection.
func (c *Conn[T]) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline sets the client's read and write deadlines (see deadlines).
func (c *Conn[T]) SetDeadline(t time.Time) error { return c.dl.set(c.nc, dlBoth, t) }

// SetReadDeadline sets the client's read deadline.
func (c *Conn[T]) SetReadDeadline(t time.Time) error { return c.dl.set(c.nc, dlRead, t) }

// SetWriteDeadline sets the client's write deadline.
func (c *Conn[T]) SetWriteDeadline(t time.Time) error { return c.dl.set(c.nc, dlWrite, t) }

var _ net.Conn = (*Conn[Token])(nil)
