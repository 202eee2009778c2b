package entraredis

import (
	"cmp"
	"context"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/internal/azsub"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// MaintenanceMode says whether a Client subscribes to Azure Cache for
// Redis' maintenance notifications (Options.MaintenanceEvents).
type MaintenanceMode = azevents.Mode

// The modes of Options.MaintenanceEvents.
const (
	MaintenanceAuto = azevents.ModeAuto // on for *.redis.cache.windows.net (and the sovereign clouds' Azure Cache for Redis), off elsewhere
	MaintenanceOn   = azevents.ModeOn   // always
	MaintenanceOff  = azevents.ModeOff  // never
)

// MaintenanceEvent is one maintenance notification of Azure Cache for Redis
// (Options.OnMaintenance); see package azevents.
type MaintenanceEvent = azevents.Event

// startMaintenance subscribes a Client to the maintenance notifications
// when Options.MaintenanceEvents says so for o.Addr, on one connection of
// its own (package azsub: re-authenticated in place on RESP3, moved to a
// fresh connection before its token expires on RESP2). o is the prepared
// go-redis options; user the caller's, whose Dialer, if any, is used as it
// is. A nil Subscriber (off) closes as a no-op.
func startMaintenance(src *tokensource.Source, opts *Options, o, user *redis.Options) (*azsub.Subscriber, error) {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		host = o.Addr
	}
	var mode MaintenanceMode
	var onEvent func(MaintenanceEvent)
	if opts != nil {
		mode, onEvent = opts.MaintenanceEvents, opts.OnMaintenance
	}
	return azsub.ForSource(src, mode, onEvent, host, o.Protocol, o.ReadTimeout, maintenanceDialer(o, user))
}

// maintenanceDialer dials like the client's own connections (see
// checkedDialer): the caller's Dialer when set, else go-redis' dialer with the
// client's TLS configuration; a connection without TLS is refused unless
// Options.Plaintext.
func maintenanceDialer(o, user *redis.Options) func(context.Context) (net.Conn, error) {
	network := cmp.Or(o.Network, "tcp")
	dial := checkedDialer(user.Dialer, o.DialTimeout, o.TLSConfig)
	return func(ctx context.Context) (net.Conn, error) { return dial(ctx, network, o.Addr) }
}
