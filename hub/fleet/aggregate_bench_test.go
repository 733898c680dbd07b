package fleet

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// The benchmarks model the fleet the hub is sized for: 10,000 devices
// reporting 30 metrics each.
const (
	benchDevices = 10_000
	benchMetrics = 30
)

var benchNames = func() []string {
	names := make([]string, benchMetrics)
	for i := range names {
		names[i] = fmt.Sprintf("metric.%02d", i)
	}
	return names
}()

// benchReading returns 30 metrics with values as collectors produce them:
// a counter that stays 0 (so every device ties), byte counts as large
// integers, percentages at full float precision.
func benchReading(r *rand.Rand) telemetry.Metrics {
	m := make(telemetry.Metrics, benchMetrics)
	for i, name := range benchNames {
		switch {
		case i == 0:
			m[name] = 0
		case i%3 == 0:
			m[name] = float64(r.Int64N(8 << 30))
		default:
			m[name] = r.Float64() * 100
		}
	}
	return m
}

// benchFleet returns the device ids and one reading per device.
func benchFleet() ([]string, map[string]telemetry.Metrics) {
	r := rand.New(rand.NewPCG(1, 2))
	devs := make([]string, benchDevices)
	values := make(map[string]telemetry.Metrics, benchDevices)
	for i := range devs {
		devs[i] = fmt.Sprintf("pi-%05d", i)
		values[devs[i]] = benchReading(r)
	}
	return devs, values
}

func benchAggregator(devs []string, values map[string]telemetry.Metrics) *Aggregator {
	a := NewAggregator(DefaultTopN)
	for _, d := range devs {
		a.Set(d, values[d])
	}
	return a
}

// BenchmarkAggregator_Set is one device's new reading with its 29 changing
// metrics moving in a 10,000-device aggregate.
func BenchmarkAggregator_Set(b *testing.B) {
	devs, values := benchFleet()
	a := benchAggregator(devs, values)
	// Every device alternates between two readings made up front, so the
	// loop allocates nothing itself and no two devices share a value by
	// accident (a shared pool of readings would make ties everywhere).
	r := rand.New(rand.NewPCG(3, 4))
	alt := make([]telemetry.Metrics, benchDevices)
	for i := range alt {
		alt[i] = benchReading(r)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := i % benchDevices
		m := alt[d]
		if (i/benchDevices)%2 == 1 {
			m = values[devs[d]]
		}
		a.Set(devs[d], m)
		i++
	}
}

// BenchmarkAggregator_Stats reads all 30 metrics' aggregates, top 5.
func BenchmarkAggregator_Stats(b *testing.B) {
	devs, values := benchFleet()
	a := benchAggregator(devs, values)
	b.ReportAllocs()
	for b.Loop() {
		if s := a.Stats(); len(s) != benchMetrics {
			b.Fatalf("len(Stats()) = %d, want %d", len(s), benchMetrics)
		}
	}
}

// BenchmarkAggregate is the from-scratch computation at the same size,
// for comparison with Stats.
func BenchmarkAggregate(b *testing.B) {
	_, values := benchFleet()
	b.ReportAllocs()
	for b.Loop() {
		if s := Aggregate(values, DefaultTopN); len(s) != benchMetrics {
			b.Fatalf("len(Aggregate()) = %d, want %d", len(s), benchMetrics)
		}
	}
}
