package entraredistest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/azevents"
)

// MaintenanceEvent returns an event of type typ about this server's node,
// as Azure Cache for Redis would publish it: IPAddress 127.0.0.1, SSLPort
// (or NonSSLPort when the server is plaintext) the endpoint's port,
// IsReplica false, StartTime start truncated to the second (Azure's
// precision).
func (s *Server) MaintenanceEvent(typ azevents.Type, start time.Time) azevents.Event {
	ev := azevents.Event{Type: typ, StartTime: start.UTC().Truncate(time.Second), IPAddress: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	if s.certs == nil {
		ev.NonSSLPort = s.Port()
	} else {
		ev.SSLPort = s.Port()
	}
	return ev
}

// PublishMaintenance publishes ev on azevents.Channel, as Azure does, and
// returns how many subscribed connections received it: 0 means the event
// is lost (pub/sub keeps nothing for a subscriber that comes back later).
func (s *Server) PublishMaintenance(ctx context.Context, ev azevents.Event) (receivers int, err error) {
	msg, err := ev.MarshalText()
	if err != nil {
		return 0, fmt.Errorf("entraredistest: publish maintenance event: %w", err)
	}
	return s.PublishMaintenanceMessage(ctx, string(msg))
}

// PublishMaintenanceMessage publishes msg as it is on azevents.Channel (a
// malformed notification, say, to test how it is handled) and returns how
// many subscribed connections received it.
func (s *Server) PublishMaintenanceMessage(ctx context.Context, msg string) (receivers int, err error) {
	var n int64
	err = s.withBackend(ctx, func(c *redis.Client) error {
		var err error
		n, err = c.Publish(ctx, azevents.Channel, msg).Result()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("entraredistest: publish maintenance event: %w", err)
	}
	return int(n), nil
}

// MaintenanceSubscribers returns how many connections are subscribed to
// azevents.Channel now.
func (s *Server) MaintenanceSubscribers(ctx context.Context) (int, error) {
	var n int64
	err := s.withBackend(ctx, func(c *redis.Client) error {
		m, err := c.PubSubNumSub(ctx, azevents.Channel).Result()
		n = m[azevents.Channel]
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("entraredistest: count maintenance subscribers: %w", err)
	}
	return int(n), nil
}

// WaitMaintenanceSubscribers waits until at least n connections are
// subscribed to azevents.Channel, polling every 10 ms, bounded by ctx.
func (s *Server) WaitMaintenanceSubscribers(ctx context.Context, n int) error {
	return s.waitSubscribers(ctx, "at least", n, func(got int) bool { return got >= n })
}

// WaitMaintenanceSubscribersExactly waits until exactly n connections are
// subscribed to azevents.Channel (n = 0: until every subscription is gone),
// polling every 10 ms, bounded by ctx. Use it where a subscriber that is
// being replaced may still hold its subscription for a moment.
func (s *Server) WaitMaintenanceSubscribersExactly(ctx context.Context, n int) error {
	return s.waitSubscribers(ctx, "exactly", n, func(got int) bool { return got == n })
}

// waitSubscribers polls until done(count); when ctx ends first, the error
// gives the last count read, or the last error if no count was read.
func (s *Server) waitSubscribers(ctx context.Context, how string, n int, done func(int) bool) error {
	var last error
	for {
		got, err := s.MaintenanceSubscribers(ctx)
		if err == nil && done(got) {
			return nil
		}
		if err == nil {
			last = fmt.Errorf("%d subscribed", got)
		} else if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("entraredistest: waiting for %s %d maintenance subscribers: %w (%w)", how, n, ctx.Err(), last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// FailoverOptions configures Server.Failover.
type FailoverOptions struct {
	// Down is how long new connections are refused after the existing ones
	// are closed (the node is going away, the replica not yet promoted).
	// Default 0: new connections are accepted at once.
	Down time.Duration
	// Subscribers: before publishing NodeMaintenanceFailoverComplete, wait
	// until this many connections are subscribed to azevents.Channel again
	// (bounded by the context). Default 0: publish right after Down.
	Subscribers int
}

// FailoverResult is what Server.Failover did.
type FailoverResult struct {
	Closed    int            // client connections closed
	Event     azevents.Event // the NodeMaintenanceFailoverComplete event published
	Receivers int            // connections that received it (0: lost)
}

// Failover does what an Azure node does after NodeMaintenanceStart: it
// closes every client connection (subscribed ones included), refuses new
// ones for o.Down, waits for o.Subscribers subscribers to be back, then
// publishes NodeMaintenanceFailoverComplete (MaintenanceEvent, StartTime
// now). Publish NodeMaintenanceStart before it, and NodeMaintenanceEnded
// after it, with PublishMaintenance.
func (s *Server) Failover(ctx context.Context, o FailoverOptions) (FailoverResult, error) {
	var res FailoverResult
	if o.Down > 0 {
		s.ep.RefuseConnections(o.Down)
	}
	res.Closed = s.ep.DropConnections()
	if o.Down > 0 {
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("entraredistest: failover: %w", ctx.Err())
		case <-time.After(o.Down):
		}
	}
	if o.Subscribers > 0 {
		if err := s.WaitMaintenanceSubscribers(ctx, o.Subscribers); err != nil {
			return res, err
		}
	}
	res.Event = s.MaintenanceEvent(azevents.FailoverComplete, time.Now())
	n, err := s.PublishMaintenance(ctx, res.Event)
	res.Receivers = n
	return res, err
}

// withBackend runs f with a short-lived client of the backend itself
// (owner role, plaintext, no token check).
func (s *Server) withBackend(ctx context.Context, f func(*redis.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	opts := s.BackendOptions()
	opts.PoolSize, opts.MaxRetries = 1, -1
	c := redis.NewClient(opts)
	return errors.Join(f(c), c.Close())
}
