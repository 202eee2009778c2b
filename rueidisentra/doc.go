// Package rueidisentra connects rueidis clients to Azure Cache for Redis and
// Azure Managed Redis with Microsoft Entra ID instead of access keys, like
// package entraredis does for go-redis, on the same client-agnostic core
// (package entratoken).
//
//	cred, err := azidentity.NewDefaultAzureCredential(nil)
//	...
//	client, err := rueidisentra.NewClient(ctx, cred, rueidis.ClientOption{
//		InitAddress: []string{"NAME.redis.cache.windows.net:6380"},
//	}, nil)
//	...
//	defer client.Close()
//	err = client.Do(ctx, client.B().Set().Key("key").Value("value").Build()).Error()
//
// The user name is the token's object ID (oid), the password the token; one
// refresher asks the credential for each new token, once per rotation however
// many connections and nodes the client has, and every connection moves to it
// with an in-place AUTH before the old one expires.
//
// # How connections move to a new token
//
// rueidis (v1.0.77 and later) re-authenticates a live connection by itself:
// its ClientOption.AuthCredentialsFn returns the credentials and a
// RefreshAfter time, at which the connection calls the function again and
// sends AUTH on itself (pipe.refreshAuth). This package supplies that
// function. It is the only way to reach a rueidis connection from outside, and
// it has limits that decide the design:
//
//   - The function learns only the connection's RemoteAddr. The client's
//     DialCtxFn wraps each connection so that its RemoteAddr carries that
//     connection's state (which token it is on, its place in the hand-out).
//   - rueidis calls back only at the RefreshAfter it was given: a connection
//     cannot be told that a token arrived. So each connection's RefreshAfter
//     is decided in advance: it falls at the connection's own moment of the
//     hand-out window (Options.ReauthSpread, see entratoken): the window
//     opens when the token arrives, and connections take moments spread evenly
//     over it (fractions of the golden ratio). A connection whose moment comes
//     before the new token (a refresh still in flight, an outage) is answered
//     with empty credentials and a near RefreshAfter: rueidis then sends no
//     AUTH and asks again, and the connection stays on its valid token.
//   - The function never learns whether the AUTH succeeded, and rueidis
//     closes the connection when it fails (or when the function returns an
//     error, which this package never does for a live connection). So an open
//     connection that was given a token is authenticated with it, or its AUTH
//     is in flight: that is what Status counts (see Status). A refused
//     re-AUTH is not reported by rueidis: Status.ReauthFailures and
//     Options.OnReauthFailed stay silent on this path, the connection leaves
//     the counts, and commands then in flight on it fail with the server's
//     reply, explained (see below).
//   - The AUTH goes through the connection like any command. rueidis stops the
//     timer of a connection it lends out, to a Dedicated or Dedicate client (so
//     a MULTI/EXEC built by hand there never gets an AUTH queued inside it) or
//     to a blocking command (BLPOP, XREAD BLOCK...), and restarts it when the
//     connection comes back: a connection whose moment passed meanwhile is
//     re-authenticated then. Three consequences, all rueidis' (pool.go,
//     pipe.go), documented and tested here:
//     a connection held past its token's expiry is closed by the server, and
//     the command then in flight fails with an error wrapping
//     ErrConnTokenExpired (the next one uses a new connection): keep blocking
//     timeouts and Dedicated sessions well under the refresh margin (minutes
//     on Azure); a connection taken again at once, every time (a loop of
//     blocking commands with no pause), is usually taken before its restarted
//     timer fires, so it may never be re-authenticated and then fails that way
//     once per token lifetime; and a connection taken while its AUTH runs is
//     closed by rueidis and replaced by a new one (an extra dial, no error).
//   - rueidis retries a read-only command after a connection error until its
//     context ends. A command that fails because no usable token exists (see
//     below) is not retried: it fails at once with the explanation.
//
// Past expiry (every refresh failed until the token expired), the server
// closes the connections, and new ones fail at once with an error wrapping
// entratoken.ErrNoValidToken, without dialing; the first successful refresh
// recovers, as with go-redis.
//
// # Differences from the go-redis clients
//
// rueidis pipelines commands of all goroutines over few connections (one per
// node, plus the pools of Dedicated and blocking commands), so a rotation
// moves few connections. Pub/sub on RESP3 (rueidis' default) shares those
// connections: subscriptions are re-authenticated in place and never dropped
// at rotation. With ClientOption.AlwaysRESP2, subscribed connections cannot
// run AUTH: the server refuses it and rueidis closes the connection, and the
// subscriber must subscribe again.
//
// Client-side caching (DoCache) keeps working: an AUTH as the same user keeps
// the connection's CLIENT TRACKING state.
//
// A trap that is rueidis' own, not this package's: a connection lent to a
// Dedicated client and left silent for longer than Dialer.KeepAlive (1 s by
// default) gets rueidis' keep-alive PING, which the server queues inside a
// MULTI built by hand there (EXEC then returns one reply more).
package rueidisentra
