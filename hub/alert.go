package hub

// Alert severities and states.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"

	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Alert is one firing (or resolved) instance of a rule on one device. It
// is what the store keeps, the API lists, the live feed sends on the
// "alerts" channel and the webhooks post.
type Alert struct {
	ID       string `json:"id"`
	Rule     string `json:"rule"`
	Device   string `json:"device"`
	Metric   string `json:"metric,omitempty"`
	Severity string `json:"severity"` // SeverityWarning or SeverityCritical
	State    string `json:"state"`    // AlertFiring or AlertResolved
	// Value is what the rule saw last; Threshold the level it crossed.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Summary   string  `json:"summary"` // one line for people, e.g. "pi-7 cpu.percent 97.2 > 90 for 2m"

	StartedAt  int64 `json:"started_at"` // Unix ms
	UpdatedAt  int64 `json:"updated_at"`
	ResolvedAt int64 `json:"resolved_at,omitempty"`
	AckedAt    int64 `json:"acked_at,omitempty"`
}

// Firing reports whether a is still firing.
func (a *Alert) Firing() bool { return a.State == AlertFiring }

// Device event types: a device's timeline.
const (
	EventTypeState  = "state"  // its state changed (online, stale, offline)
	EventTypeReboot = "reboot" // its host booted again
)

// DeviceEvent is one entry of a device's timeline.
type DeviceEvent struct {
	Device string `json:"device"`
	TS     int64  `json:"ts"` // Unix ms, hub clock
	Type   string `json:"type"`
	// State and Reason are the new state; From the previous one.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	From   string `json:"from,omitempty"`
	// HostBoot is the new host boot time of a reboot, Unix ms.
	HostBoot int64 `json:"host_boot,omitempty"`
}

// AlertQuery selects alerts from the store's history.
type AlertQuery struct {
	ID     string // one alert, whatever its state ("": all)
	State  string // AlertFiring, AlertResolved or "" for both
	Device string // "" for every device
	Limit  int    // newest first
}
