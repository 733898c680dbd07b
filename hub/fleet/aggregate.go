package fleet

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// MetricStats aggregates one metric over a set of devices (the online ones).
//
// Values are ordered by (value, device id), -0 and 0 being equal, so ties
// go to the smallest id: MinDevice and MaxDevice are the smallest ids
// holding the lowest and the highest value, and Top lists equal values by
// id. P50 and P95 are nearest-rank percentiles: the value at 1-based rank
// ceil(p/100 × Count) of the values sorted ascending.
type MetricStats struct {
	Count     int      `json:"count"`
	Avg       float64  `json:"avg"`
	Min       float64  `json:"min"`
	MinDevice string   `json:"min_device"`
	Max       float64  `json:"max"`
	MaxDevice string   `json:"max_device"`
	P50       float64  `json:"p50"`
	P95       float64  `json:"p95"`
	Top       []Ranked `json:"top"` // highest values first, at most topN
}

// Ranked is one device's place in a top-N list.
type Ranked struct {
	Device string  `json:"device"`
	Value  float64 `json:"value"`
}

// DefaultTopN is the top-N length when 0 is given.
const DefaultTopN = 5

// Aggregator keeps MetricStats up to date as devices report, without
// recomputing from scratch: a changed value costs O(log n) searches and
// moving at most one block of entries, not O(n).
//
// Make one with NewAggregator. It is not safe for concurrent use.
type Aggregator struct {
	topN    int
	metrics map[string]*sortedList // metric name → its values; never empty
	devices map[string]*member
	names   []string // device ids by index; "" when the index is free
	free    []uint32 // free indexes into names
}

// member is a device in the set: its index in names and current values.
type member struct {
	id   uint32
	vals map[string]held
}

// held is a device's current value of one metric and the list holding it,
// so Set finds the old entry without looking the metric up.
type held struct {
	l *sortedList
	v float64
}

// NewAggregator returns an empty Aggregator whose Top lists hold topN
// devices, or DefaultTopN when topN ≤ 0.
func NewAggregator(topN int) *Aggregator {
	return &Aggregator{
		topN:    normTopN(topN),
		metrics: make(map[string]*sortedList),
		devices: make(map[string]*member),
	}
}

func normTopN(topN int) int {
	if topN <= 0 {
		return DefaultTopN
	}
	return topN
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Set records that device is in the set with these latest values; it
// replaces the device's previous values; metrics absent from m are removed
// for that device. Non-finite values (NaN, ±Inf) are ignored, that is
// treated as absent, so a broken sensor drops out of the aggregates
// instead of keeping its last good value forever. A device with no
// metrics still counts in Len.
func (a *Aggregator) Set(device string, m telemetry.Metrics) {
	d := a.devices[device]
	if d == nil {
		d = &member{id: a.alloc(device), vals: make(map[string]held, len(m))}
		a.devices[device] = d
	}
	old, kept := len(d.vals), 0
	for name, v := range m {
		if !finite(v) {
			continue
		}
		h, had := d.vals[name]
		switch {
		case !had:
			h.l = a.metrics[name]
			if h.l == nil {
				h.l = &sortedList{names: &a.names}
				a.metrics[name] = h.l
			}
		case math.Float64bits(h.v) == math.Float64bits(v):
			// Most metrics of a reading repeat the last one (counters at 0,
			// totals); skip them. Bits, not ==, so 0 → -0 is stored as sent.
			kept++
			continue
		default:
			kept++
			h.l.remove(item{h.v, d.id})
		}
		h.l.insert(item{v, d.id})
		h.v = v
		d.vals[name] = h
	}
	if kept == old {
		return // the usual case: the device reports the same metrics
	}
	for name, h := range d.vals {
		if v, ok := m[name]; !ok || !finite(v) {
			a.drop(name, h, d.id)
			delete(d.vals, name)
		}
	}
}

// alloc gives device an index into names, reusing freed ones so names
// stays as long as the largest set seen.
func (a *Aggregator) alloc(device string) uint32 {
	if n := len(a.free); n > 0 {
		id := a.free[n-1]
		a.free = a.free[:n-1]
		a.names[id] = device
		return id
	}
	a.names = append(a.names, device)
	return uint32(len(a.names) - 1)
}

// drop removes device id's value h of metric name, and the metric itself
// when it was the last device to have it.
func (a *Aggregator) drop(name string, h held, id uint32) {
	h.l.remove(item{h.v, id})
	if h.l.n == 0 {
		delete(a.metrics, name)
	}
}

// Remove takes device out of the set (it went stale or offline).
func (a *Aggregator) Remove(device string) {
	d := a.devices[device]
	if d == nil {
		return
	}
	for name, h := range d.vals {
		a.drop(name, h, d.id)
	}
	delete(a.devices, device)
	a.names[d.id] = ""
	a.free = append(a.free, d.id)
}

// Len is the number of devices in the set.
func (a *Aggregator) Len() int { return len(a.devices) }

// Stats returns the aggregates of every metric that at least one device in
// the set has. It sorts nothing: per metric it walks the block counts once
// (sum and both percentiles) and finds the top devices by binary search,
// O(n/minBlock + topN × log n).
func (a *Aggregator) Stats() map[string]MetricStats {
	out := make(map[string]MetricStats, len(a.metrics))
	for name, l := range a.metrics {
		out[name] = l.stats(a.topN)
	}
	return out
}

func (l *sortedList) stats(topN int) MetricStats {
	n := l.n
	r50, r95 := nearestRank(50, n)-1, nearestRank(95, n)-1
	var p50, p95, s, c float64
	seen := 0
	for i := range l.blocks {
		b := &l.blocks[i]
		k := len(b.vals)
		if r50 >= seen && r50 < seen+k {
			p50 = b.vals[r50-seen]
		}
		if r95 >= seen && r95 < seen+k {
			p95 = b.vals[r95-seen]
		}
		seen += k
		s, c = twoSum(s, c, b.sum)
		c += b.comp // error terms: their own rounding is negligible
	}
	first := l.at(pos{})
	top := l.top(topN)
	return MetricStats{
		Count: n, Avg: (s + c) / float64(n),
		Min: first.v, MinDevice: (*l.names)[first.id],
		Max: top[0].Value, MaxDevice: top[0].Device,
		P50: p50, P95: p95, Top: top,
	}
}

// top returns the topN highest entries, ties by device ascending. Walking
// back from the end meets a tie run in descending device order, so it
// takes one run of equal values at a time: binary-search the run's start,
// read forward. Each run costs O(log n) and gives at least one device.
func (l *sortedList) top(topN int) []Ranked {
	top := make([]Ranked, 0, min(topN, l.n))
	end := pos{len(l.blocks), 0}
	for end != (pos{}) && len(top) < topN {
		start := l.lowerBound(l.at(l.prev(end)).v)
		for p := start; p != end && len(top) < topN; p = l.next(p) {
			it := l.at(p)
			top = append(top, Ranked{Device: (*l.names)[it.id], Value: it.v})
		}
		end = start
	}
	return top
}

// nearestRank is the 1-based rank ceil(p/100 × n), in integers so that
// e.g. 95% of 20 is exactly rank 19.
func nearestRank(p, n int) int {
	return max((p*n+99)/100, 1)
}

// Aggregate computes the same as Aggregator.Stats from scratch, sorting
// each metric's values: for group-by queries over a subset of devices,
// and as the tests' reference for the Aggregator.
func Aggregate(values map[string]telemetry.Metrics, topN int) map[string]MetricStats {
	topN = normTopN(topN)
	byMetric := make(map[string][]entry)
	for dev, m := range values {
		for name, v := range m {
			if finite(v) {
				byMetric[name] = append(byMetric[name], entry{v, dev})
			}
		}
	}
	out := make(map[string]MetricStats, len(byMetric))
	for name, es := range byMetric {
		slices.SortFunc(es, cmpEntry)
		out[name] = statsOf(es, topN)
	}
	return out
}

// entry is one device's value of a metric, for Aggregate.
type entry struct {
	v   float64
	dev string
}

// cmpEntry orders entries by value, then device. -0 and 0 compare equal,
// so their order falls to the device as for any tie.
func cmpEntry(a, b entry) int {
	if c := cmp.Compare(a.v, b.v); c != 0 {
		return c
	}
	return strings.Compare(a.dev, b.dev)
}

// statsOf aggregates es, sorted by (value, device).
func statsOf(es []entry, topN int) MetricStats {
	n := len(es)
	var s, c float64
	for _, e := range es {
		s, c = twoSum(s, c, e.v)
	}
	top := make([]Ranked, 0, min(topN, n))
	for end := n; end > 0 && len(top) < topN; {
		start := end - 1
		for start > 0 && es[start-1].v == es[end-1].v {
			start--
		}
		for _, e := range es[start:min(end, start+topN-len(top))] {
			top = append(top, Ranked{Device: e.dev, Value: e.v})
		}
		end = start
	}
	return MetricStats{
		Count: n, Avg: (s + c) / float64(n),
		Min: es[0].v, MinDevice: es[0].dev,
		Max: top[0].Value, MaxDevice: top[0].Device,
		P50: es[nearestRank(50, n)-1].v, P95: es[nearestRank(95, n)-1].v,
		Top: top,
	}
}
