package hub_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

const t0 = int64(1_764_368_400_000)

// env returns an envelope of device and boot with seqs stamped at
// tsBase+seq seconds and cpu.percent=seq.
func env(device, boot string, tsBase int64, seqs ...uint64) *telemetry.Envelope {
	e := &telemetry.Envelope{V: telemetry.Version, Device: device, Boot: boot}
	for _, s := range seqs {
		e.Readings = append(e.Readings, telemetry.Reading{Seq: s, TS: tsBase + int64(s)*1000, Metrics: telemetry.Metrics{"cpu.percent": float64(s)}})
	}
	return e
}

func seqsOf(rs []telemetry.Reading) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

func onlineStatus(interval int64) telemetry.Status {
	return telemetry.Status{
		V: telemetry.Version, State: telemetry.StateOnline, Boot: "b1",
		Hostname: "kitchen", Model: "Raspberry Pi 4 Model B", Arch: "arm64", IntervalMS: interval,
	}
}

func TestRegistry_ObserveTelemetry(t *testing.T) {
	const later = t0 + 3_600_000 // a new boot's clock is an hour on
	simple := func(ts int64) *telemetry.Envelope {
		return &telemetry.Envelope{V: 1, Device: "pi-a", Simple: true, Readings: []telemetry.Reading{{TS: ts, Metrics: telemetry.Metrics{"cpu.percent": 99}}}}
	}
	type step struct {
		name      string
		env       *telemetry.Envelope
		wantFresh []uint64
		wantBoot  string
		wantSeq   uint64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"same boot", []step{
			{"first readings", env("pi-a", "b1", t0, 1, 2), []uint64{1, 2}, "b1", 2},
			{"redelivery", env("pi-a", "b1", t0, 1, 2), nil, "b1", 2},
			{"overlap", env("pi-a", "b1", t0, 2, 3), []uint64{3}, "b1", 3},
			{"older backlog after a hole", env("pi-a", "b1", t0, 5, 4), []uint64{5}, "b1", 5},
		}},
		{"boots", []step{
			{"old boot", env("pi-a", "b1", t0, 7, 8), []uint64{7, 8}, "b1", 8},
			{"new boot resets seq", env("pi-a", "b2", later, 1, 2), []uint64{1, 2}, "b2", 2},
			{"old boot's backlog is not live", env("pi-a", "b1", t0, 9, 10), nil, "b2", 2},
			{"new boot continues", env("pi-a", "b2", later, 3), []uint64{3}, "b2", 3},
		}},
		{"simple form", []step{
			{"first", simple(t0), []uint64{0}, "", 0},
			{"same instant", simple(t0), nil, "", 0},
			{"older", simple(t0 - 1), nil, "", 0},
			{"newer", simple(t0 + 1), []uint64{0}, "", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hub.NewRegistry(nil)
			for _, st := range tt.steps {
				fresh := r.ObserveTelemetry(st.env, t0)
				rec, _ := r.Device(st.env.Device)
				if got := seqsOf(fresh); !slices.Equal(got, st.wantFresh) {
					t.Errorf("%s: fresh seqs = %v, want %v", st.name, got, st.wantFresh)
				}
				if rec.Boot != st.wantBoot || rec.Seq != st.wantSeq {
					t.Errorf("%s: record boot/seq = %q/%d, want %q/%d", st.name, rec.Boot, rec.Seq, st.wantBoot, st.wantSeq)
				}
				if len(fresh) > 0 {
					last := fresh[len(fresh)-1]
					if rec.LastSeen != last.TS || !maps.Equal(rec.Metrics, last.Metrics) {
						t.Errorf("%s: record last_seen/metrics = %d %v, want those of the newest fresh reading %d %v", st.name, rec.LastSeen, rec.Metrics, last.TS, last.Metrics)
					}
				}
			}
		})
	}
}

func TestRegistry_Device(t *testing.T) {
	r := hub.NewRegistry([]hub.DeviceRecord{{ID: "pi-a", Tags: map[string]string{"site": "home"}, Seq: 4, Boot: "b1"}})
	if _, ok := r.Device("pi-zz"); ok {
		t.Error(`Device("pi-zz") found a device that never reported`)
	}
	rec, ok := r.Device("pi-a")
	if !ok {
		t.Fatal(`Device("pi-a") not found, want the record loaded by NewRegistry`)
	}
	if rec.Seq != 4 || rec.Tags["site"] != "home" {
		t.Errorf("Device(pi-a) = %+v, want the loaded record", rec)
	}
	rec.Tags["site"] = "mutated" // a copy: the registry must not change
	again, _ := r.Device("pi-a")
	if got, want := again.Tags["site"], "home"; got != want {
		t.Errorf("tag after mutating a returned record = %q, want %q", got, want)
	}
	// A loaded record continues its boot: a redelivery is not fresh.
	fresh := r.ObserveTelemetry(env("pi-a", "b1", t0, 3, 4, 5), t0)
	if got, want := seqsOf(fresh), []uint64{5}; !slices.Equal(got, want) {
		t.Errorf("fresh seqs after reload = %v, want %v", got, want)
	}
}

func TestRegistry_Snapshot(t *testing.T) {
	const interval = 1000
	r := hub.NewRegistry(nil)

	s1 := r.Snapshot(t0)
	if s1.Devices == nil || len(s1.Devices) != 0 || s1.Summary.Total != 0 || len(s1.Summary.Metrics) != 0 {
		t.Errorf("empty snapshot = %+v, want no devices (non-nil) and a zero summary", s1)
	}
	body, _ := json.Marshal(s1)
	if !strings.Contains(string(body), `"devices":[]`) {
		t.Errorf("empty snapshot encodes as %s, want \"devices\":[]", body)
	}
	if s := r.Snapshot(t0 + 10); s != s1 || s.Version != s1.Version {
		t.Errorf("snapshot without change: version %d → %d, want the same snapshot", s1.Version, s.Version)
	}

	r.ObserveStatus("pi-a", onlineStatus(interval), t0)
	s2 := r.Snapshot(t0)
	if s2.Version <= s1.Version {
		t.Errorf("version after a status = %d, want > %d", s2.Version, s1.Version)
	}
	r.ObserveTelemetry(env("pi-a", "b1", t0, 1), t0)
	s3 := r.Snapshot(t0 + 1000)
	if s3.Version <= s2.Version {
		t.Errorf("version after a fresh reading = %d, want > %d", s3.Version, s2.Version)
	}
	if got, want := s3.Devices[0].State, fleet.Online; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
	if cpu := s3.Summary.Metrics["cpu.percent"]; cpu.Count != 1 || cpu.Max != 1 || cpu.MaxDevice != "pi-a" {
		t.Errorf("summary cpu.percent = %+v, want pi-a's 1", cpu)
	}

	r.ObserveTelemetry(env("pi-a", "b1", t0, 1), t0) // redelivery: no change
	if s := r.Snapshot(t0 + 1000); s.Version != s3.Version {
		t.Errorf("version after a redelivery = %d, want %d", s.Version, s3.Version)
	}

	lastSeen := t0 + 1000
	stale := r.Snapshot(lastSeen + fleet.StaleAfter*interval + 1) // only time passed
	if stale.Version <= s3.Version {
		t.Errorf("version after going stale = %d, want > %d", stale.Version, s3.Version)
	}
	if got, want := stale.Devices[0].State, fleet.Stale; got != want {
		t.Errorf("state after %d silent intervals = %q, want %q", fleet.StaleAfter, got, want)
	}
	if got := stale.Summary; got.Total != 1 || got.Stale != 1 || got.Online != 0 || len(got.Metrics) != 0 {
		t.Errorf("summary = %+v, want 1 stale device and no metrics (only online devices are aggregated)", got)
	}
	if s := r.Snapshot(lastSeen + 10*interval); s.Version != stale.Version {
		t.Errorf("version while staying stale = %d, want %d", s.Version, stale.Version)
	}

	r.ObserveTelemetry(&telemetry.Envelope{V: 1, Device: "pi-a", Boot: "b1", Tags: map[string]string{"site": "home"},
		Readings: []telemetry.Reading{{Seq: 1, TS: t0 + 1000, Metrics: telemetry.Metrics{"cpu.percent": 1}}}}, t0)
	tagged := r.Snapshot(lastSeen + 10*interval)
	if tagged.Version <= stale.Version {
		t.Errorf("version after new tags = %d, want > %d", tagged.Version, stale.Version)
	}
	if got := tagged.Devices[0].Tags["site"]; got != "home" {
		t.Errorf("tag site = %q, want %q", got, "home")
	}
}

func TestRegistry_SnapshotOrder(t *testing.T) {
	r := hub.NewRegistry(nil)
	for _, id := range []string{"pi-c", "pi-a", "pi-b"} {
		r.ObserveTelemetry(env(id, "b1", t0, 1), t0)
	}
	s := r.Snapshot(t0)
	var ids []string
	for _, d := range s.Devices {
		ids = append(ids, d.ID)
		if d.Tags == nil || d.Metrics == nil {
			t.Errorf("device %s has nil tags or metrics, want empty objects", d.ID)
		}
	}
	if want := []string{"pi-a", "pi-b", "pi-c"}; !slices.Equal(ids, want) {
		t.Errorf("device order = %v, want %v", ids, want)
	}
}

func TestRegistry_ObserveStatus(t *testing.T) {
	r := hub.NewRegistry(nil)
	online := onlineStatus(5000)
	rec := r.ObserveStatus("pi-a", online, t0)
	if rec.OnlineAt != t0 || rec.Status != online {
		t.Errorf("record after online = %+v, want status %+v online at %d", rec, online, t0)
	}

	rec = r.ObserveStatus("pi-a", telemetry.Offline(telemetry.ReasonLost), t0+5000)
	want := online
	want.State, want.Reason = telemetry.StateOffline, telemetry.ReasonLost
	if rec.Status != want {
		t.Errorf("status after offline = %+v, want the inventory kept: %+v", rec.Status, want)
	}
	if rec.OnlineAt != t0 {
		t.Errorf("online_at after offline = %d, want %d", rec.OnlineAt, t0)
	}
	if state, reason := hub.StateOf(&rec, t0+5000); state != fleet.Offline || reason != telemetry.ReasonLost {
		t.Errorf("StateOf = %q, %q; want %q, %q", state, reason, fleet.Offline, telemetry.ReasonLost)
	}
	// Readings (a backlog) do not bring a device back online.
	r.ObserveTelemetry(env("pi-a", "b1", t0, 9), t0+9000)
	if d := r.Snapshot(t0 + 9000).Devices[0]; d.State != fleet.Offline {
		t.Errorf("state after readings from an offline device = %q, want %q", d.State, fleet.Offline)
	}

	rec = r.ObserveStatus("pi-a", online, t0+10_000)
	if rec.OnlineAt != t0+10_000 || rec.Status.Reason != "" || rec.Status.State != telemetry.StateOnline {
		t.Errorf("record after coming back = %+v, want online again at %d", rec, t0+10_000)
	}

	// An offline status of an unknown device creates it, offline.
	rec = r.ObserveStatus("pi-new", telemetry.Offline(telemetry.ReasonShutdown), t0)
	if rec.ID != "pi-new" || rec.Status.State != telemetry.StateOffline {
		t.Errorf("record of a new offline device = %+v", rec)
	}
}

func TestRegistry_BroadcastFleet(t *testing.T) {
	r := hub.NewRegistry(nil)
	f := hub.NewFeed(hub.FeedOptions{})
	sub := f.SubscribeAll(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.BroadcastFleet(ctx, f, 5*time.Millisecond, func() time.Time { return time.UnixMilli(t0) })
	}()
	defer func() { cancel(); <-done }()

	decode := func(ev *hub.Event) fleet.Snapshot {
		t.Helper()
		if ev.Type != hub.EventFleet || ev.Channel != hub.ChannelFleet {
			t.Fatalf("event %s on %s, want %s on %s", ev.Type, ev.Channel, hub.EventFleet, hub.ChannelFleet)
		}
		var s fleet.Snapshot
		if err := json.Unmarshal(ev.Data, &s); err != nil {
			t.Fatalf("fleet event data %s: %v", ev.Data, err)
		}
		return s
	}
	first := decode(recv(t, sub))
	if got := first.Summary.Total; got != 0 || first.Full {
		t.Errorf("first broadcast: %d devices, full %v; want 0, a delta", got, first.Full)
	}
	// Every tick broadcasts, changed or not: a heartbeat with the counts.
	time.Sleep(30 * time.Millisecond)
	for ev := sub.Pop(); ev != nil; ev = sub.Pop() {
		if d := decode(ev); len(d.Devices) != 0 {
			t.Fatalf("broadcast without a change lists %d devices, want none", len(d.Devices))
		}
	}

	r.ObserveTelemetry(env("pi-a", "b1", t0, 1), t0)
	second := decode(recv(t, sub))
	if second.Version <= first.Version || second.Summary.Total != 1 || len(second.Devices) != 1 || second.Devices[0].ID != "pi-a" {
		t.Errorf("broadcast after a new device = %+v, want a newer version listing pi-a", second)
	}
	// A reading that changes no state: the next broadcast lists nobody
	// (the reading itself goes out on the device channel).
	r.ObserveTelemetry(env("pi-a", "b1", t0, 2), t0)
	time.Sleep(15 * time.Millisecond)
	for ev := sub.Pop(); ev != nil; ev = sub.Pop() {
		if d := decode(ev); len(d.Devices) != 0 {
			t.Fatalf("broadcast after a plain reading lists %+v, want nobody", d.Devices)
		}
	}
	if full := r.Snapshot(t0); !full.Full || len(full.Devices) != 1 {
		t.Errorf("Snapshot = %+v, want the full fleet", full)
	}
}

func TestRegistry_TakeEvents(t *testing.T) {
	r := hub.NewRegistry(nil)
	st := onlineStatus(1000)
	st.HostBoot = t0 - 3_600_000
	r.ObserveStatus("pi-a", st, t0)
	r.ObserveTelemetry(env("pi-a", "b1", t0, 1), t0+1000)
	r.Snapshot(t0 + 1000) // no change: the status noted it online
	r.Snapshot(t0 + 2000)
	r.Snapshot(t0 + 10_000) // silent for 3 intervals: stale
	r.ObserveStatus("pi-a", telemetry.Offline(telemetry.ReasonLost), t0+11_000)
	r.Snapshot(t0 + 11_500)
	rebooted := st
	rebooted.HostBoot = t0 + 11_800
	r.ObserveStatus("pi-a", rebooted, t0+12_000)
	r.Snapshot(t0 + 12_000)

	got := r.TakeEvents()
	want := []hub.DeviceEvent{
		{Device: "pi-a", TS: t0, Type: hub.EventTypeState, State: fleet.Online}, // first seen: no From
		// Stale is dated when it began: the last reading plus 3 intervals.
		{Device: "pi-a", TS: t0 + 1000 + 3*1000 + 1, Type: hub.EventTypeState, State: fleet.Stale, From: fleet.Online},
		// A status changes the state when it arrives.
		{Device: "pi-a", TS: t0 + 11_000, Type: hub.EventTypeState, State: fleet.Offline, Reason: telemetry.ReasonLost, From: fleet.Stale},
		{Device: "pi-a", TS: t0 + 12_000, Type: hub.EventTypeReboot, HostBoot: t0 + 11_800},
		{Device: "pi-a", TS: t0 + 12_000, Type: hub.EventTypeState, State: fleet.Online, From: fleet.Offline},
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %+v\nwant %+v", got, want)
	}
	if again := r.TakeEvents(); len(again) != 0 {
		t.Errorf("second TakeEvents = %+v, want none", again)
	}
	if d := r.Snapshot(t0 + 12_000).Devices[0]; d.RebootedAt != t0+12_000 {
		t.Errorf("rebooted_at = %d, want %d: the fleet view marks the reboot", d.RebootedAt, t0+12_000)
	}
}

func TestRegistry_clockSkew(t *testing.T) {
	r := hub.NewRegistry(nil)
	r.ObserveTelemetry(env("pi-a", "b1", t0, 1), t0+1000+45_000) // its clock 45 s behind
	d := r.Snapshot(t0 + 50_000).Devices[0]
	if d.ClockSkewMS == nil || *d.ClockSkewMS != -45_000 {
		t.Errorf("clock skew = %v, want -45000", d.ClockSkewMS)
	}
	r.ObserveTelemetry(env("pi-b", "b1", t0, 1), t0+1000)
	if d := r.Snapshot(t0 + 2000).Devices[1]; d.ClockSkewMS == nil || *d.ClockSkewMS != 0 {
		t.Errorf("clock skew of a synced device = %v, want 0", d.ClockSkewMS)
	}
}

func TestRegistry_Summary(t *testing.T) {
	r := hub.NewRegistry(nil)
	for i, dev := range []string{"pi-a", "pi-b", "pi-c"} {
		e := env(dev, "b1", t0, uint64(10*(i+1))) // cpu.percent 10, 20, 30
		e.Tags = map[string]string{"site": []string{"lab", "lab", "home"}[i]}
		r.ObserveStatus(dev, onlineStatus(60_000), t0)
		r.ObserveTelemetry(e, t0+1000)
	}
	now := t0 + 30_000 // all three stamped t0+10..30 s: fresh
	sum := r.Summary(now, 2)
	cpu := sum.Metrics["cpu.percent"]
	if sum.Online != 3 || cpu.Count != 3 || cpu.Avg != 20 || cpu.P50 != 20 || cpu.MaxDevice != "pi-c" || len(cpu.Top) != 2 || cpu.Top[1].Device != "pi-b" {
		t.Errorf("Summary = %+v, cpu %+v; want 3 online, avg 20, p50 20, max pi-c, top pi-c, pi-b", sum, cpu)
	}
	by := r.SummaryBy(now, "site", 5)
	if lab := by["lab"].Metrics["cpu.percent"]; by["lab"].Total != 2 || lab.Avg != 15 || by["home"].Total != 1 {
		t.Errorf("SummaryBy(site) = %+v, want lab: 2 devices avg 15, home: 1", by)
	}
	// A device that goes offline leaves the aggregates at once.
	r.ObserveStatus("pi-c", telemetry.Offline(telemetry.ReasonLost), now)
	if cpu := r.Summary(now, 5).Metrics["cpu.percent"]; cpu.Count != 2 || cpu.Max != 20 {
		t.Errorf("after pi-c went offline: cpu %+v, want pi-a and pi-b only", cpu)
	}
	r.SetHeadline([]string{"mem.used_percent"})
	if m := r.Snapshot(now).Summary.Metrics; len(m) != 0 {
		t.Errorf("snapshot metrics with a headline nobody reports = %v, want none", m)
	}
}
