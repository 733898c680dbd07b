package fleet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortedList_Random drives one list through random inserts and removes
// at a size where blocks split and merge all the time, checking its
// invariants and its stats against a sorted copy. With few distinct
// values, tie runs span many blocks, which is where find and top must
// break ties by device across block borders.
func TestSortedList_Random(t *testing.T) {
	tests := []struct {
		name  string
		value func(r *rand.Rand) float64
	}{
		{"distinct", func(r *rand.Rand) float64 { return r.NormFloat64() * 1e6 }},
		{"four values", func(r *rand.Rand) float64 { return float64(r.IntN(4)) }},
		{"mostly zeros", func(r *rand.Rand) float64 {
			if r.IntN(10) == 0 {
				return r.Float64()
			}
			return []float64{0, negZ}[r.IntN(2)]
		}},
	}
	const (
		devices = 3000
		ops     = 60_000
		every   = 1_000
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			names := make([]string, devices)
			for i := range names {
				// Ids not in index order, so ties cannot lean on indexes.
				names[i] = fmt.Sprintf("dev-%04d", (i*7919)%devices)
			}
			l := &sortedList{names: &names}
			ref := make(map[uint32]float64) // id → value in the list
			for i := range ops {
				id := uint32(r.IntN(devices))
				if v, ok := ref[id]; ok && r.IntN(2) == 0 {
					if !l.remove(item{v, id}) {
						t.Fatalf("op %d: remove(%v, %d) = false, want true", i, v, id)
					}
					delete(ref, id)
				} else if !ok {
					v := tt.value(r)
					if l.remove(item{v, id}) {
						t.Fatalf("op %d: remove(%v, %d) of an absent item = true", i, v, id)
					}
					l.insert(item{v, id})
					ref[id] = v
				}
				if i%every == every-1 {
					checkList(t, fmt.Sprintf("op %d", i), l, ref)
				}
			}
			// Drain it: merges down to a lone block, then nothing.
			for id, v := range ref {
				l.remove(item{v, id})
				delete(ref, id)
				if len(ref)%500 == 0 {
					checkList(t, fmt.Sprintf("drain at %d", len(ref)), l, ref)
				}
			}
			if len(l.blocks) != 0 || len(l.lasts) != 0 {
				t.Errorf("empty list keeps %d blocks, %d lasts", len(l.blocks), len(l.lasts))
			}
		})
	}
}

// checkList checks l's structure and stats against ref (id → value).
func checkList(t *testing.T, at string, l *sortedList, ref map[uint32]float64) {
	t.Helper()
	names := *l.names
	want := make([]entry, 0, len(ref))
	for id, v := range ref {
		want = append(want, entry{v, names[id]})
	}
	slices.SortFunc(want, cmpEntry)

	if l.n != len(ref) {
		t.Fatalf("%s: n = %d, want %d", at, l.n, len(ref))
	}
	if len(l.lasts) != len(l.blocks) {
		t.Fatalf("%s: %d lasts for %d blocks", at, len(l.lasts), len(l.blocks))
	}
	var got []entry
	for i, b := range l.blocks {
		k := len(b.vals)
		switch {
		case k != len(b.ids):
			t.Fatalf("%s: block %d has %d values, %d ids", at, i, k, len(b.ids))
		case k > maxBlock, k == 0, k < minBlock && len(l.blocks) > 1:
			t.Fatalf("%s: block %d of %d holds %d entries", at, i, len(l.blocks), k)
		case l.lasts[i] != b.vals[k-1]:
			t.Fatalf("%s: lasts[%d] = %v, want %v", at, i, l.lasts[i], b.vals[k-1])
		}
		var sum, abs float64
		for j, v := range b.vals {
			sum += v
			abs += math.Abs(v)
			got = append(got, entry{v, names[b.ids[j]]})
		}
		if d := math.Abs(b.sum + b.comp - sum); d > 1e-12*abs {
			t.Fatalf("%s: block %d sum = %v, want %v", at, i, b.sum+b.comp, sum)
		}
	}
	if !slices.EqualFunc(got, want, func(a, b entry) bool { return a.v == b.v && a.dev == b.dev }) {
		t.Fatalf("%s: entries out of order or wrong:\n got %v\nwant %v", at, got, want)
	}
	if len(want) > 0 {
		checkStats(t, at, map[string]MetricStats{"m": l.stats(9)}, map[string]MetricStats{"m": statsOf(want, 9)})
	}
}
