package chunk

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func samePoints(t testing.TB, got, want []Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d points, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].TS != want[i].TS || math.Float64bits(got[i].V) != math.Float64bits(want[i].V) {
			t.Fatalf("point %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func roundTrip(t *testing.T, pts []Point) []byte {
	t.Helper()
	c, err := Encode(nil, pts)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := Decode(c)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	samePoints(t, got, pts)
	return c
}

func TestRoundTripShapes(t *testing.T) {
	for _, tsName := range []string{"regular", "jitter"} {
		ts := regularTS
		if tsName == "jitter" {
			ts = jitterTS
		}
		for _, s := range shapes(ts) {
			for _, n := range []int{1, 2, 3, 120, 1000} {
				t.Run(fmt.Sprintf("%s/%s/%d", tsName, s.name, n), func(t *testing.T) {
					pts := s.gen(rand.New(rand.NewPCG(1, uint64(n))), n)
					roundTrip(t, pts)
				})
			}
		}
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		name    string
		vals    []float64
		mode, k int
	}{
		{"integers", []float64{1, 5, 3, 9}, ModeDelta, 0},
		{"tenths", []float64{12.5, 12.6, 12.4}, ModeDelta, 1},
		{"micro", []float64{0.000001, 0.5}, ModeDelta, 6},
		{"linear counter", []float64{100, 200, 300, 400, 500}, ModeDoD, 0},
		{"full precision", []float64{9.547738693467336, 10.1}, ModeGorilla, 0},
		{"beyond 1e-6", []float64{0.0000001}, ModeGorilla, 0},
		{"negative zero", []float64{1, math.Copysign(0, -1)}, ModeGorilla, 0},
		{"above 2^53", []float64{1 << 60}, ModeGorilla, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts := make([]Point, len(tt.vals))
			for i, v := range tt.vals {
				pts[i] = Point{int64(i) * 1000, v}
			}
			c := roundTrip(t, pts)
			mode, k, n, minTS, err := Header(c)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := [4]int64{int64(mode), int64(k), int64(n), minTS}, [4]int64{int64(tt.mode), int64(tt.k), int64(len(pts)), 0}; got != want {
				t.Errorf("mode,scale,n,minTS: got %v, want %v", got, want)
			}
		})
	}
}

func TestEdgeCases(t *testing.T) {
	negZero := math.Copysign(0, -1)
	tests := []struct {
		name string
		pts  []Point
	}{
		{"single", []Point{{5, 1.5}}},
		{"single negative ts", []Point{{-1_000_000, -3}}},
		{"negative values", []Point{{1, -1.5}, {2, -100.25}, {3, 7}}},
		{"negative zero alone", []Point{{1, negZero}}},
		{"zero and negative zero", []Point{{1, 0}, {2, negZero}, {3, 0}}},
		{"near 2^53", []Point{{1, 1<<53 - 1}, {2, -(1<<53 - 1)}, {3, 1 << 53}, {4, -(1 << 53)}}},
		{"huge floats", []Point{{1, math.MaxFloat64}, {2, -math.MaxFloat64}, {3, math.SmallestNonzeroFloat64}}},
		{"infinities", []Point{{1, math.Inf(1)}, {2, math.Inf(-1)}, {3, 1}}},
		{"extreme timestamps", []Point{{math.MinInt64, 1}, {-1, 2}, {math.MaxInt64 - 1, 3}, {math.MaxInt64, 4}}},
		{"irregular ts", []Point{{0, 1}, {1, 1}, {1000, 1}, {1001, 1}, {90_000_000, 1}}},
		{"alternating", []Point{{1, 0.1}, {2, 1e6}, {3, 0.1}, {4, 1e6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.pts) })
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		pts  []Point
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"equal ts", []Point{{1, 1}, {1, 2}}, ErrOrder},
		{"backwards", []Point{{2, 1}, {1, 2}}, ErrOrder},
		{"gap overflows int64", []Point{{math.MinInt64, 1}, {0, 2}}, ErrOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Encode(nil, tt.pts); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Encode(nil, make([]Point, MaxPoints+1)); err == nil {
		t.Error("got nil error for MaxPoints+1 points")
	}
}

func TestAppender(t *testing.T) {
	a := NewAppender(3)
	for i, tt := range []struct {
		ts   int64
		v    float64
		want error
	}{
		{1000, 1, nil},
		{1000, 2, ErrOrder}, // equal timestamp rejected
		{999, 2, ErrOrder},  // earlier rejected
		{2000, 2, nil},
		{3000, 3, nil},
		{4000, 4, ErrFull},
	} {
		if got := a.Append(tt.ts, tt.v); !errors.Is(got, tt.want) || (tt.want == nil) != (got == nil) {
			t.Fatalf("append %d: got %v, want %v", i, got, tt.want)
		}
	}
	if got, want := a.Len(), 3; got != want || !a.Full() {
		t.Fatalf("Len: got %d, want %d (full)", got, want)
	}
	c, err := a.Bytes([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(c[len("prefix"):])
	if err != nil {
		t.Fatal(err)
	}
	samePoints(t, got, []Point{{1000, 1}, {2000, 2}, {3000, 3}})
	a.Reset()
	if got, want := a.Len(), 0; got != want {
		t.Fatalf("after Reset: got %d, want %d", got, want)
	}
	if _, err := a.Bytes(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty Bytes: got %v, want ErrEmpty", err)
	}
}

func TestMerge(t *testing.T) {
	base := []Point{{1000, 1}, {2000, 2}, {3000, 3}}
	tests := []struct {
		name  string
		chunk []Point // nil: empty chunk
		add   []Point
		want  []Point
	}{
		{"empty chunk", nil, []Point{{2, 2}, {1, 1}}, []Point{{1, 1}, {2, 2}}},
		{"backfill before", base, []Point{{500, 0.5}}, []Point{{500, 0.5}, {1000, 1}, {2000, 2}, {3000, 3}}},
		{"out of order middle", base, []Point{{2500, 2.5}, {1500, 1.5}}, []Point{{1000, 1}, {1500, 1.5}, {2000, 2}, {2500, 2.5}, {3000, 3}}},
		{"append after", base, []Point{{4000, 4}}, []Point{{1000, 1}, {2000, 2}, {3000, 3}, {4000, 4}}},
		{"redelivery: existing wins", base, []Point{{2000, 99}, {3000, 3}}, base},
		{"duplicates in add: first wins", nil, []Point{{1, 1}, {1, 2}, {0, 0}}, []Point{{0, 0}, {1, 1}}},
		{"nothing to add", base, nil, base},
		{"changes mode", base, []Point{{2500, 9.547738693467336}}, []Point{{1000, 1}, {2000, 2}, {2500, 9.547738693467336}, {3000, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c []byte
			if tt.chunk != nil {
				var err error
				if c, err = Encode(nil, tt.chunk); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Merge(c, tt.add)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			samePoints(t, got, tt.want)
			// Idempotent: merging the same points again changes nothing.
			m2, err := Merge(m, tt.add)
			if err != nil {
				t.Fatal(err)
			}
			if string(m2) != string(m) {
				t.Errorf("second merge: got %x, want %x", m2, m)
			}
		})
	}
	if _, err := Merge([]byte{0xff}, base); !errors.Is(err, ErrCorrupt) {
		t.Errorf("merge into corrupt chunk: got %v, want ErrCorrupt", err)
	}
	if _, err := Merge(nil, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("merge nothing: got %v, want ErrEmpty", err)
	}
}

func TestIterator(t *testing.T) {
	pts := shapes(jitterTS)[0].gen(rand.New(rand.NewPCG(2, 2)), 120)
	c, err := Encode(nil, pts)
	if err != nil {
		t.Fatal(err)
	}
	var got []Point
	for it := NewIterator(c); it.Next(); {
		got = append(got, it.At())
	}
	samePoints(t, got, pts)
	it := NewIterator(c[:len(c)-1])
	if it.Next() || !errors.Is(it.Err(), ErrCorrupt) {
		t.Errorf("truncated: got Next true or err %v, want ErrCorrupt", it.Err())
	}
}

// Every proper prefix of a valid chunk must fail to decode, and no single
// bit flip may panic.
func TestCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, s := range shapes(jitterTS) {
		for _, n := range []int{1, 2, 120} {
			pts := s.gen(rng, n)
			c, err := Encode(nil, pts)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(c); i++ {
				if _, err := Decode(c[:i]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s/%d: prefix %d of %d: got %v, want ErrCorrupt", s.name, n, i, len(c), err)
				}
			}
			for i := 0; i < len(c)*8; i++ {
				b := append([]byte(nil), c...)
				b[i/8] ^= 1 << (i % 8)
				Decode(b) //nolint:errcheck // must merely not panic
			}
			if _, err := Decode(append(c, 0)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s/%d: trailing byte: got %v, want ErrCorrupt", s.name, n, err)
			}
		}
	}
	for _, b := range [][]byte{nil, {0x30}, {0x07}, {0x27}, {0x00, 0x00}, {0x00, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%x: got %v, want ErrCorrupt", b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, s := range shapes(jitterTS) {
		c, _ := Encode(nil, s.gen(rng, 20))
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := Decode(b)
		if err != nil {
			return
		}
		// Anything that decodes re-encodes to the same points.
		c, err := Encode(nil, pts)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		got, err := Decode(c)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		samePoints(t, got, pts)
	})
}

// FuzzRoundTrip builds points from the input: 10 bytes each, a uint16
// timestamp step (+1) and a value that is either a raw float64 or a small
// decimal, depending on the step's low bit.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("\x00\x01\x00\x00\x00\x00\x00\x00\xf0\x3f\xe8\x03\x01\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var pts []Point
		ts := int64(t0)
		for ; len(b) >= 10; b = b[10:] {
			step := uint16(b[0]) | uint16(b[1])<<8
			ts += int64(step) + 1
			raw := uint64(0)
			for i := 2; i < 10; i++ {
				raw = raw<<8 | uint64(b[i])
			}
			v := math.Float64frombits(raw)
			if step&1 == 1 {
				v = float64(int64(raw)%2_000_000) / pow10[int(raw>>60)%(MaxScale+1)]
			}
			if math.IsNaN(v) {
				v = 0
			}
			pts = append(pts, Point{ts, v})
		}
		if len(pts) == 0 {
			return
		}
		c, err := Encode(nil, pts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(c)
		if err != nil {
			t.Fatal(err)
		}
		samePoints(t, got, pts)
	})
}
