package telemetry

import "fmt"

// Rejection reasons. They are stable lower_snake codes: the hub counts
// rejected messages by them and exposes them in /metrics.
const (
	ReasonBadTopic        = "bad_topic"
	ReasonTooLarge        = "too_large"
	ReasonBadJSON         = "bad_json"
	ReasonBadVersion      = "bad_version"
	ReasonBadDevice       = "bad_device"
	ReasonDeviceMismatch  = "device_mismatch"
	ReasonBadBoot         = "bad_boot"
	ReasonNoReadings      = "no_readings"
	ReasonTooManyReadings = "too_many_readings"
	ReasonBadSeq          = "bad_seq"
	ReasonBadTimestamp    = "bad_ts"
	ReasonNoMetrics       = "no_metrics"
	ReasonTooManyMetrics  = "too_many_metrics"
	ReasonBadMetricName   = "bad_metric_name"
	ReasonBadValue        = "bad_value"
	ReasonDuplicateMetric = "duplicate_metric"
	ReasonBadTags         = "bad_tags"
	ReasonBadStatus       = "bad_status"
	ReasonBadAck          = "bad_ack"
)

// Reasons lists every rejection reason, for exposing zero counters.
var Reasons = []string{
	ReasonBadTopic, ReasonTooLarge, ReasonBadJSON, ReasonBadVersion, ReasonBadDevice,
	ReasonDeviceMismatch, ReasonBadBoot, ReasonNoReadings, ReasonTooManyReadings,
	ReasonBadSeq, ReasonBadTimestamp, ReasonNoMetrics, ReasonTooManyMetrics,
	ReasonBadMetricName, ReasonBadValue, ReasonDuplicateMetric, ReasonBadTags,
	ReasonBadStatus, ReasonBadAck,
}

// Error is a contract violation: Reason is the stable code, Msg says what
// was wrong in words a device owner can act on.
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}
