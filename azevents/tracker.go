package azevents

import (
	"sync"
	"time"
)

// Status is what a Tracker has seen.
type Status struct {
	// Last is the last well-formed event received; its Type is "" when none was.
	Last Event
	// LastAt is when Last was received; zero when none was.
	LastAt time.Time
	// Next is the latest announcement (Scheduled, Starting or Start) whose
	// node has not reported Ended (or ScaleComplete) since: the maintenance
	// to come, or in progress when its StartTime has passed. Its Type is ""
	// when none is pending.
	Next Event
	// Counts holds the well-formed events received per type (unknown types
	// included, as sent). Nil when none was received.
	Counts map[Type]int64
	// Malformed counts the messages that Parse refused.
	Malformed int64
	// LastMalformed is Parse's error for the last refused message.
	LastMalformed error
	// Interruptions counts the times the subscription was lost and made
	// again: events published in such a gap are lost (pub/sub keeps
	// nothing), so a non-zero count says some may be missing.
	Interruptions int64
}

// Total returns the number of well-formed events received.
func (s Status) Total() int64 {
	var n int64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Tracker folds the events of one subscription into a Status. Its methods
// are safe for concurrent use; the zero value is ready.
type Tracker struct {
	mu sync.Mutex // guards st
	st Status
}

// Observe parses msg, received at, and records the result: it returns the
// event, or Parse's error (then counted as malformed).
func (t *Tracker) Observe(msg string, at time.Time) (Event, error) {
	ev, err := Parse(msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.st.Malformed++
		t.st.LastMalformed = err
		return Event{}, err
	}
	t.record(ev, at)
	return ev, nil
}

// record updates the status with a well-formed event. t.mu must be held.
func (t *Tracker) record(ev Event, at time.Time) {
	if t.st.Counts == nil {
		t.st.Counts = make(map[Type]int64)
	}
	t.st.Counts[ev.Type]++
	t.st.Last, t.st.LastAt = ev, at
	switch {
	case ev.Type.Announces():
		t.st.Next = ev
	case ev.Type == Ended || ev.Type == ScaleComplete:
		if t.st.Next.Type != "" && sameNode(t.st.Next, ev) {
			t.st.Next = Event{}
		}
	}
}

// sameNode reports whether two events are about the same node: same
// address and ports, or either has no address (a cache-wide event).
func sameNode(a, b Event) bool {
	if !a.IPAddress.IsValid() || !b.IPAddress.IsValid() {
		return true
	}
	return a.IPAddress == b.IPAddress && a.SSLPort == b.SSLPort && a.NonSSLPort == b.NonSSLPort
}

// Interrupted records that the subscription was lost and made again.
func (t *Tracker) Interrupted() {
	t.mu.Lock()
	t.st.Interruptions++
	t.mu.Unlock()
}

// Status returns a snapshot (Counts is a copy).
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.st
	if st.Counts != nil {
		st.Counts = make(map[Type]int64, len(t.st.Counts))
		for k, v := range t.st.Counts {
			st.Counts[k] = v
		}
	}
	st.Last.Extra = append([]Field(nil), st.Last.Extra...)
	st.Next.Extra = append([]Field(nil), st.Next.Extra...)
	return st
}
