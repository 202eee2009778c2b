package reauth

import (
	"bytes"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// deadlineConn records the deadlines set on it, serialised as a socket's are.
type deadlineConn struct {
	net.Conn
	mu   sync.Mutex
	r, w time.Time
}

func (d *deadlineConn) SetDeadline(t time.Time) error      { return d.set(dlBoth, t) }
func (d *deadlineConn) SetReadDeadline(t time.Time) error  { return d.set(dlRead, t) }
func (d *deadlineConn) SetWriteDeadline(t time.Time) error { return d.set(dlWrite, t) }

func (d *deadlineConn) set(k dlKind, t time.Time) error {
	runtime.Gosched() // widen the window in which a call can be overtaken
	d.mu.Lock()
	defer d.mu.Unlock()
	if k&dlRead != 0 {
		d.r = t
	}
	if k&dlWrite != 0 {
		d.w = t
	}
	return nil
}

func (d *deadlineConn) get() (r, w time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r, d.w
}

// recordingConn is a deadlineConn or a countingConn.
type recordingConn interface {
	net.Conn
	get() (r, w time.Time)
}

// writeDeadline is the inner write deadline a write of the client starting
// now runs under: what the Conn's beginWrite, called before each write,
// leaves on nc.
func writeDeadline(t *testing.T, d *deadlines, nc recordingConn) time.Time {
	t.Helper()
	if err := d.beginWrite(nc); err != nil {
		t.Fatal(err)
	}
	defer d.endWrite()
	_, w := nc.get()
	return w
}

// inForce reports whether a write runs under the inner write deadline w
// when the client's is client: none for none, else not earlier than the
// client's and later by at most slack.
func inForce(w, client time.Time, slack time.Duration) bool {
	if client.IsZero() {
		return w.IsZero()
	}
	return !w.Before(client) && w.Sub(client) <= slack
}

// TestDeadlineRange: deadlines centuries away in either direction neither
// wrap round nor become "none" or "unknown".
func TestDeadlineRange(t *testing.T) {
	var d deadlines
	nc := &deadlineConn{}
	d.set(nc, dlBoth, time.Now().Add(3*time.Second))
	writeDeadline(t, &d, nc)
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	d.set(nc, dlWrite, far)
	if w := writeDeadline(t, &d, nc); w.Before(time.Now().AddDate(200, 0, 0)) {
		t.Errorf("a deadline in 3000 reaches the write as %v", w)
	}
	ancient := time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)
	d.set(nc, dlWrite, ancient)
	if w := writeDeadline(t, &d, nc); w.IsZero() || w.After(time.Now()) {
		t.Errorf("a deadline in year 1 reaches the write as %v, want one long past", w)
	}
	if a := d.armedW.Load(); a == unknownNs || a == 0 {
		t.Errorf("a deadline in year 1 armed as %d", a)
	}
}

// race runs a and b at once, released together, and waits for both.
func race(a, b func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-start; a() })
	wg.Go(func() { <-start; b() })
	close(start)
	wg.Wait()
}

// TestDeadlinesRaceOwnIO races a client's deadline call (read, write or both)
// with the start of the wrapper's own I/O, thousands of times: while the own
// I/O runs, its direction has the own deadline, the other the client's (for
// the write deadline: at the client's next write); once it ends, both are the
// client's.
func TestDeadlinesRaceOwnIO(t *testing.T) {
	base := time.Now()
	for i := range 4000 {
		var d deadlines
		nc := &deadlineConn{}
		ownK := []dlKind{dlRead, dlWrite}[i%2]
		clientK := []dlKind{dlRead, dlWrite, dlBoth}[(i/2)%3]
		client := base.Add(time.Duration(i+1) * time.Minute)
		own := base.Add(time.Duration(i+1) * time.Second)
		race(func() { d.set(nc, clientK, client) }, func() { d.beginOwn(nc, ownK, own) })
		r, w := nc.get()
		if ownK == dlRead { // else the own write holds the Conn's wmu: no client write runs
			w = writeDeadline(t, &d, nc)
		}
		wantR, wantW := time.Time{}, time.Time{}
		if clientK&dlRead != 0 {
			wantR = client
		}
		if clientK&dlWrite != 0 {
			wantW = client
		}
		checkR, checkW := wantR, wantW
		if ownK == dlRead {
			checkR = own
		} else {
			checkW = own
		}
		okW := inForce(w, checkW, maxWriteSlack)
		if ownK == dlWrite {
			okW = w.Equal(checkW) // the own deadline, exactly
		}
		if !r.Equal(checkR) || !okW {
			t.Fatalf("round %d (own %v, client %v) during own I/O: read %v, write %v; want %v, %v", i, ownK, clientK, r, w, checkR, checkW)
		}
		d.endOwn(nc, ownK)
		r, _ = nc.get()
		w = writeDeadline(t, &d, nc)
		if ownK == dlRead && !r.Equal(wantR) || ownK == dlWrite && !inForce(w, wantW, maxWriteSlack) {
			t.Fatalf("round %d (own %v, client %v) after own I/O: read %v, write %v; want %v, %v", i, ownK, clientK, r, w, wantR, wantW)
		}
	}
}

// TestDeadlinesRaceOwnEnd races a client's deadline call with the end of the
// wrapper's own I/O: afterwards the client's deadline is in place.
func TestDeadlinesRaceOwnEnd(t *testing.T) {
	base := time.Now()
	for i := range 4000 {
		var d deadlines
		nc := &deadlineConn{}
		k := []dlKind{dlRead, dlWrite}[i%2]
		d.set(nc, k, base)
		d.beginOwn(nc, k, base.Add(time.Second))
		client := base.Add(time.Duration(i+1) * time.Minute)
		race(func() { d.set(nc, k, client) }, func() { d.endOwn(nc, k) })
		got, _ := nc.get()
		if k == dlWrite {
			got = writeDeadline(t, &d, nc)
		}
		if k == dlRead && !got.Equal(client) || k == dlWrite && !inForce(got, client, maxWriteSlack) {
			t.Fatalf("round %d (%v): deadline %v after the race, want the client's %v", i, k, got, client)
		}
	}
}

// TestDeadlinesZero: a client's deadline put back after own I/O is the same
// instant, to the nanosecond, and "no deadline" stays no deadline.
func TestDeadlinesZero(t *testing.T) {
	var d deadlines
	nc := &deadlineConn{}
	when := time.Unix(1700000000, 123456789)
	d.set(nc, dlRead, when)
	d.set(nc, dlWrite, time.Time{})
	d.beginOwn(nc, dlRead, when.Add(time.Hour))
	d.endOwn(nc, dlRead)
	d.beginOwn(nc, dlWrite, when.Add(time.Hour))
	d.endOwn(nc, dlWrite)
	if r, w := nc.get(); !r.Equal(when) || !w.IsZero() {
		t.Fatalf("read %v, write %v; want %v and none", r, w, when)
	}
}

// countingConn is a deadlineConn that counts the deadline calls it gets.
type countingConn struct {
	deadlineConn
	reads, writes int // guarded by deadlineConn.mu
}

func (c *countingConn) SetDeadline(t time.Time) error      { return c.count(dlBoth, t) }
func (c *countingConn) SetReadDeadline(t time.Time) error  { return c.count(dlRead, t) }
func (c *countingConn) SetWriteDeadline(t time.Time) error { return c.count(dlWrite, t) }

func (c *countingConn) count(k dlKind, t time.Time) error {
	c.mu.Lock()
	if k&dlRead != 0 {
		c.reads++
	}
	if k&dlWrite != 0 {
		c.writes++
	}
	c.mu.Unlock()
	return c.set(k, t)
}

func (c *countingConn) counts() (reads, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.writes
}

// TestDeadlinesLazy: a client that clears both deadlines and then sets "now
// plus 3 s" before every command, as go-redis does (the pool's health check,
// then WithWriter and WithReader), changes the inner read deadline about
// once per 1.5 s and the write deadline once per writeSlack(3 s) (47 ms), at
// a write; the inner read deadline is never later than the client's, the
// write deadline a write runs under never earlier and at most the slack
// later, and an earlier client deadline is applied at once.
func TestDeadlinesLazy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d deadlines
		nc := &countingConn{}
		check := func(step string, client time.Time, wantReads int) {
			t.Helper()
			r, _ := nc.get()
			if reads, _ := nc.counts(); reads != wantReads {
				t.Fatalf("%s: %d inner read-deadline calls, want %d", step, reads, wantReads)
			}
			if r.IsZero() || !client.IsZero() && r.After(client) {
				t.Fatalf("%s: inner read deadline %v, client's %v: the inner one must be set and not later", step, r, client)
			}
		}
		first := time.Now().Add(3 * time.Second)
		d.set(nc, dlRead, first)
		check("first", first, 1)
		slack := writeSlack(3 * time.Second)
		var last time.Time
		for range 1000 { // one second of commands, one per millisecond
			time.Sleep(time.Millisecond)
			d.set(nc, dlBoth, time.Time{})
			last = time.Now().Add(3 * time.Second)
			d.set(nc, dlWrite, last)
			if w := writeDeadline(t, &d, nc); !inForce(w, last, slack) {
				t.Fatalf("a write runs under the inner write deadline %v, want the client's %v or at most %v later", w, last, slack)
			}
			d.set(nc, dlRead, last)
		}
		check("1000 commands", last, 1)
		if r, w := nc.get(); !r.Equal(first) || !inForce(w, last, slack) {
			t.Fatalf("inner deadlines read %v, write %v; want the first read one %v and the last write one %v", r, w, first, last)
		}
		// Armed at a command, the write deadline covers the commands of the
		// next slack (46 ms: 46 commands), so every 47th command arms it.
		every := int(slack/time.Millisecond) + 1
		wantW := (1000 + every - 1) / every
		if _, writes := nc.counts(); writes != wantW {
			t.Fatalf("%d inner write-deadline calls, want %d: one per %v of commands, none for a clear or a deadline no write runs under", writes, wantW, slack)
		}
		d.set(nc, dlWrite, last.Add(time.Second))
		d.set(nc, dlWrite, last)
		if w := writeDeadline(t, &d, nc); !inForce(w, last, slack) {
			t.Fatalf("the inner write deadline is %v, want %v", w, last)
		}
		if _, writes := nc.counts(); writes != wantW {
			t.Fatalf("%d inner write-deadline calls, want still %d: the deadline in force was set again", writes, wantW)
		}
		past := time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC) // centuries before the armed one
		d.set(nc, dlWrite, past)
		if w := writeDeadline(t, &d, nc); w.IsZero() || w.After(time.Now()) {
			t.Fatalf("after a deadline in 1700 the write runs under %v, want one long past", w)
		}
		wantW++
		d.set(nc, dlWrite, last.Add(-time.Second))
		if w := writeDeadline(t, &d, nc); !inForce(w, last.Add(-time.Second), slack) {
			t.Fatalf("after an earlier client deadline %v the write runs under %v", last.Add(-time.Second), w)
		}
		if _, writes := nc.counts(); writes != wantW+1 {
			t.Fatalf("%d inner write-deadline calls, want %d: an earlier deadline is armed at the next write", writes, wantW+1)
		}
		time.Sleep(600 * time.Millisecond)
		later := time.Now().Add(3 * time.Second) // 2.6 s after the armed one: more than half its lead
		d.set(nc, dlRead, later)
		check("past half the lead", later, 2)
		sooner := time.Now().Add(time.Second)
		d.set(nc, dlRead, sooner)
		check("an earlier deadline", sooner, 3)
		d.set(nc, dlBoth, time.Time{}) // the pool's health check clears both
		check("cleared", time.Time{}, 3)
		if w := writeDeadline(t, &d, nc); !w.IsZero() {
			t.Fatalf("a write after the clear runs under the inner write deadline %v", w)
		}
		d.set(nc, dlRead, sooner.Add(time.Millisecond))
		check("set again after a clear", sooner.Add(time.Millisecond), 3)
		d.beginOwn(nc, dlRead, sooner.Add(time.Hour))
		d.endOwn(nc, dlRead)
		if r, _ := nc.get(); !r.Equal(sooner.Add(time.Millisecond)) {
			t.Fatalf("after own I/O the inner read deadline is %v, want the client's %v exactly", r, sooner.Add(time.Millisecond))
		}
	})
}

// lazyPipe is a Conn over net.Pipe whose server answers the first AUTH at
// once and the client's first command (GET k) replyAfter from now, or never
// when replyAfter is 0.
func lazyPipe(t *testing.T, replyAfter time.Duration) (*Conn[testToken], func()) {
	at := time.Now().Add(replyAfter)
	cli, srv := net.Pipe()
	c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var in []byte
		buf := make([]byte, 512)
		for !bytes.HasSuffix(in, encode("GET", "k")) {
			n, err := srv.Read(buf)
			if err != nil {
				return
			}
			in = append(in, buf[:n]...)
		}
		srv.Write([]byte("+OK\r\n"))
		if replyAfter > 0 {
			time.Sleep(time.Until(at))
			srv.Write([]byte("$1\r\nx\r\n"))
		}
		srv.Read(buf) // until closed
	})
	if _, err := c.Write(encode("GET", "k")); err != nil {
		t.Fatal(err)
	}
	return c, func() { c.Close(); srv.Close(); wg.Wait() }
}

// TestEarlyReadRetried: when the armed read deadline fires before the
// client's, the client's Read goes on: it gets the reply that comes between
// the two, or its timeout at its own deadline, not earlier; with the
// client's deadline cleared it waits for the reply however late.
func TestEarlyReadRetried(t *testing.T) {
	read := func(c *Conn[testToken]) (string, error) {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	t.Run("reply between", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, done := lazyPipe(t, 3500*time.Millisecond)
			defer done()
			c.SetReadDeadline(start.Add(3 * time.Second))
			time.Sleep(time.Second)
			c.SetReadDeadline(start.Add(4 * time.Second)) // kept: the inner one stays at 3 s
			got, err := read(c)
			if got != "$1\r\nx\r\n" || err != nil || time.Since(start) != 3500*time.Millisecond {
				t.Fatalf("Read = %q, %v after %v; want the reply at 3.5 s", got, err, time.Since(start))
			}
		})
	})
	t.Run("timeout at the client's deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, done := lazyPipe(t, 0)
			defer done()
			c.SetReadDeadline(start.Add(3 * time.Second))
			time.Sleep(time.Second)
			c.SetReadDeadline(start.Add(4 * time.Second))
			got, err := read(c)
			if !errors.Is(err, os.ErrDeadlineExceeded) || got != "" || time.Since(start) != 4*time.Second {
				t.Fatalf("Read = %q, %v after %v; want a timeout at 4 s", got, err, time.Since(start))
			}
		})
	})
	t.Run("deadline cleared", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, done := lazyPipe(t, time.Minute)
			defer done()
			c.SetReadDeadline(start.Add(3 * time.Second))
			c.SetReadDeadline(time.Time{})
			got, err := read(c)
			if got != "$1\r\nx\r\n" || err != nil || time.Since(start) != time.Minute {
				t.Fatalf("Read = %q, %v after %v; want the reply at 1 min", got, err, time.Since(start))
			}
		})
	})
}

// TestWriteDeadlineAtWrite: the client's write deadline is in force on the
// inner connection for every write, whether it was set before the write,
// while the write was blocked, or set during one write and changed before
// the next; a cleared deadline lets a blocked write wait. With a WriteWatch
// a blocked write times out at the client's deadline exactly; without one,
// or when the deadline comes before the watch's second look, at most
// writeSlack of its lead later, never earlier.
func TestWriteDeadlineAtWrite(t *testing.T) {
	// openWith returns a Conn over net.Pipe whose server reads nothing until
	// the test reads srv: the client's writes block. The Conn is watched by
	// w, if not nil.
	openWith := func(t *testing.T, w *WriteWatch) (c *Conn[testToken], srv net.Conn) {
		cli, srv := net.Pipe()
		c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard, Watch: w})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); srv.Close() })
		return c, srv
	}
	open := func(t *testing.T) (c *Conn[testToken], srv net.Conn) { return openWith(t, &WriteWatch{}) }
	// readAt reads at, in the background, one write of the client from srv
	// (unless the test has ended).
	readAt := func(t *testing.T, srv net.Conn, at time.Time) {
		ended := make(chan struct{})
		t.Cleanup(func() { close(ended) })
		go func() {
			select {
			case <-time.After(time.Until(at)):
				srv.Read(make([]byte, 4096))
			case <-ended:
			}
		}()
	}
	write := func(c *Conn[testToken]) error {
		_, err := c.Write(encode("GET", "k"))
		return err
	}
	t.Run("set before", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, _ := open(t)
			c.SetDeadline(time.Time{})
			c.SetWriteDeadline(start.Add(time.Second))
			if err := write(c); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
				t.Fatalf("Write = %v after %v; want a timeout at 1 s", err, time.Since(start))
			}
		})
	})
	t.Run("set before, no watch", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, _ := openWith(t, nil)
			c.SetWriteDeadline(start.Add(time.Second))
			want := time.Second + writeSlack(time.Second) // 1.015625 s
			if err := write(c); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != want {
				t.Fatalf("Write = %v after %v; want a timeout at %v", err, time.Since(start), want)
			}
		})
	})
	t.Run("set before, sooner than the watch's second look", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, _ := open(t)
			c.SetWriteDeadline(start.Add(64 * time.Millisecond))
			want := 65 * time.Millisecond // 64 ms and 1/64 of it
			if err := write(c); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != want {
				t.Fatalf("Write = %v after %v; want a timeout at %v", err, time.Since(start), want)
			}
		})
	})
	t.Run("set while blocked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, _ := open(t)
			go func() {
				time.Sleep(500 * time.Millisecond)
				c.SetWriteDeadline(start.Add(time.Second))
			}()
			if err := write(c); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
				t.Fatalf("Write = %v after %v; want a timeout at 1 s", err, time.Since(start))
			}
		})
	})
	t.Run("set while blocked, cleared before the next", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, srv := open(t)
			go func() {
				time.Sleep(500 * time.Millisecond)
				c.SetWriteDeadline(start.Add(time.Hour))
			}()
			readAt(t, srv, start.Add(time.Second))
			if err := write(c); err != nil || time.Since(start) != time.Second {
				t.Fatalf("first Write = %v after %v; want it read at 1 s", err, time.Since(start))
			}
			c.SetWriteDeadline(time.Time{})
			readAt(t, srv, start.Add(2*time.Hour))
			if err := write(c); err != nil || time.Since(start) != 2*time.Hour {
				t.Fatalf("second Write = %v after %v; want it read at 2 h, under no deadline", err, time.Since(start))
			}
		})
	})
	t.Run("cleared before", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			c, srv := open(t)
			c.SetWriteDeadline(start.Add(time.Second))
			c.SetWriteDeadline(time.Time{})
			readAt(t, srv, start.Add(time.Minute))
			if err := write(c); err != nil || time.Since(start) != time.Minute {
				t.Fatalf("Write = %v after %v; want it read at 1 min", err, time.Since(start))
			}
		})
	})
}
