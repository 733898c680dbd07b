package alert

import (
	"math"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

const t0 = int64(1_764_400_000_000)

func online(id string, metrics telemetry.Metrics) Device {
	return Device{ID: id, State: fleet.Online, Metrics: metrics, Completeness: math.NaN(), SkewS: math.NaN()}
}

func cpu(v float64) telemetry.Metrics { return telemetry.Metrics{"cpu.percent": v} }

// step is one evaluation of a timeline: the device at second s, and the
// alert changes wanted ("" for none, else "state/severity").
type step struct {
	s    int64
	dev  Device
	want string
}

func run(t *testing.T, rules []Rule, steps []step) []hub.Alert {
	t.Helper()
	e, err := NewEngine(rules)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	var all []hub.Alert
	for _, st := range steps {
		got := e.Evaluate(t0+st.s*1000, []Device{st.dev})
		desc := ""
		if len(got) > 1 {
			t.Fatalf("at %ds: %d changes, want at most 1: %+v", st.s, len(got), got)
		}
		if len(got) == 1 {
			desc = got[0].State + "/" + got[0].Severity
			all = append(all, got[0])
		}
		if desc != st.want {
			t.Fatalf("at %ds (value %v, state %s): got %q, want %q", st.s, st.dev.Metrics, st.dev.State, desc, st.want)
		}
	}
	return all
}

func TestEngine_Evaluate(t *testing.T) {
	hot := Rule{Name: "cpu_hot", Metric: "cpu.percent", Op: ">", Warn: Level(80), Crit: Level(95), For: 10 * time.Second}
	t.Run("fires only after the level held for For", func(t *testing.T) {
		run(t, []Rule{hot}, []step{
			{0, online("pi", cpu(85)), ""},
			{5, online("pi", cpu(70)), ""}, // broke the run
			{6, online("pi", cpu(85)), ""},
			{15, online("pi", cpu(85)), ""},
			{16, online("pi", cpu(85)), "firing/warning"},
			{17, online("pi", cpu(85)), ""},
			{18, online("pi", cpu(80)), "resolved/warning"}, // not past 80
		})
	})
	t.Run("critical needs its own For and severity only rises", func(t *testing.T) {
		alerts := run(t, []Rule{hot}, []step{
			{0, online("pi", cpu(90)), ""},
			{10, online("pi", cpu(97)), "firing/warning"},
			{19, online("pi", cpu(97)), ""},
			{20, online("pi", cpu(97)), "firing/critical"},
			{21, online("pi", cpu(85)), ""}, // still firing, stays critical
			{22, online("pi", cpu(50)), "resolved/critical"},
		})
		if alerts[0].ID != alerts[1].ID || alerts[1].ID != alerts[2].ID {
			t.Errorf("ids %s %s %s, want one alert escalated and resolved", alerts[0].ID, alerts[1].ID, alerts[2].ID)
		}
		if got, want := alerts[1].Threshold, 95.0; got != want {
			t.Errorf("escalated threshold = %v, want %v", got, want)
		}
	})
	t.Run("hysteresis: resolves only past clear", func(t *testing.T) {
		r := hot
		r.Clear, r.For = Level(70), 0
		run(t, []Rule{r}, []step{
			{0, online("pi", cpu(81)), "firing/warning"},
			{1, online("pi", cpu(75)), ""},
			{2, online("pi", cpu(79)), ""},
			{3, online("pi", cpu(70)), "resolved/warning"},
			{4, online("pi", cpu(75)), ""},
		})
	})
	t.Run("below-threshold op", func(t *testing.T) {
		r := Rule{Name: "disk_low", Metric: "disk.free_percent", Op: "<", Crit: Level(10)}
		run(t, []Rule{r}, []step{
			{0, online("pi", telemetry.Metrics{"disk.free_percent": 12}), ""},
			{1, online("pi", telemetry.Metrics{"disk.free_percent": 9}), "firing/critical"},
			{2, online("pi", telemetry.Metrics{"disk.free_percent": 10}), "resolved/critical"},
		})
	})
	t.Run("a device that goes offline resolves its metric alerts", func(t *testing.T) {
		r := hot
		r.For = 0
		off := Device{ID: "pi", State: fleet.Offline, Reason: telemetry.ReasonLost, Metrics: cpu(99)}
		run(t, []Rule{r}, []step{
			{0, online("pi", cpu(99)), "firing/critical"},
			{1, off, "resolved/critical"},
			{2, off, ""},
		})
	})
	t.Run("offline fires on lost, not on a clean shutdown", func(t *testing.T) {
		rules := Builtins()[:1]
		lost := Device{ID: "pi", State: fleet.Offline, Reason: telemetry.ReasonLost}
		run(t, rules, []step{
			{0, lost, ""},
			{59, lost, ""},
			{60, lost, "firing/critical"},
			{61, online("pi", nil), "resolved/critical"},
		})
		shut := Device{ID: "pi", State: fleet.Offline, Reason: telemetry.ReasonShutdown}
		run(t, rules, []step{{0, shut, ""}, {600, shut, ""}})
		withShutdown := Builtins()[:1]
		withShutdown[0].Reasons = append(withShutdown[0].Reasons, telemetry.ReasonShutdown)
		run(t, withShutdown, []step{{0, shut, ""}, {60, shut, "firing/critical"}})
	})
	t.Run("stale after 2 minutes", func(t *testing.T) {
		stale := Device{ID: "pi", State: fleet.Stale}
		run(t, Builtins()[1:2], []step{{0, stale, ""}, {119, stale, ""}, {120, stale, "firing/warning"}, {121, online("pi", nil), "resolved/warning"}})
	})
	t.Run("completeness and clock skew", func(t *testing.T) {
		low := online("pi", nil)
		low.Completeness = 85
		run(t, Builtins()[2:3], []step{{0, low, ""}, {300, low, "firing/critical"}})
		skewed := online("pi", nil)
		skewed.SkewS = -45
		run(t, Builtins()[3:4], []step{{0, skewed, ""}, {60, skewed, "firing/warning"}})
		unknown := online("pi", nil) // NaN: never evaluated
		run(t, Builtins()[2:4], []step{{0, unknown, ""}, {900, unknown, ""}})
	})
	t.Run("scope and overrides", func(t *testing.T) {
		r := hot
		r.For = 0
		r.Tags = map[string]string{"site": "lab"}
		r.Overrides = map[string]Override{"pi-busy": {Warn: Level(99), Crit: Level(100)}, "pi-off": {Disabled: true}}
		lab := func(id string, v float64) Device {
			d := online(id, cpu(v))
			d.Tags = map[string]string{"site": "lab"}
			return d
		}
		run(t, []Rule{r}, []step{{0, online("pi-home", cpu(99)), ""}}) // not in scope
		run(t, []Rule{r}, []step{{0, lab("pi-busy", 98), ""}, {1, lab("pi-busy", 99.5), "firing/warning"}})
		run(t, []Rule{r}, []step{{0, lab("pi-off", 100), ""}})
		listed := r
		listed.Tags, listed.Devices = nil, []string{"pi-a"}
		run(t, []Rule{listed}, []step{{0, online("pi-b", cpu(99)), ""}, {1, online("pi-a", cpu(99)), "firing/critical"}})
	})
}

func TestEngine_Ack(t *testing.T) {
	e, err := NewEngine([]Rule{{Name: "hot", Metric: "cpu.percent", Op: ">", Warn: Level(80)}})
	if err != nil {
		t.Fatal(err)
	}
	fired := e.Evaluate(t0, []Device{online("pi", cpu(90))})
	if len(fired) != 1 {
		t.Fatalf("fired %d, want 1", len(fired))
	}
	if _, ok := e.Ack("nope", t0); ok {
		t.Error("Ack(unknown) succeeded, want false")
	}
	a, ok := e.Ack(fired[0].ID, t0+5000)
	if !ok || a.AckedAt != t0+5000 {
		t.Fatalf("Ack = %+v, %v; want acked at %d", a, ok, t0+5000)
	}
	if got := e.Firing(); len(got) != 1 || got[0].AckedAt != t0+5000 {
		t.Errorf("Firing() = %+v, want the acked alert", got)
	}
}

func TestEngine_Restore(t *testing.T) {
	rules := []Rule{{Name: "hot", Metric: "cpu.percent", Op: ">", Warn: Level(80), For: time.Minute}}
	e, _ := NewEngine(rules)
	e.Evaluate(t0, []Device{online("pi", cpu(90))})
	fired := e.Evaluate(t0+60_000, []Device{online("pi", cpu(90))})
	if len(fired) != 1 {
		t.Fatalf("fired %d, want 1", len(fired))
	}
	// A restarted hub: the alert keeps firing without a new For or id.
	again, _ := NewEngine(rules)
	if gone := again.Restore(fired, t0+61_000); len(gone) != 0 {
		t.Errorf("Restore resolved %+v, want nothing (the rule exists)", gone)
	}
	if got := again.Evaluate(t0+61_000, []Device{online("pi", cpu(90))}); len(got) != 0 {
		t.Errorf("after Restore: %+v, want no change", got)
	}
	got := again.Evaluate(t0+62_000, []Device{online("pi", cpu(10))})
	if len(got) != 1 || got[0].ID != fired[0].ID || got[0].State != hub.AlertResolved {
		t.Errorf("resolve after Restore = %+v, want %s resolved", got, fired[0].ID)
	}
	other, _ := NewEngine([]Rule{{Name: "cold", Metric: "cpu.percent", Op: "<", Warn: Level(1)}})
	gone := other.Restore(fired, t0+70_000)
	if len(gone) != 1 || gone[0].State != hub.AlertResolved || gone[0].ResolvedAt != t0+70_000 {
		t.Errorf("Restore of a removed rule's alert = %+v, want it resolved at %d", gone, t0+70_000)
	}
	if f := other.Firing(); len(f) != 0 {
		t.Errorf("Firing() = %+v, want none", f)
	}
}

func TestRule_Validate(t *testing.T) {
	ok := Rule{Name: "hot", Metric: "cpu.percent", Op: ">", Warn: Level(80), Crit: Level(90), Clear: Level(70)}
	tests := []struct {
		name    string
		edit    func(r *Rule)
		wantErr bool
	}{
		{"valid", func(*Rule) {}, false},
		{"no name", func(r *Rule) { r.Name = "" }, true},
		{"bad metric", func(r *Rule) { r.Metric = "CPU%" }, true},
		{"bad op", func(r *Rule) { r.Op = "=>" }, true},
		{"no level", func(r *Rule) { r.Warn, r.Crit = nil, nil }, true},
		{"warn past crit", func(r *Rule) { r.Warn = Level(95) }, true},
		{"clear still firing", func(r *Rule) { r.Clear = Level(85) }, true},
		{"negative for", func(r *Rule) { r.For = -time.Second }, true},
		{"unknown kind", func(r *Rule) { r.Kind = "cpu" }, true},
		{"metric on a built-in kind", func(r *Rule) { r.Kind = KindStale }, true},
		{"bad reason", func(r *Rule) { r.Reasons = []string{"crashed"} }, true},
		{"override past crit", func(r *Rule) { r.Overrides = map[string]Override{"pi": {Warn: Level(99)}} }, true},
		{"override for a bad id", func(r *Rule) { r.Overrides = map[string]Override{"bad id": {}} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			if err := r.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	for _, r := range Builtins() {
		if err := r.Validate(); err != nil {
			t.Errorf("built-in %s: %v", r.Name, err)
		}
	}
	if _, err := NewEngine([]Rule{ok, ok}); err == nil {
		t.Error("NewEngine with a duplicate name succeeded, want an error")
	}
}
