package alert

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

// Device is what the engine sees of one device at an evaluation.
type Device struct {
	ID      string
	State   string // fleet.Online, fleet.Stale or fleet.Offline
	Reason  string // offline reason
	Tags    map[string]string
	Metrics telemetry.Metrics
	// Completeness is the share of its readings stored over the recent
	// window, %; NaN when unknown.
	Completeness float64
	// SkewS is how far the device's clock is off the hub's, s; NaN when
	// unknown.
	SkewS float64
}

// Engine evaluates rules over the fleet and keeps the alerts they fire.
// It is not safe for concurrent use: the hub's alerter owns it.
type Engine struct {
	rules  []Rule
	tracks map[key]*track
}

type key struct{ rule, device string }

// track is one rule on one device: since when each level has held, and
// the alert while it fires.
type track struct {
	warnSince, critSince int64 // ms; 0: not held
	alert                *hub.Alert
}

// NewEngine returns an engine for rules, which must be valid and named
// uniquely.
func NewEngine(rules []Rule) (*Engine, error) {
	seen := map[string]bool{}
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return nil, err
		}
		if seen[rules[i].Name] {
			return nil, fmt.Errorf("rule %q: defined twice", rules[i].Name)
		}
		seen[rules[i].Name] = true
	}
	return &Engine{rules: slices.Clone(rules), tracks: map[key]*track{}}, nil
}

// Restore takes back the alerts that were firing when the hub stopped, so
// they keep their ids and resolve (or escalate) as usual. Those of rules
// that no longer exist are returned resolved, at now.
func (e *Engine) Restore(firing []hub.Alert, now int64) (gone []hub.Alert) {
	for _, a := range firing {
		if !a.Firing() {
			continue
		}
		if !slices.ContainsFunc(e.rules, func(r Rule) bool { return r.Name == a.Rule }) {
			gone = append(gone, resolve(&a, now, a.Summary+": rule removed"))
			continue
		}
		t := &track{alert: &a, warnSince: a.StartedAt}
		if a.Severity == hub.SeverityCritical {
			t.critSince = a.StartedAt
		}
		e.tracks[key{a.Rule, a.Device}] = t
	}
	return gone
}

// Evaluate checks every rule on every device at now (Unix ms) and returns
// the alerts that fired, escalated or resolved.
func (e *Engine) Evaluate(now int64, devs []Device) []hub.Alert {
	var changed []hub.Alert
	for i := range e.rules {
		r := &e.rules[i]
		for j := range devs {
			if a, ok := e.step(r, &devs[j], now); ok {
				changed = append(changed, a)
			}
		}
	}
	return changed
}

func (e *Engine) step(r *Rule, d *Device, now int64) (hub.Alert, bool) {
	k := key{r.Name, d.ID}
	t := e.tracks[k]
	lv, applies := r.levels(d)
	v, known := r.measure(d)
	if !applies || !known {
		if t == nil {
			return hub.Alert{}, false
		}
		delete(e.tracks, k)
		if t.alert == nil {
			return hub.Alert{}, false
		}
		why := "no longer reported"
		if !applies {
			why = "rule no longer applies"
		}
		return resolve(t.alert, now, fmt.Sprintf("%s: %s", t.alert.Summary, why)), true
	}
	past := compare[r.Op]
	warnHeld := past(v, *lowest(r.Op, lv.warn, lv.crit))
	critHeld := lv.crit != nil && past(v, *lv.crit)
	if t == nil {
		if !warnHeld {
			return hub.Alert{}, false
		}
		t = &track{}
		e.tracks[k] = t
	}
	t.warnSince = since(t.warnSince, warnHeld, now)
	t.critSince = since(t.critSince, critHeld, now)
	sev := ""
	switch forMS := lv.forD.Milliseconds(); {
	case critHeld && now-t.critSince >= forMS:
		sev = hub.SeverityCritical
	case warnHeld && now-t.warnSince >= forMS:
		sev = hub.SeverityWarning
		if lv.warn == nil {
			sev = hub.SeverityCritical // only a critical level is set
		}
	}
	if t.alert == nil {
		if sev == "" {
			if !warnHeld {
				delete(e.tracks, k)
			}
			return hub.Alert{}, false
		}
		threshold := *lowest(r.Op, lv.warn, lv.crit)
		if sev == hub.SeverityCritical && lv.crit != nil {
			threshold = *lv.crit
		}
		a := hub.Alert{
			ID: alertID(r.Name, d.ID, now), Rule: r.Name, Device: d.ID, Metric: r.Metric, Severity: sev, State: hub.AlertFiring,
			Value: v, Threshold: threshold, StartedAt: now, UpdatedAt: now,
		}
		a.Summary = r.summary(d, v, threshold, lv.forD, false)
		t.alert = &a
		return a, true
	}
	clear := lv.clear
	if clear == nil {
		clear = lowest(r.Op, lv.warn, lv.crit)
	}
	if !past(v, *clear) {
		delete(e.tracks, k)
		return resolve(t.alert, now, r.summary(d, v, *clear, 0, true)), true
	}
	t.alert.Value = v
	if sev == hub.SeverityCritical && t.alert.Severity != hub.SeverityCritical && lv.crit != nil {
		// Severity only rises within one alert.
		t.alert.Severity, t.alert.Threshold, t.alert.UpdatedAt = sev, *lv.crit, now
		t.alert.Summary = r.summary(d, v, *lv.crit, lv.forD, false)
		return *t.alert, true
	}
	return hub.Alert{}, false
}

func since(was int64, held bool, now int64) int64 {
	switch {
	case !held:
		return 0
	case was == 0:
		return now
	}
	return was
}

func resolve(a *hub.Alert, now int64, summary string) hub.Alert {
	r := *a
	r.State, r.ResolvedAt, r.UpdatedAt, r.Summary = hub.AlertResolved, now, now, summary
	return r
}

// Firing returns the firing alerts, newest first.
func (e *Engine) Firing() []hub.Alert {
	var out []hub.Alert
	for _, t := range e.tracks {
		if t.alert != nil {
			out = append(out, *t.alert)
		}
	}
	slices.SortFunc(out, func(a, b hub.Alert) int {
		if c := cmp.Compare(b.StartedAt, a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Ack marks the firing alert id acknowledged at now and returns it; false
// when no firing alert has that id.
func (e *Engine) Ack(id string, now int64) (hub.Alert, bool) {
	for _, t := range e.tracks {
		if t.alert != nil && t.alert.ID == id {
			if t.alert.AckedAt == 0 {
				t.alert.AckedAt, t.alert.UpdatedAt = now, now
			}
			return *t.alert, true
		}
	}
	return hub.Alert{}, false
}

// levels are a rule's levels for one device.
type levels struct {
	warn, crit, clear *float64
	forD              time.Duration
}

// levels applies the scope and the device's override; applies is false
// when the rule does not cover the device.
func (r *Rule) levels(d *Device) (lv levels, applies bool) {
	if r.Disabled || (len(r.Devices) > 0 && !slices.Contains(r.Devices, d.ID)) {
		return lv, false
	}
	for k, v := range r.Tags {
		if d.Tags[k] != v {
			return lv, false
		}
	}
	lv = levels{r.Warn, r.Crit, r.Clear, r.For}
	if o, ok := r.Overrides[d.ID]; ok {
		if o.Disabled {
			return lv, false
		}
		lv.warn, lv.crit, lv.clear = pick(o.Warn, r.Warn), pick(o.Crit, r.Crit), pick(o.Clear, r.Clear)
		if o.For != nil {
			lv.forD = *o.For
		}
	}
	return lv, true
}

// measure is the value the rule compares, and whether there is one.
func (r *Rule) measure(d *Device) (float64, bool) {
	online := d.State == fleet.Online
	switch r.Kind {
	case KindOffline:
		if d.State == fleet.Offline && slices.Contains(r.Reasons, d.Reason) {
			return 1, true
		}
		return 0, true
	case KindStale:
		if d.State == fleet.Stale {
			return 1, true
		}
		return 0, true
	case KindCompleteness:
		return d.Completeness, online && !math.IsNaN(d.Completeness)
	case KindClockSkew:
		return math.Abs(d.SkewS), online && !math.IsNaN(d.SkewS)
	}
	v, ok := d.Metrics[r.Metric]
	return v, ok && online
}

// summary is the alert's one line for people; a resolved one says where
// the value is now against the clear level.
func (r *Rule) summary(d *Device, v, level float64, forD time.Duration, resolved bool) string {
	op := r.Op
	if resolved {
		op = negate[op]
	}
	var b strings.Builder
	b.WriteString(d.ID)
	switch r.Kind {
	case KindOffline, KindStale:
		switch {
		case d.State == fleet.Offline:
			fmt.Fprintf(&b, " offline (%s)", d.Reason)
		case d.State == fleet.Stale && !resolved:
			b.WriteString(" stale: no readings while the broker holds it online")
		default:
			b.WriteString(" " + d.State)
		}
	case KindCompleteness:
		fmt.Fprintf(&b, " stored %s%% of its readings (%s %s%%)", num(v), op, num(level))
	case KindClockSkew:
		fmt.Fprintf(&b, " clock off by %s s (%s %s s)", num(v), op, num(level))
	default:
		fmt.Fprintf(&b, " %s %s %s %s", r.Metric, num(v), op, num(level))
	}
	if resolved {
		b.WriteString(": resolved")
	} else if forD > 0 {
		b.WriteString(" for " + duration(forD))
	}
	return b.String()
}

// negate is the op that holds once a value is back past a level.
var negate = map[string]string{">": "<=", ">=": "<", "<": ">=", "<=": ">"}

// duration writes 2m for 2m0s.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// alertID names an alert by rule, device and start: stable across a
// restore, unique in practice.
func alertID(rule, device string, started int64) string {
	h := fnv.New64a()
	h.Write([]byte(rule + "\x00" + device + "\x00" + strconv.FormatInt(started, 10)))
	return fmt.Sprintf("%016x", h.Sum64())
}
