package hub

import (
	"fmt"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// BenchmarkRegistry_Snapshot aggregates a 10,000-device fleet of 30-metric
// devices after one device changed: the per-second fleet snapshot.
func BenchmarkRegistry_Snapshot(b *testing.B) {
	const n = 10_000
	r := NewRegistry(nil)
	m := telemetry.Metrics{}
	for i := range 30 {
		m[fmt.Sprintf("m.%d", i)] = float64(i)
	}
	now := int64(1_800_000_000_000)
	for i := range n {
		env := &telemetry.Envelope{V: 1, Device: fmt.Sprintf("pi-%05d", i), Boot: "b",
			Readings: []telemetry.Reading{{Seq: 1, TS: now, Metrics: m}}}
		r.ObserveTelemetry(env, now)
	}
	b.ReportAllocs()
	seq := uint64(1)
	for b.Loop() {
		seq++
		r.ObserveTelemetry(&telemetry.Envelope{V: 1, Device: "pi-00000", Boot: "b",
			Readings: []telemetry.Reading{{Seq: seq, TS: now + int64(seq), Metrics: m}}}, now+int64(seq))
		if s := r.Snapshot(now + int64(seq)); s.Summary.Total != n {
			b.Fatalf("Total=%d, want %d", s.Summary.Total, n)
		}
	}
}
