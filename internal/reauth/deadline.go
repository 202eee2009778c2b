package reauth

import (
	"cmp"
	"errors"
	"math"
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
// go-redis sets a deadline twice per command (three times after the pool's
// health check), each time a little later than the last (now plus its
// timeout), and each call to the inner connection resets a runtime timer:
// about as much CPU as the wrapper's own work on a command. So:
//
//   - The read deadline is set lazily. The inner connection's read deadline
//     (armedR) may be earlier than the client's, never later and never
//     absent while the client has one: a client deadline at or after the
//     armed one, by at most half the lead the armed one was set with, or no
//     deadline at all, leaves the inner connection as it is. Should the armed
//     deadline fire before the client's, the wrapper's Read sees the timeout
//     (earlyRead), puts the client's deadline on and reads again, so the
//     client sees a timeout only at its own deadline. crypto/tls keeps a
//     connection usable after a read timeout, so this is safe under TLS. With
//     go-redis' timeouts the inner read deadline changes about once per half
//     a timeout instead of once per command.
//   - The write deadline is applied when it matters, when the inner
//     connection is written, and lazily too: a client's call records it; the
//     next write of the client (beginWrite) arms it unless the armed one
//     covers it (writeCovered); a call while a write of the client runs
//     applies it at once and exactly, as a socket would. crypto/tls breaks a
//     connection for good on a write timeout, so the armed write deadline is
//     never earlier than the client's; it is later by at most slackW, which
//     is 1/64 of the lead the client's deadline had when it was armed
//     (maxWriteSlack at most: 47 ms on go-redis' 3 s timeout). With
//     go-redis' "now plus a timeout" the inner write deadline then changes
//     about once per slack instead of once per command, and a cleared
//     deadline (the pool's health check) costs nothing. Lateness shows only
//     when a write blocks (the server stops reading), and a WriteWatch, which
//     the Conns of one client share, takes it away: a write of the client it
//     finds still running one tick after it last looked gets the client's
//     deadline exactly. So a write blocked past its deadline times out at
//     the client's deadline when that lies two watch ticks or more (100 ms)
//     after the write began, and at most slackW later otherwise.
//
// A client's call that leaves the inner connection alone takes no lock: it
// records the deadline and checks that state (which counts every change)
// did not move meanwhile. If it moved, an own I/O began or ended under it,
// and it applies under mu what is due then. Every change of an inner
// deadline for the client is made under mu, so armedR, armedW and the inner
// connection change together. beginOwn publishes the change before it sets
// its own deadline, endOwn after it has put the client's back, so a client
// call that sees state unchanged was not overtaken by either.
type deadlines struct {
	// state is ownRead|ownWrite of the own I/O running, plus stateStep times
	// the number of changes; it is stored under mu and loaded without it.
	state atomic.Uint64
	r, w  atomic.Int64 // the client's deadlines, as Unix nanoseconds (see unixNano; 0: none); stored without a lock

	// armedR is the read deadline on the inner connection while no own read
	// runs (Unix nanoseconds; 0: none), leadR how far ahead of the moment it
	// was applied it lay. Both are stored under mu, loaded without it.
	armedR, leadR atomic.Int64
	// armedW is the write deadline on the inner connection while no own write
	// runs (Unix nanoseconds; 0: none; unknownNs: not known, so the next
	// write applies the client's), slackW how much later than the client's
	// deadline it lies (0: exact). Both are stored under mu, loaded without it.
	armedW, slackW atomic.Int64
	// writes counts the client's writes on the inner connection twice, once
	// at beginWrite and once at endWrite, so it is odd while one runs. The
	// Conn calls both under its wmu, so never while an own write runs.
	// Stored by the writer, loaded without a lock (set, a WriteWatch).
	writes atomic.Uint64
	watch  *WriteWatch // the watch of the Conn's blocked writes, if any; set before the first write

	mu         sync.Mutex // guards the fields marked mu, and serialises own changes of the inner deadlines
	ownR, ownW time.Time  // mu: the deadlines of the own read and write that run
}

// unknownNs is armedW when the inner write deadline is not known: at the
// start, and after a failed change.
const unknownNs = math.MinInt64

// maxWriteSlack bounds how much later than the client's the armed write
// deadline may be (see deadlines).
const maxWriteSlack = 50 * time.Millisecond

// writeSlack is how much later than a client's write deadline lead ahead of
// now the armed one may be: 1/64 of the lead, at most maxWriteSlack.
func writeSlack(lead time.Duration) time.Duration {
	return max(0, min(lead/64, maxWriteSlack))
}

const (
	ownRead   = uint64(dlRead)
	ownWrite  = uint64(dlWrite)
	ownMask   = ownRead | ownWrite
	stateStep = ownMask + 1
)

// set records the client's deadline t for k and applies it to nc: the read
// deadline unless the armed one covers it (readCovered), the write deadline
// only while a write of the client runs (else beginWrite arms it).
func (d *deadlines) set(nc net.Conn, k dlKind, t time.Time) error {
	ns := unixNano(t)
	if k&dlRead != 0 {
		d.r.Store(ns)
	}
	if k&dlWrite != 0 {
		d.w.Store(ns) // before writing is loaded: see beginWrite
	}
	if s := d.state.Load(); s&ownMask == 0 {
		rest := k
		if k&dlRead != 0 && d.readCovered(ns) {
			rest &^= dlRead
		}
		if k&dlWrite != 0 && !d.writing() {
			rest &^= dlWrite
		}
		if rest == 0 && d.state.Load() == s {
			return nil
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(nc, k, t)
}

// beginWrite is called before each write of the client to nc, under the
// Conn's wmu: it arms the client's write deadline unless the armed one
// covers it. With set, it is the two halves of a Dekker handshake: set
// stores the deadline, then loads writes; beginWrite stores writes, then
// loads the deadline. So a deadline set while a write starts is applied by
// one of them or both, and under mu, where the one recorded last is applied.
func (d *deadlines) beginWrite(nc net.Conn) error {
	d.writes.Add(1)
	if d.watch != nil {
		d.watch.unpark()
	}
	if d.writeCovered(d.w.Load()) {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyClientLocked(nc, dlWrite, time.Time{}, true)
}

// endWrite is called when the write that beginWrite began has returned.
func (d *deadlines) endWrite() { d.writes.Add(1) }

// writing reports whether a write of the client runs.
func (d *deadlines) writing() bool { return d.writes.Load()&1 == 1 }

// writeCovered reports whether the armed write deadline may stay for a
// client write deadline of ns: none for none; else not earlier than ns and
// later by no more than the slack it was armed with (slackW is stored before
// armedW, so a slack read with an armed deadline is that deadline's or,
// while it changes, a newer one's: at most maxWriteSlack either way).
func (d *deadlines) writeCovered(ns int64) bool {
	a := d.armedW.Load()
	if ns == 0 || a == 0 || a == unknownNs {
		return ns == a
	}
	return a >= ns && ns >= a-d.slackW.Load() // not a-ns: that overflows for a deadline centuries past
}

// sharpenWrite is a WriteWatch's look at the connection: if the client's
// write that ran at its last look (writes then: last) still runs, it gets
// the client's deadline exactly. It returns writes now, for the next look.
func (d *deadlines) sharpenWrite(nc net.Conn, last uint64) uint64 {
	n := d.writes.Load()
	if n&1 == 0 || n != last || d.slackW.Load() == 0 {
		return n
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writes.Load() == n && d.state.Load()&ownWrite == 0 && d.slackW.Load() != 0 {
		d.applyClientLocked(nc, dlWrite, time.Time{}, false)
	}
	return n
}

// readCovered reports whether the armed read deadline may stay for a client
// read deadline of ns: it fires no later than ns (or ns is none), and is not
// so far before it that it would fire while the client's command still runs
// (ns by more than half the armed lead, which is the client's timeout when
// the client sets now plus a timeout each time).
func (d *deadlines) readCovered(ns int64) bool {
	a := d.armedR.Load()
	switch {
	case a == 0:
		return false
	case ns == 0:
		return true
	}
	return a <= ns && ns-a <= d.leadR.Load()/2
}

// earlyRead reports whether err, from a read of the client, is the armed read
// deadline firing before the client's; it then applies the client's deadline,
// so that the read can be retried. It is called with no own read running.
func (d *deadlines) earlyRead(nc net.Conn, err error) bool {
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	if r := d.r.Load(); r != 0 && time.Now().UnixNano() >= r {
		return false // the client's own deadline
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state.Load()&ownRead != 0 {
		return false
	}
	return d.applyLocked(nc, dlRead, time.Time{}) == nil
}

// applyLocked applies to nc, for each direction in k, the own deadline when
// own I/O runs in it and the client's otherwise. t is the client's deadline
// of the call being made, if any: used where it is still the one recorded,
// for its monotonic clock reading.
func (d *deadlines) applyLocked(nc net.Conn, k dlKind, t time.Time) error {
	own := dlKind(d.state.Load() & ownMask)
	var err error
	for _, dir := range [...]dlKind{dlRead, dlWrite} {
		if k&dir == 0 {
			continue
		}
		switch {
		case own&dir != 0:
			err = cmp.Or(err, apply(nc, dir, d.ownDeadline(dir)))
		case dir == dlWrite && !d.writing():
			// The next write arms it (beginWrite).
		default:
			// A write runs: its deadline changes now, exactly.
			err = cmp.Or(err, d.applyClientLocked(nc, dir, t, false))
		}
	}
	return err
}

// applyClientLocked applies the client's recorded deadline for dir (t, if
// that is the one recorded) and arms it (armedR or armedW); a write deadline
// with slack true is armed up to writeSlack later. d.mu is held.
func (d *deadlines) applyClientLocked(nc net.Conn, dir dlKind, t time.Time, slack bool) error {
	if dir == dlWrite {
		// Unknown while it changes: a write that begins meanwhile finds it
		// not covering (beginWrite) and waits for mu, then applies the
		// deadline recorded last. A write that began before found the old
		// armed deadline covering its own, which was recorded before the
		// load below: what is applied here is that one or a later one,
		// never an earlier one.
		d.armedW.Store(unknownNs)
	}
	ns := d.clientNs(dir)
	if unixNano(t) != ns {
		t = fromUnixNano(ns)
	}
	var late time.Duration
	if dir == dlWrite && slack && ns != 0 {
		late = writeSlack(time.Until(t))
		t = t.Add(late)
		ns = unixNano(t)
	}
	err := apply(nc, dir, t)
	if dir == dlWrite {
		if err != nil {
			ns = unknownNs
		}
		d.slackW.Store(int64(late)) // before armedW: see writeCovered
		d.armedW.Store(ns)
	}
	if dir == dlRead {
		lead := int64(0)
		if ns != 0 && err == nil {
			lead = ns - time.Now().UnixNano()
		}
		if err != nil {
			ns = 0 // unknown: the next call applies its deadline
		}
		d.armedR.Store(ns)
		d.leadR.Store(lead)
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

// cutOwnRead cuts the own read that runs, if one does, short: its deadline
// becomes a moment long past until endOwn, so that it returns at once (a
// read already under way returns what it has, or a timeout). It is how the
// client's Read takes the read side over from the wrapper's (see
// Conn.drain).
func (d *deadlines) cutOwnRead(nc net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state.Load()&ownRead == 0 {
		return
	}
	d.ownR = time.Unix(1, 0)
	apply(nc, dlRead, d.ownR)
}

// endOwn ends the own I/O in direction k and puts the client's deadline back.
func (d *deadlines) endOwn(nc net.Conn, k dlKind) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state.Load()
	err := d.applyClientLocked(nc, k, time.Time{}, true)
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

// unixNano is t as stored in deadlines.r, .w and the armed fields: Unix
// nanoseconds (0 for no deadline), saturated at the ends of their range (a
// deadline after 2262 is kept in 2262, one before 1678 in 1678), so that
// none wraps round into the past or becomes "none" or "unknown". The
// monotonic reading is not kept: go-redis' deadlines have none (it builds
// them from its cached clock with time.Unix), and t.Sub to keep one would
// cost more than the rest of a deadline call.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	switch s := t.Unix(); {
	case s >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case s <= math.MinInt64/int64(time.Second):
		return unknownNs + 1
	}
	if ns := t.UnixNano(); ns != 0 {
		return ns
	}
	return 1 // the epoch itself: long past, as it was
}

// fromUnixNano is the inverse of unixNano (in wall-clock time, as go-redis'
// deadlines are).
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
