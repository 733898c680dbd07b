package hub

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

// Registry is the hub's in-memory view of every device: latest values,
// presence and inventory. It is the live path's state: updated as messages
// arrive, before they are committed.
type Registry struct {
	mu      sync.Mutex
	devices map[string]*DeviceRecord
	version uint64
	// states remembers the state each device had in the last snapshot, so
	// time-driven changes (online → stale) bump the version too.
	states map[string]string
	// moved holds the devices the next fleet broadcast lists: new ones,
	// and those whose state, reason or tags changed.
	moved   map[string]bool
	snap    *fleet.Snapshot
	changed bool
	// skew is each device's clock offset at its newest reading, ms.
	skew map[string]int64
	// events are timeline entries not yet taken for the store.
	events []DeviceEvent
	// agg aggregates the metrics of the online devices; headline are
	// those a snapshot carries. Readings only mark their device in
	// aggDirty: the next snapshot (each second) applies them, off the MQTT
	// handler's path and once however often a device reported.
	agg      *fleet.Aggregator
	aggDirty map[string]bool
	headline []string
}

// NewRegistry returns a registry holding recs (from the store).
func NewRegistry(recs []DeviceRecord) *Registry {
	r := &Registry{devices: make(map[string]*DeviceRecord, len(recs)), states: map[string]string{}, moved: map[string]bool{}, changed: true, skew: map[string]int64{},
		agg: fleet.NewAggregator(fleet.DefaultTopN), aggDirty: map[string]bool{}, headline: fleet.DefaultHeadline}
	for i := range recs {
		rec := recs[i]
		r.devices[rec.ID] = &rec
	}
	return r
}

// ObserveTelemetry applies a validated envelope received at now (ms). It
// returns the readings newer than any seen before, for the live feed (a
// replayed backlog or a redelivery updates nothing live).
func (r *Registry) ObserveTelemetry(env *telemetry.Envelope, now int64) (fresh []telemetry.Reading) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.device(env.Device)
	if env.Tags != nil && !maps.Equal(env.Tags, d.Tags) {
		d.Tags = maps.Clone(env.Tags)
		r.changed = true
		r.moved[d.ID] = true
	}
	for _, rd := range env.Readings {
		newer := rd.TS > d.LastSeen
		if !env.Simple && env.Boot == d.Boot {
			newer = rd.Seq > d.Seq
		} else if !env.Simple && d.Boot != "" && rd.TS <= d.LastSeen {
			newer = false // an older boot's backlog
		}
		if !newer {
			continue
		}
		if !env.Simple {
			d.Boot, d.Seq = env.Boot, rd.Seq
		}
		d.LastSeen = rd.TS
		d.Metrics = rd.Metrics
		r.skew[d.ID] = rd.TS - now
		fresh = append(fresh, rd)
		r.changed = true
	}
	if len(fresh) > 0 {
		r.track(d, now, false)
		r.aggDirty[d.ID] = true
	}
	// A device that reports again after a timeout is back online; one that
	// said offline stays so until it says online again (its readings may be
	// a backlog replayed by another process).
	return fresh
}

// ObserveStatus applies a validated status received at now (ms) and returns
// the record to persist.
func (r *Registry) ObserveStatus(device string, st telemetry.Status, now int64) DeviceRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.device(device)
	if st.State == telemetry.StateOnline {
		if prev := d.Status.HostBoot; prev != 0 && st.HostBoot != 0 && st.HostBoot != prev {
			r.note(DeviceEvent{Device: device, TS: now, Type: EventTypeReboot, HostBoot: st.HostBoot})
			d.RebootedAt = now
			r.moved[device] = true
		}
		d.Status = st
		d.OnlineAt = now
	} else {
		// Keep the inventory of the last online status: an offline device
		// is still a Raspberry Pi 4 in the kitchen.
		inv := d.Status
		inv.V, inv.State, inv.Reason = st.V, st.State, st.Reason
		d.Status = inv
	}
	r.changed = true
	r.track(d, now, false)
	return cloneRecord(d)
}

func (r *Registry) device(id string) *DeviceRecord {
	d, ok := r.devices[id]
	if !ok {
		d = &DeviceRecord{ID: id}
		r.devices[id] = d
		r.moved[id] = true
	}
	return d
}

// Device returns the record of id.
func (r *Registry) Device(id string) (DeviceRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.devices[id]
	if !ok {
		return DeviceRecord{}, false
	}
	return cloneRecord(d), true
}

// StateOf returns the state of a record at now (ms).
func StateOf(d *DeviceRecord, now int64) (state, reason string) {
	return fleet.State(fleet.Presence{
		Status:     d.Status.State,
		Reason:     d.Status.Reason,
		LastSeen:   d.LastSeen,
		OnlineAt:   d.OnlineAt,
		IntervalMS: d.Status.IntervalMS,
	}, now)
}

// Snapshot returns the fleet at now (ms). The version grows whenever a
// device changes, including state changes that only time causes; between
// changes the same snapshot (same ts, same bytes) is returned.
func (r *Registry) Snapshot(now int64) *fleet.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshot(now)
}

func (r *Registry) snapshot(now int64) *fleet.Snapshot {
	devs := make([]fleet.Device, 0, len(r.devices))
	for _, d := range r.devices {
		state, reason := r.track(d, now, true)
		if r.aggDirty[d.ID] {
			delete(r.aggDirty, d.ID)
			if state == fleet.Online {
				r.agg.Set(d.ID, d.Metrics)
			}
		}
		tags := d.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		metrics := d.Metrics
		if metrics == nil {
			metrics = telemetry.Metrics{}
		}
		dev := fleet.Device{ID: d.ID, State: state, Reason: reason, LastSeen: d.LastSeen, Metrics: metrics, Tags: tags, RebootedAt: d.RebootedAt}
		if sk, ok := r.skew[d.ID]; ok {
			dev.ClockSkewMS = &sk
		}
		devs = append(devs, dev)
	}
	if !r.changed && r.snap != nil {
		return r.snap
	}
	r.changed = false
	r.version++
	fleet.SortDevices(devs)
	sum := fleet.Count(devs)
	stats := r.agg.Stats()
	for _, m := range r.headline {
		if st, ok := stats[m]; ok {
			sum.Metrics[m] = st
		}
	}
	r.snap = &fleet.Snapshot{Version: r.version, TS: now, Full: true, Devices: devs, Summary: sum}
	return r.snap
}

// track notes d's state at now in its timeline if it changed since the
// last note. Messages (a status, readings) change it when they arrive;
// time changes it (online to stale or timed out) when a snapshot looks,
// and such a change is dated when it began. The first state of a hub's run
// is noted too, with no From: it is what the hub found, not a change.
func (r *Registry) track(d *DeviceRecord, now int64, byTime bool) (state, reason string) {
	state, reason = StateOf(d, now)
	prev, known := r.states[d.ID]
	if prev == state+"/"+reason {
		return state, reason
	}
	r.states[d.ID] = state + "/" + reason
	r.changed = true
	r.moved[d.ID] = true
	if state == fleet.Online {
		r.agg.Set(d.ID, d.Metrics)
	} else {
		r.agg.Remove(d.ID)
	}
	from, _, _ := strings.Cut(prev, "/")
	ev := DeviceEvent{Device: d.ID, TS: now, Type: EventTypeState, State: state, Reason: reason, From: from}
	if byTime && known && (state == fleet.Stale || reason == telemetry.ReasonTimeout) {
		ev.TS = min(now, changedAt(d, now))
	}
	r.note(ev)
	return state, reason
}

// SetHeadline sets the metrics a snapshot's summary carries.
func (r *Registry) SetHeadline(metrics []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headline = slices.Clone(metrics)
	r.changed = true
}

// Summary returns the fleet's counts at now and the aggregates of every
// metric over the online devices, with topN devices per metric: up to
// fleet.DefaultTopN from the running aggregates, more computed.
func (r *Registry) Summary(now int64, topN int) fleet.Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.snapshot(now)
	if topN > fleet.DefaultTopN {
		return fleet.Summarize(snap.Devices, topN)
	}
	sum := fleet.Count(snap.Devices)
	sum.Metrics = r.agg.Stats()
	for m, st := range sum.Metrics {
		st.Top = st.Top[:min(len(st.Top), topN)]
		sum.Metrics[m] = st
	}
	return sum
}

// SummaryBy returns Summary per value of tag (devices without it under
// ""), computed from the devices at now.
func (r *Registry) SummaryBy(now int64, tag string, topN int) map[string]fleet.Summary {
	r.mu.Lock()
	snap := r.snapshot(now)
	r.mu.Unlock()
	groups := map[string][]fleet.Device{}
	for _, d := range snap.Devices {
		groups[d.Tags[tag]] = append(groups[d.Tags[tag]], d)
	}
	out := make(map[string]fleet.Summary, len(groups))
	for v, devs := range groups {
		out[v] = fleet.Summarize(devs, topN)
	}
	return out
}

// changedAt is when a time-driven state began: stale and timed out
// devices went silent StaleAfter intervals after their last sign of life.
func changedAt(d *DeviceRecord, now int64) int64 {
	interval := d.Status.IntervalMS
	if interval <= 0 {
		interval = fleet.DefaultIntervalMS
	}
	if ref := max(d.LastSeen, d.OnlineAt); ref > 0 {
		return ref + fleet.StaleAfter*interval + 1
	}
	return now
}

// maxPendingEvents bounds the timeline entries kept for a taker that is
// not there (a hub without an alerter): the oldest go.
const maxPendingEvents = 10_000

func (r *Registry) note(ev DeviceEvent) {
	if len(r.events) >= maxPendingEvents {
		r.events = r.events[1:]
	}
	r.events = append(r.events, ev)
}

// TakeEvents returns the timeline entries noted since the last call: state
// changes (seen when a snapshot is taken, every broadcast) and reboots.
func (r *Registry) TakeEvents() []DeviceEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

func cloneRecord(d *DeviceRecord) DeviceRecord {
	c := *d
	c.Tags = maps.Clone(d.Tags)
	c.Metrics = maps.Clone(d.Metrics)
	return c
}

// BroadcastFleet publishes the fleet every interval until ctx is done, as a
// delta: the counts, and the devices that are new or whose state, reason or
// tags changed since the previous broadcast (none: a heartbeat). Readings
// reach clients on the device channels, so a broadcast stays small at any
// fleet size and a busy fleet never floods browsers.
func (r *Registry) BroadcastFleet(ctx context.Context, feed *Feed, interval time.Duration, now func() time.Time) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			ms := now().UnixMilli()
			feed.Publish(EventFleet, ChannelFleet, r.delta(ms)) //nolint:errcheck // a snapshot always encodes
		}
	}
}

// delta takes, under one lock, the snapshot at now (which notes state
// changes) and the devices moved since the previous call.
func (r *Registry) delta(now int64) *fleet.Snapshot {
	r.mu.Lock()
	snap := r.snapshot(now)
	moved := r.moved
	r.moved = map[string]bool{}
	r.mu.Unlock()
	d := &fleet.Snapshot{Version: snap.Version, TS: now, Summary: snap.Summary, Devices: []fleet.Device{}}
	if len(moved) == 0 {
		return d
	}
	for _, dev := range snap.Devices {
		if moved[dev.ID] {
			d.Devices = append(d.Devices, dev)
		}
	}
	return d
}
