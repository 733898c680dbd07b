package watermark

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

// r is shorthand for one inclusive range.
func r(lo, hi uint64) [2]uint64 { return [2]uint64{lo, hi} }

func TestMark_Add(t *testing.T) {
	tests := []struct {
		name       string
		seqs       []uint64
		wantW      uint64
		wantRanges [][2]uint64
	}{
		{"empty", nil, 0, nil},
		{"in order", []uint64{1, 2, 3}, 3, nil},
		{"hole at the start", []uint64{2, 3}, 0, [][2]uint64{r(2, 3)}},
		{"hole filled", []uint64{2, 3, 1}, 3, nil},
		{"two holes", []uint64{1, 3, 5}, 1, [][2]uint64{r(3, 3), r(5, 5)}},
		{"middle fill merges ranges", []uint64{1, 3, 5, 4}, 1, [][2]uint64{r(3, 5)}},
		{"fill below merges into w", []uint64{1, 3, 5, 4, 2}, 5, nil},
		{"reverse order", []uint64{5, 4, 3, 2, 1}, 5, nil},
		{"far ahead kept as its own range", []uint64{1, 1000, 2}, 2, [][2]uint64{r(1000, 1000)}},
		{"ranges stay sorted", []uint64{9, 3, 6}, 0, [][2]uint64{r(3, 3), r(6, 6), r(9, 9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Mark
			for _, s := range tt.seqs {
				if m.Has(s) {
					t.Fatalf("has(%d) before add = true", s)
				}
				m.Add(s)
				if !m.Has(s) {
					t.Fatalf("has(%d) after add = false", s)
				}
			}
			if m.w != tt.wantW || !slices.Equal(m.ranges, tt.wantRanges) {
				t.Errorf("after %v: got w=%d ranges=%v, want w=%d ranges=%v", tt.seqs, m.w, m.ranges, tt.wantW, tt.wantRanges)
			}
			checkInvariants(t, &m)
		})
	}
}

func TestMark_addRange(t *testing.T) {
	tests := []struct {
		name       string
		start      Mark
		lo, hi     uint64
		wantW      uint64
		wantRanges [][2]uint64
	}{
		{"below w is a no-op", Mark{w: 10}, 3, 7, 10, nil},
		{"straddling w advances it", Mark{w: 10}, 5, 15, 15, nil},
		{"overlapping ranges merge", Mark{w: 1, ranges: [][2]uint64{r(3, 6)}}, 5, 9, 1, [][2]uint64{r(3, 9)}},
		{"touching ranges merge", Mark{w: 1, ranges: [][2]uint64{r(3, 6), r(11, 12)}}, 7, 10, 1, [][2]uint64{r(3, 12)}},
		{"range spanning several merges them all", Mark{w: 1, ranges: [][2]uint64{r(3, 4), r(6, 7), r(9, 9)}}, 4, 8, 1, [][2]uint64{r(3, 9)}},
		{"new range between two", Mark{w: 1, ranges: [][2]uint64{r(3, 4), r(10, 12)}}, 6, 7, 1, [][2]uint64{r(3, 4), r(6, 7), r(10, 12)}},
		{"range reaching w+1 advances through the next", Mark{w: 1, ranges: [][2]uint64{r(5, 8), r(20, 21)}}, 2, 4, 8, [][2]uint64{r(20, 21)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.start.Clone()
			m.addRange(tt.lo, tt.hi)
			if m.w != tt.wantW || !slices.Equal(m.ranges, tt.wantRanges) {
				t.Errorf("addRange(%d, %d) on w=%d %v: got w=%d ranges=%v, want w=%d ranges=%v",
					tt.lo, tt.hi, tt.start.w, tt.start.ranges, m.w, m.ranges, tt.wantW, tt.wantRanges)
			}
			checkInvariants(t, m)
		})
	}
}

func TestMark_SettleBelow(t *testing.T) {
	tests := []struct {
		name       string
		start      Mark
		first      uint64
		wantGaps   uint64
		wantW      uint64
		wantRanges [][2]uint64
	}{
		{"first 0 settles nothing", Mark{w: 3}, 0, 0, 3, nil},
		{"first 1 on empty settles nothing", Mark{}, 1, 0, 0, nil},
		{"first at w+1 settles nothing", Mark{w: 4}, 5, 0, 4, nil},
		{"first below w settles nothing", Mark{w: 9}, 5, 0, 9, nil},
		{"fresh boot starting late", Mark{}, 41, 40, 40, nil},
		{"gap above w", Mark{w: 10}, 16, 5, 15, nil},
		{"arrived ranges are not gaps", Mark{w: 2, ranges: [][2]uint64{r(4, 4), r(6, 7)}}, 7, 2, 7, nil},
		{"range straddling first", Mark{w: 0, ranges: [][2]uint64{r(3, 8)}}, 5, 2, 8, nil},
		{"range starting at first", Mark{w: 0, ranges: [][2]uint64{r(5, 6)}}, 5, 4, 6, nil},
		{"ranges above first are kept and not counted", Mark{w: 0, ranges: [][2]uint64{r(2, 2), r(10, 12)}}, 5, 3, 4, [][2]uint64{r(10, 12)}},
		{"range touching first-1", Mark{w: 0, ranges: [][2]uint64{r(3, 4), r(9, 9)}}, 6, 3, 5, [][2]uint64{r(9, 9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.start.Clone()
			gaps := m.SettleBelow(tt.first)
			if gaps != tt.wantGaps {
				t.Errorf("settleBelow(%d) on w=%d %v = %d gaps, want %d", tt.first, tt.start.w, tt.start.ranges, gaps, tt.wantGaps)
			}
			if m.w != tt.wantW || !slices.Equal(m.ranges, tt.wantRanges) {
				t.Errorf("settleBelow(%d): got w=%d ranges=%v, want w=%d ranges=%v", tt.first, m.w, m.ranges, tt.wantW, tt.wantRanges)
			}
			checkInvariants(t, m)
		})
	}
}

func TestMark_Clone(t *testing.T) {
	m := &Mark{w: 1, ranges: [][2]uint64{r(3, 4)}}
	c := m.Clone()
	c.Add(6)
	c.Add(2)
	if got, want := m.w, uint64(1); got != want {
		t.Errorf("original w = %d after changing the clone, want %d", got, want)
	}
	if got, want := m.ranges, [][2]uint64{r(3, 4)}; !slices.Equal(got, want) {
		t.Errorf("original ranges = %v after changing the clone, want %v", got, want)
	}
}

func TestMark_Encode(t *testing.T) {
	tests := []*Mark{
		{},
		{w: 1},
		{w: 127},
		{w: 128},
		{w: 1 << 40, ranges: [][2]uint64{r(1<<40+2, 1<<40+2)}},
		{w: 0, ranges: [][2]uint64{r(2, 3), r(5, 5), r(1000, 2000)}},
		{w: math.MaxUint64 - 10, ranges: [][2]uint64{r(math.MaxUint64-5, math.MaxUint64)}},
	}
	for _, m := range tests {
		t.Run(fmt.Sprintf("w=%d/ranges=%v", m.w, m.ranges), func(t *testing.T) {
			got, err := Decode(m.Encode())
			if err != nil {
				t.Fatalf("decode(encode()) error: %v", err)
			}
			if got.w != m.w || !slices.Equal(got.ranges, m.ranges) {
				t.Errorf("decode(encode()) = w=%d %v, want w=%d %v", got.w, got.ranges, m.w, m.ranges)
			}
		})
	}
}

func TestDecode_corrupt(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated w", []byte{0x80}},
		{"w only", []byte{0x05}},
		{"truncated count", []byte{0x05, 0x80}},
		{"count beyond input", []byte{0x05, 0x7f, 0x02, 0x00}},
		{"missing range", []byte{0x05, 0x01}},
		{"missing range length", []byte{0x05, 0x01, 0x02}},
		{"range touching w", []byte{0x05, 0x01, 0x01, 0x00}},
		{"range below w", []byte{0x05, 0x01, 0x00, 0x00}},
		{"ranges touching", []byte{0x00, 0x02, 0x02, 0x01, 0x01, 0x00}},
		{"range start overflows", append(append([]byte{}, uvarint(math.MaxUint64-1)...), 0x01, 0x05, 0x00)},
		{"range end overflows", append([]byte{0x00, 0x01, 0x02}, uvarint(math.MaxUint64)...)},
		{"varint overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"trailing bytes", []byte{0x05, 0x00, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.in)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decode(%x) = %+v, %v; want %v", tt.in, m, err, ErrCorrupt)
			}
		})
	}
}

func uvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func FuzzDecodeWatermark(f *testing.F) {
	f.Add([]byte{})
	f.Add((&Mark{w: 7}).Encode())
	f.Add((&Mark{w: 0, ranges: [][2]uint64{r(2, 3), r(9, 40)}}).Encode())
	f.Add([]byte{0x05, 0x01, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b) // must not panic
		if err != nil {
			return
		}
		checkInvariants(t, m)
		again, err := Decode(m.Encode())
		if err != nil {
			t.Fatalf("decode(encode(%+v)) error: %v", m, err)
		}
		if again.w != m.w || !slices.Equal(again.ranges, m.ranges) {
			t.Fatalf("decode(encode()) = %+v, want %+v", again, m)
		}
		// A decoded watermark must stay usable.
		m.Add(m.w + 1)
		m.SettleBelow(m.w + 3)
		checkInvariants(t, m)
	})
}

// checkInvariants fails t unless m's ranges lie above w+1 and are sorted,
// disjoint and not touching.
func checkInvariants(t *testing.T, m *Mark) {
	t.Helper()
	prev := m.w
	for i, rg := range m.ranges {
		if rg[0] > rg[1] || rg[0] <= prev || rg[0]-prev < 2 {
			t.Fatalf("w=%d ranges=%v: range %d breaks the invariant", m.w, m.ranges, i)
		}
		prev = rg[1]
	}
}

func TestMark_Holes(t *testing.T) {
	tests := []struct {
		name  string
		seqs  []uint64
		limit uint64
		want  [][2]uint64
	}{
		{"none", []uint64{1, 2, 3}, 3, nil},
		{"between ranges", []uint64{1, 4, 7}, 7, [][2]uint64{r(2, 3), r(5, 6)}},
		{"above the top up to limit", []uint64{1, 4}, 6, [][2]uint64{r(2, 3), r(5, 6)}},
		{"limit inside a hole", []uint64{1, 9}, 5, [][2]uint64{r(2, 5)}},
		{"empty mark", nil, 3, [][2]uint64{r(1, 3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Mark
			for _, s := range tt.seqs {
				m.Add(s)
			}
			if got := m.Holes(tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("Holes(%d) after %v = %v, want %v", tt.limit, tt.seqs, got, tt.want)
			}
		})
	}
}

func TestOverlapSubtract(t *testing.T) {
	rs := [][2]uint64{r(3, 5), r(8, 9)}
	if got, want := Overlap(r(1, 10), rs), uint64(5); got != want {
		t.Errorf("Overlap = %d, want %d", got, want)
	}
	if got, want := Subtract(r(1, 10), rs), [][2]uint64{r(1, 2), r(6, 7), r(10, 10)}; !slices.Equal(got, want) {
		t.Errorf("Subtract = %v, want %v", got, want)
	}
	if got := Subtract(r(4, 5), rs); len(got) != 0 {
		t.Errorf("Subtract of a covered range = %v, want none", got)
	}
}
