package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the contract version every message carries in "v".
const Version = 1

// Limits of the v1 contract.
const (
	MaxPayload    = 256 << 10 // bytes of one MQTT payload
	MaxReadings   = 1000      // readings per envelope
	MaxMetrics    = 512       // metrics per reading
	MaxMetricName = 128       // bytes of a metric name
	MaxDeviceID   = 64        // bytes of a device id
	MaxBootID     = 64        // bytes of a boot id
	MaxTags       = 32        // tags per envelope
	MaxTagKey     = 64        // bytes of a tag key
	MaxTagValue   = 128       // bytes of a tag value

	// MaxTimestamp bounds ts to year 9999 so that every stored timestamp
	// formats as RFC 3339.
	MaxTimestamp = 253402300799999
)

// Envelope is one telemetry message: readings of one device and boot.
type Envelope struct {
	V        int               `json:"v"`
	Device   string            `json:"device"`
	Boot     string            `json:"boot"`
	First    *uint64           `json:"first,omitempty"`
	Readings []Reading         `json:"readings"`
	Tags     map[string]string `json:"tags,omitempty"`

	// Simple is set by DecodeTelemetry for the flat third-party form: one
	// reading with no seq, stamped with the receive time, never acked.
	Simple bool `json:"-"`
}

// Reading is one sample of a device's metrics.
type Reading struct {
	Seq     uint64  `json:"seq"`
	TS      int64   `json:"ts"`
	Metrics Metrics `json:"metrics"`
}

// Encode returns the JSON of e after checking it against the contract, so an
// agent never publishes what the hub would reject.
func (e *Envelope) Encode() ([]byte, error) {
	if err := e.Validate(e.Device); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	if len(b) > MaxPayload {
		return nil, errorf(ReasonTooLarge, "envelope is %d bytes, more than %d", len(b), MaxPayload)
	}
	return b, nil
}

// rawEnvelope finds missing fields (pointers) that the contract requires.
type rawEnvelope struct {
	V        *int              `json:"v"`
	Device   *string           `json:"device"`
	Boot     *string           `json:"boot"`
	First    *uint64           `json:"first"`
	Readings []rawReading      `json:"readings"`
	Tags     map[string]string `json:"tags"`
}

type rawReading struct {
	Seq     *uint64 `json:"seq"`
	TS      *int64  `json:"ts"`
	Metrics Metrics `json:"metrics"`
}

// DecodeTelemetry decodes and validates a payload received on the telemetry
// topic of device at time now. Any rule broken rejects the whole payload with
// an *Error.
func DecodeTelemetry(device string, payload []byte, now time.Time) (Envelope, error) {
	if len(payload) > MaxPayload {
		return Envelope{}, errorf(ReasonTooLarge, "payload is %d bytes, more than %d", len(payload), MaxPayload)
	}
	if !bytes.Contains(payload, []byte(`"readings"`)) {
		return decodeSimple(device, payload, now)
	}
	var raw rawEnvelope
	if err := json.Unmarshal(payload, &raw); err != nil {
		var te *Error
		if errors.As(err, &te) {
			return Envelope{}, te
		}
		return Envelope{}, errorf(ReasonBadJSON, "decode envelope: %v", err)
	}
	if raw.V == nil {
		return Envelope{}, errorf(ReasonBadVersion, `envelope has no "v"`)
	}
	if raw.Device == nil {
		return Envelope{}, errorf(ReasonBadDevice, `envelope has no "device"`)
	}
	if raw.Boot == nil {
		return Envelope{}, errorf(ReasonBadBoot, `envelope has no "boot"`)
	}
	e := Envelope{V: *raw.V, Device: *raw.Device, Boot: *raw.Boot, First: raw.First, Tags: raw.Tags}
	e.Readings = make([]Reading, len(raw.Readings))
	for i, r := range raw.Readings {
		if r.Seq == nil {
			return Envelope{}, errorf(ReasonBadSeq, "reading %d has no seq", i)
		}
		if r.TS == nil {
			return Envelope{}, errorf(ReasonBadTimestamp, "reading %d has no ts", i)
		}
		if r.Metrics == nil {
			return Envelope{}, errorf(ReasonNoMetrics, "reading %d has no metrics", i)
		}
		e.Readings[i] = Reading{Seq: *r.Seq, TS: *r.TS, Metrics: r.Metrics}
	}
	if err := e.Validate(device); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

func decodeSimple(device string, payload []byte, now time.Time) (Envelope, error) {
	if !json.Valid(payload) {
		return Envelope{}, errorf(ReasonBadJSON, "payload is not valid JSON")
	}
	m, err := parseMetrics(payload)
	if err != nil {
		return Envelope{}, err
	}
	if len(m) == 0 {
		return Envelope{}, errorf(ReasonNoMetrics, "simple reading has no metrics")
	}
	e := Envelope{
		V:        Version,
		Device:   device,
		Simple:   true,
		Readings: []Reading{{TS: now.UnixMilli(), Metrics: m}},
	}
	// The device comes from the topic and ts from the hub's clock: check
	// them as for any envelope.
	if err := e.Validate(device); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// Validate checks e against the contract for a message on the telemetry
// topic of device.
func (e *Envelope) Validate(device string) error {
	if e.V != Version {
		return errorf(ReasonBadVersion, "version %d is not supported (want %d)", e.V, Version)
	}
	if err := ValidateDeviceID(e.Device); err != nil {
		return err
	}
	if e.Device != device {
		return errorf(ReasonDeviceMismatch, "envelope device %q does not match topic device %q", e.Device, device)
	}
	if !e.Simple {
		if err := ValidateBootID(e.Boot); err != nil {
			return err
		}
	}
	switch {
	case len(e.Readings) == 0:
		return errorf(ReasonNoReadings, "envelope has no readings")
	case len(e.Readings) > MaxReadings:
		return errorf(ReasonTooManyReadings, "envelope has %d readings, more than %d", len(e.Readings), MaxReadings)
	}
	seen := make(map[uint64]struct{}, len(e.Readings))
	for i, r := range e.Readings {
		if !e.Simple {
			if r.Seq == 0 {
				return errorf(ReasonBadSeq, "reading %d: seq must be at least 1", i)
			}
			if _, dup := seen[r.Seq]; dup {
				return errorf(ReasonBadSeq, "seq %d appears twice", r.Seq)
			}
			seen[r.Seq] = struct{}{}
			if e.First != nil && r.Seq < *e.First {
				return errorf(ReasonBadSeq, "reading seq %d is below first %d", r.Seq, *e.First)
			}
		}
		if r.TS <= 0 || r.TS > MaxTimestamp {
			return errorf(ReasonBadTimestamp, "reading %d: ts %d is not Unix milliseconds in years 1970–9999", i, r.TS)
		}
		if err := ValidateMetrics(r.Metrics); err != nil {
			return err
		}
	}
	return validateTags(e.Tags)
}

// ValidateMetrics checks names, values and count of one reading's metrics.
func ValidateMetrics(m Metrics) error {
	switch {
	case len(m) == 0:
		return errorf(ReasonNoMetrics, "reading has no metrics")
	case len(m) > MaxMetrics:
		return errorf(ReasonTooManyMetrics, "reading has %d metrics, more than %d", len(m), MaxMetrics)
	}
	for name, v := range m {
		if !ValidMetricName(name) {
			return errorf(ReasonBadMetricName, "metric name %q must match [a-z0-9_]+(.[a-z0-9_]+)* and be at most %d bytes", truncate(name, 140), MaxMetricName)
		}
		if v != v || v > maxFloat || v < -maxFloat {
			return errorf(ReasonBadValue, "metric %q: value %v is not finite", name, v)
		}
	}
	return nil
}

const maxFloat = 1.7976931348623157e308

func validateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return errorf(ReasonBadTags, "%d tags, more than %d", len(tags), MaxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > MaxTagKey || !isLowerIdent(k) {
			return errorf(ReasonBadTags, "tag key %q must match [a-z0-9_]{1,%d}", truncate(k, 80), MaxTagKey)
		}
		if len(v) > MaxTagValue || !utf8.ValidString(v) || strings.ContainsFunc(v, isControl) {
			return errorf(ReasonBadTags, "tag %q: value must be printable UTF-8 of at most %d bytes", k, MaxTagValue)
		}
	}
	return nil
}

func isLowerIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }
