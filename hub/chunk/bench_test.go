package chunk

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

const benchChunk = DefaultMaxPoints

// encodeSeries encodes pts in chunks of size and returns them.
func encodeSeries(tb testing.TB, pts []Point, size int) [][]byte {
	tb.Helper()
	var cs [][]byte
	for c := range slices.Chunk(pts, size) {
		b, err := Encode(nil, c)
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, b)
	}
	return cs
}

func bytesPerSample(cs [][]byte, n int) float64 {
	total := 0
	for _, c := range cs {
		total += len(c)
	}
	return float64(total) / float64(n)
}

func tsModes() []struct {
	name string
	ts   func(*rand.Rand, int) int64
} {
	return []struct {
		name string
		ts   func(*rand.Rand, int) int64
	}{{"regular", regularTS}, {"jitter", jitterTS}}
}

// TestSizes logs bytes/sample per shape (go test -run Sizes -v).
func TestSizes(t *testing.T) {
	const n = 86400
	for _, tm := range tsModes() {
		mix, mixN := 0.0, 0
		for _, s := range shapes(tm.ts) {
			pts := s.gen(rand.New(rand.NewPCG(7, 7)), n)
			line := fmt.Sprintf("%-8s %-17s", tm.name, s.name)
			for _, size := range []int{120, 720} {
				bps := bytesPerSample(encodeSeries(t, pts, size), n)
				line += fmt.Sprintf("  %4d/chunk %6.3f B", size, bps)
				if size == 120 {
					for _, m := range piMix {
						if m == s.name {
							mix += bps
							mixN++
						}
					}
				}
			}
			mode, k, _, _, _ := Header(encodeSeries(t, pts, 120)[0])
			t.Logf("%s  mode %d scale %d", line, mode, k)
		}
		t.Logf("%-8s sim mix (%d series, 120/chunk): %.3f B/sample", tm.name, mixN, mix/float64(mixN))
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, tm := range tsModes() {
		for _, s := range shapes(tm.ts) {
			pts := s.gen(rand.New(rand.NewPCG(7, 7)), benchChunk)
			b.Run(tm.name+"/"+s.name, func(b *testing.B) {
				var buf []byte
				var err error
				for b.Loop() {
					if buf, err = Encode(buf[:0], pts); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(buf))/float64(len(pts)), "B/sample")
				b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, tm := range tsModes() {
		for _, s := range shapes(tm.ts) {
			pts := s.gen(rand.New(rand.NewPCG(7, 7)), benchChunk)
			c, err := Encode(nil, pts)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(tm.name+"/"+s.name, func(b *testing.B) {
				out := make([]Point, 0, len(pts))
				for b.Loop() {
					if out, err = DecodeAppend(out[:0], c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(c))/float64(len(pts)), "B/sample")
				b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// BenchmarkDecode24h decodes one series' day at 1 Hz (86,400 points in
// 720 chunks of 120) into one slice: the issue-5 range-query target is ≤ 5 ms.
func BenchmarkDecode24h(b *testing.B) {
	for _, name := range []string{"cpu_0.1", "cpu_fullprec"} {
		var s shape
		for _, x := range shapes(jitterTS) {
			if x.name == name {
				s = x
			}
		}
		const n = 86400
		pts := s.gen(rand.New(rand.NewPCG(7, 7)), n)
		cs := encodeSeries(b, pts, benchChunk)
		b.Run(name, func(b *testing.B) {
			out := make([]Point, 0, n)
			var err error
			for b.Loop() {
				out = out[:0]
				for _, c := range cs {
					if out, err = DecodeAppend(out, c); err != nil {
						b.Fatal(err)
					}
				}
			}
			if len(out) != n {
				b.Fatalf("got %d points, want %d", len(out), n)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
