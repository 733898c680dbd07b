package hub

import (
	"strconv"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Resolutions name the tier a series was read from.
const (
	ResolutionRaw = "raw" // the samples as the device sent them
	Resolution1m  = "1m"  // 1-minute rollups
	Resolution1h  = "1h"  // 1-hour rollups
)

// History query bounds.
const (
	DefaultHistoryPoints = 1000
	MaxHistoryPoints     = 100_000
	MaxHistoryMetrics    = 32
)

// HistoryQuery asks for the history of some metrics of one device.
type HistoryQuery struct {
	Device  string
	Metrics []string
	// From and To bound the samples, Unix ms, both inclusive.
	From, To int64
	// Points is the most points returned per metric (1..MaxHistoryPoints).
	// A range holding no more raw samples than Points comes back raw;
	// otherwise as at most Points buckets.
	Points int
	// Interval is the device's reporting interval in ms, used to tell a gap
	// from a normal pause. Zero means: estimate it from the samples.
	Interval int64
}

// Series is the history of one metric over a query's range.
type Series struct {
	Metric string
	// Resolution is the finest tier the points were computed from.
	Resolution string
	// Step is the bucket width in ms; 0 means Points holds raw samples.
	Step int64
	// Points are the raw samples, oldest first, when Step == 0.
	Points []Point
	// Buckets are the aggregates, oldest first, when Step > 0. A bucket
	// with no samples is left out, never interpolated.
	Buckets []Bucket
	// Gaps are the spans in the range where samples are missing for longer
	// than two intervals (or, for buckets, whole empty buckets).
	Gaps []Gap
}

// Bucket aggregates the samples in [TS, TS+Step).
type Bucket struct {
	TS            int64
	Avg, Min, Max float64
	Count         int64
}

// MarshalJSON writes a bucket as the contract's [ts, avg, min, max].
func (b Bucket) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 64)
	out = append(out, '[')
	out = strconv.AppendInt(out, b.TS, 10)
	for _, v := range [3]float64{b.Avg, b.Min, b.Max} {
		out = append(out, ',')
		out = telemetry.AppendFloat(out, v)
	}
	return append(out, ']'), nil
}

// Gap is a span with no samples: From is the last sample before it (or the
// range start), To the first after it (or the range end), Unix ms.
type Gap struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Completeness compares the readings a device produced in a range with the
// readings stored. Expected comes from sequence numbers: within one agent
// boot every reading has the next seq, so the stored readings' seqs show
// what is missing between them.
type Completeness struct {
	Device   string `json:"device"`
	From     int64  `json:"from"`
	To       int64  `json:"to"`
	Expected uint64 `json:"expected"` // readings the agent produced in the range
	Stored   uint64 `json:"stored"`   // readings stored
	Missing  uint64 `json:"missing"`  // Expected - Stored
	// Ratio is Stored/Expected, 1 when nothing was expected.
	Ratio float64 `json:"ratio"`
	// Gaps are the ledger entries whose readings fall in the range.
	Gaps []GapRecord `json:"gaps"`
}

// GapRecord is one entry of a device's gap ledger: a run of sequence numbers
// found missing when later readings arrived, and what became of it.
type GapRecord struct {
	Boot     string `json:"boot"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Before and After are the timestamps of the stored readings around the
	// gap when it was seen (0 if unknown), Unix ms.
	Before int64 `json:"before,omitempty"`
	After  int64 `json:"after,omitempty"`
	// Seen is when the hub first saw the gap, Unix ms (hub clock).
	Seen int64 `json:"seen"`
	// Filled counts seqs that arrived later (backfill); Lost counts seqs
	// the agent declared lost ("first"); Open counts seqs still missing.
	Filled uint64 `json:"filled"`
	Lost   uint64 `json:"lost"`
	Open   uint64 `json:"open"`
	// Closed is when the last open seq was filled or declared lost, Unix
	// ms; 0 while Open > 0.
	Closed int64 `json:"closed,omitempty"`
}
