package main

import (
	"context"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/redis/go-redis/v9/auth"

	"github.com/entraredis/entraredis"
)

// The comparison providers. Both refresh the token in the background at 70%
// of its lifetime (the go-redis-entraid rule), with one GetToken per refresh.
// They differ only in what they do with a new token:
//   - naiveStreaming hands it to every subscribed connection at once (go-redis-entraid);
//   - cachedProvider is a CredentialsProviderContext: new connections get it,
//     live ones are never re-authenticated and are closed by the server at expiry.

// tokenSource is a background refresher at 70% of the token's lifetime.
type tokenSource struct {
	cred azcore.TokenCredential

	mu      sync.Mutex
	user    string
	tok     azcore.AccessToken
	events  []time.Time // when each new token was installed (the first included)
	expires []time.Time // expiry of each installed token
	onNew   func(user, pass string)

	stop context.CancelFunc
	done chan struct{}
}

// newTokenSource fetches the first token and starts the refresher.
func newTokenSource(ctx context.Context, cred azcore.TokenCredential, user string, onNew func(user, pass string)) (*tokenSource, error) {
	ts := &tokenSource{cred: cred, user: user, onNew: onNew, done: make(chan struct{})}
	tok, err := ts.fetch(ctx)
	if err != nil {
		return nil, err
	}
	ts.install(tok)
	rctx, stop := context.WithCancel(context.Background())
	ts.stop = stop
	go ts.run(rctx)
	return ts, nil
}

func (ts *tokenSource) fetch(ctx context.Context) (azcore.AccessToken, error) {
	return ts.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entraredis.DefaultScope}})
}

func (ts *tokenSource) install(tok azcore.AccessToken) {
	ts.mu.Lock()
	ts.tok = tok
	ts.events = append(ts.events, time.Now())
	ts.expires = append(ts.expires, tok.ExpiresOn)
	ts.mu.Unlock()
	if ts.onNew != nil {
		ts.onNew(ts.user, tok.Token)
	}
}

func (ts *tokenSource) run(ctx context.Context) {
	defer close(ts.done)
	for {
		ts.mu.Lock()
		tok := ts.tok
		ts.mu.Unlock()
		ts.mu.Lock()
		issued := ts.events[len(ts.events)-1]
		ts.mu.Unlock()
		at := issued.Add(tok.ExpiresOn.Sub(issued) * 7 / 10)
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for {
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			nt, err := ts.fetch(fctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				ts.install(nt)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (ts *tokenSource) current() (string, string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.user, ts.tok.Token
}

// rotations returns the install times of every token after the first, and
// the expiry of every token that was replaced.
func (ts *tokenSource) rotations() (installed, replacedExpiry []time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.events) > 1 {
		installed = append(installed, ts.events[1:]...)
		replacedExpiry = append(replacedExpiry, ts.expires[:len(ts.expires)-1]...)
	}
	return installed, replacedExpiry
}

func (ts *tokenSource) Close() {
	ts.stop()
	<-ts.done
}

// naiveStreaming is the go-redis-entraid approach: a streaming provider that
// calls OnNext on every listener at once when a new token arrives.
type naiveStreaming struct {
	ts        *tokenSource
	mu        sync.Mutex
	listeners map[auth.CredentialsListener]struct{}
}

type basicCreds struct{ user, pass string }

func (b basicCreds) BasicAuth() (string, string) { return b.user, b.pass }
func (b basicCreds) RawCredentials() string      { return b.user + ":" + b.pass }

func newNaiveStreaming(ctx context.Context, cred azcore.TokenCredential, user string) (*naiveStreaming, error) {
	n := &naiveStreaming{listeners: make(map[auth.CredentialsListener]struct{})}
	ts, err := newTokenSource(ctx, cred, user, n.broadcast)
	if err != nil {
		return nil, err
	}
	n.ts = ts
	return n, nil
}

func (n *naiveStreaming) broadcast(user, pass string) {
	n.mu.Lock()
	ls := make([]auth.CredentialsListener, 0, len(n.listeners))
	for l := range n.listeners {
		ls = append(ls, l)
	}
	n.mu.Unlock()
	for _, l := range ls {
		l.OnNext(basicCreds{user, pass})
	}
}

func (n *naiveStreaming) Subscribe(l auth.CredentialsListener) (auth.Credentials, auth.UnsubscribeFunc, error) {
	n.mu.Lock()
	n.listeners[l] = struct{}{}
	n.mu.Unlock()
	u, p := n.ts.current()
	return basicCreds{u, p}, func() error {
		n.mu.Lock()
		delete(n.listeners, l)
		n.mu.Unlock()
		return nil
	}, nil
}

func (n *naiveStreaming) Close() { n.ts.Close() }

// cachedProvider is a CredentialsProviderContext over the same refresher: no
// re-authentication of live connections.
type cachedProvider struct{ ts *tokenSource }

func newCachedProvider(ctx context.Context, cred azcore.TokenCredential, user string) (*cachedProvider, error) {
	ts, err := newTokenSource(ctx, cred, user, nil)
	if err != nil {
		return nil, err
	}
	return &cachedProvider{ts: ts}, nil
}

func (c *cachedProvider) credentials(context.Context) (string, string, error) {
	u, p := c.ts.current()
	return u, p, nil
}

func (c *cachedProvider) Close() { c.ts.Close() }
