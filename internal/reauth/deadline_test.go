package reauth

import (
	"net"
	"runtime"
	"sync"
	"testing"
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
// I/O runs, its direction has the own deadline, the other the client's; once
// it ends, both are the client's.
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
		if !r.Equal(checkR) || !w.Equal(checkW) {
			t.Fatalf("round %d (own %v, client %v) during own I/O: read %v, write %v; want %v, %v", i, ownK, clientK, r, w, checkR, checkW)
		}
		d.endOwn(nc, ownK)
		r, w = nc.get()
		if ownK == dlRead && !r.Equal(wantR) || ownK == dlWrite && !w.Equal(wantW) {
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
		r, w := nc.get()
		got := r
		if k == dlWrite {
			got = w
		}
		if !got.Equal(client) {
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
