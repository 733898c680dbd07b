package telemetry

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the topic prefix both sides use unless configured.
const DefaultPrefix = "fleetwatch"

// Topic kinds: the last level of a device topic.
const (
	KindTelemetry = "telemetry"
	KindStatus    = "status"
	KindAck       = "ack"
)

// Topics builds and parses the topics under one prefix.
type Topics struct {
	Prefix string
}

// NewTopics validates prefix and returns its Topics. An empty prefix means
// DefaultPrefix.
func NewTopics(prefix string) (Topics, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := ValidatePrefix(prefix); err != nil {
		return Topics{}, err
	}
	return Topics{Prefix: prefix}, nil
}

// ValidatePrefix reports whether prefix can start a publish topic: no
// wildcards, no NUL, no leading '$', no empty level.
func ValidatePrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("topic prefix is empty")
	case len(prefix) > 128:
		return fmt.Errorf("topic prefix %q is longer than 128 bytes", prefix)
	case strings.ContainsAny(prefix, "+#\x00"):
		return fmt.Errorf("topic prefix %q contains a wildcard or NUL", prefix)
	case prefix[0] == '$':
		return fmt.Errorf("topic prefix %q starts with '$', which brokers reserve", prefix)
	}
	for _, level := range strings.Split(prefix, "/") {
		if level == "" {
			return fmt.Errorf("topic prefix %q has an empty level", prefix)
		}
	}
	return nil
}

// Telemetry returns the telemetry topic of device.
func (t Topics) Telemetry(device string) string { return t.Prefix + "/" + device + "/" + KindTelemetry }

// Status returns the status topic of device.
func (t Topics) Status(device string) string { return t.Prefix + "/" + device + "/" + KindStatus }

// Ack returns the ack topic of device.
func (t Topics) Ack(device string) string { return t.Prefix + "/" + device + "/" + KindAck }

// Filter returns the subscription filter for one kind across all devices,
// e.g. "fleetwatch/+/telemetry".
func (t Topics) Filter(kind string) string { return t.Prefix + "/+/" + kind }

// Parse splits a topic under the prefix into its device and kind. The device
// id is validated; the kind is returned as is for the caller to match.
func (t Topics) Parse(topic string) (device, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, t.Prefix+"/")
	if !ok {
		return "", "", errorf(ReasonBadTopic, "topic %q is not under prefix %q", topic, t.Prefix)
	}
	device, kind, ok = strings.Cut(rest, "/")
	if !ok || strings.Contains(kind, "/") {
		return "", "", errorf(ReasonBadTopic, "topic %q is not <prefix>/<device>/<kind>", topic)
	}
	if err := ValidateDeviceID(device); err != nil {
		return "", "", err
	}
	return device, kind, nil
}
