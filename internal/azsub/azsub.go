// Package azsub keeps one subscription to Azure Cache for Redis'
// maintenance notifications (the AzureRedisEvents channel) alive across
// token rotations, for any client layer: it owns one connection of its
// own, dialed with the client's dialer.
//
// On RESP3 a new token is sent with AUTH on the subscribed connection
// itself. On RESP2, where a subscribed connection cannot run AUTH, the
// subscription moves to a fresh connection as soon as a new token is
// installed, long before the old one expires, make before break: the new
// connection subscribes first, then the old one unsubscribes and is drained,
// and the events both received in the overlap are delivered once. A
// connection that is lost (a failover closes every connection) is replaced
// with backoff, and the loss is counted: events published meanwhile are
// lost, as pub/sub keeps nothing.
package azsub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/internal/resp"
)

// Token is what a connection authenticates with.
type Token struct {
	Username, Password string // the password is a secret: never logged
	ExpiresOn          time.Time
	Generation         uint64 // grows with each installed token
}

// Credentials supplies the tokens.
type Credentials interface {
	// Token returns the token in use, or why there is none.
	Token() (Token, error)
	// Notify arranges for f to run (it must not block) each time a new
	// token is installed; stop ends it.
	Notify(f func()) (stop func())
	// ReportReauth reports the outcome of one AUTH with a new token on the
	// live connection (nil: accepted).
	ReportReauth(err error)
}

// Config configures Start. Defaults are applied in one place, Start.
type Config struct {
	// Dial opens a connection to the cache, TLS handshake included (required).
	Dial func(ctx context.Context) (net.Conn, error)
	// Protocol is 2 or 3, as the client uses. Default 3.
	Protocol int
	// Credentials supplies the tokens (required).
	Credentials Credentials
	// Tracker records the events. Default: a new one (see Subscriber.Tracker).
	Tracker *azevents.Tracker
	// OnEvent receives each well-formed event, in order, on the
	// subscriber's goroutine: keep it short. Default none.
	OnEvent func(azevents.Event)
	// Logger: events at Info, malformed messages and lost connections at
	// Warn. Default slog.Default().
	Logger *slog.Logger
	// Timeout bounds a dial with its HELLO and SUBSCRIBE, and the wait for
	// any reply. Default 5 seconds.
	Timeout time.Duration
	// PingInterval between PINGs on the subscribed connection (Azure closes
	// connections idle for 10 minutes; a PING also finds a dead one).
	// Default 1 minute.
	PingInterval time.Duration
	// RetryMinDelay and RetryMaxDelay bound the exponential backoff (with
	// jitter) between failed attempts to subscribe. Default 1 s and 30 s.
	RetryMinDelay, RetryMaxDelay time.Duration
}

// Stats are a Subscriber's counters, totals since Start.
type Stats struct {
	Subscriptions  int64 // connections that subscribed
	DialFailures   int64 // attempts to subscribe that failed
	Reauths        int64 // in-place AUTHs accepted (RESP3)
	ReauthFailures int64 // in-place AUTHs refused
	Moves          int64 // make-before-break moves to a fresh connection
	Duplicates     int64 // events received on both connections of a move, delivered once
	Lost           int64 // subscribed connections lost (events published until the next subscription are lost)
}

// Subscriber is a running subscription. Its methods are safe for concurrent use.
type Subscriber struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	notify chan struct{} // a new token was installed (capacity 1)
	stop   func()        // ends Notify
	wg     sync.WaitGroup
	done   chan struct{}

	subscriptions, dialFailures, reauths, reauthFailures, moves, duplicates, lost atomic.Int64

	mu  sync.Mutex // guards cur
	cur *conn      // the subscribed connection, for Close
}

// Start validates cfg, applies its defaults and starts subscribing in the
// background. Close it when done.
func Start(cfg Config) (*Subscriber, error) {
	if cfg.Dial == nil || cfg.Credentials == nil {
		return nil, errors.New("entraredis: maintenance events: Dial and Credentials are required")
	}
	if cfg.Protocol != 2 {
		cfg.Protocol = 3
	}
	if cfg.Tracker == nil {
		cfg.Tracker = new(azevents.Tracker)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = time.Minute
	}
	if cfg.RetryMinDelay <= 0 {
		cfg.RetryMinDelay = time.Second
	}
	if cfg.RetryMaxDelay < cfg.RetryMinDelay {
		cfg.RetryMaxDelay = max(30*time.Second, cfg.RetryMinDelay)
	}
	s := &Subscriber{cfg: cfg, notify: make(chan struct{}, 1), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stop = cfg.Credentials.Notify(func() {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	})
	go s.run()
	return s, nil
}

// Tracker returns the tracker the events are recorded in.
func (s *Subscriber) Tracker() *azevents.Tracker { return s.cfg.Tracker }

// Stats returns a snapshot of the counters.
func (s *Subscriber) Stats() Stats {
	return Stats{
		Subscriptions: s.subscriptions.Load(), DialFailures: s.dialFailures.Load(),
		Reauths: s.reauths.Load(), ReauthFailures: s.reauthFailures.Load(),
		Moves: s.moves.Load(), Duplicates: s.duplicates.Load(), Lost: s.lost.Load(),
	}
}

// Close ends the subscription and waits for its goroutines. It is
// idempotent, and does nothing on a nil Subscriber (a subscription that
// was off).
func (s *Subscriber) Close() error {
	if s == nil {
		return nil
	}
	s.cancel()
	s.stop()
	s.mu.Lock()
	if s.cur != nil {
		s.cur.nc.Close()
	}
	s.mu.Unlock()
	<-s.done
	s.wg.Wait()
	return nil
}

// conn is one subscribed connection. Only the subscriber's goroutine
// writes to it and reads its frames; its reader goroutine reads the socket.
type conn struct {
	nc       net.Conn
	r        *resp.Reader
	frames   chan resp.Value // closed by the reader at the end
	err      error           // why the reader ended; read after frames is closed
	tok      Token           // the token it is authenticated with
	owed     []owed          // replies owed to the commands sent, in order
	timers   []*time.Timer   // the reply watchdog of each owed reply
	answered atomic.Int64    // replies received (for the reply watchdog)
	sent     int64           // commands sent that owe a reply
}

// close closes the connection (its reader then ends) and stops its watchdogs.
func (c *conn) close() {
	c.nc.Close()
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
}

// owed is a reply owed by the server: to a PING, or to an AUTH with tok.
type owed struct {
	auth bool
	tok  Token
}

func (s *Subscriber) setCur(c *conn) {
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	if s.ctx.Err() != nil { // Close ran before cur was set
		c.nc.Close()
	}
}

func (s *Subscriber) run() {
	defer close(s.done)
	var cur *conn
	defer func() {
		if cur != nil {
			cur.close()
		}
	}()
	ping := time.NewTimer(s.cfg.PingInterval)
	defer ping.Stop()
	var retry <-chan time.Time // set while a move to a fresh connection is to be retried
	// The retries of a failed move; nil after a success.
	var moveRetry *backoff.ExponentialBackOff
	for {
		if cur == nil {
			c := s.subscribeRetrying()
			if c == nil {
				return // closed
			}
			cur = c
			s.setCur(cur)
			ping.Reset(s.cfg.PingInterval)
		}
		select {
		case <-s.ctx.Done():
			return
		case v, ok := <-cur.frames:
			if !ok {
				s.lost.Add(1)
				s.cfg.Tracker.Interrupted()
				s.cfg.Logger.Warn("entraredis: lost the subscription to Azure maintenance events; resubscribing (events published meanwhile are lost)", "err", cur.err)
				cur.close()
				cur, retry = nil, nil
				continue
			}
			if s.handle(cur, v) {
				retry = time.After(0) // a refused in-place AUTH: move instead
			}
		case <-s.notify:
			tok, err := s.cfg.Credentials.Token()
			if err != nil || tok.Generation == cur.tok.Generation {
				continue
			}
			if s.cfg.Protocol == 3 {
				s.send(cur, owed{auth: true, tok: tok}, "AUTH", tok.Username, tok.Password)
				continue
			}
			retry = time.After(0)
		case <-retry:
			retry = nil
			next, err := s.move(cur)
			if s.ctx.Err() != nil {
				if next != nil && next != cur {
					cur = next // closed by the deferred close
				}
				return
			}
			if err != nil {
				if moveRetry == nil {
					moveRetry = s.newBackoff()
				}
				s.cfg.Logger.Warn("entraredis: could not move the maintenance-event subscription to a fresh connection; retrying", "err", err)
				retry = time.After(s.nextDelay(moveRetry))
				if next == nil {
					continue
				}
			} else {
				moveRetry = nil
			}
			if next != cur {
				cur = next
				if cur != nil {
					s.setCur(cur)
				}
			}
		case <-ping.C:
			s.send(cur, owed{}, "PING")
			ping.Reset(s.cfg.PingInterval)
		}
	}
}

// handle processes one frame of a subscribed connection. It reports whether
// an in-place AUTH was refused (then the subscription must move).
func (s *Subscriber) handle(c *conn, v resp.Value) (refused bool) {
	if kind, payload, ok := pubsubFrame(v); ok {
		switch kind {
		case "message":
			s.deliver(payload)
		case "pong":
			c.reply()
		}
		return false
	}
	o, ok := c.reply()
	if !ok || !o.auth {
		return false // +PONG, or a reply nobody waits for
	}
	if err := v.Err(); err != nil {
		s.reauthFailures.Add(1)
		s.cfg.Credentials.ReportReauth(err) // the server's reply: the client layer explains it
		return true
	}
	c.tok = o.tok
	s.reauths.Add(1)
	s.cfg.Credentials.ReportReauth(nil)
	return false
}

// reply pops the oldest owed reply and stops its watchdog.
func (c *conn) reply() (owed, bool) {
	c.answered.Add(1)
	if len(c.timers) > 0 {
		c.timers[0].Stop()
		c.timers = c.timers[1:]
	}
	if len(c.owed) == 0 {
		return owed{}, false
	}
	o := c.owed[0]
	c.owed = c.owed[1:]
	return o, true
}

// pubsubFrame recognises a pub/sub frame (RESP3 push, or RESP2 array in
// subscribe mode): its kind ("message", "subscribe", "unsubscribe", "pong")
// and its last element.
func pubsubFrame(v resp.Value) (kind, last string, ok bool) {
	if (v.Kind != resp.Push && v.Kind != resp.Array) || len(v.Elems) < 2 {
		return "", "", false
	}
	kind = v.Elems[0].Str
	switch kind {
	case "message", "subscribe", "unsubscribe", "pong":
		return kind, v.Elems[len(v.Elems)-1].Str, true
	}
	return "", "", false
}

// deliver records and reports one message of the channel.
func (s *Subscriber) deliver(msg string) {
	ev, err := s.cfg.Tracker.Observe(msg, time.Now())
	if err != nil {
		s.cfg.Logger.Warn("entraredis: dropped a malformed Azure maintenance event", "err", err)
		return
	}
	s.cfg.Logger.Info("entraredis: Azure maintenance event", "event", ev)
	if f := s.cfg.OnEvent; f != nil {
		f(ev)
	}
}

// send writes one command that owes a reply, and arms the watchdog that
// closes the connection when the reply does not come within Timeout.
func (s *Subscriber) send(c *conn, o owed, args ...string) {
	c.owed = append(c.owed, o)
	c.sent++
	n := c.sent
	c.nc.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	c.timers = append(c.timers, time.AfterFunc(s.cfg.Timeout, func() {
		if c.answered.Load() < n {
			c.nc.Close() // the reader sees it and the subscription is made again
		}
	}))
	if _, err := c.nc.Write(resp.AppendCommand(nil, args...)); err != nil {
		c.nc.Close()
	}
}

// subscribeRetrying subscribes a fresh connection, retrying with backoff
// until it works; nil when the subscriber is closed meanwhile.
func (s *Subscriber) subscribeRetrying() *conn {
	b := s.newBackoff()
	for attempt := 1; ; attempt++ {
		c, err := s.subscribe()
		if err == nil {
			return c
		}
		if s.ctx.Err() != nil {
			return nil
		}
		s.cfg.Logger.Warn("entraredis: could not subscribe to Azure maintenance events; retrying", "err", err, "attempt", attempt)
		select {
		case <-s.ctx.Done():
			return nil
		case <-time.After(s.nextDelay(b)):
		}
	}
}

// subscribe dials, authenticates with the token in use, subscribes and
// starts the connection's reader.
func (s *Subscriber) subscribe() (*conn, error) {
	c, err := s.subscribeOnce()
	if err != nil {
		s.dialFailures.Add(1)
		return nil, err
	}
	s.subscriptions.Add(1)
	return c, nil
}

func (s *Subscriber) subscribeOnce() (*conn, error) {
	tok, err := s.cfg.Credentials.Token()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	nc, err := s.cfg.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("entraredis: maintenance events: dial: %w", err)
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stopClose := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stopClose()
	c := &conn{nc: nc, r: resp.NewReader(bufio.NewReader(nc)), tok: tok}
	// RESP2 authenticates with AUTH, which every Redis version knows.
	cmd := resp.AppendCommand(nil, "AUTH", tok.Username, tok.Password)
	if s.cfg.Protocol == 3 {
		cmd = resp.AppendCommand(nil, "HELLO", "3", "AUTH", tok.Username, tok.Password)
	}
	cmd = resp.AppendCommand(cmd, "SUBSCRIBE", azevents.Channel)
	fail := func(err error) (*conn, error) {
		nc.Close()
		return nil, fmt.Errorf("entraredis: maintenance events: %w", err)
	}
	if _, err := nc.Write(cmd); err != nil {
		return fail(err)
	}
	hello, err := c.r.ReadValue()
	if err != nil {
		return fail(err)
	}
	if err := hello.Err(); err != nil {
		return fail(fmt.Errorf("AUTH: %w", err))
	}
	for {
		v, err := c.r.ReadValue()
		if err != nil {
			return fail(err)
		}
		if err := v.Err(); err != nil {
			return fail(fmt.Errorf("SUBSCRIBE: %w", err))
		}
		if kind, _, ok := pubsubFrame(v); ok && kind == "subscribe" {
			break
		}
	}
	if !stopClose() {
		return fail(ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	c.frames = make(chan resp.Value)
	s.wg.Add(1)
	go s.read(c)
	return c, nil
}

// read is a connection's reader goroutine.
func (s *Subscriber) read(c *conn) {
	defer s.wg.Done()
	defer close(c.frames)
	for {
		v, err := c.r.ReadValue()
		if err != nil {
			c.err = err
			return
		}
		select {
		case c.frames <- v:
		case <-s.ctx.Done():
			c.err = s.ctx.Err()
			return
		}
	}
}

// move moves the subscription from cur to a fresh connection, make before
// break, and returns the connection now subscribed: the new one, or cur
// (with an error) when the new one could not subscribe, or nil when cur was
// lost meanwhile and the new one failed too.
func (s *Subscriber) move(cur *conn) (*conn, error) {
	next, err := s.subscribe()
	if err != nil {
		return cur, err
	}
	// Everything published from now on reaches next. Drain cur up to the
	// reply to its UNSUBSCRIBE, keeping what it delivered meanwhile.
	var tail []string
	s.send(cur, owed{}, "UNSUBSCRIBE", azevents.Channel)
	timeout := time.After(s.cfg.Timeout)
drain:
	for {
		select {
		case v, ok := <-cur.frames:
			if !ok {
				// cur died during the move, perhaps before next subscribed:
				// events may have been lost in between; say so.
				s.lost.Add(1)
				s.cfg.Tracker.Interrupted()
				break drain
			}
			kind, payload, isPubsub := pubsubFrame(v)
			switch {
			case isPubsub && kind == "unsubscribe":
				cur.reply()
				break drain
			case isPubsub && kind == "message":
				tail = append(tail, payload)
				s.deliver(payload)
			default:
				s.handle(cur, v) // a refused AUTH no longer matters: cur is leaving
			}
		case <-timeout:
			break drain
		case <-s.ctx.Done():
			next.close()
			return cur, s.ctx.Err()
		}
	}
	cur.close()
	// Read next up to the reply to a PING: the messages before it that cur
	// delivered already come first; deliver the rest.
	var head []string
	s.send(next, owed{}, "PING")
	timeout = time.After(s.cfg.Timeout)
	var pending []resp.Value // frames after the PING reply, handled normally
	for {
		select {
		case v, ok := <-next.frames:
			if !ok {
				s.finishMove(tail, head)
				return next, nil // the loop sees frames closed
			}
			kind, payload, isPubsub := pubsubFrame(v)
			if isPubsub && kind == "message" {
				head = append(head, payload)
				continue
			}
			if (isPubsub && kind == "pong") || (v.Kind == resp.SimpleString && v.Str == "PONG") {
				next.reply()
				s.finishMove(tail, head)
				for _, p := range pending {
					s.handle(next, p)
				}
				return next, nil
			}
			pending = append(pending, v)
		case <-timeout:
			s.finishMove(tail, head)
			return next, nil // the watchdog closes next if it is dead
		case <-s.ctx.Done():
			next.close()
			return nil, s.ctx.Err()
		}
	}
}

// finishMove delivers the messages the new connection received before its
// PING reply, less those the old connection delivered already (the longest
// end of tail that starts head).
func (s *Subscriber) finishMove(tail, head []string) {
	k := overlap(tail, head)
	s.duplicates.Add(int64(k))
	for _, m := range head[k:] {
		s.deliver(m)
	}
	s.moves.Add(1)
}

// overlap returns the largest k such that the last k of tail are the first
// k of head.
func overlap(tail, head []string) int {
	for k := min(len(tail), len(head)); k > 0; k-- {
		match := true
		for i := 0; i < k; i++ {
			if tail[len(tail)-k+i] != head[i] {
				match = false
				break
			}
		}
		if match {
			return k
		}
	}
	return 0
}

// newBackoff starts a sequence of retries: exponential from RetryMinDelay
// to RetryMaxDelay, each step with jitter, from half of it to all of it.
// cenkalti/backoff randomises by ±RandomizationFactor around its interval:
// ±1/3 around three quarters of the step is that range.
func (s *Subscriber) newBackoff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.RetryMinDelay * 3 / 4,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         s.cfg.RetryMaxDelay * 3 / 4,
	}
	b.Reset()
	return b
}

// nextDelay is b's next step, at most RetryMaxDelay.
func (s *Subscriber) nextDelay(b *backoff.ExponentialBackOff) time.Duration {
	return min(b.NextBackOff(), s.cfg.RetryMaxDelay)
}
