package tokensource

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"

	"github.com/entraredis/entraredis/entratoken"
)

// maxQueuedEvents bounds the events waiting for a slow callback; beyond it the
// oldest is dropped (see Options).
const maxQueuedEvents = 256

// events runs the callbacks of one Source on one goroutine, in order. Posting
// never blocks: the refresher and the client layers' hooks only queue.
type events struct {
	opts *entratoken.Options // callbacks and logger; never changes

	mu      sync.Mutex // guards the fields below
	queue   []func()   // callbacks not run yet, oldest first
	dropped int64      // events dropped because the queue was full
	closed  bool       // no callback starts any more
	running bool       // a callback is running
	goid    uint64     // the event goroutine's id, to recognise Close from a callback

	wake chan struct{} // capacity 1: something was queued, or closed
	done chan struct{} // closed when the event goroutine has returned
}

func newEvents(o *entratoken.Options) *events {
	e := &events{opts: o, wake: make(chan struct{}, 1), done: make(chan struct{})}
	started := make(chan struct{})
	go e.loop(started)
	<-started
	return e
}

// post queues f, dropping the oldest queued callback when the queue is full.
// After close it does nothing.
func (e *events) post(f func()) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	var drop bool
	if len(e.queue) == maxQueuedEvents {
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.dropped++
		drop = e.dropped&(e.dropped-1) == 0 // logged at the 1st, 2nd, 4th, 8th... drop
	}
	e.queue = append(e.queue, f)
	dropped := e.dropped
	e.mu.Unlock()
	if drop {
		e.opts.Logger.Warn("entraredis: a callback is too slow: the oldest queued event was dropped", "dropped", dropped, "queue", maxQueuedEvents)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// droppedCount returns how many events were dropped.
func (e *events) droppedCount() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

func (e *events) loop(started chan<- struct{}) {
	defer close(e.done)
	e.mu.Lock()
	e.goid = goroutineID()
	e.mu.Unlock()
	close(started)
	for range e.wake {
		for {
			e.mu.Lock()
			if e.closed {
				e.queue = nil
				e.mu.Unlock()
				return
			}
			if len(e.queue) == 0 {
				e.mu.Unlock()
				break
			}
			f := e.queue[0]
			e.queue[0] = nil
			e.queue = e.queue[1:]
			e.running = true
			e.mu.Unlock()

			f()

			e.mu.Lock()
			e.running = false
			e.mu.Unlock()
		}
	}
}

// close stops the callbacks: none starts after close has begun, and queued
// ones are dropped. It waits for the event goroutine to return, and so for a
// running callback, unless it is called from a callback (which Close may be).
func (e *events) close() {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	fromCallback := e.running && e.goid == goroutineID()
	e.mu.Unlock()
	if first {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	if !fromCallback {
		<-e.done
	}
}

// goroutineID returns the calling goroutine's id, read from its stack
// header ("goroutine 42 [running]:"). Only close uses it, to return at once
// when a callback calls Close instead of waiting for itself.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
