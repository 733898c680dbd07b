package fleet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

var (
	nan    = math.NaN()
	inf    = math.Inf(1)
	negZ   = math.Copysign(0, -1)
	noDevs = map[string]MetricStats{}
)

// ranked builds a Top list from device, value pairs.
func ranked(pairs ...any) []Ranked {
	var r []Ranked
	for i := 0; i < len(pairs); i += 2 {
		r = append(r, Ranked{Device: pairs[i].(string), Value: float64(pairs[i+1].(int))})
	}
	return r
}

// series gives n devices d000, d001, … one metric "m" with values 1.5·n
// down to 1.5, so sorting by value reverses the device order.
func series(n int) map[string]telemetry.Metrics {
	vs := make(map[string]telemetry.Metrics, n)
	for i := range n {
		vs[fmt.Sprintf("d%03d", i)] = telemetry.Metrics{"m": 1.5 * float64(n-i)}
	}
	return vs
}

// seriesStats is series(n)'s MetricStats with the hand-computed
// percentiles p50 and p95 (and the top 5 from the series' top end).
func seriesStats(n int, p50, p95 float64) map[string]MetricStats {
	var top []Ranked
	for i := range min(n, 5) {
		top = append(top, Ranked{fmt.Sprintf("d%03d", i), 1.5 * float64(n-i)})
	}
	return map[string]MetricStats{"m": {
		Count: n, Avg: 1.5 * float64(n+1) / 2,
		Min: 1.5, MinDevice: fmt.Sprintf("d%03d", n-1),
		Max: 1.5 * float64(n), MaxDevice: "d000",
		P50: p50, P95: p95, Top: top,
	}}
}

func TestAggregate(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]telemetry.Metrics
		topN   int
		want   map[string]MetricStats
	}{
		{"empty", nil, 0, noDevs},
		{"devices without metrics", map[string]telemetry.Metrics{"a": nil, "b": {}}, 0, noDevs},
		{"one device", map[string]telemetry.Metrics{"a": {"cpu": 12.5}}, 0,
			map[string]MetricStats{"cpu": {Count: 1, Avg: 12.5, Min: 12.5, MinDevice: "a", Max: 12.5, MaxDevice: "a",
				P50: 12.5, P95: 12.5, Top: []Ranked{{"a", 12.5}}}}},
		{"ties: min and max go to the smallest id, top orders ties by id",
			map[string]telemetry.Metrics{"b": {"t": 5}, "a": {"t": 5}, "e": {"t": 7}, "d": {"t": 9}, "c": {"t": 9}}, 3,
			map[string]MetricStats{"t": {Count: 5, Avg: 7, Min: 5, MinDevice: "a", Max: 9, MaxDevice: "c",
				P50: 7, P95: 9, Top: ranked("c", 9, "d", 9, "e", 7)}}},
		{"top cut inside a tie takes the smallest ids",
			map[string]telemetry.Metrics{"f": {"z": 0}, "b": {"z": 0}, "e": {"z": 0}, "a": {"z": 0}, "d": {"z": 0}, "c": {"z": 0}}, 3,
			map[string]MetricStats{"z": {Count: 6, Avg: 0, Min: 0, MinDevice: "a", Max: 0, MaxDevice: "a",
				P50: 0, P95: 0, Top: ranked("a", 0, "b", 0, "c", 0)}}},
		{"top longer than the set", map[string]telemetry.Metrics{"a": {"x": 1}, "b": {"x": 2}}, 10,
			map[string]MetricStats{"x": {Count: 2, Avg: 1.5, Min: 1, MinDevice: "a", Max: 2, MaxDevice: "b",
				P50: 1, P95: 2, Top: ranked("b", 2, "a", 1)}}},
		// Nearest rank: P = value at rank ceil(p/100 × n) of the ascending values.
		{"percentiles n=2: ranks 1 and 2", series(2), 0, seriesStats(2, 1.5, 3)},
		{"percentiles n=3: ranks 2 and 3", series(3), 0, seriesStats(3, 3, 4.5)},
		{"percentiles n=20: ranks 10 and 19", series(20), 0, seriesStats(20, 15, 28.5)},
		{"percentiles n=100: ranks 50 and 95", series(100), 0, seriesStats(100, 75, 142.5)},
		{"a metric only some devices have",
			map[string]telemetry.Metrics{"a": {"cpu": 1, "temp": 50}, "b": {"cpu": 3}}, 0,
			map[string]MetricStats{
				"cpu": {Count: 2, Avg: 2, Min: 1, MinDevice: "a", Max: 3, MaxDevice: "b", P50: 1, P95: 3,
					Top: ranked("b", 3, "a", 1)},
				"temp": {Count: 1, Avg: 50, Min: 50, MinDevice: "a", Max: 50, MaxDevice: "a", P50: 50, P95: 50,
					Top: ranked("a", 50)},
			}},
		{"NaN and ±Inf are ignored",
			map[string]telemetry.Metrics{"a": {"cpu": nan, "temp": 40, "fan": nan}, "b": {"cpu": inf, "temp": -inf}, "c": {"cpu": 2}}, 0,
			map[string]MetricStats{
				"cpu":  {Count: 1, Avg: 2, Min: 2, MinDevice: "c", Max: 2, MaxDevice: "c", P50: 2, P95: 2, Top: ranked("c", 2)},
				"temp": {Count: 1, Avg: 40, Min: 40, MinDevice: "a", Max: 40, MaxDevice: "a", P50: 40, P95: 40, Top: ranked("a", 40)},
			}},
		{"-0 and 0 are equal: the device decides",
			map[string]telemetry.Metrics{"b": {"x": 0}, "a": {"x": negZ}}, 0,
			map[string]MetricStats{"x": {Count: 2, Avg: 0, Min: negZ, MinDevice: "a", Max: negZ, MaxDevice: "a",
				P50: negZ, P95: 0, Top: []Ranked{{"a", negZ}, {"b", 0}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkStats(t, "Aggregate", Aggregate(tt.values, tt.topN), tt.want)
			// The Aggregator must agree, whatever order devices arrive in.
			devs := sortedKeys(tt.values)
			for range 2 {
				a := NewAggregator(tt.topN)
				for _, dev := range devs {
					a.Set(dev, tt.values[dev])
				}
				checkStats(t, fmt.Sprintf("Stats after Set of %v", devs), a.Stats(), tt.want)
				slices.Reverse(devs)
			}
		})
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct{ p, n, want int }{
		{50, 1, 1}, {95, 1, 1}, {50, 2, 1}, {95, 2, 2}, {50, 3, 2}, {95, 3, 3},
		{50, 20, 10}, {95, 20, 19}, {95, 21, 20}, {50, 100, 50}, {95, 100, 95}, {95, 101, 96},
		// Ceiling, not rounding: 12.35 → 13, 31.35 → 32.
		{95, 13, 13}, {95, 33, 32},
	}
	for _, tt := range tests {
		if got := nearestRank(tt.p, tt.n); got != tt.want {
			t.Errorf("nearestRank(%d, %d) = %d, want %d", tt.p, tt.n, got, tt.want)
		}
	}
}

// op is one Aggregator call in a table test: Set(dev, m), or Remove(dev).
type op struct {
	dev    string
	m      telemetry.Metrics
	remove bool
}

func set(dev string, m telemetry.Metrics) op { return op{dev: dev, m: m} }
func remove(dev string) op                   { return op{dev: dev, remove: true} }

// runOps applies ops to a fresh Aggregator and checks it against the set
// the test expects to remain, computed from scratch, and its Len.
func runOps(t *testing.T, ops []op, want map[string]telemetry.Metrics) *Aggregator {
	t.Helper()
	a := NewAggregator(3)
	for _, o := range ops {
		if o.remove {
			a.Remove(o.dev)
		} else {
			a.Set(o.dev, o.m)
		}
	}
	if got := a.Len(); got != len(want) {
		t.Errorf("Len() = %d, want %d", got, len(want))
	}
	checkStats(t, "Stats", a.Stats(), Aggregate(want, 3))
	return a
}

func TestAggregator_Set(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want map[string]telemetry.Metrics
	}{
		{"replaces the previous value",
			[]op{set("a", telemetry.Metrics{"cpu": 1}), set("b", telemetry.Metrics{"cpu": 2}), set("a", telemetry.Metrics{"cpu": 5})},
			map[string]telemetry.Metrics{"a": {"cpu": 5}, "b": {"cpu": 2}}},
		{"an absent metric is removed",
			[]op{set("a", telemetry.Metrics{"cpu": 1, "temp": 2}), set("a", telemetry.Metrics{"cpu": 1})},
			map[string]telemetry.Metrics{"a": {"cpu": 1}}},
		{"NaN drops the old value instead of keeping it",
			[]op{set("a", telemetry.Metrics{"cpu": 1}), set("b", telemetry.Metrics{"cpu": 2}), set("a", telemetry.Metrics{"cpu": nan})},
			map[string]telemetry.Metrics{"a": {}, "b": {"cpu": 2}}},
		{"Inf is ignored for a new metric",
			[]op{set("a", telemetry.Metrics{"cpu": 1, "temp": -inf})},
			map[string]telemetry.Metrics{"a": {"cpu": 1}}},
		{"an unchanged reading changes nothing",
			[]op{set("a", telemetry.Metrics{"cpu": 1, "up": 7}), set("a", telemetry.Metrics{"cpu": 1, "up": 7})},
			map[string]telemetry.Metrics{"a": {"cpu": 1, "up": 7}}},
		{"0 then -0 is stored as sent",
			[]op{set("a", telemetry.Metrics{"x": 0}), set("b", telemetry.Metrics{"x": 0}), set("a", telemetry.Metrics{"x": negZ})},
			map[string]telemetry.Metrics{"a": {"x": negZ}, "b": {"x": 0}}},
		{"a device without metrics is in the set",
			[]op{set("a", nil), set("b", telemetry.Metrics{})},
			map[string]telemetry.Metrics{"a": {}, "b": {}}},
		{"a metric comes back after its last device dropped it",
			[]op{set("a", telemetry.Metrics{"gpu": 3}), set("a", telemetry.Metrics{}), set("b", telemetry.Metrics{"gpu": 4})},
			map[string]telemetry.Metrics{"a": {}, "b": {"gpu": 4}}},
		{"the top moves when the leader drops",
			[]op{set("a", telemetry.Metrics{"t": 9}), set("b", telemetry.Metrics{"t": 8}), set("c", telemetry.Metrics{"t": 7}),
				set("d", telemetry.Metrics{"t": 6}), set("a", telemetry.Metrics{"t": 1})},
			map[string]telemetry.Metrics{"a": {"t": 1}, "b": {"t": 8}, "c": {"t": 7}, "d": {"t": 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runOps(t, tt.ops, tt.want) })
	}
}

func TestAggregator_Remove(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want map[string]telemetry.Metrics
	}{
		{"an unknown device is a no-op",
			[]op{set("a", telemetry.Metrics{"cpu": 1}), remove("zz")},
			map[string]telemetry.Metrics{"a": {"cpu": 1}}},
		{"removing the last device empties the stats",
			[]op{set("a", telemetry.Metrics{"cpu": 1}), remove("a")},
			map[string]telemetry.Metrics{}},
		{"removing the min and max devices moves both",
			[]op{set("a", telemetry.Metrics{"t": 1}), set("b", telemetry.Metrics{"t": 5}), set("c", telemetry.Metrics{"t": 9}), remove("a"), remove("c")},
			map[string]telemetry.Metrics{"b": {"t": 5}}},
		{"twice is a no-op",
			[]op{set("a", telemetry.Metrics{"t": 1}), set("b", telemetry.Metrics{"t": 1}), remove("a"), remove("a")},
			map[string]telemetry.Metrics{"b": {"t": 1}}},
		{"a device without metrics",
			[]op{set("a", nil), remove("a")},
			map[string]telemetry.Metrics{}},
		// Removed devices' slots are reused: ties must still order by id.
		{"a device set again after removal",
			[]op{set("b", telemetry.Metrics{"t": 2}), set("c", telemetry.Metrics{"t": 2}), remove("b"),
				set("a", telemetry.Metrics{"t": 2}), set("b", telemetry.Metrics{"t": 2})},
			map[string]telemetry.Metrics{"a": {"t": 2}, "b": {"t": 2}, "c": {"t": 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runOps(t, tt.ops, tt.want) })
	}
}

// TestAggregator_Random runs random Sets and Removes with many ties, -0,
// NaN and values of mixed sign and size, checking Stats against Aggregate
// over the same values every few thousand operations. 200k updates also
// show that the incremental sums do not drift.
func TestAggregator_Random(t *testing.T) {
	const (
		devices = 300
		ops     = 200_000
		every   = 2_000
		topN    = 7
	)
	metrics := []string{"ints", "small", "wide", "rare", "flip"}
	r := rand.New(rand.NewPCG(42, 1))
	value := func(metric string) float64 {
		switch metric {
		case "ints": // heavy ties
			return float64(r.IntN(6))
		case "small":
			return float64(r.IntN(2000)-1000) / 8
		case "flip": // -0 and 0 side by side
			return []float64{0, negZ, 1}[r.IntN(3)]
		}
		switch r.IntN(50) {
		case 0:
			return nan
		case 1:
			return math.Inf(1 - 2*r.IntN(2))
		}
		return (r.Float64() - 0.3) * math.Pow(10, float64(r.IntN(12)))
	}
	a := NewAggregator(topN)
	values := make(map[string]telemetry.Metrics)
	for i := range ops {
		dev := fmt.Sprintf("dev-%03d", r.IntN(devices))
		if r.IntN(10) < 3 {
			a.Remove(dev)
			delete(values, dev)
		} else {
			old, m := values[dev], telemetry.Metrics{}
			for _, name := range metrics {
				v, had := old[name]
				switch {
				case name == "rare" && r.IntN(4) != 0, r.IntN(10) == 0:
					// absent
				case had && r.IntN(3) == 0:
					m[name] = v // unchanged
				default:
					m[name] = value(name)
				}
			}
			a.Set(dev, m)
			values[dev] = m
		}
		if i%every == every-1 {
			if got, want := a.Len(), len(values); got != want {
				t.Fatalf("op %d: Len() = %d, want %d", i, got, want)
			}
			checkStats(t, fmt.Sprintf("op %d: Stats", i), a.Stats(), Aggregate(values, topN))
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

// TestAggregator_NoDrift flips one device between huge values and back,
// next to small ones, 100k times. A plain running sum would lose the small
// values to rounding at every flip (1e17 + 0.1 is 1e17); the compensated
// block sums must keep Avg exact.
func TestAggregator_NoDrift(t *testing.T) {
	a := NewAggregator(0)
	values := make(map[string]telemetry.Metrics)
	for i := range 200 {
		dev := fmt.Sprintf("d%03d", i)
		values[dev] = telemetry.Metrics{"x": 0.1 * float64(i+1)}
		a.Set(dev, values[dev])
	}
	r := rand.New(rand.NewPCG(3, 3))
	for range 100_000 {
		a.Set("d100", telemetry.Metrics{"x": (r.Float64() - 0.5) * 1e17})
	}
	a.Set("d100", values["d100"])
	checkStats(t, "Stats", a.Stats(), Aggregate(values, 0))
}

// checkStats compares got with want field by field: values by their bits
// (so -0 ≠ 0), Avg within 1e-9 relative.
func checkStats(t *testing.T, what string, got, want map[string]MetricStats) {
	t.Helper()
	for _, name := range sortedKeys(want) {
		g, ok := got[name]
		w := want[name]
		if !ok {
			t.Errorf("%s: metric %q missing, want %+v", what, name, w)
			continue
		}
		avgOK := g.Avg == w.Avg || math.Abs(g.Avg-w.Avg) <= 1e-9*math.Abs(w.Avg)
		ga, wa := g, w
		ga.Avg, wa.Avg = 0, 0
		if !avgOK || !sameStats(ga, wa) {
			t.Errorf("%s[%q]:\n got %+v\nwant %+v", what, name, g, w)
		}
	}
	for _, name := range sortedKeys(got) {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected metric %q: %+v", what, name, got[name])
		}
	}
}

func sameStats(a, b MetricStats) bool {
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	return a.Count == b.Count && same(a.Avg, b.Avg) &&
		same(a.Min, b.Min) && a.MinDevice == b.MinDevice &&
		same(a.Max, b.Max) && a.MaxDevice == b.MaxDevice &&
		same(a.P50, b.P50) && same(a.P95, b.P95) &&
		slices.EqualFunc(a.Top, b.Top, func(x, y Ranked) bool { return x.Device == y.Device && same(x.Value, y.Value) })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
