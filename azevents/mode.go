package azevents

import (
	"strconv"
	"strings"
)

// Mode says whether a client subscribes to Azure Cache for
// Redis' maintenance notifications (the MaintenanceEvents option of package entraredis and rueidisentra).
type Mode int

const (
	// ModeAuto subscribes for Azure Cache for Redis host names
	// (see Mode.Enabled), as StackExchange.Redis does, and not elsewhere.
	ModeAuto Mode = iota
	// ModeOn always subscribes (emulators, private endpoints with
	// other host names).
	ModeOn
	// ModeOff never subscribes.
	ModeOff
)

// String returns "auto", "on" or "off".
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeOn:
		return "on"
	case ModeOff:
		return "off"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Enabled reports whether a client of host subscribes in this mode: the one
// place where the default is decided.
func (m Mode) Enabled(host string) bool {
	switch m {
	case ModeOn:
		return true
	case ModeAuto:
		return azureCacheHost(host)
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

// azureCacheHost reports whether host (a name, no port) is an Azure Cache
// for Redis endpoint.
func azureCacheHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range azureCacheDomains {
		if strings.HasSuffix(h, d) && len(h) > len(d) {
			return true
		}
	}
	return false
}
