package azsub

import (
	"context"
	"net"
	"time"

	"github.com/entraredis/entraredis/entratoken"
)

// SourceCredentials gives a subscription the tokens of an entratoken.Source:
// what every client layer passes as Config.Credentials.
func SourceCredentials(src *entratoken.Source) Credentials { return sourceCredentials{src} }

type sourceCredentials struct{ src *entratoken.Source }

func (c sourceCredentials) Token() (Token, error) {
	t, err := c.src.Token()
	if err != nil {
		return Token{}, err
	}
	return Token{Username: t.Username(), Password: t.Password(), ExpiresOn: t.ExpiresOn(), Generation: t.Generation()}, nil
}

func (c sourceCredentials) Notify(f func()) func() { return c.src.Subscribe(&notifier{f: f}) }

// ReportReauth explains a refused AUTH (WRONGPASS, NOPERM) before the
// Source counts, logs and reports it.
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

// ForSource starts the subscription of a client layer of src, when src's
// Options.MaintenanceEvents enables it for host (the cache's host name, no
// port): the events go to src's MaintenanceTracker, ReportMaintenance
// (Options.OnMaintenance) and Logger. It returns nil, nil when the option
// is off for host. protocol is the client's (2 or 3); timeout bounds each
// dial and reply (default 5 seconds).
func ForSource(src *entratoken.Source, host string, protocol int, timeout time.Duration, dial func(context.Context) (net.Conn, error)) (*Subscriber, error) {
	if !src.Options().MaintenanceEvents.Enabled(host) {
		return nil, nil
	}
	return Start(Config{
		Dial:        dial,
		Protocol:    protocol,
		Credentials: SourceCredentials(src),
		Tracker:     src.MaintenanceTracker(),
		OnEvent:     src.ReportMaintenance,
		Logger:      src.Logger(),
		Timeout:     timeout,
	})
}
