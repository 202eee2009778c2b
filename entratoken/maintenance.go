package entratoken

import (
	"strconv"
	"strings"

	"github.com/entraredis/entraredis/azevents"
)

// MaintenanceMode says whether a client subscribes to Azure Cache for
// Redis' maintenance notifications (Options.MaintenanceEvents).
type MaintenanceMode int

const (
	// MaintenanceAuto subscribes for Azure Cache for Redis host names
	// (AzureCacheHost), as StackExchange.Redis does, and not elsewhere.
	MaintenanceAuto MaintenanceMode = iota
	// MaintenanceOn always subscribes (emulators, private endpoints with
	// other host names).
	MaintenanceOn
	// MaintenanceOff never subscribes.
	MaintenanceOff
)

// String returns "auto", "on" or "off".
func (m MaintenanceMode) String() string {
	switch m {
	case MaintenanceAuto:
		return "auto"
	case MaintenanceOn:
		return "on"
	case MaintenanceOff:
		return "off"
	}
	return "MaintenanceMode(" + strconv.Itoa(int(m)) + ")"
}

// Enabled reports whether a client of host subscribes in this mode: the one
// place where the default is decided.
func (m MaintenanceMode) Enabled(host string) bool {
	switch m {
	case MaintenanceOn:
		return true
	case MaintenanceAuto:
		return AzureCacheHost(host)
	}
	return false
}

// azureCacheDomains are the DNS suffixes of Azure Cache for Redis in the
// public and sovereign clouds. Azure Managed Redis (*.redis.azure.net)
// publishes no maintenance notifications.
var azureCacheDomains = []string{
	".redis.cache.windows.net",
	".redis.cache.chinacloudapi.cn",
	".redis.cache.usgovcloudapi.net",
}

// AzureCacheHost reports whether host (a name, no port) is an Azure Cache
// for Redis endpoint.
func AzureCacheHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range azureCacheDomains {
		if strings.HasSuffix(h, d) && len(h) > len(d) {
			return true
		}
	}
	return false
}

// MaintenanceTracker returns the tracker a client layer records this
// Source's maintenance events in; Status.Maintenance is its status.
func (s *Source) MaintenanceTracker() *azevents.Tracker { return &s.maintenance }

// ReportMaintenance is how a client layer reports one maintenance event
// (already recorded in MaintenanceTracker): it is passed to
// Options.OnMaintenance on the event goroutine. It never blocks.
func (s *Source) ReportMaintenance(ev azevents.Event) {
	if f := s.opts.OnMaintenance; f != nil {
		s.ev.post(func() { f(ev) })
	}
}
