package azevents

import (
	"fmt"
	"testing"
)

func TestModeEnabled(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		host string
		want bool
	}{
		{ModeAuto, "name.redis.cache.windows.net", true},
		{ModeAuto, "NAME.Redis.Cache.Windows.Net.", true},
		{ModeAuto, "name.redis.cache.chinacloudapi.cn", true},
		{ModeAuto, "name.redis.cache.usgovcloudapi.net", true},
		{ModeAuto, "redis.cache.windows.net", false}, // no cache name
		{ModeAuto, ".redis.cache.windows.net", false},
		{ModeAuto, "name.westeurope.redis.azure.net", false}, // Azure Managed Redis: no events
		{ModeAuto, "name.redis.cache.windows.net.example.com", false},
		{ModeAuto, "localhost", false},
		{ModeAuto, "10.0.0.4", false},
		{ModeOn, "localhost", true},
		{ModeOff, "name.redis.cache.windows.net", false},
		{Mode(7), "name.redis.cache.windows.net", false},
	} {
		if got := tc.mode.Enabled(tc.host); got != tc.want {
			t.Errorf("%v.Enabled(%q) = %v, want %v", tc.mode, tc.host, got, tc.want)
		}
	}
	if s := fmt.Sprint(ModeAuto, ModeOn, ModeOff, Mode(7)); s != "auto on off Mode(7)" {
		t.Errorf("String: %q", s)
	}
}
