package rollup

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

const (
	minute = int64(60_000)
	hour   = 60 * minute
	t0     = int64(1_764_374_400_000) // 2025-11-29 00:00 UTC, hour-aligned
)

var negZero = math.Copysign(0, -1)

// same reports whether two points are bit-identical (so -0 ≠ +0).
func same(a, b Point) bool {
	f := math.Float64bits
	return a.TS == b.TS && a.Count == b.Count && f(a.Min) == f(b.Min) && f(a.Max) == f(b.Max) &&
		f(a.Avg) == f(b.Avg) && f(a.Last) == f(b.Last)
}

func samePoints(t testing.TB, got, want []Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d points, want %d\ngot  %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("point %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func pt(ts int64, v float64) chunk.Point { return chunk.Point{TS: ts, V: v} }

func cps(ts0, step int64, vs ...float64) []chunk.Point {
	pts := make([]chunk.Point, len(vs))
	for i, v := range vs {
		pts[i] = chunk.Point{TS: ts0 + int64(i)*step, V: v}
	}
	return pts
}

func TestOf(t *testing.T) {
	tests := []struct {
		name  string
		pts   []chunk.Point
		width int64
		want  []Point
	}{
		{"empty", nil, minute, nil},
		{"single", cps(t0+1500, 0, 7.5), minute,
			[]Point{{TS: t0, Count: 1, Min: 7.5, Max: 7.5, Avg: 7.5, Last: 7.5}}},
		{"one bucket", cps(t0, 1000, 3, 1, 2, 6), minute,
			[]Point{{TS: t0, Count: 4, Min: 1, Max: 6, Avg: 3, Last: 6}}},
		{"bucket edges", []chunk.Point{pt(t0-1, 1), pt(t0, 2), pt(t0+minute-1, 4), pt(t0+minute, 8)}, minute,
			[]Point{
				{TS: t0 - minute, Count: 1, Min: 1, Max: 1, Avg: 1, Last: 1},
				{TS: t0, Count: 2, Min: 2, Max: 4, Avg: 3, Last: 4},
				{TS: t0 + minute, Count: 1, Min: 8, Max: 8, Avg: 8, Last: 8},
			}},
		{"empty buckets skipped", []chunk.Point{pt(t0, 1), pt(t0+5*minute+3, 2)}, minute,
			[]Point{
				{TS: t0, Count: 1, Min: 1, Max: 1, Avg: 1, Last: 1},
				{TS: t0 + 5*minute, Count: 1, Min: 2, Max: 2, Avg: 2, Last: 2},
			}},
		{"negative ts floors", []chunk.Point{pt(-minute-1, 1), pt(-1, 2), pt(0, 3), pt(1, 5)}, minute,
			[]Point{
				{TS: -2 * minute, Count: 1, Min: 1, Max: 1, Avg: 1, Last: 1},
				{TS: -minute, Count: 1, Min: 2, Max: 2, Avg: 2, Last: 2},
				{TS: 0, Count: 2, Min: 3, Max: 5, Avg: 4, Last: 5},
			}},
		{"last is latest not max", cps(t0, 1000, 5, 9, -2), minute,
			[]Point{{TS: t0, Count: 3, Min: -2, Max: 9, Avg: 4, Last: -2}}},
		{"avg clamped into range", cps(t0, 1000, 0.1, 0.1, 0.1), minute,
			[]Point{{TS: t0, Count: 3, Min: 0.1, Max: 0.1, Avg: 0.1, Last: 0.1}}},
		{"negative zero kept", cps(t0, 1000, negZero, negZero), minute,
			[]Point{{TS: t0, Count: 2, Min: negZero, Max: negZero, Avg: negZero, Last: negZero}}},
		{"sum overflow", cps(t0, 1000, math.MaxFloat64, math.MaxFloat64), minute,
			[]Point{{TS: t0, Count: 2, Min: math.MaxFloat64, Max: math.MaxFloat64, Avg: math.MaxFloat64, Last: math.MaxFloat64}}},
		{"sum overflow mean", cps(t0, 1000, 0x1p1023, 0x1p1023, 0x1p1022, -0x1p1022), minute,
			[]Point{{TS: t0, Count: 4, Min: -0x1p1022, Max: 0x1p1023, Avg: 0x1p1022, Last: -0x1p1022}}},
		{"width 1", cps(5, 1, 1, 2), 1,
			[]Point{{TS: 5, Count: 1, Min: 1, Max: 1, Avg: 1, Last: 1}, {TS: 6, Count: 1, Min: 2, Max: 2, Avg: 2, Last: 2}}},
		// The bucket holding MinInt64 starts below it and is clamped to it.
		{"min int64", []chunk.Point{pt(math.MinInt64, 1), pt(math.MinInt64+1, 3), pt(math.MinInt64+minute, 5)}, minute,
			[]Point{
				{TS: math.MinInt64, Count: 2, Min: 1, Max: 3, Avg: 2, Last: 3},
				{TS: -153722867280912 * minute, Count: 1, Min: 5, Max: 5, Avg: 5, Last: 5},
			}},
		{"max int64", []chunk.Point{pt(math.MaxInt64-1, 1), pt(math.MaxInt64, 3)}, minute,
			[]Point{{TS: 153722867280912 * minute, Count: 2, Min: 1, Max: 3, Avg: 2, Last: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Of(nil, tt.pts, tt.width)
			samePoints(t, got, tt.want)
			for _, p := range got {
				if p.TS != math.MinInt64 && p.TS%tt.width != 0 {
					t.Errorf("bucket ts %d not a multiple of %d", p.TS, tt.width)
				}
			}
		})
	}
	t.Run("appends to dst", func(t *testing.T) {
		dst := []Point{{TS: 1}}
		got := Of(dst, cps(t0, 1000, 1), minute)
		samePoints(t, got, []Point{{TS: 1}, {TS: t0, Count: 1, Min: 1, Max: 1, Avg: 1, Last: 1}})
	})
	t.Run("width 0 panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("got no panic, want one")
			}
		}()
		Of(nil, cps(t0, 1000, 1), 0)
	})
}

func TestCoarsen(t *testing.T) {
	m := func(ts, n int64, lo, hi, avg, last float64) Point { return Point{ts, n, lo, hi, avg, last} }
	tests := []struct {
		name  string
		in    []Point
		width int64
		want  []Point
	}{
		{"empty", nil, hour, nil},
		{"single", []Point{m(t0+minute, 60, 1, 3, 2, 2.5)}, hour, []Point{m(t0, 60, 1, 3, 2, 2.5)}},
		{"weighted avg", []Point{m(t0, 30, 0, 2, 1, 1), m(t0+minute, 10, 4, 6, 5, 4)}, hour,
			[]Point{m(t0, 40, 0, 6, 2, 4)}},
		{"splits by hour", []Point{m(t0-minute, 1, 1, 1, 1, 1), m(t0, 1, 2, 2, 2, 2), m(t0+hour-minute, 1, 4, 4, 4, 4), m(t0+hour, 1, 8, 8, 8, 8)}, hour,
			[]Point{m(t0-hour, 1, 1, 1, 1, 1), m(t0, 2, 2, 4, 3, 4), m(t0+hour, 1, 8, 8, 8, 8)}},
		{"width not dividing", []Point{m(0, 1, 1, 1, 1, 1), m(minute, 1, 2, 2, 2, 2), m(2*minute, 1, 3, 3, 3, 3)}, 90_000,
			[]Point{m(0, 2, 1, 2, 1.5, 2), m(90_000, 1, 3, 3, 3, 3)}},
		{"negative ts floors", []Point{m(-2*minute, 1, 1, 1, 1, 1), m(-minute, 3, 0, 4, 3, 2), m(0, 1, 9, 9, 9, 9)}, hour,
			[]Point{m(-hour, 4, 0, 4, 2.5, 2), m(0, 1, 9, 9, 9, 9)}},
		{"count zero skipped", []Point{m(t0, 0, -99, 99, 50, 99), m(t0+minute, 2, 1, 3, 2, 3), m(t0+2*minute, 0, -5, 5, 0, 5)}, hour,
			[]Point{m(t0, 2, 1, 3, 2, 3)}},
		{"only count zero", []Point{m(t0, 0, 1, 1, 1, 1)}, hour, nil},
		{"avg clamped", []Point{m(t0, 1, 0.1, 0.1, 0.1, 0.1), m(t0+minute, 1, 0.1, 0.1, 0.1, 0.1), m(t0+2*minute, 1, 0.1, 0.1, 0.1, 0.1)}, hour,
			[]Point{m(t0, 3, 0.1, 0.1, 0.1, 0.1)}},
		{"overflowing weights", []Point{m(t0, 3, 0x1p1023, 0x1p1023, 0x1p1023, 0x1p1023), m(t0+minute, 1, 0x1.8p1023, 0x1.8p1023, 0x1.8p1023, 0x1.8p1023)}, hour,
			[]Point{m(t0, 4, 0x1p1023, 0x1.8p1023, 0x1.2p1023, 0x1.8p1023)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samePoints(t, Coarsen(nil, tt.in, tt.width), tt.want)
		})
	}
}

// randomSeries is a 1 Hz random walk rounded to 0.01, with jitter and gaps.
func randomSeries(rng *rand.Rand, n int, ts0 int64) []chunk.Point {
	pts := make([]chunk.Point, 0, n)
	ts, v := ts0, 50.0
	for range n {
		ts += 1000 + rng.Int64N(5)
		if rng.IntN(200) == 0 {
			ts += rng.Int64N(2 * hour) // agent offline
		}
		v += rng.NormFloat64() * 0.05
		pts = append(pts, chunk.Point{TS: ts, V: math.Round(v*100) / 100})
	}
	return pts
}

// TestOf_Coarsen checks that coarsening minute rollups gives the hour
// rollups of the raw samples (Avg up to float summation order).
func TestOf_Coarsen(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			raw := randomSeries(rng, 1+rng.IntN(20_000), t0-int64(rng.IntN(10))*hour-rng.Int64N(hour))
			if seed%2 == 1 { // exercise negative timestamps too
				for i := range raw {
					raw[i].TS -= t0 + 5*hour
				}
			}
			got := Coarsen(nil, Of(nil, raw, minute), hour)
			want := Of(nil, raw, hour)
			if len(got) != len(want) {
				t.Fatalf("got %d hours, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if math.Abs(g.Avg-w.Avg) > 1e-9*math.Abs(w.Avg) {
					t.Fatalf("hour %d avg: got %v, want %v", i, g.Avg, w.Avg)
				}
				g.Avg = w.Avg
				if !same(g, w) {
					t.Fatalf("hour %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestReplace(t *testing.T) {
	p := func(ts int64, v float64) Point { return Point{TS: ts, Count: 1, Min: v, Max: v, Avg: v, Last: v} }
	tests := []struct {
		name           string
		old, upd, want []Point
	}{
		{"both empty", nil, nil, []Point{}},
		{"old only", []Point{p(1, 1), p(2, 2)}, nil, []Point{p(1, 1), p(2, 2)}},
		{"upd only", nil, []Point{p(1, 9)}, []Point{p(1, 9)}},
		{"interleaved", []Point{p(1, 1), p(3, 3)}, []Point{p(2, 20), p(4, 40)}, []Point{p(1, 1), p(2, 20), p(3, 3), p(4, 40)}},
		{"new wins", []Point{p(1, 1), p(2, 2), p(3, 3)}, []Point{p(2, 20), p(3, 30)}, []Point{p(1, 1), p(2, 20), p(3, 30)}},
		{"replace first and last", []Point{p(1, 1), p(2, 2), p(3, 3)}, []Point{p(1, 10), p(3, 30)}, []Point{p(1, 10), p(2, 2), p(3, 30)}},
		{"later duplicate in upd wins", []Point{p(2, 2)}, []Point{p(2, 20), p(2, 21)}, []Point{p(2, 21)}},
		{"later duplicate in old wins", []Point{p(2, 2), p(2, 3), p(4, 4)}, []Point{p(1, 10)}, []Point{p(1, 10), p(2, 3), p(4, 4)}},
		{"unsorted inputs", []Point{p(3, 3), p(1, 1)}, []Point{p(2, 20), p(1, 10)}, []Point{p(1, 10), p(2, 20), p(3, 3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, upd := slices.Clone(tt.old), slices.Clone(tt.upd)
			got := Replace(old, upd)
			samePoints(t, got, tt.want)
			samePoints(t, old, tt.old) // inputs untouched
			samePoints(t, upd, tt.upd)
			for i := 1; i < len(got); i++ {
				if got[i].TS <= got[i-1].TS {
					t.Fatalf("ts %d after %d", got[i].TS, got[i-1].TS)
				}
			}
		})
	}
}

func TestRoundAvg(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{12.345678, 12.3457},
		{0.000123456789, 0.000123457},
		{1234567.8, 1.23457e6},
		{-1234567.8, -1.23457e6},
		{50.123449, 50.1234},
		{99.9999951, 100},
		{12.5, 12.5},
		{0, 0},
		{negZero, 0},
		{math.MaxFloat64, 1.79769e308},
		{math.SmallestNonzeroFloat64, math.SmallestNonzeroFloat64},
		{math.Inf(1), math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			got := RoundAvg(tt.in)
			if math.Float64bits(got) != math.Float64bits(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if again := RoundAvg(got); math.Float64bits(again) != math.Float64bits(got) {
				t.Errorf("not idempotent: got %v, want %v", again, got)
			}
		})
	}
	t.Run("random idempotent and close", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 3))
		for range 100_000 {
			v := math.Float64frombits(rng.Uint64())
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			r := RoundAvg(v)
			if again := RoundAvg(r); again != r {
				t.Fatalf("RoundAvg(%v): got %v then %v, want idempotent", v, r, again)
			}
			if v != 0 && math.Abs(r-v) > 5.000001e-6*math.Abs(v) {
				t.Fatalf("RoundAvg(%v): got %v, want within 6 significant digits", v, r)
			}
		}
	})
}
