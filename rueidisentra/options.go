package rueidisentra

import (
	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entratoken"
	"github.com/entraredis/entraredis/internal/endpoint"
)

// Options configures NewClient. nil means all defaults; each field documents
// its default. The token's settings (scope, user name, refresh timing,
// logger, callbacks, plaintext for local emulators) are those of
// entratoken.Options, embedded: they read and write as fields of Options
// (o.Scope), and in a composite literal go in the embedded struct:
//
//	opts := &rueidisentra.Options{Options: entratoken.Options{OnTokenRefreshed: f}}
//
// The callbacks, OnMaintenance included, run on one goroutine per client,
// one after another, never inside a command: see entratoken.Options.
type Options struct {
	entratoken.Options

	// MaintenanceEvents says whether the client subscribes to the
	// maintenance notifications of Azure Cache for Redis (channel
	// AzureRedisEvents, on one connection of its own; see package azevents).
	// They are reported to OnMaintenance, the Logger and
	// ClientStatus.Maintenance.
	// default: azevents.ModeAuto (on for Azure Cache for Redis host names, off elsewhere: Azure Managed Redis publishes none)
	MaintenanceEvents azevents.Mode
	// OnMaintenance is called with each maintenance event, in order, on the
	// client's event goroutine, where the other callbacks run.
	// default: none
	OnMaintenance func(azevents.Event)
}

// ClientStatus is a snapshot of a client's token, its refresher and its
// maintenance events (see Status). The token's part is entratoken.Status,
// embedded: st.State, st.Rotations, st.Valid(now).
type ClientStatus struct {
	entratoken.Status
	Maintenance azevents.Status // Azure maintenance events seen (see Options.MaintenanceEvents); zero when not subscribed
}

// ErrPlaintextRemote means Options.Plaintext was set for a host that is not
// loopback without Options.AllowPlaintextRemote.
var ErrPlaintextRemote = endpoint.ErrPlaintextRemote
