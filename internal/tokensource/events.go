package tokensource

import (
	"reflect"
	"runtime"
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
	running bool       // a callback is running (see close)

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

			invoke(f)

			e.mu.Lock()
			e.running = false
			e.mu.Unlock()
		}
	}
}

// invoke runs one callback. It is the only caller of callbacks, on the event
// goroutine, and its frame is how close recognises a call from a callback.
//
//go:noinline
func invoke(f func()) { f() }

// invokeEntry is the entry address of invoke's code.
var invokeEntry = runtime.FuncForPC(reflect.ValueOf(invoke).Pointer()).Entry()

// close stops the callbacks: none starts after close has begun, and queued
// ones are dropped. Called from anywhere but a callback, it waits for the
// event goroutine to return, and so for a running callback. Called from a
// callback (which Close may be), of this Source or of another one, it does
// not wait for a callback of this Source that is running:
//
//   - the callback calling close may be that running callback, which would
//     wait for itself;
//   - waiting from inside a callback for another Source's callback can
//     deadlock: two callbacks that close each other's Sources at the same
//     moment would each wait for the other (TestCallbacksCloseEachOther).
//
// So the rule is the one of context.AfterFunc's stop function, which never
// waits for the function it stops: from inside a callback, close only
// guarantees that no callback of this Source starts after it.
//
// How close recognises a call from a callback, without the goroutine's id:
// only event goroutines run callbacks, always through invoke, so a call from
// a callback is one whose own stack holds invoke's frame, which
// runtime.Callers shows (program counters only: no goroutine id, no
// parsing). close holds no lock while it waits, and the event loop takes
// e.mu only between callbacks.
func (e *events) close() {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	running := e.running
	e.mu.Unlock()
	if first {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	if running && insideCallback() {
		return
	}
	<-e.done
}

// insideCallback reports whether invoke's frame is on the caller's stack:
// whether it runs inside a callback of some Source.
func insideCallback() bool {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs) // from insideCallback's caller
	for n == len(pcs) {          // a deep stack: take all of it
		pcs = make([]uintptr, 2*len(pcs))
		n = runtime.Callers(2, pcs)
	}
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Entry == invokeEntry {
			return true
		}
		if !more {
			return false
		}
	}
}
