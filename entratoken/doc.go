// Package entratoken keeps a Microsoft Entra access token fresh for Redis
// clients, whatever the client library: it imports neither go-redis nor
// rueidis. Package entraredis builds its go-redis clients on it.
//
// A Source owns one credential's tokens. Its refresher goroutine is the only
// caller of the credential's GetToken: it gets the first token at once, the
// next one before the current one expires, and retries with backoff for as
// long as the Source is open. Each new token is handed to the subscribed
// Listeners (one per live connection), one after another over
// Options.ReauthSpread. Events (OnTokenRefreshed, OnRefreshFailed,
// OnReauthFailed) run on a third goroutine, one after another.
//
// The state of the token at any instant (no token yet, fresh, due, expired,
// closed) is computed by one function; Token, WaitReady and Status all use it.
package entratoken
