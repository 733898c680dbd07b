package chunk

import (
	"math"
	"math/rand/v2"
)

// shape generates n points of one realistic telemetry series.
type shape struct {
	name string
	gen  func(rng *rand.Rand, n int) []Point
}

const t0 = 1_764_374_400_000 // 2025-11-29 00:00 UTC in ms

// regularTS is an exact 1 s cadence; jitterTS is a ticker read by a busy
// process: 1 s plus 0–4 ms of scheduling delay per sample.
func regularTS(_ *rand.Rand, i int) int64 { return t0 + int64(i)*1000 }
func jitterTS(rng *rand.Rand, i int) int64 {
	return t0 + int64(i)*1000 + rng.Int64N(5)
}

func walk(rng *rand.Rand, v, step, lo, hi float64) float64 {
	return math.Min(hi, math.Max(lo, v+(rng.Float64()*2-1)*step))
}

func round(v, p float64) float64 { return math.Round(v*p) / p }

func series(ts func(*rand.Rand, int) int64, val func(rng *rand.Rand, i int) float64) func(*rand.Rand, int) []Point {
	return func(rng *rand.Rand, n int) []Point {
		pts := make([]Point, n)
		for i := range pts {
			pts[i] = Point{ts(rng, i), val(rng, i)}
		}
		return pts
	}
}

// gauge returns a stateful value generator (state is per call of the
// returned shape function, via closure reset on i == 0).
func gauge(start float64, step func(rng *rand.Rand, v float64) float64) func(*rand.Rand, int) float64 {
	v := start
	return func(rng *rand.Rand, i int) float64 {
		if i == 0 {
			v = start
		}
		v = step(rng, v)
		return v
	}
}

func shapes(ts func(*rand.Rand, int) int64) []shape {
	var memB, rxTotal float64
	var busy, total int64
	return []shape{
		{"cpu_0.1", series(ts, func() func(*rand.Rand, int) float64 {
			g := gauge(20, func(rng *rand.Rand, v float64) float64 { return walk(rng, v, 6, 0.5, 100) })
			return func(rng *rand.Rand, i int) float64 { return round(g(rng, i), 10) }
		}())},
		{"cpu_fullprec", series(ts, func(rng *rand.Rand, i int) float64 {
			// What the agent sends today: 100·Δbusy/Δtotal jiffies.
			total = 396 + rng.Int64N(9) // 4 cores × 100 Hz
			busy = rng.Int64N(total/3 + 1)
			return 100 * float64(busy) / float64(total)
		})},
		{"mem_bytes", series(ts, func(rng *rand.Rand, i int) float64 {
			if i == 0 {
				memB = 2_147_483_648
			}
			if rng.IntN(4) == 0 { // changes every few seconds, by whole pages
				memB += float64((rng.Int64N(65) - 32) * 4096)
			}
			return memB
		})},
		{"mem_pct_0.1", series(ts, func() func(*rand.Rand, int) float64 {
			g := gauge(45, func(rng *rand.Rand, v float64) float64 { return walk(rng, v, 1, 5, 98) })
			return func(rng *rand.Rand, i int) float64 { return round(g(rng, i), 10) }
		}())},
		{"temp_0.1C", series(ts, func() func(*rand.Rand, int) float64 {
			g := gauge(48, func(rng *rand.Rand, v float64) float64 { return walk(rng, v, 0.6, 30, 85) })
			return func(rng *rand.Rand, i int) float64 { return round(g(rng, i), 10) }
		}())},
		{"load_0.01", series(ts, func() func(*rand.Rand, int) float64 {
			g := gauge(20, func(rng *rand.Rand, v float64) float64 { return walk(rng, v, 6, 0.5, 100) })
			return func(rng *rand.Rand, i int) float64 { return round(g(rng, i)/25, 100) }
		}())},
		{"constant", series(ts, func(*rand.Rand, int) float64 { return 1 })},
		{"uptime_counter", series(ts, func(_ *rand.Rand, i int) float64 { return 86400*12 + float64(i) })},
		{"rx_bytes_counter", series(ts, func(rng *rand.Rand, i int) float64 {
			if i == 0 {
				rxTotal = 9_876_543_210
			}
			rxTotal += float64(15000 + rng.Int64N(10000))
			return rxTotal
		})},
		{"rx_rate_sine", series(ts, func(rng *rand.Rand, i int) float64 {
			return math.Round(20000 + 15000*math.Sin(float64(i)*0.05) + rng.Float64()*5000)
		})},
		{"disk_pct_0.1", series(ts, func() func(*rand.Rand, int) float64 {
			g := gauge(40, func(rng *rand.Rand, v float64) float64 { return walk(rng, v, 0.01, 1, 99) })
			return func(rng *rand.Rand, i int) float64 { return round(g(rng, i), 10) }
		}())},
	}
}

// piMix is the fleetwatch-sim metric set (one series each per agent).
var piMix = []string{"cpu_0.1", "mem_pct_0.1", "load_0.01", "temp_0.1C", "uptime_counter", "disk_pct_0.1", "rx_rate_sine", "rx_rate_sine"}
