package reauth

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// watchTick is how often a WriteWatch looks at its connections while they
// write.
const watchTick = 50 * time.Millisecond

// WriteWatch makes the write deadlines of the Conns that share it exact when
// a write blocks. A Conn arms its inner write deadline lazily, up to a
// little later than the client's (see deadlines); a write that does not
// block never notices. Every watchTick the watch looks at each Conn, and a
// client's write it finds running at two looks in a row gets the client's
// deadline exactly, while it blocks. A look that finds nothing written
// since the one before parks the goroutine until the next write begins
// (a write then costs one atomic load more), so an idle client's watch does
// not tick. The goroutine runs while at least one Conn is watched: the
// Close of the last one ends it and waits for it. The zero value is ready to
// use; it must not be copied after first use.
type WriteWatch struct {
	// cur is the goroutine running now (nil while none runs); it is stored
	// under mu and loaded by writes without it (unpark).
	cur atomic.Pointer[watchRun]

	mu    sync.Mutex                // guards conns
	conns map[*deadlines]watchEntry // the watched Conns
}

// watchRun is one run of the goroutine, from the first Conn watched to the
// Close of the last. Each run has its own channels and parked flag, so a run
// ending while the next starts never shares a wake-up with it (and, in
// testing/synctest, each belongs to the bubble that started it).
type watchRun struct {
	// parked is set while the goroutine waits for wake instead of ticking.
	// A write stores writes, then loads parked; the goroutine stores parked,
	// then loads writes: so a write that begins as the goroutine parks is
	// seen by the one or wakes it (see unpark).
	parked atomic.Bool
	wake   chan struct{} // a write's wake-up for the parked goroutine (1 buffered)
	stop   chan struct{} // closed to end the goroutine
	done   chan struct{} // closed by the goroutine when it ends
}

// watchEntry is one watched Conn: its inner connection and its deadlines'
// writes count at the last look.
type watchEntry struct {
	nc   net.Conn
	last uint64
}

// add watches the deadlines d of inner connection nc, starting the
// goroutine if it is not running.
func (w *WriteWatch) add(d *deadlines, nc net.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns == nil {
		w.conns = make(map[*deadlines]watchEntry)
	}
	d.watch = w
	w.conns[d] = watchEntry{nc: nc, last: d.writes.Load()}
	if w.cur.Load() == nil {
		r := &watchRun{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		w.cur.Store(r)
		go w.run(r)
	}
}

// remove stops watching d; when d was the last, it ends the goroutine and
// waits for it.
func (w *WriteWatch) remove(d *deadlines) {
	w.mu.Lock()
	delete(w.conns, d)
	var r *watchRun
	if len(w.conns) == 0 {
		r = w.cur.Swap(nil)
	}
	w.mu.Unlock()
	if r != nil {
		close(r.stop)
		<-r.done
	}
}

// unpark wakes the goroutine if it is parked. A write calls it after it has
// counted itself in writes.
func (w *WriteWatch) unpark() {
	if r := w.cur.Load(); r != nil && r.parked.Load() && r.parked.CompareAndSwap(true, false) {
		select {
		case r.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// run looks at every watched Conn each watchTick, parking while nothing is
// written, until r.stop is closed.
func (w *WriteWatch) run(r *watchRun) {
	defer close(r.done)
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
		if w.look() {
			continue
		}
		r.parked.Store(true)
		if w.look() { // a write began as it parked: tick on
			if !r.parked.CompareAndSwap(true, false) {
				select { // that write's wake-up
				case <-r.wake:
				case <-r.stop:
					return
				}
			}
			continue
		}
		t.Stop()
		select {
		case <-r.wake:
			t.Reset(watchTick)
		case <-r.stop:
			return
		}
	}
}

// look is one look at every watched Conn (deadlines.sharpenWrite). It
// reports whether any wrote since the last look or is writing.
func (w *WriteWatch) look() (moved bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d, e := range w.conns {
		n := d.sharpenWrite(e.nc, e.last)
		if n != e.last || n&1 == 1 {
			moved = true
		}
		e.last = n
		w.conns[d] = e
	}
	return moved
}
