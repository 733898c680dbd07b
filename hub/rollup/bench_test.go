package rollup

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

const perChunk = 240 // 4 hours of minute rollups

// walk1Hz is days of a 1 Hz random walk rounded to 0.01 (a gauge such as a
// temperature sent with two decimals), kept within [20, 80] because the Avg
// column's cost depends on magnitude (6 significant digits are 4 decimals
// there, 5 below 10): exact 1 s cadence, or 0–4 ms of scheduler jitter.
func walk1Hz(seed uint64, days int, jitter bool) []chunk.Point {
	rng := rand.New(rand.NewPCG(seed, seed))
	pts := make([]chunk.Point, days*86_400)
	v := 50.0
	for i := range pts {
		v = min(80, max(20, v+(rng.Float64()*2-1)*0.1))
		pts[i] = chunk.Point{TS: t0 + int64(i)*1000, V: math.Round(v*100) / 100}
		if jitter {
			pts[i].TS += rng.Int64N(5)
		}
	}
	return pts
}

// size encodes pts in chunks of perChunk and returns the bytes per point,
// and per column (the section bytes including their length prefix).
func size(t testing.TB, pts []Point) (total float64, cols [len(columns)]float64) {
	t.Helper()
	n := 0
	for c := range slices.Chunk(pts, perChunk) {
		b := encode(t, c)
		n += len(b)
		rest := b[1:]
		for i := range cols {
			l, m := binary.Uvarint(rest)
			cols[i] += float64(m + int(l))
			rest = rest[m+int(l):]
		}
	}
	for i := range cols {
		cols[i] /= float64(len(pts))
	}
	return float64(n) / float64(len(pts)), cols
}

// TestBytesPerPoint measures rollup chunk size on realistic data (go test
// -run BytesPerPoint -v). The bound is ~25% above the measured figure so a
// regression that pushes a column out of scaled-integer mode fails it.
func TestBytesPerPoint(t *testing.T) {
	// B/point; measured 5.4 for minutes, 6.9 for hours.
	const minuteBound, hourBound = 6.8, 8.6
	for _, jitter := range []bool{false, true} {
		raw := walk1Hz(11, 10, jitter)
		minutes := Of(nil, raw, minute)
		bpp, cols := size(t, minutes)
		t.Logf("minute rollups, jitter %-5v: %.2f B/point (count %.2f, min %.2f, max %.2f, avg %.2f, last %.2f)",
			jitter, bpp, cols[0], cols[1], cols[2], cols[3], cols[4])
		if bpp > minuteBound {
			t.Errorf("minutes, jitter %v: got %.2f B/point, want ≤ %.1f", jitter, bpp, minuteBound)
		}
		hours := Coarsen(nil, minutes, hour)
		hbpp, hcols := size(t, hours)
		t.Logf("hour rollups,   jitter %-5v: %.2f B/point (count %.2f, min %.2f, max %.2f, avg %.2f, last %.2f)",
			jitter, hbpp, hcols[0], hcols[1], hcols[2], hcols[3], hcols[4])
		if hbpp > hourBound {
			t.Errorf("hours, jitter %v: got %.2f B/point, want ≤ %.1f", jitter, hbpp, hourBound)
		}
	}
}

func BenchmarkOf(b *testing.B) {
	raw := walk1Hz(1, 1, true)
	dst := make([]Point, 0, 1440)
	b.SetBytes(int64(len(raw)) * 16)
	for b.Loop() {
		dst = Of(dst[:0], raw, minute)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(raw)), "ns/sample")
}

func BenchmarkCoarsen(b *testing.B) {
	minutes := Of(nil, walk1Hz(1, 1, true), minute)
	dst := make([]Point, 0, 24)
	for b.Loop() {
		dst = Coarsen(dst[:0], minutes, hour)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(minutes)), "ns/point")
}

func BenchmarkEncode(b *testing.B) {
	pts := Of(nil, walk1Hz(1, 1, true), minute)[:perChunk]
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = Encode(buf[:0], pts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perChunk), "ns/point")
	b.ReportMetric(float64(len(buf))/perChunk, "B/point")
}

func BenchmarkDecode(b *testing.B) {
	c := encode(b, Of(nil, walk1Hz(1, 1, true), minute)[:perChunk])
	dst := make([]Point, 0, perChunk)
	for b.Loop() {
		var err error
		if dst, err = Decode(dst[:0], c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perChunk), "ns/point")
}

func BenchmarkRoundAvg(b *testing.B) {
	var sink float64
	for b.Loop() {
		sink += RoundAvg(50.12345678)
	}
	_ = sink
}
