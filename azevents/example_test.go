package azevents_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/entraredis/entraredis/azevents"
)

// maintenanceGate is what a service can build on the events: hold writes
// while its primary fails over (from NodeMaintenanceStart to
// NodeMaintenanceFailoverComplete, or at most a deadline), and send reads to
// the primary while a replica is under maintenance (until
// NodeMaintenanceEnded).
type maintenanceGate struct {
	mu              sync.Mutex // guards the fields below
	holdWritesUntil time.Time  // zero: writes flow
	replicaDown     bool       // a replica is under maintenance: read from the primary
}

// OnEvent is the callback to give the client (entraredis.Options.OnMaintenance).
func (g *maintenanceGate) OnEvent(ev azevents.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch ev.Type {
	case azevents.Start:
		if ev.IsReplica {
			g.replicaDown = true
		} else {
			// The primary closes its connections now; a failover takes
			// seconds. Bound the hold so that a lost event cannot stop
			// writes for good.
			g.holdWritesUntil = time.Now().Add(30 * time.Second)
		}
	case azevents.FailoverComplete:
		g.holdWritesUntil = time.Time{}
	case azevents.Ended:
		g.holdWritesUntil = time.Time{}
		g.replicaDown = false
	}
}

// WritesHeld reports whether writes should wait (or be queued) now.
func (g *maintenanceGate) WritesHeld(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Before(g.holdWritesUntil)
}

// ReadFromReplica reports whether reads may go to a replica now.
func (g *maintenanceGate) ReadFromReplica() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.replicaDown
}

// Example shows what a service can do with maintenance events: hold writes
// during a failover and keep reads away from a replica under maintenance.
// The messages are those Azure publishes on AzureRedisEvents; an
// entraredis client parses them and calls Options.OnMaintenance.
func Example() {
	var g maintenanceGate
	for _, msg := range []string{
		"NotificationType|NodeMaintenanceStarting|StartTimeInUTC|2026-12-01T22:00:20|IsReplica|False|IPAddress|10.0.0.4|SSLPort|15000|NonSSLPort|13000",
		"NotificationType|NodeMaintenanceStart|StartTimeInUTC|2026-12-01T22:00:20|IsReplica|False|IPAddress|10.0.0.4|SSLPort|15000|NonSSLPort|13000",
		"NotificationType|NodeMaintenanceFailoverComplete|StartTimeInUTC|2026-12-01T22:00:24|IsReplica|False|IPAddress|10.0.0.4|SSLPort|15000|NonSSLPort|13000",
		"NotificationType|NodeMaintenanceStart|StartTimeInUTC|2026-12-01T22:05:00|IsReplica|True|IPAddress|10.0.0.5|SSLPort|15001|NonSSLPort|13001",
		"NotificationType|NodeMaintenanceEnded|StartTimeInUTC|2026-12-01T22:07:00|IsReplica|True|IPAddress|10.0.0.5|SSLPort|15001|NonSSLPort|13001",
	} {
		ev, err := azevents.Parse(msg)
		if err != nil {
			fmt.Println(err)
			continue
		}
		g.OnEvent(ev)
		fmt.Printf("%-31s replica=%-5v writes held=%-5v reads from replica=%v\n", ev.Type, ev.IsReplica, g.WritesHeld(time.Now()), g.ReadFromReplica())
	}
	// Output:
	// NodeMaintenanceStarting         replica=false writes held=false reads from replica=true
	// NodeMaintenanceStart            replica=false writes held=true  reads from replica=true
	// NodeMaintenanceFailoverComplete replica=false writes held=false reads from replica=true
	// NodeMaintenanceStart            replica=true  writes held=false reads from replica=false
	// NodeMaintenanceEnded            replica=true  writes held=false reads from replica=true
}

// ExampleParse reads one notification.
func ExampleParse() {
	ev, err := azevents.Parse("NotificationType|NodeMaintenanceScheduled|StartTimeInUTC|2026-12-01T22:15:00|IsReplica|False|IPAddress|10.0.0.4|SSLPort|15000|NonSSLPort|13000")
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Type, ev.StartTime, ev.IsReplica, ev.IPAddress, ev.SSLPort)
	_, err = azevents.Parse("NotificationType|NodeMaintenanceStart|SSLPort|port")
	fmt.Println(err)
	// Output:
	// NodeMaintenanceScheduled 2026-12-01 22:15:00 +0000 UTC false 10.0.0.4 15000
	// entraredis: malformed maintenance event: field "SSLPort": not a port number (0 to 65535)
}
