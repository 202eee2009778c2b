package entraredis

import "github.com/entraredis/entraredis/entratoken"

// DefaultScope is the OAuth scope asked for when Options.Scope is empty:
// the one Azure Cache for Redis and Azure Managed Redis accept.
// (entratoken.LegacyScope is the preview-era one.)
const DefaultScope = entratoken.DefaultScope

// Options configures the token refresher of Client, ClusterClient and
// Credentials: scope, user name, refresh timing, logger, callbacks, plaintext
// for local emulators. nil means all defaults; each field documents its
// default. The callbacks run on one goroutine per client, one after another,
// never inside a command or a go-redis hook: see entratoken.Options.
type Options = entratoken.Options

// TokenRefreshed describes a token that was just installed (Options.OnTokenRefreshed).
type TokenRefreshed = entratoken.TokenRefreshed

// RefreshFailed describes a failed refresh attempt (Options.OnRefreshFailed).
type RefreshFailed = entratoken.RefreshFailed

// ReauthFailed describes an AUTH the server refused (Options.OnReauthFailed).
type ReauthFailed = entratoken.ReauthFailed

// Status is a snapshot of the token and its refresher, for health checks:
// Client.Status, ClusterClient.Status, Credentials.Status.
type Status = entratoken.Status
