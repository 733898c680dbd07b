package rollup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// stored is what Decode returns for p: Avg rounded, then clamped.
func stored(pts []Point) []Point {
	out := make([]Point, len(pts))
	for i, p := range pts {
		p.Avg = clamp(RoundAvg(p.Avg), p.Min, p.Max)
		out[i] = p
	}
	return out
}

func encode(t testing.TB, pts []Point) []byte {
	t.Helper()
	b, err := Encode(nil, pts)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// flat is a point whose every value is v.
func flat(ts, n int64, v float64) Point { return Point{ts, n, v, v, v, v} }

// randomPoints are arbitrary consistent rollups: full-precision values,
// sometimes negative, with uneven gaps.
func randomPoints(rng *rand.Rand, n int) []Point {
	pts := make([]Point, n)
	ts := rng.Int64N(1<<50) - 1<<49
	for i := range pts {
		ts += 1 + rng.Int64N(3*hour)
		lo := rng.NormFloat64() * 1000
		hi := lo + rng.ExpFloat64()*10
		pts[i] = Point{TS: ts, Count: 1 + rng.Int64N(1<<20), Min: lo, Max: hi,
			Avg: lo + (hi-lo)*rng.Float64(), Last: lo + (hi-lo)*rng.Float64()}
		pts[i].Avg = clamp(pts[i].Avg, lo, hi)
		pts[i].Last = clamp(pts[i].Last, lo, hi)
	}
	return pts
}

func TestEncode_Decode(t *testing.T) {
	realistic := Of(nil, randomSeries(rand.New(rand.NewPCG(1, 1)), 240*60, t0), minute)[:240]
	maxPts := make([]Point, chunk.MaxPoints)
	for i := range maxPts {
		maxPts[i] = flat(int64(i)*minute, 60, float64(i%7))
	}
	tests := []struct {
		name string
		pts  []Point
		want []Point // nil: stored(pts)
	}{
		{"single", []Point{{TS: t0, Count: 60, Min: 1, Max: 3, Avg: 2, Last: 2.5}}, nil},
		{"realistic minutes", realistic, nil},
		{"negative ts", []Point{flat(-2*minute, 1, 1), flat(-minute, 2, 2), flat(0, 3, 3)}, nil},
		{"avg rounded", []Point{{TS: 0, Count: 3, Min: 0, Max: 20, Avg: 12.345678, Last: 1}},
			[]Point{{TS: 0, Count: 3, Min: 0, Max: 20, Avg: 12.3457, Last: 1}}},
		{"small avg rounded", []Point{{TS: 0, Count: 3, Min: 0, Max: 1, Avg: 0.000123456789, Last: 1}},
			[]Point{{TS: 0, Count: 3, Min: 0, Max: 1, Avg: 0.000123457, Last: 1}}},
		{"rounding clamped back", []Point{flat(0, 2, 0.1234567), flat(1, 2, 9.87654321)},
			[]Point{flat(0, 2, 0.1234567), flat(1, 2, 9.87654321)}},
		{"negative zero", []Point{flat(0, 1, negZero), {TS: 1, Count: 2, Min: negZero, Max: 1, Avg: 0.5, Last: negZero}},
			[]Point{flat(0, 1, negZero), {TS: 1, Count: 2, Min: negZero, Max: 1, Avg: 0.5, Last: negZero}}},
		{"max count", []Point{flat(0, maxCount, 1), flat(1, 1, 1)}, nil},
		{"extreme values", []Point{{TS: math.MinInt64 + 1, Count: 1, Min: -math.MaxFloat64, Max: math.MaxFloat64, Avg: 1e300, Last: 5e-324}}, nil},
		{"full precision", randomPoints(rand.New(rand.NewPCG(2, 2)), 100), nil},
		{"max points", maxPts, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = stored(tt.pts)
			}
			prefix := []byte("keep")
			b, err := Encode(prefix, tt.pts)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got := string(b[:4]); got != "keep" {
				t.Fatalf("dst prefix: got %q, want %q", got, "keep")
			}
			dst := []Point{flat(-1, 1, -1)}
			got, err := Decode(dst, b[4:])
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			samePoints(t, got, append([]Point{flat(-1, 1, -1)}, want...))
		})
	}
}

// TestRoundTrip is the property test: random series and widths through Of,
// Coarsen, Encode and Decode in chunks of random size.
func TestRoundTrip(t *testing.T) {
	widths := []int64{1000, 7000, minute, 90_000, hour}
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 2))
		var pts []Point
		switch seed % 3 {
		case 0:
			pts = Of(nil, randomSeries(rng, 1+rng.IntN(5000), t0-rng.Int64N(1<<45)), widths[rng.IntN(len(widths))])
		case 1:
			pts = Coarsen(nil, Of(nil, randomSeries(rng, 1+rng.IntN(20_000), t0), minute), widths[3+rng.IntN(2)])
		default:
			pts = randomPoints(rng, 1+rng.IntN(1000))
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var got []Point
			for rest := pts; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(300))
				var err error
				if got, err = Decode(got, encode(t, rest[:n])); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				rest = rest[n:]
			}
			samePoints(t, got, stored(pts))
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	ok := flat(0, 1, 1)
	tests := []struct {
		name   string
		pts    []Point
		target error // nil: any error
	}{
		{"empty", nil, chunk.ErrEmpty},
		{"too many", make([]Point, chunk.MaxPoints+1), nil},
		{"equal ts", []Point{ok, ok}, chunk.ErrOrder},
		{"decreasing ts", []Point{flat(5, 1, 1), flat(4, 1, 1)}, chunk.ErrOrder},
		{"gap overflows", []Point{flat(math.MinInt64, 1, 1), flat(math.MaxInt64, 1, 1)}, chunk.ErrOrder},
		{"count zero", []Point{flat(0, 0, 1)}, nil},
		{"count negative", []Point{flat(0, -3, 1)}, nil},
		{"count above 2^53", []Point{flat(0, maxCount+1, 1)}, nil},
		{"min above max", []Point{{Count: 1, Min: 2, Max: 1, Avg: 1.5, Last: 1.5}}, nil},
		{"avg below min", []Point{{Count: 1, Min: 1, Max: 2, Avg: 0.5, Last: 1.5}}, nil},
		{"avg above max", []Point{{Count: 1, Min: 1, Max: 2, Avg: 2.5, Last: 1.5}}, nil},
		{"last outside", []Point{{Count: 1, Min: 1, Max: 2, Avg: 1.5, Last: 3}}, nil},
		{"nan avg", []Point{{Count: 1, Min: 1, Max: 2, Avg: math.NaN(), Last: 1}}, nil},
		{"nan min", []Point{{Count: 1, Min: math.NaN(), Max: 2, Avg: 1, Last: 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := Encode(dst, tt.pts)
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("got %v, want it to wrap %v", err, tt.target)
			}
			if string(got) != "keep" {
				t.Errorf("dst: got %q, want %q", got, "keep")
			}
		})
	}
}

// build frames arbitrary chunk sections as a rollup chunk.
func build(t testing.TB, cols ...[]chunk.Point) []byte {
	t.Helper()
	b := []byte{version}
	for _, c := range cols {
		sec, err := chunk.Encode(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		b = binary.AppendUvarint(b, uint64(len(sec)))
		b = append(b, sec...)
	}
	return b
}

func TestDecodeCorrupt(t *testing.T) {
	valid := encode(t, []Point{{TS: 0, Count: 2, Min: 1, Max: 3, Avg: 2, Last: 3}, flat(minute, 1, 5)})
	two := func(v0, v1 float64) []chunk.Point { return []chunk.Point{pt(0, v0), pt(minute, v1)} }
	ones := two(1, 1)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"version 2", append([]byte{2}, valid[1:]...)},
		{"trailing byte", append(valid[:len(valid):len(valid)], 0)},
		{"section too long", append([]byte{version, 0xff, 0x01}, valid[1:]...)},
		{"varint overflow", []byte{version, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"garbage section", append([]byte{version, 3, 0xff, 0xff, 0xff}, valid[1:]...)},
		{"four sections", build(t, ones, ones, ones, ones)},
		{"six sections", build(t, ones, ones, ones, ones, ones, ones)},
		{"count mismatch", build(t, ones, ones, ones, ones, ones[:1])},
		{"ts mismatch", build(t, ones, ones, ones, []chunk.Point{pt(0, 1), pt(minute+1, 1)}, ones)},
		{"count zero", build(t, two(1, 0), ones, ones, ones, ones)},
		{"count negative", build(t, two(1, -1), ones, ones, ones, ones)},
		{"count fraction", build(t, two(1, 1.5), ones, ones, ones, ones)},
		{"count above 2^53", build(t, two(1, 1<<54), ones, ones, ones, ones)},
		{"count nan", build(t, two(1, math.NaN()), ones, ones, ones, ones)},
		{"min above max", build(t, ones, two(1, 2), ones, ones, ones)},
		{"last above max", build(t, ones, ones, ones, ones, two(1, 2))},
		{"last below min", build(t, ones, ones, two(1, 2), ones, two(1, 0))},
		{"nan min", build(t, ones, two(1, math.NaN()), ones, ones, ones)},
		{"nan avg", build(t, ones, ones, ones, two(1, math.NaN()), ones)},
	}
	for i := range len(valid) {
		tests = append(tests, struct {
			name string
			b    []byte
		}{fmt.Sprintf("truncated to %d", i), valid[:i]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []Point{flat(-1, 1, -1)}
			got, err := Decode(dst, tt.b)
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("got %v, want an error wrapping chunk.ErrCorrupt", err)
			}
			samePoints(t, got, []Point{flat(-1, 1, -1)})
		})
	}
	t.Run("valid control", func(t *testing.T) {
		// The builder itself makes decodable chunks, so the cases above
		// fail for their one defect.
		if _, err := Decode(nil, build(t, ones, ones, two(1, 2), two(1, 1.5), ones)); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 5))
	f.Add(encode(f, Of(nil, randomSeries(rng, 3600, t0), minute)))
	f.Add(encode(f, randomPoints(rng, 20)))
	f.Add(encode(f, []Point{flat(-minute, 1, negZero), flat(0, 1<<40, 0.25)}))
	f.Add(build(f, []chunk.Point{pt(0, 1)}, []chunk.Point{pt(0, math.Inf(-1))}, []chunk.Point{pt(0, math.Inf(1))},
		[]chunk.Point{pt(0, math.Inf(1))}, []chunk.Point{pt(0, 1)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := Decode(nil, b)
		if err != nil {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("got %v, want an error wrapping chunk.ErrCorrupt", err)
			}
			if len(pts) != 0 {
				t.Fatalf("got %d points with an error, want none", len(pts))
			}
			return
		}
		if len(pts) < 1 || len(pts) > chunk.MaxPoints {
			t.Fatalf("got %d points, want 1..%d", len(pts), chunk.MaxPoints)
		}
		for i, p := range pts {
			if i > 0 && p.TS <= pts[i-1].TS {
				t.Fatalf("point %d: ts %d after %d", i, p.TS, pts[i-1].TS)
			}
			if p.Count < 1 || !(p.Min <= p.Avg && p.Avg <= p.Max && p.Min <= p.Last && p.Last <= p.Max) {
				t.Fatalf("point %d: inconsistent %+v", i, p)
			}
		}
		// Whatever decodes re-encodes, and decodes to the same points
		// (Avg once more rounded and clamped).
		again, err := Decode(nil, encode(t, pts))
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		samePoints(t, again, stored(pts))
	})
}
