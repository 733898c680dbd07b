package telemetry

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Device states carried by Status.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// Offline reasons.
const (
	ReasonShutdown = "shutdown" // the agent stopped cleanly
	ReasonLost     = "lost"     // the broker published the Last Will
	ReasonTimeout  = "timeout"  // the hub stopped hearing from the device
)

// Status is the retained presence message of a device. Online carries the
// inventory; offline carries only a reason.
type Status struct {
	V            int    `json:"v"`
	State        string `json:"state"`
	Reason       string `json:"reason,omitempty"`
	Boot         string `json:"boot,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	Hostname     string `json:"hostname,omitempty"`
	OS           string `json:"os,omitempty"`
	Platform     string `json:"platform,omitempty"`
	Arch         string `json:"arch,omitempty"`
	Model        string `json:"model,omitempty"`
	IntervalMS   int64  `json:"interval_ms,omitempty"`
	Started      int64  `json:"started,omitempty"`
	HostBoot     int64  `json:"host_boot,omitempty"`
}

// Offline returns the offline status with reason.
func Offline(reason string) Status {
	return Status{V: Version, State: StateOffline, Reason: reason}
}

// Encode returns the JSON of s after validating it.
func (s *Status) Encode() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// DecodeStatus decodes and validates a status payload.
func DecodeStatus(payload []byte) (Status, error) {
	if len(payload) > 16<<10 {
		return Status{}, errorf(ReasonTooLarge, "status is %d bytes, more than 16 KiB", len(payload))
	}
	var s Status
	if err := json.Unmarshal(payload, &s); err != nil {
		return Status{}, errorf(ReasonBadJSON, "decode status: %v", err)
	}
	if err := s.Validate(); err != nil {
		return Status{}, err
	}
	return s, nil
}

// Validate checks s against the contract.
func (s *Status) Validate() error {
	if s.V != Version {
		return errorf(ReasonBadVersion, "status version %d is not supported (want %d)", s.V, Version)
	}
	switch s.State {
	case StateOnline:
		if s.Reason != "" {
			return errorf(ReasonBadStatus, "online status has a reason")
		}
		if err := ValidateBootID(s.Boot); err != nil {
			return err
		}
	case StateOffline:
		switch s.Reason {
		case ReasonShutdown, ReasonLost, ReasonTimeout:
		default:
			return errorf(ReasonBadStatus, "offline reason %q is not shutdown, lost or timeout", s.Reason)
		}
		if s.Boot != "" {
			if err := ValidateBootID(s.Boot); err != nil {
				return err
			}
		}
	default:
		return errorf(ReasonBadStatus, "state %q is not online or offline", s.State)
	}
	for name, v := range map[string]string{
		"agent_version": s.AgentVersion, "hostname": s.Hostname, "os": s.OS,
		"platform": s.Platform, "arch": s.Arch, "model": s.Model,
	} {
		if len(v) > 256 || strings.ContainsFunc(v, isControl) {
			return errorf(ReasonBadStatus, "%s must be printable and at most 256 bytes", name)
		}
	}
	if s.IntervalMS < 0 || s.Started < 0 || s.HostBoot < 0 ||
		s.Started > MaxTimestamp || s.HostBoot > MaxTimestamp {
		return errorf(ReasonBadStatus, "interval_ms, started and host_boot must be non-negative milliseconds")
	}
	return nil
}

// Ack is the hub's end-to-end acknowledgement: every reading of Boot with
// seq ≤ Seq is committed or settled as a gap.
type Ack struct {
	V    int    `json:"v"`
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"`
}

// Encode returns the JSON of a.
func (a Ack) Encode() []byte {
	b, _ := json.Marshal(a) // cannot fail: strings and integers only
	return b
}

// DecodeAck decodes and validates an ack payload.
func DecodeAck(payload []byte) (Ack, error) {
	var raw struct {
		V    *int    `json:"v"`
		Boot *string `json:"boot"`
		Seq  *uint64 `json:"seq"`
	}
	if len(payload) > 1024 {
		return Ack{}, errorf(ReasonTooLarge, "ack is %d bytes, more than 1 KiB", len(payload))
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return Ack{}, errorf(ReasonBadJSON, "decode ack: %v", err)
	}
	if raw.V == nil || *raw.V != Version {
		return Ack{}, errorf(ReasonBadVersion, "ack has no v=%d", Version)
	}
	if raw.Boot == nil || raw.Seq == nil {
		return Ack{}, errorf(ReasonBadAck, "ack needs boot and seq")
	}
	if err := ValidateBootID(*raw.Boot); err != nil {
		return Ack{}, err
	}
	return Ack{V: Version, Boot: *raw.Boot, Seq: *raw.Seq}, nil
}

// ValidateDeviceID checks id against ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$.
func ValidateDeviceID(id string) error {
	if id == "" || len(id) > MaxDeviceID || !isAlnum(id[0]) {
		return errorf(ReasonBadDevice, "device id %q must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", truncate(id, 80))
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return errorf(ReasonBadDevice, "device id %q must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", truncate(id, 80))
		}
	}
	return nil
}

// ValidateBootID checks a boot id: 1–64 bytes of [A-Za-z0-9_.:-].
func ValidateBootID(id string) error {
	if id == "" || len(id) > MaxBootID {
		return errorf(ReasonBadBoot, "boot id must be 1–%d bytes", MaxBootID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' && c != ':' {
			return errorf(ReasonBadBoot, "boot id %q must match [A-Za-z0-9_.:-]{1,64}", truncate(id, 80))
		}
	}
	return nil
}

// SanitizeDeviceID turns a hostname into a valid device id: invalid bytes
// become '-', the result is cut to 64 bytes and must start alphanumeric.
func SanitizeDeviceID(name string) (string, error) {
	b := []byte(strings.TrimSpace(name))
	for i, c := range b {
		if !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			b[i] = '-'
		}
	}
	s := strings.TrimLeft(string(b), "_.-")
	if len(s) > MaxDeviceID {
		s = s[:MaxDeviceID]
	}
	if err := ValidateDeviceID(s); err != nil {
		return "", fmt.Errorf("sanitize device id from %q: %w", name, err)
	}
	return s, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
