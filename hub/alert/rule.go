package alert

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Rule kinds.
const (
	KindThreshold    = "threshold"    // a metric's latest value
	KindOffline      = "offline"      // 1 while offline with one of Reasons
	KindStale        = "stale"        // 1 while stale
	KindCompleteness = "completeness" // stored / expected readings, %
	KindClockSkew    = "clock_skew"   // |device clock - hub clock|, s
)

// Rule is one alerting rule.
type Rule struct {
	Name string
	Kind string // KindThreshold when empty
	// Metric is the metric a threshold rule reads.
	Metric string
	// Op compares the value with the levels: >, >=, <, <=.
	Op string
	// Warn and Crit are the levels; at least one is set.
	Warn, Crit *float64
	// Clear is where a firing alert resolves (hysteresis); nil: the
	// lowest level set.
	Clear *float64
	// For is how long a level must hold before the alert fires.
	For time.Duration
	// Reasons are the offline reasons an offline rule fires on.
	Reasons []string
	// Devices and Tags scope the rule: a device must be listed (if any
	// are) and carry every tag (if any).
	Devices []string
	Tags    map[string]string
	// Overrides change the rule for single devices.
	Overrides map[string]Override
	Disabled  bool
}

// Override is a per-device change to a rule; nil fields keep the rule's.
type Override struct {
	Warn, Crit, Clear *float64
	For               *time.Duration
	Disabled          bool
}

// Level returns a pointer to v, for rule literals.
func Level(v float64) *float64 { return &v }

// Validate reports the first problem with r.
func (r *Rule) Validate() error {
	if r.Name == "" {
		return errors.New("rule has no name")
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("rule %q: %s", r.Name, fmt.Sprintf(format, args...))
	}
	switch r.Kind {
	case "", KindThreshold:
		if !telemetry.ValidMetricName(r.Metric) {
			return fail("metric %q: want a metric name like cpu.percent", r.Metric)
		}
	case KindOffline, KindStale, KindCompleteness, KindClockSkew:
		if r.Metric != "" {
			return fail("a %s rule reads no metric", r.Kind)
		}
	default:
		return fail("kind %q: want threshold, offline, stale, completeness or clock_skew", r.Kind)
	}
	if _, ok := compare[r.Op]; !ok {
		return fail("op %q: want >, >=, < or <=", r.Op)
	}
	if r.Warn == nil && r.Crit == nil {
		return fail("needs warn or crit")
	}
	if r.For < 0 {
		return fail("for must not be negative")
	}
	check := func(name string, warn, crit, clear *float64) error {
		if warn != nil && crit != nil && compare[r.Op](*warn, *crit) {
			return fail("%swarn %g is past crit %g for op %s", name, *warn, *crit, r.Op)
		}
		if clear != nil {
			if low := lowest(r.Op, warn, crit); low != nil && compare[r.Op](*clear, *low) {
				return fail("%sclear %g would still be firing (op %s, level %g)", name, *clear, r.Op, *low)
			}
		}
		return nil
	}
	if err := check("", r.Warn, r.Crit, r.Clear); err != nil {
		return err
	}
	for dev, o := range r.Overrides {
		if err := telemetry.ValidateDeviceID(dev); err != nil {
			return fail("override: %v", err)
		}
		w, c, cl := pick(o.Warn, r.Warn), pick(o.Crit, r.Crit), pick(o.Clear, r.Clear)
		if err := check("override "+dev+": ", w, c, cl); err != nil {
			return err
		}
		if o.For != nil && *o.For < 0 {
			return fail("override %s: for must not be negative", dev)
		}
	}
	for _, reason := range r.Reasons {
		switch reason {
		case telemetry.ReasonShutdown, telemetry.ReasonLost, telemetry.ReasonTimeout:
		default:
			return fail("reason %q: want shutdown, lost or timeout", reason)
		}
	}
	return nil
}

func pick(o, r *float64) *float64 {
	if o != nil {
		return o
	}
	return r
}

// compare[op](v, level) says whether v is past level.
var compare = map[string]func(v, level float64) bool{
	">":  func(v, l float64) bool { return v > l },
	">=": func(v, l float64) bool { return v >= l },
	"<":  func(v, l float64) bool { return v < l },
	"<=": func(v, l float64) bool { return v <= l },
}

// lowest is the level crossed first as the value worsens: warn if set.
func lowest(op string, warn, crit *float64) *float64 {
	if warn != nil {
		return warn
	}
	return crit
}

// Builtins are the rules on by default; the hub's configuration tunes or
// disables them by name.
func Builtins() []Rule {
	return []Rule{
		{Name: "device_offline", Kind: KindOffline, Op: ">=", Crit: Level(1), For: time.Minute,
			Reasons: []string{telemetry.ReasonLost, telemetry.ReasonTimeout}},
		{Name: "device_stale", Kind: KindStale, Op: ">=", Warn: Level(1), For: 2 * time.Minute},
		{Name: "low_completeness", Kind: KindCompleteness, Op: "<", Warn: Level(99), Crit: Level(90), For: 5 * time.Minute},
		{Name: "clock_skew", Kind: KindClockSkew, Op: ">", Warn: Level(30), Crit: Level(300), For: time.Minute},
	}
}
