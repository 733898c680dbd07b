package hub

import (
	"strconv"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Message is one MQTT message handed to the Ingester. Ack releases it at the
// broker; the Ingester calls it once the message is settled (committed or
// rejected), never before.
type Message struct {
	Topic   string
	Payload []byte
	Ack     func()
}

// DeviceRecord is what the store keeps about a device besides its series:
// enough to show the fleet again after a restart.
type DeviceRecord struct {
	ID       string            `json:"id"`
	Status   telemetry.Status  `json:"status"`
	OnlineAt int64             `json:"online_at,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	LastSeen int64             `json:"last_seen"`
	Boot     string            `json:"boot,omitempty"`
	Seq      uint64            `json:"seq,omitempty"`
	Metrics  telemetry.Metrics `json:"metrics,omitempty"`
	// RebootedAt is when the hub last saw its host boot again (a new host
	// boot time in an online status), Unix ms.
	RebootedAt int64 `json:"rebooted_at,omitempty"`
}

// Batch is what the writer commits in one transaction.
type Batch struct {
	// Envelopes are validated telemetry, in arrival order.
	Envelopes []*telemetry.Envelope
	// Devices are the latest records of the devices this batch touched.
	Devices []DeviceRecord
	// Alerts are alerts that fired, changed or resolved: stored by id,
	// the newest version wins.
	Alerts []Alert
	// Events are device timeline entries.
	Events []DeviceEvent
}

// DeviceAck is a watermark to send to a device after a commit.
type DeviceAck struct {
	Device string
	Ack    telemetry.Ack
}

// CommitResult says what a commit stored.
type CommitResult struct {
	Stored     int // readings stored
	Duplicates int // readings already stored, skipped
	Gaps       int // readings settled as a gap because of "first"
	// Dropped counts readings settled but not stored: older than the raw
	// retention, or stamped too far in the future.
	Dropped int
	Acks    []DeviceAck
}

// Point is one sample of a series: Unix ms and value.
type Point struct {
	TS    int64
	Value float64
}

// MarshalJSON writes a point as the contract's [ts, value] pair.
func (p Point) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32)
	b = append(b, '[')
	b = strconv.AppendInt(b, p.TS, 10)
	b = append(b, ',')
	b = telemetry.AppendFloat(b, p.Value)
	return append(b, ']'), nil
}

// Store persists batches and answers history queries. One goroutine (the
// Ingester's writer) calls Commit; reads may run concurrently.
type Store interface {
	// Commit stores b durably before it returns and computes the acks the
	// commit allows. Redelivered readings store nothing twice.
	Commit(b *Batch) (CommitResult, error)
	// History returns one Series per metric of q, in q's order.
	History(q HistoryQuery) ([]Series, error)
	// Completeness compares expected and stored readings of a device in
	// [from, to] ms and lists its gap ledger there.
	Completeness(device string, from, to int64) (Completeness, error)
	// Devices returns every stored device record.
	Devices() ([]DeviceRecord, error)
	// Alerts returns stored alerts matching q, newest first.
	Alerts(q AlertQuery) ([]Alert, error)
	// DeviceEvents returns a device's timeline in [from, to] ms, newest
	// first, at most limit entries.
	DeviceEvents(device string, from, to int64, limit int) ([]DeviceEvent, error)
}

// Acker sends acks to devices.
type Acker interface {
	PublishAck(device string, ack telemetry.Ack)
}
