package entraredis

import (
	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entratoken"
)

// DefaultScope is the OAuth scope asked for when Options.Scope is empty:
// the one Azure Cache for Redis and Azure Managed Redis accept.
const DefaultScope = entratoken.DefaultScope

// Options configures Client, ClusterClient and Credentials. nil means all
// defaults; each field documents its default. The token's settings (scope,
// user name, refresh timing, logger, callbacks, plaintext for local
// emulators) are those of entratoken.Options, embedded, so that they read
// and write as fields of Options (o.Scope, o.OnTokenRefreshed); in a
// composite literal they go in the embedded struct:
//
//	opts := &entraredis.Options{Options: entratoken.Options{OnTokenRefreshed: f}}
//
// The callbacks, OnMaintenance included, run on one goroutine per client,
// one after another, never inside a command or a go-redis hook: see
// entratoken.Options.
type Options struct {
	entratoken.Options

	// MaintenanceEvents says whether a Client subscribes to the maintenance
	// notifications of Azure Cache for Redis (channel AzureRedisEvents, on
	// one connection of its own; see package azevents). They are reported to
	// OnMaintenance, the Logger, Status.Maintenance and the metrics of
	// package entraredisotel. ClusterClient and Credentials do not subscribe.
	// default: MaintenanceAuto (on for Azure Cache for Redis host names, *.redis.cache.windows.net and the sovereign clouds', off elsewhere: Azure Managed Redis publishes none)
	MaintenanceEvents MaintenanceMode
	// OnMaintenance is called with each maintenance event, in order, on the
	// client's event goroutine, where the other callbacks run (see
	// entratoken.Options).
	// default: none
	OnMaintenance func(MaintenanceEvent)
}

// tokenOptions returns the token's options of o (nil for nil).
func (o *Options) tokenOptions() *entratoken.Options {
	if o == nil {
		return nil
	}
	return &o.Options
}

// TokenRefreshed describes a token that was just installed (Options.OnTokenRefreshed).
type TokenRefreshed = entratoken.TokenRefreshed

// RefreshFailed describes a failed refresh attempt (Options.OnRefreshFailed).
type RefreshFailed = entratoken.RefreshFailed

// ReauthFailed describes an AUTH the server refused (Options.OnReauthFailed).
type ReauthFailed = entratoken.ReauthFailed

// Status is a snapshot of a client's token, its refresher and its
// maintenance events, for health checks: Client.Status,
// ClusterClient.Status, Credentials.Status. The token's part is
// entratoken.Status, embedded: st.State, st.Rotations, st.Valid(now).
type Status struct {
	entratoken.Status
	Maintenance azevents.Status // Azure maintenance events seen (see Options.MaintenanceEvents): the last one, the next announced maintenance, counts; zero when not subscribed
}
