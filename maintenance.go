package entraredis

import (
	"cmp"
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/azsub"
)

// MaintenanceMode says whether a Client subscribes to Azure Cache for
// Redis' maintenance notifications (Options.MaintenanceEvents).
type MaintenanceMode = entratoken.MaintenanceMode

// The modes of Options.MaintenanceEvents.
const (
	MaintenanceAuto = entratoken.MaintenanceAuto // on for *.redis.cache.windows.net (and the sovereign clouds' Azure Cache for Redis), off elsewhere
	MaintenanceOn   = entratoken.MaintenanceOn   // always
	MaintenanceOff  = entratoken.MaintenanceOff  // never
)

// MaintenanceEvent is one maintenance notification of Azure Cache for Redis
// (Options.OnMaintenance); see package azevents.
type MaintenanceEvent = azevents.Event

// maintenance is a Client's subscription to the maintenance notifications:
// one connection of its own (see package azsub), re-authenticated in place
// on RESP3, moved to a fresh connection before its token expires on RESP2.
// A nil *maintenance is a client without one.
type maintenance struct{ sub *azsub.Subscriber }

// startMaintenance subscribes when Options.MaintenanceEvents says so for
// o.Addr (o is the prepared go-redis options; user the caller's, whose
// Dialer, if any, is used as it is).
func startMaintenance(src *entratoken.Source, o, user *redis.Options) (*maintenance, error) {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		host = o.Addr
	}
	if !src.Options().MaintenanceEvents.Enabled(host) {
		return nil, nil
	}
	sub, err := azsub.Start(azsub.Config{
		Dial:        maintenanceDialer(o, user),
		Protocol:    o.Protocol,
		Credentials: sourceCredentials{src},
		Tracker:     src.MaintenanceTracker(),
		OnEvent:     src.ReportMaintenance,
		Logger:      src.Logger(),
		Timeout:     o.ReadTimeout,
	})
	if err != nil {
		return nil, err
	}
	return &maintenance{sub: sub}, nil
}

// Close ends the subscription; nil-safe.
func (m *maintenance) Close() error {
	if m == nil {
		return nil
	}
	return m.sub.Close()
}

// maintenanceDialer dials like go-redis: the caller's Dialer when set, else
// TCP (keep-alive as go-redis) with the client's TLS configuration.
func maintenanceDialer(o, user *redis.Options) func(context.Context) (net.Conn, error) {
	network := cmp.Or(o.Network, "tcp")
	if d := user.Dialer; d != nil {
		return func(ctx context.Context) (net.Conn, error) { return d(ctx, network, o.Addr) }
	}
	nd := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 5 * time.Minute}
	if o.TLSConfig == nil {
		return func(ctx context.Context) (net.Conn, error) { return nd.DialContext(ctx, network, o.Addr) }
	}
	td := &tls.Dialer{NetDialer: nd, Config: o.TLSConfig}
	return func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, network, o.Addr) }
}

// sourceCredentials gives the subscription the Source's tokens.
type sourceCredentials struct{ src *entratoken.Source }

func (c sourceCredentials) Token() (azsub.Token, error) {
	t, err := c.src.Token()
	if err != nil {
		return azsub.Token{}, err
	}
	return azsub.Token{Username: t.Username(), Password: t.Password(), ExpiresOn: t.ExpiresOn(), Generation: t.Generation()}, nil
}

func (c sourceCredentials) Notify(f func()) func() { return c.src.Subscribe(&notifier{f: f}) }

func (c sourceCredentials) ReportReauth(err error) {
	if err != nil {
		t, _ := c.src.Token()
		err = entratoken.ExplainAuth(err, t.Username(), c.src.Scope())
	}
	c.src.ReportReauth(err)
}

// notifier is the subscription's listener on the Source: a pointer, so comparable.
type notifier struct{ f func() }

// OnToken runs on the Source's hand-out goroutine; f only signals.
func (n *notifier) OnToken(entratoken.Token) { n.f() }
