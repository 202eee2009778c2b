package reauth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/internal/reauth"
	"github.com/entraredis/entraredis/internal/redisproc"
)

// tok is a token whose password is one of the ACL user's passwords.
type tok struct {
	gen  uint64
	pass string
	exp  time.Time // zero: in an hour
}

func (t tok) Username() string   { return "user" }
func (t tok) Password() string   { return t.pass }
func (t tok) Generation() uint64 { return t.gen }
func (t tok) ExpiresOn() time.Time {
	if t.exp.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return t.exp
}

// passwords of the ACL user: generation g uses password g%len.
const passwords = 8

func goodToken(gen uint64) tok {
	return tok{gen: gen, pass: "tok-" + strconv.FormatUint(gen%passwords, 10)}
}

type source struct {
	mu  sync.Mutex
	cur tok
}

func (s *source) Token() (tok, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, nil
}

func (s *source) set(t tok) {
	s.mu.Lock()
	s.cur = t
	s.mu.Unlock()
}

func requireRedis(t *testing.T) {
	t.Helper()
	if _, err := redisproc.Find(""); err != nil {
		if os.Getenv("ENTRAREDIS_REQUIRE_REDIS_SERVER") == "1" {
			t.Fatalf("%v (ENTRAREDIS_REQUIRE_REDIS_SERVER=1)", err)
		}
		t.Skipf("skipped, this test needs a real redis-server: %v", err)
	}
}

func startRedis(t *testing.T) *redisproc.Process {
	t.Helper()
	requireRedis(t)
	rules := []string{"~*", "&*", "+@all"}
	for i := 1; i < passwords; i++ {
		rules = append(rules, ">tok-"+strconv.Itoa(i))
	}
	p, err := redisproc.Start(redisproc.Config{Users: []redisproc.User{{Name: "user", Password: "tok-0", Rules: rules}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// wrapped is a go-redis client whose connections are reauth.Conns.
type wrapped struct {
	*redis.Client
	src      *source
	mu       sync.Mutex
	conns    []*reauth.Conn[tok]
	reauths  atomic.Int64 // accepted AUTHs after the first
	refused  atomic.Int64
	retired  atomic.Int64
	lastErr  atomic.Value
	nextGen  atomic.Uint64
	tokenFor func(gen uint64) tok
}

func newWrapped(t *testing.T, p *redisproc.Process, opt redis.Options) *wrapped {
	w := &wrapped{src: &source{cur: goodToken(1)}, tokenFor: goodToken}
	w.nextGen.Store(1)
	opt.Addr = p.Addr()
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c, err := reauth.New[tok](nc, w.src, reauth.Config{
			Logger: quiet,
			OnAuth: func(r reauth.Result) {
				switch {
				case r.Err != nil:
					w.refused.Add(1)
					w.lastErr.Store(r.Err)
				case !r.First:
					w.reauths.Add(1)
				}
			},
			OnRetire: func(string) { w.retired.Add(1) },
		})
		if err != nil {
			nc.Close()
			return nil, err
		}
		w.mu.Lock()
		w.conns = append(w.conns, c)
		w.mu.Unlock()
		return c, nil
	}
	w.Client = redis.NewClient(&opt)
	t.Cleanup(func() { w.Client.Close() })
	return w
}

// rotate installs the next token and hands it to every connection.
func (w *wrapped) rotate() tok {
	next := w.tokenFor(w.nextGen.Add(1))
	w.src.set(next)
	w.mu.Lock()
	conns := append([]*reauth.Conn[tok](nil), w.conns...)
	w.mu.Unlock()
	for _, c := range conns {
		c.OnToken(next)
	}
	return next
}

func (w *wrapped) states() []reauth.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []reauth.State
	for _, c := range w.conns {
		s = append(s, c.State())
	}
	return s
}

// script runs a random but seed-determined sequence of commands and returns
// everything go-redis reported about each.
func script(ctx context.Context, rdb *redis.Client, proto int, seed uint64, ops int) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	var log []string
	rec := func(cmds ...redis.Cmder) {
		for _, c := range cmds {
			s := c.String()
			if len(s) > 200 {
				s = fmt.Sprintf("%s… (%d bytes, sha256 %x)", s[:100], len(s), sha256.Sum256([]byte(s)))
			}
			log = append(log, s)
		}
	}
	key := func() string { return "k" + strconv.Itoa(r.IntN(6)) }
	simple := func(p redis.Cmdable) []redis.Cmder {
		switch r.IntN(9) {
		case 0:
			return []redis.Cmder{p.Set(ctx, key(), r.IntN(1000), 0)}
		case 1:
			return []redis.Cmder{p.Get(ctx, key())}
		case 2:
			return []redis.Cmder{p.Incr(ctx, "n"+key())}
		case 3:
			return []redis.Cmder{p.LPush(ctx, "l"+key(), r.IntN(100), r.IntN(100))}
		case 4:
			return []redis.Cmder{p.LRange(ctx, "l"+key(), 0, -1)}
		case 5:
			return []redis.Cmder{p.HSet(ctx, "h"+key(), "f"+strconv.Itoa(r.IntN(3)), r.IntN(10))}
		case 6:
			return []redis.Cmder{p.HGetAll(ctx, "h"+key())}
		case 7:
			return []redis.Cmder{p.Ping(ctx)}
		default:
			return []redis.Cmder{p.Append(ctx, key(), "x")}
		}
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	for range ops {
		switch op := r.IntN(16); op {
		case 0, 1, 2:
			rec(simple(rdb)...)
		case 3:
			cmds, _ := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for range 1 + r.IntN(20) {
					simple(p)
				}
				return nil
			})
			rec(cmds...)
		case 4:
			cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				for range 1 + r.IntN(5) {
					simple(p)
				}
				return nil
			})
			rec(cmds...)
			log = append(log, fmt.Sprint("tx: ", err))
		case 5:
			k := key()
			err := rdb.Watch(ctx, func(tx *redis.Tx) error {
				get := tx.Get(ctx, k)
				rec(get)
				cmds, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, k, get.Val()+"w", 0)
					return nil
				})
				rec(cmds...)
				return err
			}, k)
			log = append(log, fmt.Sprint("watch: ", err))
		case 6: // a transaction built by hand, an error inside it
			conn := rdb.Conn()
			rec(conn.Do(ctx, "MULTI"), conn.Do(ctx, "SET", "s", "v"), conn.Do(ctx, "LPUSH", "s", "x"), conn.Do(ctx, "INCR", "m"))
			if r.IntN(4) == 0 {
				rec(conn.Do(ctx, "DISCARD"))
			} else {
				rec(conn.Do(ctx, "EXEC"))
			}
			conn.Close()
		case 7:
			rec(rdb.Eval(ctx, "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1]..'e')}", []string{key()}, r.IntN(50)))
		case 8:
			if r.IntN(4) == 0 {
				rec(rdb.Set(ctx, "big", big[:1<<20-r.IntN(100)], 0), rdb.Get(ctx, "big"), rdb.StrLen(ctx, "big"))
			} else {
				rec(simple(rdb)...)
			}
		case 9: // client-side tracking: invalidations pushed on the connection (RESP3)
			if proto != 3 {
				rec(simple(rdb)...)
				break
			}
			conn := rdb.Conn()
			k := key()
			rec(conn.Do(ctx, "CLIENT", "TRACKING", "ON"), conn.Get(ctx, k), conn.Set(ctx, k, "t", 0), conn.Get(ctx, k), conn.Get(ctx, k))
			rec(conn.Do(ctx, "CLIENT", "TRACKING", "OFF"))
			conn.Close()
		case 10: // subscribe, publish, unsubscribe several channels
			ps := rdb.Subscribe(ctx, "c1", "c2")
			for range 2 {
				m, err := ps.ReceiveTimeout(ctx, 2*time.Second)
				log = append(log, fmt.Sprint("sub: ", m, err))
			}
			rec(rdb.Publish(ctx, "c1", "m1"), rdb.Publish(ctx, "c2", "m2"))
			for range 2 {
				m, err := ps.ReceiveTimeout(ctx, 2*time.Second)
				log = append(log, fmt.Sprint("msg: ", m, err))
			}
			log = append(log, fmt.Sprint("psub: ", ps.PSubscribe(ctx, "p*")))
			m, err := ps.ReceiveTimeout(ctx, 2*time.Second)
			log = append(log, fmt.Sprint("psub: ", m, err))
			rec(rdb.Publish(ctx, "px", "m3"))
			m, err = ps.ReceiveTimeout(ctx, 2*time.Second)
			log = append(log, fmt.Sprint("pmsg: ", m, err))
			log = append(log, fmt.Sprint("unsub: ", ps.Unsubscribe(ctx)))
			for range 2 {
				m, err := ps.ReceiveTimeout(ctx, 2*time.Second)
				log = append(log, fmt.Sprint("unsub: ", m, err))
			}
			rec(rdb.Publish(ctx, "c1", "gone"))
			ps.Close()
		case 11: // blocking, with a short timeout
			if r.IntN(2) == 0 {
				rec(rdb.RPush(ctx, "bl", "x"))
			}
			rec(rdb.Do(ctx, "BLPOP", "bl", "0.02")) // BLPop rounds timeouts up to 1 s
		default:
			rec(simple(rdb)...)
		}
	}
	return log
}

// TestDifferential runs the same random command sequences through a plain
// go-redis client and through one whose connections are reauth.Conns with
// AUTHs injected at random moments: go-redis must see identical replies.
func TestDifferential(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	ops := 250
	if testing.Short() {
		ops = 80
	}
	for _, proto := range []int{2, 3} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("RESP%d/seed%d", proto, seed), func(t *testing.T) {
				opt := redis.Options{Protocol: proto, PoolSize: 1, MaxRetries: -1, ReadTimeout: 5 * time.Second}
				plainOpt := opt
				plainOpt.Addr, plainOpt.Username, plainOpt.Password = p.Addr(), "user", "tok-0"
				plain := redis.NewClient(&plainOpt)
				defer plain.Close()
				if err := plain.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				want := script(ctx, plain, proto, seed, ops)

				w := newWrapped(t, p, opt)
				if err := w.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				stop := make(chan struct{})
				injected := make(chan int)
				go func() {
					n := 0
					r := rand.New(rand.NewPCG(seed, 99))
					for {
						select {
						case <-stop:
							injected <- n
							return
						case <-time.After(time.Duration(r.IntN(3000)) * time.Microsecond):
							w.rotate()
							n++
						}
					}
				}()
				got := script(ctx, w.Client, proto, seed, ops)
				close(stop)
				rotations := <-injected
				for i := range max(len(got), len(want)) {
					if i >= len(got) || i >= len(want) || got[i] != want[i] {
						g, wnt := "<none>", "<none>"
						if i < len(got) {
							g = got[i]
						}
						if i < len(want) {
							wnt = want[i]
						}
						t.Fatalf("reply %d differs:\n with AUTHs injected: %s\n plain:               %s", i, g, wnt)
					}
				}
				if w.refused.Load() != 0 || w.retired.Load() != 0 {
					t.Fatalf("%d refused AUTHs (%v), %d retired connections", w.refused.Load(), w.lastErr.Load(), w.retired.Load())
				}
				if w.reauths.Load() < 10 {
					t.Fatalf("only %d AUTHs were injected and accepted (%d rotations): the test proves little", w.reauths.Load(), rotations)
				}
				t.Logf("%d replies identical; %d rotations, %d in-place AUTHs accepted on %d connections", len(got), rotations, w.reauths.Load(), len(w.states()))
			})
		}
	}
}

// TestIdleConnectionReadsItsOwnAuthReply: a token handed to an idle
// connection is written and its reply read by the wrapper itself, without
// any command from go-redis; the connection then works as before.
func TestIdleConnectionReadsItsOwnAuthReply(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	for _, proto := range []int{2, 3} {
		w := newWrapped(t, p, redis.Options{Protocol: proto, PoolSize: 1, MaxRetries: -1})
		if err := w.Set(ctx, "idle", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		next := w.rotate()
		deadline := time.Now().Add(3 * time.Second)
		for w.states()[0].Generation != next.gen {
			if time.Now().After(deadline) {
				t.Fatalf("RESP%d: an idle connection is still on generation %d, want %d", proto, w.states()[0].Generation, next.gen)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if v, err := w.Get(ctx, "idle").Result(); err != nil || v != "v" {
			t.Fatalf("RESP%d: GET after an idle re-AUTH: %q, %v", proto, v, err)
		}
		if w.reauths.Load() != 1 {
			t.Fatalf("RESP%d: %d re-AUTHs reported", proto, w.reauths.Load())
		}
	}
}

// TestRefusedReauthKeepsTheConnection: a refused re-AUTH is reported, and the
// connection keeps its previous authentication.
func TestRefusedReauthKeepsTheConnection(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	w := newWrapped(t, p, redis.Options{Protocol: 3, PoolSize: 1, MaxRetries: -1})
	if err := w.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	w.tokenFor = func(gen uint64) tok { return tok{gen: gen, pass: "not-a-password"} }
	w.rotate()
	for range 20 {
		if err := w.Incr(ctx, "n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	var refused *reauth.RefusedError
	if err, _ := w.lastErr.Load().(error); w.refused.Load() != 1 || !errors.As(err, &refused) || refused.First || !strings.Contains(refused.Reply, "WRONGPASS") {
		t.Fatalf("%d refused, last error %v", w.refused.Load(), w.lastErr.Load())
	}
	if st := w.states()[0]; st.Generation != 1 {
		t.Fatalf("the connection reports generation %d after a refused re-AUTH, want 1", st.Generation)
	}
}

// TestRefusedFirstAuthFailsTheConnection: go-redis gets a clear, non-Redis
// error and closes the connection instead of going on unauthenticated.
func TestRefusedFirstAuthFailsTheConnection(t *testing.T) {
	p := startRedis(t)
	for _, proto := range []int{2, 3} {
		w := newWrapped(t, p, redis.Options{Protocol: proto, PoolSize: 1, MaxRetries: -1})
		w.src.set(tok{gen: 1, pass: "not-a-password"})
		err := w.Ping(t.Context()).Err()
		var refused *reauth.RefusedError
		var rerr redis.Error
		if !errors.As(err, &refused) || !refused.First || !strings.Contains(err.Error(), "WRONGPASS") || errors.As(err, &rerr) {
			t.Fatalf("RESP%d: PING with a refused first AUTH: %v", proto, err)
		}
		if strings.Contains(err.Error(), "not-a-password") {
			t.Fatal("the error shows the token")
		}
		w.src.set(goodToken(2))
		if err := w.Ping(t.Context()).Err(); err != nil {
			t.Fatalf("RESP%d: no recovery with a good token: %v", proto, err)
		}
	}
}

// TestBlockingCommandMovesFirst: before a blocking command the connection is
// moved to the newest token, even if the hand-out has not reached it.
func TestBlockingCommandMovesFirst(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	w := newWrapped(t, p, redis.Options{Protocol: 3, PoolSize: 1, MaxRetries: -1})
	if err := w.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	w.src.set(goodToken(5)) // installed, not handed out
	if err := w.Do(ctx, "BLPOP", "nothing", "0.01").Err(); err != redis.Nil {
		t.Fatal(err)
	}
	if st := w.states()[0]; st.Generation != 5 {
		t.Fatalf("generation %d after BLPOP, want 5", st.Generation)
	}
}

// TestRetiredConnectionPassesThrough: the application's own AUTH retires the
// connection, which goes on working untouched.
func TestRetiredConnectionPassesThrough(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	w := newWrapped(t, p, redis.Options{Protocol: 3, PoolSize: 1, MaxRetries: -1})
	w.rotate() // pending on a connection not dialed yet: nothing happens
	if err := w.Do(ctx, "AUTH", "user", "tok-3").Err(); err != nil {
		t.Fatal(err)
	}
	w.rotate()
	for range 10 {
		if err := w.Incr(ctx, "r").Err(); err != nil {
			t.Fatal(err)
		}
	}
	st := w.states()[0]
	if st.Retired == "" || !st.Unmovable || w.retired.Load() != 1 {
		t.Fatalf("state %+v after the application's AUTH, %d retired", st, w.retired.Load())
	}
}

// TestBlockedPastExpiryIsExplained: a blocking command cut because the
// server closed the connection after its token expired fails with a
// *BlockedError that says why, and stays an io.EOF for go-redis' retries.
func TestBlockedPastExpiryIsExplained(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	w := newWrapped(t, p, redis.Options{Protocol: 3, PoolSize: 1, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	w.src.set(tok{gen: 1, pass: "tok-1", exp: time.Now().Add(300 * time.Millisecond)})
	if err := w.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Do(ctx, "BLPOP", "never", "5").Err() }()
	time.Sleep(600 * time.Millisecond) // past the token's expiry
	if _, err := p.Do(ctx, "CLIENT", "KILL", "USER", "user"); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	var be *reauth.BlockedError
	if !errors.As(err, &be) || !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "blocking timeouts shorter than the token lifetime") {
		t.Fatalf("BLPOP cut after the token's expiry: %v (%T)", err, err)
	}
}

// recordingConn records the read deadline set on the socket.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	rdl time.Time
}

func (r *recordingConn) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	r.rdl = t
	r.mu.Unlock()
	return r.Conn.SetReadDeadline(t)
}

func (r *recordingConn) SetDeadline(t time.Time) error {
	r.mu.Lock()
	r.rdl = t
	r.mu.Unlock()
	return r.Conn.SetDeadline(t)
}

func (r *recordingConn) readDeadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rdl
}

// TestOwnReadKeepsTheClientsDeadline: the wrapper's own read of an AUTH
// reply runs under its own deadline and restores the client's afterwards.
func TestOwnReadKeepsTheClientsDeadline(t *testing.T) {
	p := startRedis(t)
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingConn{Conn: nc}
	src := &source{cur: goodToken(1)}
	var auths atomic.Int64
	c, err := reauth.New[tok](rc, src, reauth.Config{Logger: quiet, IOTimeout: 2 * time.Second, OnAuth: func(r reauth.Result) {
		if r.Err == nil {
			auths.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	clientDL := time.Now().Add(42 * time.Minute)
	if err := c.SetReadDeadline(clientDL); err != nil {
		t.Fatal(err)
	}
	c.OnToken(goodToken(2))
	deadline := time.Now().Add(3 * time.Second)
	for c.State().Generation != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the idle AUTH was not read")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Restored after the own read (allow the goroutine to finish).
	for !rc.readDeadline().Equal(clientDL) {
		if time.Now().After(deadline) {
			t.Fatalf("read deadline %v after the wrapper's own read, want the client's %v", rc.readDeadline(), clientDL)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if auths.Load() != 2 {
		t.Fatalf("%d accepted AUTHs, want 2", auths.Load())
	}
	// The connection goes on.
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// panicky is a Source that panics once its token is asked for again.
type panicky struct{ calls atomic.Int64 }

func (p *panicky) Token() (tok, error) {
	if p.calls.Add(1) > 1 {
		panic("boom")
	}
	return goodToken(1), nil
}

// TestPanicBecomesAConnectionError: a panic inside the wrapper fails the
// connection; it does not crash the process.
func TestPanicBecomesAConnectionError(t *testing.T) {
	p := startRedis(t)
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := reauth.New[tok](nc, &panicky{}, reauth.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A blocking command makes the wrapper ask for the newest token.
	_, err = c.Write([]byte("*3\r\n$5\r\nBLPOP\r\n$1\r\nl\r\n$1\r\n1\r\n"))
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("write after a panic: %v", err)
	}
	if _, err := c.Read(make([]byte, 8)); err == nil {
		t.Fatal("the connection works after a panic")
	}
}

// TestPubSubAcrossRotations: a subscriber reading (go-redis' reader blocked in
// Read) while a publisher writes and tokens rotate: on RESP3 the subscribed
// connection itself is moved to every token, on RESP2 it is left alone
// (unmovable); no message is lost, duplicated or reordered, no reconnect.
func TestPubSubAcrossRotations(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	for _, proto := range []int{2, 3} {
		w := newWrapped(t, p, redis.Options{Protocol: proto, PoolSize: 2, MaxRetries: -1})
		sub := w.Subscribe(ctx, "news")
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		ch := sub.Channel(redis.WithChannelSize(2000))
		const msgs = 600
		done := make(chan error, 1)
		go func() {
			for i := range msgs {
				if err := w.Publish(ctx, "news", i).Err(); err != nil {
					done <- err
					return
				}
				if i%30 == 0 {
					w.rotate()
				}
				time.Sleep(time.Millisecond)
			}
			done <- nil
		}()
		for i := range msgs {
			select {
			case m := <-ch:
				if m.Payload != strconv.Itoa(i) {
					t.Fatalf("RESP%d: message %d is %q", proto, i, m.Payload)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("RESP%d: message %d did not arrive", proto, i)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		sub.Close()
		states := w.states()
		if w.refused.Load() != 0 || w.retired.Load() != 0 {
			t.Fatalf("RESP%d: %d refused, %d retired", proto, w.refused.Load(), w.retired.Load())
		}
		// One subscriber connection plus the publisher's: no reconnect.
		if len(states) != 2 {
			t.Fatalf("RESP%d: %d connections dialed, want 2 (no reconnect)", proto, len(states))
		}
		if proto == 3 && w.reauths.Load() < 2*(msgs/30)-2 {
			t.Fatalf("RESP3: %d re-AUTHs over %d rotations on 2 connections", w.reauths.Load(), msgs/30)
		}
		t.Logf("RESP%d: %d messages in order across %d rotations, %d re-AUTHs, %d connections", proto, msgs, msgs/30, w.reauths.Load(), len(states))
	}
}

// TestConcurrentLoad: 32 goroutines on a pool of 10 while tokens rotate every
// few milliseconds: every reply right, every connection moved, no extra dial.
func TestConcurrentLoad(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	for _, proto := range []int{2, 3} {
		w := newWrapped(t, p, redis.Options{Protocol: proto, PoolSize: 10, MaxRetries: -1})
		var wg sync.WaitGroup
		var errs atomic.Int64
		var first atomic.Value
		stop := make(chan struct{})
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := "c" + strconv.Itoa(g)
				for i := range 300 {
					v := strconv.Itoa(i)
					var get *redis.StringCmd
					_, err := w.Pipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, k, v, 0)
						get = p.Get(ctx, k)
						return nil
					})
					if err == nil && get.Val() != v {
						err = fmt.Errorf("GET %s = %q, want %q", k, get.Val(), v)
					}
					if err != nil {
						errs.Add(1)
						first.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(3 * time.Millisecond):
					w.rotate()
				}
			}
		}()
		wg.Wait()
		close(stop)
		if errs.Load() != 0 {
			t.Fatalf("RESP%d: %d errors, first %v", proto, errs.Load(), first.Load())
		}
		states := w.states()
		// go-redis v9.23 runs pipelines on a pool of their own, PoolSize too.
		if len(states) > 20 || w.refused.Load() != 0 || w.retired.Load() != 0 || w.reauths.Load() < 10 {
			t.Fatalf("RESP%d: %d connections, %d refused, %d retired, %d re-AUTHs", proto, len(states), w.refused.Load(), w.retired.Load(), w.reauths.Load())
		}
		t.Logf("RESP%d: 32×300 pipelines, 0 errors, %d re-AUTHs on %d connections", proto, w.reauths.Load(), len(states))
	}
}

// TestResetIsFollowed: after the application's RESET the connection is
// authenticated again at once, with the newest token.
func TestResetIsFollowed(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	w := newWrapped(t, p, redis.Options{Protocol: 2, PoolSize: 1, MaxRetries: -1})
	conn := w.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, "r", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	w.src.set(goodToken(3))
	if v, err := conn.Do(ctx, "RESET").Text(); err != nil || v != "RESET" {
		t.Fatalf("RESET: %q, %v", v, err)
	}
	if v, err := conn.Get(ctx, "r").Result(); err != nil || v != "v" {
		t.Fatalf("GET after RESET: %q, %v", v, err)
	}
	if who, err := conn.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "user" {
		t.Fatalf("ACL WHOAMI after RESET: %q, %v", who, err)
	}
	if st := w.states()[0]; st.Generation != 3 || st.Retired != "" {
		t.Fatalf("state after RESET: %+v", st)
	}
}

// TestFullDuplexAutoPipeline: go-redis' full-duplex auto-pipelining reads and
// writes one connection at the same time; AUTHs injected meanwhile change no
// reply.
func TestFullDuplexAutoPipeline(t *testing.T) {
	p := startRedis(t)
	ctx := t.Context()
	w := newWrapped(t, p, redis.Options{Protocol: 3, PoolSize: 4, MaxRetries: -1})
	ap, err := w.AutoPipelineWithOptions(&redis.AutoPipelineOptions{FullDuplex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Close()
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				w.rotate()
			}
		}
	}()
	var wg sync.WaitGroup
	var bad atomic.Int64
	var first atomic.Value
	for g := range 16 {
		wg.Go(func() {
			k := "fd" + strconv.Itoa(g)
			for i := range 400 {
				n, err := ap.Incr(ctx, k).Result()
				if err == nil && n != int64(i+1) {
					err = fmt.Errorf("INCR %s = %d, want %d", k, n, i+1)
				}
				if err != nil {
					bad.Add(1)
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if bad.Load() != 0 || w.refused.Load() != 0 || w.retired.Load() != 0 {
		t.Fatalf("%d goroutines failed (%v), %d refused, %d retired", bad.Load(), first.Load(), w.refused.Load(), w.retired.Load())
	}
	if w.reauths.Load() == 0 {
		t.Fatal("no AUTH was injected: the test proves nothing")
	}
	t.Logf("16×400 INCR through full-duplex auto-pipelining, %d re-AUTHs on %d connections", w.reauths.Load(), len(w.states()))
}
