package reauth

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestWriteWatchParks: a watch whose Conns write nothing parks its goroutine
// (an idle client's watch does not tick), a write wakes it, and a write
// that then blocks still times out at the client's deadline exactly, after
// any time parked; the Close of the last Conn ends the goroutine.
func TestWriteWatchParks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w WriteWatch
		cli, srv := net.Pipe()
		defer srv.Close()
		c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard, Watch: &w})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if r := w.cur.Load(); r == nil || !r.parked.Load() {
			t.Fatal("after an hour without a write the watch is not parked")
		}
		for i := range 3 {
			start := time.Now()
			c.SetWriteDeadline(start.Add(time.Second))
			_, err := c.Write(encode("GET", "k")) // nobody reads srv: it blocks
			if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
				t.Fatalf("write %d: %v after %v; want a timeout at 1 s exactly", i, err, time.Since(start))
			}
			time.Sleep(time.Duration(i+1) * time.Hour)
			synctest.Wait()
			if r := w.cur.Load(); r == nil || !r.parked.Load() {
				t.Fatalf("write %d: %d h later the watch is not parked", i, i+1)
			}
		}
		c.Close()
		if w.cur.Load() != nil {
			t.Fatal("the last Close left the goroutine running")
		}
	})
}

// TestWriteWatchShared: one watch serves many Conns, each blocked write gets
// its own client's deadline exactly, and Conns closing and opening while it
// runs (the last Close ending the goroutine, a new Conn starting it again)
// lose nothing.
func TestWriteWatchShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w WriteWatch
		for round := range 3 {
			start := time.Now()
			var wg sync.WaitGroup
			for i := range 8 {
				cli, srv := net.Pipe()
				c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard, Watch: &w})
				if err != nil {
					t.Fatal(err)
				}
				after := time.Duration(i+1) * 300 * time.Millisecond
				wg.Go(func() {
					defer srv.Close()
					defer c.Close()
					c.SetWriteDeadline(start.Add(after))
					_, err := c.Write(encode("GET", "k"))
					if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != after {
						t.Errorf("round %d, conn %d: %v after %v; want a timeout at %v exactly", round, i, err, time.Since(start), after)
					}
				})
			}
			wg.Wait()
			w.mu.Lock()
			n, running := len(w.conns), w.cur.Load() != nil
			w.mu.Unlock()
			if n != 0 || running {
				t.Fatalf("round %d: %d Conns watched, goroutine running %v after all closed", round, n, running)
			}
		}
	})
}

// hookConn is a deadlineConn that runs hook (once) inside its next
// SetWriteDeadline, before the change takes effect.
type hookConn struct {
	deadlineConn
	hook func()
}

func (h *hookConn) SetWriteDeadline(t time.Time) error {
	if f := h.hook; f != nil {
		h.hook = nil
		f()
	}
	return h.deadlineConn.SetWriteDeadline(t)
}

// TestSharpenOvertaken: while the watch puts the client's deadline D1 on a
// blocked write, that write ends, the client records a later D2 (within the
// slack armed for D1) and starts its next write. The next write must not
// run under D1, earlier than its own deadline (crypto/tls would break the
// connection for good if D1 fired).
func TestSharpenOvertaken(t *testing.T) {
	var d deadlines
	nc := &hookConn{}
	d1 := time.Now().Add(3 * time.Second)
	d2 := d1.Add(5 * time.Millisecond) // within writeSlack(3 s), 46 ms
	d.set(nc, dlWrite, d1)
	d.beginWrite(nc) // armed at d1 plus the slack; the write blocks
	last := d.sharpenWrite(nc, 0)
	began := make(chan struct{})
	nc.hook = func() {
		d.endWrite()
		d.set(nc, dlWrite, d2)
		go func() {
			defer close(began)
			if err := d.beginWrite(nc); err != nil {
				t.Error(err)
			}
		}()
		select { // the next write begins now, unless it must wait for the look
		case <-began:
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.sharpenWrite(nc, last) // the second look: sharpens
	<-began
	_, w := nc.get()
	if w.Before(d2) {
		t.Fatalf("the next write runs under %v, %v before its deadline %v", w, d2.Sub(w), d2)
	}
}

// TestSharpenOvertakenRace is TestSharpenOvertaken end to end and
// unstaged: a blocked write read at the watch's second look, then a write
// with a deadline 5 ms later that nobody reads, thousands of times. The
// second write must never time out before its own deadline.
func TestSharpenOvertakenRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w WriteWatch
		early := 0
		for round := range 1500 {
			cli, srv := net.Pipe()
			c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard, Watch: &w})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			d1 := start.Add(time.Second)
			d2 := d1.Add(5 * time.Millisecond)
			go func() { time.Sleep(100 * time.Millisecond); srv.Read(make([]byte, 4096)) }()
			c.SetWriteDeadline(d1)
			if _, err := c.Write(encode("GET", "k")); err != nil {
				t.Fatal(err)
			}
			c.SetWriteDeadline(d2)
			if _, err := c.Write(encode("GET", "k")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("round %d: second write: %v, want a timeout", round, err)
			}
			if got := time.Since(start); got < d2.Sub(start) {
				early++
			}
			c.Close()
			srv.Close()
		}
		if early > 0 {
			t.Errorf("%d of 1500 second writes timed out before their deadline", early)
		}
	})
}

// TestWriteWatchAcrossBubbles: one watch used by Conns in two synctest
// bubbles in turn: each run of its goroutine has channels of its own. It
// runs in a child process: a channel of one bubble used from another is a
// fatal error of the runtime, which would end the whole test binary.
func TestWriteWatchAcrossBubbles(t *testing.T) {
	const childEnv = "REAUTH_TEST_ACROSS_BUBBLES"
	if os.Getenv(childEnv) == "" {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWriteWatchAcrossBubbles$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestWriteWatchAcrossBubbles") {
			t.Fatalf("in a child process: %v\n%s", err, out)
		}
		return
	}
	var w WriteWatch
	for i := range 2 {
		synctest.Test(t, func(t *testing.T) {
			cli, srv := net.Pipe()
			defer srv.Close()
			c, err := New[testToken](cli, &testSource{cur: tokenN(1)}, Config{Logger: discard, Watch: &w})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(time.Hour) // the watch parks
			start := time.Now()
			c.SetWriteDeadline(start.Add(time.Second))
			if _, err := c.Write(encode("GET", "k")); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
				t.Fatalf("bubble %d: %v after %v; want a timeout at 1 s", i, err, time.Since(start))
			}
		})
	}
}
