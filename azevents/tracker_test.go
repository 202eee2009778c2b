package azevents

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	var tr Tracker
	if st := tr.Status(); st.Last.Type != "" || st.Next.Type != "" || st.Total() != 0 {
		t.Fatalf("zero Tracker: %+v", st)
	}
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	msg := func(typ Type, ip string) string {
		return strings.NewReplacer("NodeMaintenanceStarting", string(typ), "52.158.249.185", ip).Replace(docStarting)
	}
	steps := []struct {
		msg      string
		next     Type // expected Status().Next.Type after the step
		malform  bool
		lastType Type
	}{
		{msg(Scheduled, "10.0.0.1"), Scheduled, false, Scheduled},
		{msg(Starting, "10.0.0.1"), Starting, false, Starting},
		{"garbage", Starting, true, Starting},
		{msg(Start, "10.0.0.1"), Start, false, Start},
		{msg(FailoverComplete, "10.0.0.1"), Start, false, FailoverComplete},
		{msg(Ended, "10.0.0.2"), Start, false, Ended}, // another node: still pending
		{msg(Ended, "10.0.0.1"), "", false, Ended},
		{msg("NodeSomethingElse", "10.0.0.1"), "", false, "NodeSomethingElse"},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Second)
		ev, err := tr.Observe(s.msg, at)
		if (err != nil) != s.malform {
			t.Fatalf("step %d: Observe error %v", i, err)
		}
		st := tr.Status()
		if st.Next.Type != s.next || st.Last.Type != s.lastType {
			t.Fatalf("step %d: Next %q Last %q, want %q %q", i, st.Next.Type, st.Last.Type, s.next, s.lastType)
		}
		if !s.malform && (ev.Type != s.lastType || !st.LastAt.Equal(at)) {
			t.Fatalf("step %d: event %q at %v", i, ev.Type, st.LastAt)
		}
	}
	tr.Interrupted()
	st := tr.Status()
	want := map[Type]int64{Scheduled: 1, Starting: 1, Start: 1, FailoverComplete: 1, Ended: 2, "NodeSomethingElse": 1}
	for typ, n := range want {
		if st.Counts[typ] != n {
			t.Errorf("Counts[%s] = %d, want %d", typ, st.Counts[typ], n)
		}
	}
	if st.Total() != 7 || st.Malformed != 1 || !errors.Is(st.LastMalformed, ErrMalformed) || st.Interruptions != 1 {
		t.Errorf("status %+v", st)
	}
	// The snapshot is a copy.
	st.Counts[Start] = 100
	if tr.Status().Counts[Start] != 1 {
		t.Error("Status shares its Counts map")
	}
}
