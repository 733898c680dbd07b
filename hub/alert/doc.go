// Package alert decides when alerts fire and resolve. It is pure: the
// Engine takes the fleet as it is now and the time as an argument, and
// returns the alerts that changed; the hub stores, broadcasts and notifies
// them.
//
// The rules:
//   - A rule compares a value per device with a warning and/or critical
//     level (Op: >, >=, <, <=). Threshold rules read a metric; built-in
//     rules read the device's state (offline with a reason, stale), its
//     stored completeness (%) or its clock skew (s).
//   - A level must hold continuously for For before the alert fires at that
//     severity; critical needs its own For. Severity only rises during an
//     alert: a critical alert stays critical until it resolves.
//   - An alert resolves when the value is back past Clear (hysteresis; by
//     default the lowest level, so no hysteresis), or when the device no
//     longer reports the value (offline for a metric rule).
//   - Scope: every device, or a list, or a tag selector (all tags match);
//     per-device overrides change levels and For or disable the rule.
//   - Alert ids are derived from rule, device and start time, so a hub
//     restart that restores firing alerts keeps their ids.
package alert
