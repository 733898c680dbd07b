package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/alert"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// fakeAlerts is the alerter as the server sees it.
type fakeAlerts struct {
	FiringFunc func() []hub.Alert
	AckFunc    func(ctx context.Context, id string) (hub.Alert, error)
}

func (f *fakeAlerts) Firing() []hub.Alert { return f.FiringFunc() }
func (f *fakeAlerts) Ack(ctx context.Context, id string) (hub.Alert, error) {
	return f.AckFunc(ctx, id)
}

func TestServer_alerts(t *testing.T) {
	firing := hub.Alert{ID: "00000000000000f1", Rule: "hot", Device: "pi-a", Severity: hub.SeverityCritical, State: hub.AlertFiring, StartedAt: t0}
	other := hub.Alert{ID: "00000000000000f2", Rule: "hot", Device: "pi-b", Severity: hub.SeverityWarning, State: hub.AlertFiring, StartedAt: t0 - 1}
	past := hub.Alert{ID: "00000000000000e1", Rule: "hot", Device: "pi-a", Severity: hub.SeverityWarning, State: hub.AlertResolved, StartedAt: t0 - 10_000, ResolvedAt: t0 - 5000}
	var acked []string
	f := newFixture(t, func(s *web.Server) {
		s.Alerts = &fakeAlerts{
			FiringFunc: func() []hub.Alert { return []hub.Alert{firing, other} },
			AckFunc: func(_ context.Context, id string) (hub.Alert, error) {
				if id != firing.ID {
					return hub.Alert{}, alert.ErrNotFiring
				}
				acked = append(acked, id)
				a := firing
				a.AckedAt = t0 + 1
				return a, nil
			},
		}
	})
	if _, err := f.store.Commit(&hub.Batch{Alerts: []hub.Alert{past, firing}}); err != nil {
		t.Fatal(err)
	}
	list := func(path string) []string {
		t.Helper()
		resp, body := f.get(t, path)
		wantStatus(t, resp, body, http.StatusOK)
		var v struct{ Alerts []hub.Alert }
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var ids []string
		for _, a := range v.Alerts {
			ids = append(ids, a.ID)
		}
		return ids
	}
	tests := []struct {
		path string
		want []string
	}{
		{"/api/v1/alerts?state=firing", []string{firing.ID, other.ID}},
		{"/api/v1/alerts?state=firing&device=pi-b", []string{other.ID}},
		{"/api/v1/alerts?state=resolved", []string{past.ID}},
		{"/api/v1/alerts", []string{firing.ID, past.ID}}, // history: newest first
		{"/api/v1/alerts?state=all&limit=1", []string{firing.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := list(tt.path); !slices.Equal(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("bad parameters", func(t *testing.T) {
		for _, path := range []string{"/api/v1/alerts?state=loud", "/api/v1/alerts?limit=0", "/api/v1/alerts?limit=x", "/api/v1/alerts?device=bad%20id"} {
			resp, body := f.get(t, path)
			wantJSONError(t, resp, body, http.StatusBadRequest)
		}
	})
	t.Run("ack", func(t *testing.T) {
		resp, body := f.post(t, "/api/v1/alerts/"+firing.ID+"/ack")
		wantStatus(t, resp, body, http.StatusOK)
		var a hub.Alert
		if err := json.Unmarshal(body, &a); err != nil || a.AckedAt == 0 {
			t.Errorf("ack answered %s (%v), want the acked alert", body, err)
		}
		resp, body = f.post(t, "/api/v1/alerts/"+past.ID+"/ack")
		wantJSONError(t, resp, body, http.StatusConflict)
		resp, body = f.post(t, "/api/v1/alerts/00000000000000ff/ack")
		wantJSONError(t, resp, body, http.StatusNotFound)
		resp, body = f.post(t, "/api/v1/alerts/xyz/ack")
		wantJSONError(t, resp, body, http.StatusBadRequest)
		resp, body = f.post(t, "/api/v1/alerts/"+firing.ID+"/ack", "Origin", "https://evil.example")
		wantJSONError(t, resp, body, http.StatusForbidden)
		if len(acked) != 1 {
			t.Errorf("alerter saw %d acks, want 1 (the foreign origin's refused before it)", len(acked))
		}
	})
}

func TestServer_deviceEvents(t *testing.T) {
	f := newFixture(t)
	f.status(t, "pi-a", online())
	evs := []hub.DeviceEvent{
		{Device: "pi-a", TS: t0 + 1000, Type: hub.EventTypeState, State: "online"},
		{Device: "pi-a", TS: t0 + 2000, Type: hub.EventTypeReboot, HostBoot: t0 + 1500},
	}
	if _, err := f.store.Commit(&hub.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	resp, body := f.get(t, "/api/v1/devices/pi-a/events?from=0")
	wantStatus(t, resp, body, http.StatusOK)
	var v struct {
		Device string
		Events []hub.DeviceEvent
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Device != "pi-a" || len(v.Events) != 2 || v.Events[0].Type != hub.EventTypeReboot {
		t.Errorf("timeline = %s, want the reboot then the state change", body)
	}
	for path, status := range map[string]int{
		"/api/v1/devices/pi-z/events":                 http.StatusNotFound,
		"/api/v1/devices/pi-a/events?from=x":          http.StatusBadRequest,
		"/api/v1/devices/pi-a/events?limit=100000":    http.StatusBadRequest,
		"/api/v1/devices/pi-a/events?from=now&to=-1h": http.StatusBadRequest,
	} {
		resp, body := f.get(t, path)
		wantJSONError(t, resp, body, status)
	}
}
