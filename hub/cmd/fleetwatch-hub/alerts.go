package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fleetwatch/fleetwatch/hub/alert"
	"github.com/fleetwatch/fleetwatch/hub/notify"
)

// Alerts configures alerting: the built-in rules (on by default, tuned by
// name), the user's threshold rules, and webhooks.
type Alerts struct {
	Every    time.Duration         `yaml:"every"`
	Builtin  map[string]RuleConfig `yaml:"builtin"`
	Rules    []RuleConfig          `yaml:"rules"`
	Webhooks []WebhookConfig       `yaml:"webhooks"`
}

// RuleConfig is a rule as the YAML writes it; for a built-in, only the
// fields set change it.
type RuleConfig struct {
	Name      string                    `yaml:"name"`
	Metric    string                    `yaml:"metric"`
	Op        string                    `yaml:"op"`
	Warn      *float64                  `yaml:"warn"`
	Crit      *float64                  `yaml:"crit"`
	Clear     *float64                  `yaml:"clear"`
	For       *time.Duration            `yaml:"for"`
	Reasons   []string                  `yaml:"reasons"`
	Devices   []string                  `yaml:"devices"`
	Tags      map[string]string         `yaml:"tags"`
	Overrides map[string]OverrideConfig `yaml:"overrides"`
	Disabled  bool                      `yaml:"disabled"`
}

// OverrideConfig changes a rule for one device.
type OverrideConfig struct {
	Warn     *float64       `yaml:"warn"`
	Crit     *float64       `yaml:"crit"`
	Clear    *float64       `yaml:"clear"`
	For      *time.Duration `yaml:"for"`
	Disabled bool           `yaml:"disabled"`
}

// WebhookConfig is one notification receiver.
type WebhookConfig struct {
	Name    string            `yaml:"name"`
	URL     string            `yaml:"url"`
	Format  string            `yaml:"format"` // json, ntfy or slack
	Timeout time.Duration     `yaml:"timeout"`
	Repeat  time.Duration     `yaml:"repeat"` // while firing; negative: never
	Headers map[string]string `yaml:"headers"`
}

// rules returns the built-ins as configured, then the user's rules.
func (a *Alerts) rules() ([]alert.Rule, error) {
	var out []alert.Rule
	known := map[string]bool{}
	for _, b := range alert.Builtins() {
		known[b.Name] = true
		if rc, ok := a.Builtin[b.Name]; ok {
			if rc.Name != "" || rc.Metric != "" || rc.Op != "" {
				return nil, fmt.Errorf("alerts.builtin.%s: name, metric and op of a built-in rule are fixed", b.Name)
			}
			rc.apply(&b)
		}
		out = append(out, b)
	}
	for _, name := range slices.Sorted(maps.Keys(a.Builtin)) {
		if !known[name] {
			return nil, fmt.Errorf("alerts.builtin.%s: no such built-in rule (have device_offline, device_stale, low_completeness, clock_skew)", name)
		}
	}
	for i, rc := range a.Rules {
		if known[rc.Name] {
			return nil, fmt.Errorf("alerts.rules[%d]: name %q is taken by a built-in rule; tune it under alerts.builtin", i, rc.Name)
		}
		r := alert.Rule{Name: rc.Name, Kind: alert.KindThreshold, Metric: rc.Metric, Op: rc.Op}
		rc.apply(&r)
		out = append(out, r)
	}
	for i := range out {
		if err := out[i].Validate(); err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
	}
	return out, nil
}

// apply sets on r the fields rc sets.
func (rc *RuleConfig) apply(r *alert.Rule) {
	if rc.Warn != nil {
		r.Warn = rc.Warn
	}
	if rc.Crit != nil {
		r.Crit = rc.Crit
	}
	if rc.Clear != nil {
		r.Clear = rc.Clear
	}
	if rc.For != nil {
		r.For = *rc.For
	}
	if rc.Reasons != nil {
		r.Reasons = rc.Reasons
	}
	if rc.Devices != nil {
		r.Devices = rc.Devices
	}
	if rc.Tags != nil {
		r.Tags = rc.Tags
	}
	if rc.Overrides != nil {
		r.Overrides = map[string]alert.Override{}
		for dev, o := range rc.Overrides {
			r.Overrides[dev] = alert.Override{Warn: o.Warn, Crit: o.Crit, Clear: o.Clear, For: o.For, Disabled: o.Disabled}
		}
	}
	r.Disabled = r.Disabled || rc.Disabled
}

// receivers returns the webhooks as notify receivers.
func (a *Alerts) receivers() ([]notify.Receiver, error) {
	var out []notify.Receiver
	seen := map[string]bool{}
	for i, w := range a.Webhooks {
		r := notify.Receiver{Name: w.Name, URL: w.URL, Format: w.Format, Timeout: w.Timeout, RepeatInterval: w.Repeat, Headers: w.Headers}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("alerts.webhooks[%d]: %w", i, err)
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("alerts.webhooks[%d]: name %q used twice", i, w.Name)
		}
		seen[w.Name] = true
		out = append(out, r)
	}
	return out, nil
}

func (a *Alerts) validate() error {
	if a.Every <= 0 || a.Every > time.Minute {
		return fmt.Errorf("alerts.every %s: want between 1ms and 1m", a.Every)
	}
	_, err := a.rules()
	_, err2 := a.receivers()
	return errors.Join(err, err2)
}
