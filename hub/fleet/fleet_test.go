package fleet

import (
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestState(t *testing.T) {
	const (
		now      = int64(1_764_368_400_000)
		interval = int64(10_000)
	)
	tests := []struct {
		name       string
		p          Presence
		wantState  string
		wantReason string
	}{
		{"online, fresh reading",
			Presence{Status: telemetry.StateOnline, LastSeen: now - 1000, OnlineAt: now - 60_000, IntervalMS: interval},
			Online, ""},
		{"online, silent exactly 3 intervals",
			Presence{Status: telemetry.StateOnline, LastSeen: now - StaleAfter*interval, IntervalMS: interval},
			Online, ""},
		{"stale after 3 intervals",
			Presence{Status: telemetry.StateOnline, LastSeen: now - StaleAfter*interval - 1, IntervalMS: interval},
			Stale, ""},
		{"stale uses the default interval when unknown",
			Presence{Status: telemetry.StateOnline, LastSeen: now - StaleAfter*DefaultIntervalMS - 1},
			Stale, ""},
		{"online within the default interval",
			Presence{Status: telemetry.StateOnline, LastSeen: now - StaleAfter*DefaultIntervalMS},
			Online, ""},
		{"negative interval means the default",
			Presence{Status: telemetry.StateOnline, LastSeen: now - 2*DefaultIntervalMS, IntervalMS: -5},
			Online, ""},
		{"offline lost (last will)",
			Presence{Status: telemetry.StateOffline, Reason: telemetry.ReasonLost, LastSeen: now - 10, IntervalMS: interval},
			Offline, telemetry.ReasonLost},
		{"offline shutdown wins over fresh readings",
			Presence{Status: telemetry.StateOffline, Reason: telemetry.ReasonShutdown, LastSeen: now, OnlineAt: now},
			Offline, telemetry.ReasonShutdown},
		{"never-status device reporting is online",
			Presence{LastSeen: now - 1000},
			Online, ""},
		{"never-status device silent is offline by timeout",
			Presence{LastSeen: now - StaleAfter*DefaultIntervalMS - 1},
			Offline, telemetry.ReasonTimeout},
		{"never-status device never seen is offline by timeout",
			Presence{},
			Offline, telemetry.ReasonTimeout},
		{"online status without readings yet: grace from OnlineAt",
			Presence{Status: telemetry.StateOnline, OnlineAt: now - interval, IntervalMS: interval},
			Online, ""},
		{"online status without readings, grace over",
			Presence{Status: telemetry.StateOnline, OnlineAt: now - StaleAfter*interval - 1, IntervalMS: interval},
			Stale, ""},
		{"recent reconnect rescues an old reading",
			Presence{Status: telemetry.StateOnline, LastSeen: now - 100*interval, OnlineAt: now - 1, IntervalMS: interval},
			Online, ""},
		{"online status with nothing known is stale",
			Presence{Status: telemetry.StateOnline},
			Stale, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, reason := State(tt.p, now)
			if state != tt.wantState || reason != tt.wantReason {
				t.Errorf("State(%+v) = %q, %q; want %q, %q", tt.p, state, reason, tt.wantState, tt.wantReason)
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		name                          string
		states                        []string
		total, online, stale, offline int
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one of each", []string{Online, Stale, Offline}, 3, 1, 1, 1},
		{"all online", []string{Online, Online}, 2, 2, 0, 0},
		{"unknown state counts as offline", []string{"", "weird", Stale}, 3, 0, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs := make([]Device, len(tt.states))
			for i, s := range tt.states {
				devs[i] = Device{ID: string(rune('a' + i)), State: s}
			}
			got := Count(devs)
			if got.Total != tt.total || got.Online != tt.online || got.Stale != tt.stale || got.Offline != tt.offline || len(got.Metrics) != 0 {
				t.Errorf("Count(%v) = %+v, want total %d online %d stale %d offline %d", tt.states, got, tt.total, tt.online, tt.stale, tt.offline)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	devs := []Device{
		{ID: "a", State: Online, Metrics: telemetry.Metrics{"cpu.percent": 10}},
		{ID: "b", State: Online, Metrics: telemetry.Metrics{"cpu.percent": 30}},
		{ID: "c", State: Offline, Metrics: telemetry.Metrics{"cpu.percent": 99}}, // not online: not aggregated
	}
	s := Summarize(devs, 1)
	cpu := s.Metrics["cpu.percent"]
	if s.Total != 3 || s.Online != 2 || cpu.Count != 2 || cpu.Avg != 20 || cpu.MaxDevice != "b" || len(cpu.Top) != 1 {
		t.Errorf("Summarize = %+v (cpu %+v), want 3 devices, cpu over a and b only: avg 20, max b, top 1", s, cpu)
	}
}

func TestSortDevices(t *testing.T) {
	devs := []Device{{ID: "pi-c"}, {ID: "pi-a"}, {ID: "Pi-b"}, {ID: "pi-b"}}
	SortDevices(devs)
	want := []string{"Pi-b", "pi-a", "pi-b", "pi-c"}
	for i, d := range devs {
		if got := d.ID; got != want[i] {
			t.Errorf("devs[%d] = %q, want %q", i, got, want[i])
		}
	}
}
