package entratoken

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredistest"
)

func TestMaintenanceModeEnabled(t *testing.T) {
	for _, tc := range []struct {
		mode MaintenanceMode
		host string
		want bool
	}{
		{MaintenanceAuto, "name.redis.cache.windows.net", true},
		{MaintenanceAuto, "NAME.Redis.Cache.Windows.Net.", true},
		{MaintenanceAuto, "name.redis.cache.chinacloudapi.cn", true},
		{MaintenanceAuto, "name.redis.cache.usgovcloudapi.net", true},
		{MaintenanceAuto, "redis.cache.windows.net", false}, // no cache name
		{MaintenanceAuto, ".redis.cache.windows.net", false},
		{MaintenanceAuto, "name.westeurope.redis.azure.net", false}, // Azure Managed Redis: no events
		{MaintenanceAuto, "name.redis.cache.windows.net.example.com", false},
		{MaintenanceAuto, "localhost", false},
		{MaintenanceAuto, "10.0.0.4", false},
		{MaintenanceOn, "localhost", true},
		{MaintenanceOff, "name.redis.cache.windows.net", false},
		{MaintenanceMode(7), "name.redis.cache.windows.net", false},
	} {
		if got := tc.mode.Enabled(tc.host); got != tc.want {
			t.Errorf("%v.Enabled(%q) = %v, want %v", tc.mode, tc.host, got, tc.want)
		}
	}
	if s := fmt.Sprint(MaintenanceAuto, MaintenanceOn, MaintenanceOff, MaintenanceMode(7)); s != "auto on off MaintenanceMode(7)" {
		t.Errorf("String: %q", s)
	}
}

func TestFailureKindOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want FailureKind
	}{
		{&TokenError{Err: context.DeadlineExceeded}, FailureTimeout},
		{fmt.Errorf("x: %w", context.Canceled), FailureCanceled},
		{&TokenError{Err: ErrNoObjectID}, FailureNoObjectID},
		{fmt.Errorf("%w: no exp", ErrMalformedToken), FailureMalformedToken},
		{errors.New("AADSTS500011: resource principal not found"), FailureInvalidScope},
		{errors.New("ManagedIdentityCredential: no credential available"), FailureUnavailable},
		{errors.New("boom"), FailureOther},
		{nil, FailureOther},
	} {
		if got := FailureKindOf(tc.err); got != tc.want {
			t.Errorf("FailureKindOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	// The Hint follows the same classification.
	if h := (&TokenError{Err: context.DeadlineExceeded}).Hint(); h == "" || (&TokenError{Err: errors.New("boom")}).Hint() != "" {
		t.Errorf("Hint: %q", h)
	}
}

// TestStatusCountsReauthsFailuresAndMaintenance: ReportReauth(nil) counts an
// accepted re-AUTH, failed refreshes are counted by kind, and maintenance
// events reach Status and OnMaintenance (on the event goroutine).
func TestStatusCountsReauthsFailuresAndMaintenance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		got := make(chan azevents.Event, 4)
		o := r.options(Options{RefreshJitter: -1, OnMaintenance: func(ev azevents.Event) { got <- ev }})
		c, cred := startCreds(t, entraredistest.CredentialOptions{Lifetime: time.Hour}, o)
		defer c.Close()
		c.ReportReauth(nil)
		c.ReportReauth(nil)
		c.ReportReauth(errors.New("WRONGPASS invalid username-password pair"))
		cred.FailNext(2, nil)
		sleepUntil(c.Status().NextRefresh.Add(10 * time.Second)) // two failures, then a rotation
		st := c.Status()
		if st.Reauths != 2 || st.ReauthFailures != 1 {
			t.Errorf("Reauths %d, ReauthFailures %d; want 2, 1", st.Reauths, st.ReauthFailures)
		}
		if len(st.RefreshFailures) != 1 || st.RefreshFailures[FailureOther] != 2 || st.Rotations != 1 {
			t.Errorf("RefreshFailures %v, Rotations %d; want other:2, 1", st.RefreshFailures, st.Rotations)
		}
		st.RefreshFailures[FailureOther] = 100
		if c.Status().RefreshFailures[FailureOther] != 2 {
			t.Error("Status shares its RefreshFailures map")
		}
		ev, err := c.MaintenanceTracker().Observe("NotificationType|NodeMaintenanceStarting|StartTimeInUTC|2026-12-01T22:00:00", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c.ReportMaintenance(ev)
		synctest.Wait()
		select {
		case e := <-got:
			if e.Type != azevents.Starting {
				t.Errorf("OnMaintenance got %+v", e)
			}
		default:
			t.Fatal("OnMaintenance not called")
		}
		if m := c.Status().Maintenance; m.Next.Type != azevents.Starting || m.Counts[azevents.Starting] != 1 {
			t.Errorf("Status.Maintenance %+v", m)
		}
	})
}
