package entratoken

import (
	"log/slog"

	"time"
)

// DefaultScope is the scope asked for when Options.Scope is empty: the one
// Azure Cache for Redis and Azure Managed Redis accept.
const DefaultScope = "https://redis.azure.com/.default"

// Options configures a client's token and its refresher (package
// entraredis embeds it in its Options, rueidisentra in its own). The zero value is ready to use: every field has a documented
// default, which a zero or negative duration also selects unless its field
// says otherwise. Durations are also capped by the token's lifetime (see
// RefreshBefore), so that the defaults are safe for tokens of any length, the
// few-second tokens of tests included.
//
// The callbacks run on one goroutine of the client, one after another
// in the order of the events, never inside a Redis command, a go-redis hook
// or a lock of this module: they may block, call Status or Close, and share
// variables among themselves without locks. A slow callback delays only the
// callbacks after it, never a refresh nor a constructor. Events wait in a
// queue of 256; when a callback is so slow that the queue is full, the oldest
// waiting event is dropped, counted in Status.DroppedEvents and logged. No
// callback starts once Close has been called. Close waits for a running
// callback, except when it is called from inside a callback (of this
// client or another), where waiting could deadlock. A callback that panics crashes
// the program, as a panic on any goroutine does (the credential's panics, by
// contrast, are recovered: see TokenError.Panic).
type Options struct {
	// Scope is the OAuth scope asked of the credential. Sovereign clouds and
	// the preview-era scope, "acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default",
	// can be set here (Azure still accepts it; new code has no reason to).
	// default: DefaultScope ("https://redis.azure.com/.default")
	Scope string

	// Username is the Redis user name sent with every AUTH. Set it when the
	// credential's tokens carry no oid claim. The entraredis constructors also
	// take it from redis.Options.Username; when both are set, this one wins.
	// default: the token's "oid" claim (the principal's object ID), which is what Azure expects
	Username string

	// RefreshBefore is how long before expiry the next token is requested. It
	// is capped at half of the token's lifetime. The refresh starts earlier
	// when the credential gives a RefreshOn time.
	// default: 10 minutes
	RefreshBefore time.Duration

	// RefreshJitter is the upper bound of the random time taken off each
	// refresh time, capped at a quarter of the refresh margin. A negative
	// value turns jitter off.
	// default: 30 seconds
	RefreshJitter time.Duration

	// RetryMinDelay is the first delay of the exponential backoff (with
	// jitter) between attempts after a failure or after the credential
	// returned the same token again; it is capped at an eighth of
	// RetryMaxDelay. The refresher retries for as long as it is open, also
	// after the token has expired.
	// default: 1 second
	RetryMinDelay time.Duration
	// RetryMaxDelay caps that backoff; it is itself capped at a quarter of the
	// refresh margin, and delays shrink to a third of the token's remaining
	// life. A value below RetryMinDelay is raised to it.
	// default: 30 seconds
	RetryMaxDelay time.Duration

	// AttemptTimeout bounds each GetToken call, the first one included; once a
	// token is held, it is capped at the refresh margin.
	// default: 20 seconds
	AttemptTimeout time.Duration

	// ReauthSpread is the window over which a new token is handed to live
	// connections, capped at a quarter of the refresh margin so that every
	// connection is re-authenticated long before the old token expires. A
	// negative value hands it to all at once.
	// default: 10 seconds
	ReauthSpread time.Duration

	// Logger receives the library's logs: refreshes at Info, retries at Warn,
	// a token that could not be replaced before it expired at Error, refused
	// re-AUTHs at Warn, a connection that stops re-authenticating in place at
	// Warn. Tokens are never logged. It is called from the refresher
	// goroutine, from the goroutine that reports a refused AUTH, and from the
	// client layer's connection goroutines.
	// default: slog.Default()
	Logger *slog.Logger

	// OnTokenRefreshed is called after a new token was installed, the first
	// one included. It runs on the client's event goroutine (see Options);
	// the first token's call never delays the constructor that waits for it,
	// and may run before that constructor returns (a callback that uses the
	// client gets it through a synchronised variable).
	// default: none
	OnTokenRefreshed func(TokenRefreshed)
	// OnRefreshFailed is called after each failed refresh attempt, on the
	// client's event goroutine (see Options). Connections keep the last valid
	// token meanwhile.
	// default: none
	OnRefreshFailed func(RefreshFailed)
	// OnReauthFailed is called when the server refused the AUTH that moves a
	// live connection to a new token (the connection keeps its previous
	// authentication). A new connection's refused first AUTH is not reported
	// here: it fails that connection's dial, the command that dialed returns
	// the explained AuthError, and new connections are held back for a while
	// (see Status.Dial). It runs on the client's event goroutine (see
	// Options), never inside the client's hook.
	// default: none
	OnReauthFailed func(ReauthFailed)

	// Plaintext turns TLS off. Azure requires TLS: this exists for local
	// emulators and is refused for any host but a loopback one unless
	// AllowPlaintextRemote is also set.
	// default: false
	Plaintext bool
	// AllowPlaintextRemote allows Plaintext for a host that is not loopback. The
	// token, a bearer secret, then crosses the network in clear.
	// default: false
	AllowPlaintextRemote bool
}
