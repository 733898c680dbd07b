package boltstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
)

func TestStore_Alerts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetwatch.db")
	s := mustOpenAt(t, path)
	a := func(id, dev, state string, started int64) hub.Alert {
		return hub.Alert{ID: id, Rule: "hot", Device: dev, Severity: hub.SeverityWarning, State: state, StartedAt: started, UpdatedAt: started}
	}
	commit := func(alerts ...hub.Alert) {
		t.Helper()
		if _, err := s.Commit(&hub.Batch{Alerts: alerts}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	commit(a("0000000000000001", "pi-a", hub.AlertFiring, t0), a("0000000000000002", "pi-b", hub.AlertFiring, t0+1000))
	commit(a("0000000000000003", "pi-a", hub.AlertFiring, t0+2000))
	resolved := a("0000000000000001", "pi-a", hub.AlertResolved, t0) // the newest version wins
	resolved.ResolvedAt = t0 + 5000
	commit(resolved)

	ids := func(q hub.AlertQuery) []string {
		t.Helper()
		got, err := s.Alerts(q)
		if err != nil {
			t.Fatalf("Alerts(%+v): %v", q, err)
		}
		var out []string
		for _, a := range got {
			out = append(out, a.ID[15:])
		}
		return out
	}
	tests := []struct {
		name string
		q    hub.AlertQuery
		want string
	}{
		{"all, newest first", hub.AlertQuery{}, "321"},
		{"firing", hub.AlertQuery{State: hub.AlertFiring}, "32"},
		{"resolved", hub.AlertQuery{State: hub.AlertResolved}, "1"},
		{"one device", hub.AlertQuery{Device: "pi-a"}, "31"},
		{"limit", hub.AlertQuery{Limit: 2}, "32"},
		{"one by id", hub.AlertQuery{ID: "0000000000000001"}, "1"},
		{"an unknown id", hub.AlertQuery{ID: "00000000000000ff"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			for _, id := range ids(tt.q) {
				got += id
			}
			if got != tt.want {
				t.Errorf("ids = %q, want %q", got, tt.want)
			}
		})
	}
	s.Close()
	again := mustOpenAt(t, path)
	got, err := again.Alerts(hub.AlertQuery{State: hub.AlertResolved})
	if err != nil || len(got) != 1 || got[0].ResolvedAt != t0+5000 {
		t.Errorf("after reopen: %+v, %v; want the resolved alert kept", got, err)
	}
}

func TestStore_DeviceEvents(t *testing.T) {
	s := MustOpenStore(t)
	var evs []hub.DeviceEvent
	for i := range 10 {
		evs = append(evs, hub.DeviceEvent{Device: "pi-a", TS: t0 + int64(i)*1000, Type: hub.EventTypeState, State: []string{"online", "stale"}[i%2]})
	}
	evs = append(evs, hub.DeviceEvent{Device: "pi-a", TS: t0 + 9000, Type: hub.EventTypeReboot, HostBoot: t0}) // same ms as another
	evs = append(evs, hub.DeviceEvent{Device: "pi-b", TS: t0, Type: hub.EventTypeState, State: "online"})
	if _, err := s.Commit(&hub.Batch{Events: evs}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	tests := []struct {
		name      string
		device    string
		from, to  int64
		limit     int
		wantN     int
		wantFirst int64
	}{
		{"everything, newest first", "pi-a", 0, t0 + 100_000, 100, 11, t0 + 9000},
		{"a range, inclusive", "pi-a", t0 + 2000, t0 + 4000, 100, 3, t0 + 4000},
		{"limit", "pi-a", 0, t0 + 100_000, 4, 4, t0 + 9000},
		{"another device", "pi-b", 0, t0 + 100_000, 100, 1, t0},
		{"unknown device", "pi-z", 0, t0 + 100_000, 100, 0, 0},
		{"before everything", "pi-a", 0, t0 - 1, 100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.DeviceEvents(tt.device, tt.from, tt.to, tt.limit)
			if err != nil {
				t.Fatalf("DeviceEvents: %v", err)
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d events, want %d", len(got), tt.wantN)
			}
			for i := 1; i < len(got); i++ {
				if got[i].TS > got[i-1].TS {
					t.Errorf("event %d at %d after one at %d: want newest first", i, got[i].TS, got[i-1].TS)
				}
			}
			if tt.wantN > 0 && got[0].TS != tt.wantFirst {
				t.Errorf("first at %d, want %d", got[0].TS, tt.wantFirst)
			}
		})
	}
}

func TestStore_expireRecords(t *testing.T) {
	clk := newClock(t0)
	o := boltstore.Options{LockTimeout: testLock, Now: clk.Now, RawRetention: 10 * time.Minute, MinuteRetention: 40 * time.Minute, HourRetention: 16 * time.Hour}
	s := mustOpenWith(t, filepath.Join(t.TempDir(), "fleetwatch.db"), o)
	old := hub.Alert{ID: "00000000000000a1", Rule: "hot", Device: "pi", State: hub.AlertResolved, StartedAt: t0, ResolvedAt: t0 + 1000}
	stuck := hub.Alert{ID: "00000000000000a2", Rule: "hot", Device: "pi", State: hub.AlertFiring, StartedAt: t0}
	evs := []hub.DeviceEvent{{Device: "pi", TS: t0, Type: hub.EventTypeState, State: "online"}}
	if _, err := s.Commit(&hub.Batch{Alerts: []hub.Alert{old, stuck}, Events: evs}); err != nil {
		t.Fatal(err)
	}
	// Past the 1-minute tier's retention and the hourly sweep: a commit
	// (any) runs it.
	clk.Add(2 * time.Hour)
	recent := hub.DeviceEvent{Device: "pi", TS: clk.Now().UnixMilli(), Type: hub.EventTypeState, State: "stale"}
	if _, err := s.Commit(&hub.Batch{Events: []hub.DeviceEvent{recent}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Alerts(hub.AlertQuery{})
	if err != nil || len(got) != 1 || got[0].ID != stuck.ID {
		t.Errorf("alerts after expiry = %+v, %v; want only the firing one, however old", got, err)
	}
	left, err := s.DeviceEvents("pi", 0, clk.Now().UnixMilli(), 100)
	if err != nil || len(left) != 1 || left[0].State != "stale" {
		t.Errorf("events after expiry = %+v, %v; want only the recent one", left, err)
	}
}
