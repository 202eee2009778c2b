package azsub

import (
	"context"
	"net"
	"time"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/internal/tokensource"
)

// SourceCredentials gives a subscription the tokens of an tokensource.Source:
// what every client layer passes as Config.Credentials.
func SourceCredentials(src *tokensource.Source) Credentials { return sourceCredentials{src} }

type sourceCredentials struct{ src *tokensource.Source }

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
		err = tokensource.ExplainAuth(err, t.Username(), c.src.Scope())
	}
	c.src.ReportReauth(err)
}

// notifier is the subscription's listener on the Source: a pointer, so comparable.
type notifier struct{ f func() }

// OnToken runs on the Source's hand-out goroutine; f only signals.
func (n *notifier) OnToken(tokensource.Token) { n.f() }

// ForSource starts the subscription of a client layer of src, when mode
// enables it for host (the cache's host name, no port): the events go to
// the Subscriber's Tracker (its Status), to onEvent (the user's
// OnMaintenance, nil for none) on src's event goroutine, and to src's
// Logger. It returns nil, nil when mode is off for host. protocol is the
// client's (2 or 3); timeout bounds each dial and reply (default 5 seconds).
func ForSource(src *tokensource.Source, mode azevents.Mode, onEvent func(azevents.Event), host string, protocol int, timeout time.Duration, dial func(context.Context) (net.Conn, error)) (*Subscriber, error) {
	if !mode.Enabled(host) {
		return nil, nil
	}
	var post func(azevents.Event)
	if onEvent != nil {
		post = func(ev azevents.Event) { src.Post(func() { onEvent(ev) }) }
	}
	return Start(Config{
		Dial:        dial,
		Protocol:    protocol,
		Credentials: SourceCredentials(src),
		OnEvent:     post,
		Logger:      src.Logger(),
		Timeout:     timeout,
	})
}

// Status returns what the subscription has seen; the zero Status for a nil
// Subscriber (maintenance events off).
func (s *Subscriber) Status() azevents.Status {
	if s == nil {
		return azevents.Status{}
	}
	return s.cfg.Tracker.Status()
}
