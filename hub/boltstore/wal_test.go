package boltstore

import (
	"math"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

func TestWALRecord_encode(t *testing.T) {
	var w walRecord
	want := []walSample{{1, chunk.Point{TS: 1_764_368_400_000, V: 12.5}}, {7, chunk.Point{TS: 1_764_368_400_003, V: -3}}, {1, chunk.Point{TS: 1_764_368_399_000, V: math.MaxFloat64}}}
	for _, s := range want {
		w.sample(s.sid, s.p.TS, s.p.V)
	}
	w.seal(7, 1_764_368_400_003)
	samples, seals, err := decodeWAL(w.encode())
	if err != nil {
		t.Fatalf("decodeWAL: %v", err)
	}
	if len(samples) != len(want) {
		t.Fatalf("got %d samples, want %d", len(samples), len(want))
	}
	for i := range want {
		if samples[i] != want[i] {
			t.Errorf("sample %d = %+v, want %+v", i, samples[i], want[i])
		}
	}
	if len(seals) != 1 || seals[0] != (walSeal{7, 1_764_368_400_003}) {
		t.Errorf("seals = %+v, want one of series 7 at ...003", seals)
	}
	for cut := range len(w.encode()) {
		if _, _, err := decodeWAL(w.encode()[:cut]); err == nil {
			t.Errorf("decodeWAL of the first %d bytes succeeded, want an error", cut)
		}
	}
}

func FuzzDecodeWAL(f *testing.F) {
	var w walRecord
	w.sample(1, 100, 1.5)
	w.sample(2, 90, 2)
	w.seal(2, 95)
	f.Add(w.encode())
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		samples, seals, err := decodeWAL(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to a record that decodes the same.
		var w walRecord
		for _, s := range samples {
			w.sample(s.sid, s.p.TS, s.p.V)
		}
		for _, s := range seals {
			w.seal(s.sid, s.ts)
		}
		s2, l2, err := decodeWAL(w.encode())
		if err != nil || len(s2) != len(samples) || len(l2) != len(seals) {
			t.Fatalf("re-encoding %x: %d samples, %d seals, %v; want %d, %d", b, len(s2), len(l2), err, len(samples), len(seals))
		}
		for i := range s2 {
			if s2[i].sid != samples[i].sid || s2[i].p.TS != samples[i].p.TS || math.Float64bits(s2[i].p.V) != math.Float64bits(samples[i].p.V) {
				t.Fatalf("sample %d: %+v, want %+v", i, s2[i], samples[i])
			}
		}
	})
}
