package reauth

import (
	"cmp"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dlKind names the deadlines a call sets: the read one, the write one or both.
type dlKind uint8

const (
	dlRead dlKind = 1 << iota
	dlWrite
	dlBoth = dlRead | dlWrite
)

// deadlines applies the client's read and write deadlines to the inner
// connection, except for a direction where the wrapper's own I/O (the AUTH of
// an idle connection, the read of its reply) runs under a deadline of its
// own; when that I/O ends, the client's deadline is put back.
//
// go-redis sets a deadline three times per command, so the client's calls
// take no lock while no own I/O runs: they record the deadline, apply it, and
// check that state (which counts every change) did not move meanwhile. If it
// moved, an own I/O began or ended under them, and they apply under mu what
// is due then. beginOwn publishes the change before it sets its own deadline,
// endOwn after it has put the client's back, so a client call that sees state
// unchanged around its own application was not overtaken by either.
type deadlines struct {
	// state is ownRead|ownWrite of the own I/O running, plus stateStep times
	// the number of changes; it is stored under mu and loaded without it.
	state atomic.Uint64
	r, w  atomic.Int64 // the client's deadlines, as Unix nanoseconds (0: none); stored without a lock

	mu         sync.Mutex // guards the fields marked mu, and serialises own changes of the inner deadlines
	ownR, ownW time.Time  // mu: the deadlines of the own read and write that run
}

const (
	ownRead   = uint64(dlRead)
	ownWrite  = uint64(dlWrite)
	ownMask   = ownRead | ownWrite
	stateStep = ownMask + 1
)

// set records the client's deadline t for k and applies it to nc.
func (d *deadlines) set(nc net.Conn, k dlKind, t time.Time) error {
	ns := unixNano(t)
	if k&dlRead != 0 {
		d.r.Store(ns)
	}
	if k&dlWrite != 0 {
		d.w.Store(ns)
	}
	if s := d.state.Load(); s&ownMask == 0 {
		err := apply(nc, k, t)
		if d.state.Load() == s {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(nc, k)
}

// applyLocked applies to nc, for each direction in k, the own deadline when
// own I/O runs in it and the client's otherwise.
func (d *deadlines) applyLocked(nc net.Conn, k dlKind) error {
	own := dlKind(d.state.Load() & ownMask)
	var err error
	for _, dir := range [...]dlKind{dlRead, dlWrite} {
		if k&dir == 0 {
			continue
		}
		t := d.ownDeadline(dir)
		if own&dir == 0 {
			t = fromUnixNano(d.clientNs(dir))
		}
		err = cmp.Or(err, apply(nc, dir, t))
	}
	return err
}

// beginOwn starts own I/O in direction k (dlRead or dlWrite) under deadline t.
func (d *deadlines) beginOwn(nc net.Conn, k dlKind, t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k == dlRead {
		d.ownR = t
	} else {
		d.ownW = t
	}
	s := d.state.Load()
	d.state.Store((s&^ownMask + stateStep) | s&ownMask | uint64(k))
	return apply(nc, k, t)
}

// endOwn ends the own I/O in direction k and puts the client's deadline back.
func (d *deadlines) endOwn(nc net.Conn, k dlKind) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state.Load()
	err := apply(nc, k, fromUnixNano(d.clientNs(k)))
	d.state.Store((s&^ownMask + stateStep) | s&ownMask&^uint64(k))
	return err
}

// ownDeadline is the deadline of the own I/O in direction k. d.mu is held.
func (d *deadlines) ownDeadline(k dlKind) time.Time {
	if k == dlRead {
		return d.ownR
	}
	return d.ownW
}

// clientNs is the client's recorded deadline in direction k.
func (d *deadlines) clientNs(k dlKind) int64 {
	if k == dlRead {
		return d.r.Load()
	}
	return d.w.Load()
}

// apply sets deadline t for k on nc.
func apply(nc net.Conn, k dlKind, t time.Time) error {
	switch k {
	case dlRead:
		return nc.SetReadDeadline(t)
	case dlWrite:
		return nc.SetWriteDeadline(t)
	}
	return nc.SetDeadline(t)
}

// unixNano is t as stored in deadlines.r and .w: 0 for no deadline.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if ns := t.UnixNano(); ns != 0 {
		return ns
	}
	return 1 // the epoch itself: long past, as it was
}

// fromUnixNano is the inverse of unixNano (the monotonic reading is lost: a
// deadline put back after own I/O follows the wall clock).
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
