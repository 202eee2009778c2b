package reauth

import (
	"errors"
	"net"
	"os"
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
		if !w.parked.Load() {
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
			if !w.parked.Load() {
				t.Fatalf("write %d: %d h later the watch is not parked", i, i+1)
			}
		}
		c.Close()
		w.mu.Lock()
		running := w.stop != nil
		w.mu.Unlock()
		if running {
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
			n, running := len(w.conns), w.stop != nil
			w.mu.Unlock()
			if n != 0 || running {
				t.Fatalf("round %d: %d Conns watched, goroutine running %v after all closed", round, n, running)
			}
		}
	})
}
