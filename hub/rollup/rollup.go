package rollup

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// Point summarizes the samples of one series in [TS, TS+width): TS is a
// multiple of width (epoch-aligned, floor division also for negative TS).
type Point struct {
	TS    int64
	Count int64
	// Min ≤ Avg ≤ Max; Last is the value of the latest sample in the bucket.
	Min, Max, Avg, Last float64
}

// bounds returns the first and last millisecond of the width-wide bucket
// holding ts. Floor division puts -1 in [-width, 0). The one bucket that
// straddles an int64 limit is clamped to it (its start is then not a
// multiple of width), so the arithmetic never wraps.
func bounds(ts, width int64) (first, last int64) {
	m := ts % width
	if m < 0 {
		m += width
	}
	first, last = ts-m, ts+(width-1-m)
	if first > ts {
		first = math.MinInt64
	}
	if last < ts {
		last = math.MaxInt64
	}
	return first, last
}

func mustPositive(width int64) {
	if width <= 0 {
		panic("rollup: width must be positive")
	}
}

// clamp restores Min ≤ Avg ≤ Max, which float rounding of the mean (three
// samples of 0.1 average to 0.10000000000000002) or of RoundAvg can break.
func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// Of appends to dst the rollups of pts (sorted by strictly increasing TS) in
// aligned buckets of width ms (width > 0). Empty buckets produce nothing.
func Of(dst []Point, pts []chunk.Point, width int64) []Point {
	mustPositive(width)
	for i := 0; i < len(pts); {
		first, last := bounds(pts[i].TS, width)
		lo, hi, sum := pts[i].V, pts[i].V, pts[i].V
		j := i + 1
		for ; j < len(pts) && pts[j].TS >= first && pts[j].TS <= last; j++ {
			v := pts[j].V
			lo, hi, sum = min(lo, v), max(hi, v), sum+v
		}
		n := float64(j - i)
		avg := sum / n
		if math.IsInf(sum, 0) { // finite values whose sum overflows
			avg = 0
			for _, p := range pts[i:j] {
				avg += p.V / n
			}
		}
		dst = append(dst, Point{TS: first, Count: int64(j - i), Min: lo, Max: hi,
			Avg: clamp(avg, lo, hi), Last: pts[j-1].V})
		i = j
	}
	return dst
}

// Coarsen appends to dst the rollups of in (sorted by TS, each bucket of some
// finer width dividing width) combined into aligned buckets of width. Avg is
// count-weighted; Min/Max over inputs; Count summed; Last from the latest
// input. An input's TS is floor-aligned into its output bucket even when its
// width does not divide width. Inputs with Count < 1 summarize nothing and
// are skipped.
func Coarsen(dst []Point, in []Point, width int64) []Point {
	mustPositive(width)
	for i := 0; i < len(in); {
		if in[i].Count < 1 {
			i++
			continue
		}
		first, last := bounds(in[i].TS, width)
		out := in[i]
		out.TS = first
		lastTS, sum := in[i].TS, in[i].Avg*float64(in[i].Count)
		j := i + 1
		for ; j < len(in) && in[j].TS >= first && in[j].TS <= last; j++ {
			q := in[j]
			if q.Count < 1 {
				continue
			}
			out.Count += q.Count
			out.Min, out.Max = min(out.Min, q.Min), max(out.Max, q.Max)
			if q.TS >= lastTS {
				lastTS, out.Last = q.TS, q.Last
			}
			sum += q.Avg * float64(q.Count)
		}
		total := float64(out.Count)
		avg := sum / total
		if math.IsInf(sum, 0) { // weights ≤ 1 cannot overflow
			avg = 0
			for _, q := range in[i:j] {
				if q.Count >= 1 {
					avg += q.Avg * (float64(q.Count) / total)
				}
			}
		}
		out.Avg = clamp(avg, out.Min, out.Max)
		dst = append(dst, out)
		i = j
	}
	return dst
}

// Replace returns old (sorted) with upd (sorted) merged in: a point of upd
// replaces the point of old with the same TS (new wins, unlike chunk.Merge:
// a recomputed rollup supersedes the stale one, whereas a redelivered raw
// sample must be idempotent). Result sorted, strictly increasing TS. Inputs
// are not modified; unsorted ones are sorted (stably) first, and within one
// input the later of equal timestamps wins.
func Replace(old, upd []Point) []Point {
	old, upd = sortedByTS(old), sortedByTS(upd)
	out := make([]Point, 0, len(old)+len(upd))
	i, j := 0, 0
	for i < len(old) || j < len(upd) {
		var p Point
		switch {
		case j == len(upd) || (i < len(old) && old[i].TS < upd[j].TS):
			p = old[i]
			i++
		case i < len(old) && old[i].TS == upd[j].TS:
			i++ // superseded
			continue
		default:
			p = upd[j]
			j++
		}
		if n := len(out); n > 0 && out[n-1].TS == p.TS {
			out[n-1] = p
			continue
		}
		out = append(out, p)
	}
	return out
}

func byTS(a, b Point) int { return cmp.Compare(a.TS, b.TS) }

func sortedByTS(pts []Point) []Point {
	if slices.IsSortedFunc(pts, byTS) {
		return pts
	}
	pts = slices.Clone(pts)
	slices.SortStableFunc(pts, byTS)
	return pts
}

// RoundAvg rounds v to 6 significant digits (exactly what Encode stores).
// Zero, including -0, becomes +0: -0 would push the whole Avg column of a
// chunk out of scaled-integer mode. ±Inf and NaN are returned unchanged.
func RoundAvg(v float64) float64 {
	if v == 0 {
		return 0
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	var buf [32]byte
	r, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], v, 'g', 6, 64)), 64)
	if err != nil {
		return v
	}
	return r
}
