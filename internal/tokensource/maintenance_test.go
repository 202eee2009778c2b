package tokensource

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entraredis/entraredis/azevents"
	"github.com/entraredis/entraredis/entraredistest"
	"github.com/entraredis/entraredis/entratoken"
)

// TestStatusCountsReauthsFailuresAndPosts: ReportReauth(nil) counts an
// accepted re-AUTH, failed refreshes are counted by kind, and what a client
// layer posts (its maintenance events' OnMaintenance) runs on the event
// goroutine. (The maintenance events' Status is the client layers': see
// the root package's and rueidisentra's TestMaintenanceEvents.)
func TestStatusCountsReauthsFailuresAndPosts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		got := make(chan azevents.Event, 4)
		o := r.options(entratoken.Options{RefreshJitter: -1})
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
		if len(st.RefreshFailures) != 1 || st.RefreshFailures[entratoken.FailureOther] != 2 || st.Rotations != 1 {
			t.Errorf("RefreshFailures %v, Rotations %d; want other:2, 1", st.RefreshFailures, st.Rotations)
		}
		st.RefreshFailures[entratoken.FailureOther] = 100
		if c.Status().RefreshFailures[entratoken.FailureOther] != 2 {
			t.Error("Status shares its RefreshFailures map")
		}
		var tr azevents.Tracker
		ev, err := tr.Observe("NotificationType|NodeMaintenanceStarting|StartTimeInUTC|2026-12-01T22:00:00", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c.Post(func() { got <- ev })
		synctest.Wait()
		select {
		case e := <-got:
			if e.Type != azevents.Starting {
				t.Errorf("OnMaintenance got %+v", e)
			}
		default:
			t.Fatal("OnMaintenance not called")
		}
	})
}
