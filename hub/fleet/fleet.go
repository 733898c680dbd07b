// Package fleet is the hub's pure view of the fleet: device states and the
// snapshot every transport sends. It does no I/O and takes time as an
// argument, so every rule here is a table test.
package fleet

import (
	"sort"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Device states as the API reports them.
const (
	Online  = "online"
	Stale   = "stale"
	Offline = "offline"
)

// StaleAfter is how many reporting intervals may pass without a reading
// before an online device counts as stale.
const StaleAfter = 3

// DefaultIntervalMS is assumed for devices that never said their interval
// (third-party devices using the simple form).
const DefaultIntervalMS = 60_000

// Device is one device as the API shows it.
type Device struct {
	ID       string            `json:"id"`
	State    string            `json:"state"`
	Reason   string            `json:"reason,omitempty"`
	LastSeen int64             `json:"last_seen"`
	Metrics  telemetry.Metrics `json:"metrics"`
	Tags     map[string]string `json:"tags"`
	// ClockSkewMS is how far the device's clock was ahead of the hub's
	// (negative: behind) at its newest reading; absent until one arrived
	// in this hub's run.
	ClockSkewMS *int64 `json:"clock_skew_ms,omitempty"`
	// RebootedAt is when its host last booted again while the hub
	// watched, Unix ms: the dashboard's "rebooted" marker.
	RebootedAt int64 `json:"rebooted_at,omitempty"`
}

// Summary counts devices by state and aggregates metrics over the online
// ones. In a snapshot Metrics holds the headline metrics only (they go to
// every browser each second); the summary endpoint has them all.
type Summary struct {
	Total   int                    `json:"total"`
	Online  int                    `json:"online"`
	Offline int                    `json:"offline"`
	Stale   int                    `json:"stale"`
	Metrics map[string]MetricStats `json:"metrics"`
}

// DefaultHeadline are the metrics a snapshot's summary carries.
var DefaultHeadline = []string{"cpu.percent", "mem.used_percent", "disk.root.used_percent", "temp.soc", "load.1"}

// Snapshot is the fleet at one version, as GET /api/v1/fleet returns it.
// Full is true when Devices holds every device; the live broadcast sends
// only the devices whose state, reason or tags changed since the previous
// one (Full false), so a second's broadcast stays small at any fleet size:
// readings reach clients on the device channels.
type Snapshot struct {
	Version uint64   `json:"version"`
	TS      int64    `json:"ts"`
	Full    bool     `json:"full"`
	Devices []Device `json:"devices"`
	Summary Summary  `json:"summary"`
}

// Presence is what the hub knows of a device's connection, from its status
// messages and readings.
type Presence struct {
	Status     string // telemetry.StateOnline, StateOffline, or "" when unknown
	Reason     string // offline reason
	LastSeen   int64  // ms of the newest reading
	OnlineAt   int64  // ms when the last online status arrived
	IntervalMS int64  // the device's reporting interval, 0 if unknown
}

// State returns the device state at now (ms): offline when the device said
// so (or its Last Will did), stale when online but silent for StaleAfter
// intervals, online otherwise. A device that never sent a status counts as
// online while its readings keep coming.
func State(p Presence, now int64) (state, reason string) {
	if p.Status == telemetry.StateOffline {
		return Offline, p.Reason
	}
	interval := p.IntervalMS
	if interval <= 0 {
		interval = DefaultIntervalMS
	}
	ref := max(p.LastSeen, p.OnlineAt)
	if ref == 0 || now-ref > StaleAfter*interval {
		if p.Status == "" {
			// Without a status we cannot tell a silent device from a
			// gone one: the broker would have sent its Last Will.
			return Offline, telemetry.ReasonTimeout
		}
		return Stale, ""
	}
	return Online, ""
}

// Summarize counts devs by state and aggregates the metrics of the online
// ones from scratch (topN per metric).
func Summarize(devs []Device, topN int) Summary {
	s := Count(devs)
	values := make(map[string]telemetry.Metrics, s.Online)
	for _, d := range devs {
		if d.State == Online {
			values[d.ID] = d.Metrics
		}
	}
	s.Metrics = Aggregate(values, topN)
	return s
}

// Count counts devs by state; Metrics is empty.
func Count(devs []Device) Summary {
	s := Summary{Total: len(devs), Metrics: map[string]MetricStats{}}
	for _, d := range devs {
		switch d.State {
		case Online:
			s.Online++
		case Stale:
			s.Stale++
		default:
			s.Offline++
		}
	}
	return s
}

// SortDevices orders devs by id, so snapshots encode deterministically.
func SortDevices(devs []Device) {
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
}
