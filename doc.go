// Package entraredis connects go-redis clients to Azure Cache for Redis and
// Azure Managed Redis with Microsoft Entra ID instead of access keys.
//
// The password of an Entra-authenticated connection is an access token that
// expires after an hour or a day. NewClient and NewClusterClient return
// go-redis clients whose user name is the token's object ID, whose password is
// the token, and whose live connections move to each new token before the old
// one expires, without errors, without reconnecting, and with one token request
// per rotation whatever the number of connections:
//
//	cred, err := azidentity.NewDefaultAzureCredential(nil)
//	...
//	rdb, err := entraredis.NewClient(ctx, cred, &redis.Options{Addr: "NAME.redis.cache.windows.net:6380"}, nil)
//	...
//	defer rdb.Close()
//	err = rdb.Set(ctx, "key", "value", 0).Err()
//
// The clients embed *redis.Client and *redis.ClusterClient: hooks,
// OpenTelemetry instrumentation, pipelines and every command work as usual.
// go-redis options left at zero get Azure's guidance: TLS 1.2 or later with
// the certificate verified against the host (for a cluster, every node against
// the host you gave, although the topology names nodes by IP address),
// DialTimeout, ReadTimeout and WriteTimeout 5 s, ConnMaxIdleTime 5 min (Azure
// closes idle connections after 10). Anything set in the options wins, except
// Password and go-redis' credentials providers, which must stay empty.
//
// Errors, their meaning and their fix: TROUBLESHOOTING.md in the repository.
// Rueidis: package rueidisentra. Metrics: package entraredisotel. A test
// endpoint that enforces tokens as Azure does: package entraredistest.
//
// # How the refresh works
//
// One refresher goroutine per client is the only caller of the credential.
// It gets the first token (NewClient waits for it, bounded by its context and
// Options.AttemptTimeout), then starts asking for the next one
// Options.RefreshBefore (10 min) before expiry, minus a random jitter
// (Options.RefreshJitter, 30 s), or at the credential's RefreshOn when that is
// earlier. azidentity's credentials return their cached token until less than
// 5 minutes of its life remain: when the same token comes back, the refresher
// asks again when the cache lets go, then backs off. The new token is in use
// about 4.5 to 5 minutes before expiry, with about 2 calls per rotation;
// credentials without a cache (Azure CLI, azd) are asked once per rotation,
// never once per connection. A dial takes the token in use without waiting on
// the network.
//
// Every connection is wrapped, on top of TLS and below every go-redis hook:
// it sends AUTH <oid> <token> ahead of go-redis' HELLO, and at each rotation
// writes AUTH on itself between two of go-redis' commands and removes the reply
// before go-redis reads. No token passes through go-redis' options, logs or
// hooks, and idle, pinned (Conn, Watch), pub/sub (RESP3) and cluster-node
// connections all move alike. The new token is handed to live connections one
// after another over Options.ReauthSpread (10 s), so that go-redis never sees
// them all change at once; the hand-out always ends well before the old token
// expires. Every duration is capped by the token's lifetime (the refresh
// margin by half of it, jitter, spread and retry delays by a quarter of the
// margin), so the defaults suit hour-long tokens and the few-second tokens of
// tests alike.
//
// An AUTH is never put inside MULTI…EXEC (hand-built ones included), on a
// RESP2 subscribed connection, right after ASKING or CLIENT CACHING, or behind
// a blocking command. A connection on which the application sends its own
// AUTH, HELLO … AUTH, CLIENT REPLY or MONITOR is left alone (logged at Warn,
// counted in Status().Conns.Unmovable) until the server closes it at its
// token's expiry.
//
// A failed refresh never reaches connections: it is logged, reported to
// Options.OnRefreshFailed and Status, and retried with exponential backoff and
// jitter (Options.RetryMinDelay 1 s to Options.RetryMaxDelay 30 s), each
// attempt bounded by AttemptTimeout (20 s) even when a credential ignores its
// context, for as long as the client is open. A token service outage shorter
// than the token's remaining life is invisible. If every attempt fails until
// the token expires, the server closes the connections, as Azure does, and new
// commands fail at once with ErrNoValidToken, wrapping the last failure,
// without dialing; the first successful refresh recovers.
//
// When the server refuses the token in use for a new connection (WRONGPASS:
// no access policy, a wrong user name), new connections are held back too:
// commands fail at once with the explained refusal (*entratoken.RefusedError),
// without dialing. One connection is tried 1 s later, then after twice as long
// each time, up to RetryMaxDelay; a new token, or a connection the server
// accepts, ends it. Status().Dial shows it. A refused re-AUTH of a live
// connection (which keeps its previous authentication) does not hold new
// connections back: it is reported to Options.OnReauthFailed.
//
// # Options
//
// Options is optional: nil means all defaults, and so does a zero duration.
// The token's settings are those of entratoken.Options, embedded (o.Scope,
// o.OnTokenRefreshed; in a literal, entraredis.Options{Options:
// entratoken.Options{...}}); MaintenanceEvents and OnMaintenance are the
// client's own. Each field's documentation states its default:
//
//	field                           default                            meaning
//	Scope                           https://redis.azure.com/.default   OAuth scope (sovereign clouds, the preview-era scope)
//	Username                        the token's oid claim              Redis user name; for tokens without oid
//	RefreshBefore                   10 min                             ask for the next token this long before expiry
//	RefreshJitter                   30 s                               random time taken off each refresh time; negative: off
//	RetryMinDelay, RetryMaxDelay    1 s, 30 s                          backoff between attempts
//	AttemptTimeout                  20 s                               bound of each GetToken call
//	ReauthSpread                    10 s                               window of the hand-out to live connections; negative: all at once
//	Logger                          slog.Default()                     never logs a token
//	OnTokenRefreshed                none                               a new token was installed (the first one included)
//	OnRefreshFailed                 none                               a refresh attempt failed
//	OnReauthFailed                  none                               the server refused a live connection's re-AUTH
//	MaintenanceEvents               MaintenanceAuto                    subscribe to Azure's maintenance notifications
//	OnMaintenance                   none                               each maintenance event, in order
//	Plaintext, AllowPlaintextRemote false, false                       no TLS, for local emulators only
//
// # Callbacks
//
// The callbacks of a client (OnTokenRefreshed, OnRefreshFailed,
// OnReauthFailed, OnMaintenance) run on one goroutine of that client, one after
// another in the order of the events, never inside a command, a go-redis hook
// or a lock of this library. So they may share plain variables among
// themselves without locks; Close waits for a running callback, after which
// the variables can be read. A callback may block: it delays only the
// callbacks after it, never a refresh, a command or NewClient (whose first
// OnTokenRefreshed may run before NewClient returns). A callback may call
// Close, of its own client or of another: no callback of that client starts
// after it, and it does not wait for one that is running (waiting there could
// deadlock two callbacks that close each other's clients). Events wait in a queue of 256 per
// client; when a callback is so slow that it fills, the oldest waiting event
// is dropped, counted in Status().DroppedEvents and logged.
//
// # Status
//
// Client.Status, ClusterClient.Status and Credentials.Status return a
// snapshot for health checks: the user name, the token's expiry, the last
// and next refresh, rotations, token requests, consecutive failures and the
// last error, refresh failures by kind, connections on the token in use and
// on an older one (Conns), re-AUTHs and refused re-AUTHs, dropped events,
// the state (entratoken.StateNoToken, StateFresh, StateDue, StateExpired,
// StateClosed), the dial gate (Dial, RefusedUntil) and the maintenance
// events. Status.Valid(time.Now()) is the health check: a token that is not
// expired, that the server has not refused, on an open client.
//
// # Blocking commands
//
// Before a blocking command (BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK,
// WAIT, ...) the connection moves to the newest token, but nothing can be
// sent on it while it blocks. A block that outlives that token is cut when
// the server closes the connection at expiry; the command fails with an error
// that says so and wraps io.EOF. Use bounded timeouts, well below the token
// lifetime (seconds to minutes), in a loop. A pipeline holding a blocking
// command that outlives its token is retried whole by go-redis, so the
// non-idempotent commands in it run twice: keep such pipelines short, or
// without blocking commands.
//
// # Pub/sub
//
// On RESP3 (go-redis' default, Protocol 3) a subscribed connection is
// re-authenticated in place like any other, and a subscription lives for any
// number of token lifetimes. On RESP2 Redis refuses AUTH on a subscribed
// connection: Azure closes it when its token expires, go-redis reconnects and
// subscribes again (PubSub.Channel does it for you), and messages published in
// that gap are lost. Use RESP3 for subscriptions that outlive a token.
//
// # What the server sees
//
// An injected AUTH is a command like any other for the server: with a
// SLOWLOG threshold of 0 it appears in SLOWLOG, and INFO commandstats counts
// it (cmdstat_auth): one per new connection, and one per live connection per
// rotation. Redis redacts its arguments: SLOWLOG shows AUTH (redacted)
// (redacted), never the token. A RESET sent by the
// application leaves the connection unauthenticated: the library's own AUTH
// follows it at once. The application's own AUTH or HELLO … AUTH takes the
// connection out of the library's hands (see above).
//
// Only the library's own AUTHs change its state: an error reply to a command
// of the application's (its own AUTH or HELLO AUTH refused, a script's
// redis.error_reply("WRONGPASS ...")) reaches it exactly as plain go-redis
// gives it, unexplained, and counts in neither Status nor the dial gate.
// CLIENT REPLY OFF and SKIP are followed: no AUTH is written where its reply
// would be suppressed. go-redis' client-side cache (ClientSideCacheConfig)
// is refused by NewClient: go-redis finds invalidations by peeking at the
// socket, which a connection that re-authenticates in place cannot allow.
//
// # Maintenance events
//
// For *.redis.cache.windows.net (Options.MaintenanceEvents, MaintenanceAuto)
// a Client subscribes to Azure's maintenance notifications on the channel
// AzureRedisEvents, on one connection of its own, and reports each one,
// parsed into an azevents.Event, to Options.OnMaintenance, the logger,
// Status().Maintenance and the metrics. On RESP2 that connection is moved to
// a fresh one as soon as a new token is installed (make before break).
// Events published while the subscription was cut off (a failover) are lost,
// which Status().Maintenance.Interruptions counts. Azure Managed Redis
// publishes no such events. The client needs no help to survive a failover:
// go-redis retries the commands whose connection closed.
//
// # Your own go-redis client
//
// NewClient and NewClusterClient are the way in. To build the go-redis client
// yourself, use NewCredentials as its StreamingCredentialsProvider and add its
// Hook (to every node of a ClusterClient, with OnNewNode): the hook keeps the
// client from redialling in a tight loop while no valid token exists or
// after the server refused the token. TLS and Azure's timeouts are then yours
// to set, and connections are re-authenticated by go-redis' own mechanism,
// not in place.
package entraredis
