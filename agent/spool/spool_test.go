package spool

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

const (
	bootA = "20251128T222000-3f9a1c7e5b20"
	bootB = "20251129T080000-0a1b2c3d4e5f"
)

// rec returns a reading of boot with seq, ts 1000*seq and a few metrics
// whose names share prefixes and whose values need full precision.
func rec(boot string, seq uint64) Record {
	return Record{Boot: boot, Reading: telemetry.Reading{Seq: seq, TS: int64(seq) * 1000, Metrics: telemetry.Metrics{
		"cpu.percent":                float64(seq) / 3,
		"net.eth0.rx_bytes_per_s":    math.Pi * float64(seq),
		"net.eth0.rx_packets_per_s":  -1e-300,
		"net.eth0.tx_bytes_per_s":    1.7976931348623157e308,
		"agent.collector_errors":     0,
		"disk.root.used_percent":     41.2,
		"temp.zone0":                 float64(seq%7) - 3.5,
		"rpi.under_voltage_occurred": 1,
	}}}
}

func recs(boot string, from, to uint64) []Record {
	var out []Record
	for s := from; s <= to; s++ {
		out = append(out, rec(boot, s))
	}
	return out
}

func mustOpen(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustAppend appends rs, none of them dropped, and returns their entries.
func mustAppend(t *testing.T, s *Spool, rs []Record) []Entry {
	t.Helper()
	dropped, locs, err := s.Append(rs)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("Append: dropped %v, err %v; want none", dropped, err)
	}
	if len(locs) != len(rs) {
		t.Fatalf("Append returned %d locs for %d records", len(locs), len(rs))
	}
	out := make([]Entry, len(rs))
	for i, r := range rs {
		out[i] = Entry{Boot: r.Boot, Seq: r.Reading.Seq, TS: r.Reading.TS, Loc: locs[i]}
	}
	return out
}

// checkRecovered reopens dir and checks what it recovers, reading every
// record back as the agent does when it replays them.
func checkRecovered(t *testing.T, dir string, want []Record) *Spool {
	t.Helper()
	s := mustOpen(t, dir, Options{})
	got := s.Recovered()
	if len(got) != len(want) {
		t.Fatalf("recovered %d records %v, want %d %v", len(got), entryKeys(got), len(want), keys(want))
	}
	for i := range want {
		if got[i].Boot != want[i].Boot || got[i].Seq != want[i].Reading.Seq || got[i].TS != want[i].Reading.TS {
			t.Fatalf("record %d is %s/%d ts %d, want %s/%d ts %d", i, got[i].Boot, got[i].Seq, got[i].TS,
				want[i].Boot, want[i].Reading.Seq, want[i].Reading.TS)
		}
	}
	checkRead(t, s, got, want)
	return s
}

func keys(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s/%d", r.Boot[:8], r.Reading.Seq)
	}
	return out
}

func equalMetrics(a, b telemetry.Metrics) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || math.Float64bits(v) != math.Float64bits(w) {
			return false
		}
	}
	return true
}

// files returns the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestSpool_Open(t *testing.T) {
	t.Run("MissingDirIsEmptyAndNotCreated", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "outbox")
		s := mustOpen(t, dir, Options{})
		if got := s.Recovered(); len(got) != 0 {
			t.Fatalf("recovered %d records, want 0", len(got))
		}
		if _, ok := s.Resume(); ok {
			t.Fatal("Resume ok=true, want false")
		}
		if err := s.Trim(map[string]uint64{bootA: 9}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("Stat(dir) err=%v, want not exist: an empty spool writes nothing", err)
		}
	})
	t.Run("ErrUnreadable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		if _, err := Open(filepath.Join(file, "outbox"), Options{}); err == nil || !strings.HasPrefix(err.Error(), "open spool: ") {
			t.Fatalf("err=%v, want an open spool error", err)
		}
	})
	t.Run("IgnoresOtherFilesAndLeftoverTemp", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{})
		mustAppend(t, s, recs(bootA, 1, 2))
		s.Close()
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600)
		os.WriteFile(filepath.Join(dir, stateName+".tmp"), []byte("{"), 0o600)
		os.WriteFile(filepath.Join(dir, "seg-0000000100000000.log"), []byte(segMagic), 0o600) // no Loc could point into it
		checkRecovered(t, dir, recs(bootA, 1, 2))
		if got, want := files(t, dir), []string{"notes.txt", segName(1), "seg-0000000100000000.log"}; !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
	})
}

func TestSpool_Append(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "outbox")
		s := mustOpen(t, dir, Options{})
		mustAppend(t, s, recs(bootA, 1, 3))
		mustAppend(t, s, recs(bootA, 4, 4))
		st := s.Stats()
		if got, want := st.Writes, uint64(2); got != want {
			t.Errorf("Writes=%d, want %d: one per Append", got, want)
		}
		if st.Bytes != int64(st.WrittenBytes) || st.Segments != 1 {
			t.Errorf("Stats=%+v, want Bytes=WrittenBytes and 1 segment", st)
		}
		fi, err := os.Stat(filepath.Join(dir, segName(1)))
		if err != nil || fi.Size() != st.Bytes {
			t.Fatalf("segment size %v (err %v), want %d", fi.Size(), err, st.Bytes)
		}
		s.Close()
		got := checkRecovered(t, dir, recs(bootA, 1, 4)).Stats()
		if got.Bytes != st.Bytes || got.Damaged != 0 || got.TornBytes != 0 {
			t.Errorf("reopened Stats=%+v, want Bytes %d and no damage", got, st.Bytes)
		}
	})
	t.Run("ContinuesInANewSegmentAfterReopen", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{})
		mustAppend(t, s, recs(bootA, 1, 2))
		s.Close()
		s = checkRecovered(t, dir, recs(bootA, 1, 2))
		mustAppend(t, s, recs(bootB, 1, 2))
		s.Close()
		checkRecovered(t, dir, append(recs(bootA, 1, 2), recs(bootB, 1, 2)...))
		if got, want := files(t, dir), []string{segName(1), segName(2)}; !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
	})
	t.Run("RotatesSegments", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{SegmentBytes: 500})
		for seq := uint64(1); seq <= 10; seq++ {
			mustAppend(t, s, recs(bootA, seq, seq))
		}
		if got := s.Stats().Segments; got < 3 {
			t.Fatalf("%d segments of 500 bytes for 10 readings, want at least 3", got)
		}
		s.Close()
		checkRecovered(t, dir, recs(bootA, 1, 10))
	})
	t.Run("MaxBytesDropsOldestSegments", func(t *testing.T) {
		dir := t.TempDir()
		one := int64(len(appendRecord(nil, rec(bootA, 1))))
		s := mustOpen(t, dir, Options{MaxBytes: 16 + 4*one, SegmentBytes: 8 + 2*one})
		mustAppend(t, s, recs(bootA, 1, 2))
		mustAppend(t, s, recs(bootA, 3, 4))
		dropped, _, err := s.Append(recs(bootA, 5, 6))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := dropped[bootA], uint64(2); len(dropped) != 1 || got != want {
			t.Fatalf("dropped %v, want %s through %d", dropped, bootA, want)
		}
		if st := s.Stats(); st.Bytes > 16+4*one {
			t.Fatalf("Bytes=%d, more than MaxBytes %d", st.Bytes, 16+4*one)
		}
		s.Close()
		checkRecovered(t, dir, recs(bootA, 3, 6))
	})
	t.Run("GroupLargerThanMaxBytesKeepsNewest", func(t *testing.T) {
		dir := t.TempDir()
		one := int64(len(appendRecord(nil, rec(bootA, 1))))
		s := mustOpen(t, dir, Options{MaxBytes: 8 + 3*one})
		mustAppend(t, s, recs(bootB, 1, 1))
		dropped, locs, err := s.Append(recs(bootA, 1, 5))
		if err != nil {
			t.Fatal(err)
		}
		if dropped[bootA] != 2 || dropped[bootB] != 1 {
			t.Fatalf("dropped %v, want %s through 2 and %s through 1", dropped, bootA, bootB)
		}
		if locs[0] != (Loc{}) || locs[1] != (Loc{}) || locs[2] == (Loc{}) {
			t.Fatalf("locs %v, want zero for the two dropped records only", locs)
		}
		s.Close()
		checkRecovered(t, dir, recs(bootA, 3, 5))
	})
	t.Run("ErrDirIsAFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "outbox")
		s := mustOpen(t, file, Options{}) // not there yet
		os.WriteFile(file, nil, 0o600)
		_, locs, err := s.Append(recs(bootA, 1, 1))
		if err == nil || !strings.HasPrefix(err.Error(), "append to spool: ") || locs != nil {
			t.Fatalf("err=%v, want an append to spool error", err)
		}
		os.Remove(file)
		mustAppend(t, s, recs(bootA, 1, 1)) // usable again
		s.Close()
		checkRecovered(t, file, recs(bootA, 1, 1))
	})
}

func TestSpool_Trim(t *testing.T) {
	setup := func(t *testing.T) (string, *Spool) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{SegmentBytes: 1})            // a segment per Append
		mustAppend(t, s, append(recs(bootA, 1, 3), rec(bootB, 1))) // segment 1
		mustAppend(t, s, recs(bootB, 2, 3))                        // segment 2
		mustAppend(t, s, recs(bootB, 4, 5))                        // segment 3
		return dir, s
	}
	t.Run("DeletesCoveredSegments", func(t *testing.T) {
		dir, s := setup(t)
		// bootA/3 keeps segment 1; segment 2 is done.
		if err := s.Trim(map[string]uint64{bootA: 2, bootB: 3}, false); err != nil {
			t.Fatal(err)
		}
		if got, want := files(t, dir), []string{segName(1), segName(3)}; !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
		if got, want := s.Stats().Segments, 2; got != want {
			t.Fatalf("Segments=%d, want %d", got, want)
		}
		s.Close()
		// No checkpoint: the floors were not written, so bootA comes back.
		checkRecovered(t, dir, append(recs(bootA, 1, 3), rec(bootB, 1), rec(bootB, 4), rec(bootB, 5)))
	})
	t.Run("CheckpointSkipsAckedOnOpen", func(t *testing.T) {
		dir, s := setup(t)
		if err := s.Trim(map[string]uint64{bootA: 2, bootB: 4}, true); err != nil {
			t.Fatal(err)
		}
		n := s.Stats().Writes
		if err := s.Trim(map[string]uint64{bootA: 2, bootB: 4}, true); err != nil {
			t.Fatal(err)
		}
		if got := s.Stats().Writes; got != n {
			t.Errorf("Writes=%d after a Trim that moved nothing, want %d", got, n)
		}
		s.Close()
		checkRecovered(t, dir, []Record{rec(bootA, 3), rec(bootB, 5)})
	})
	t.Run("AllAckedLeavesNothing", func(t *testing.T) {
		dir, s := setup(t)
		if err := s.Trim(map[string]uint64{bootA: 2}, true); err != nil {
			t.Fatal(err)
		}
		if err := s.Trim(map[string]uint64{bootA: 3, bootB: 5}, true); err != nil {
			t.Fatal(err)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Fatalf("files %v, want none", got)
		}
		if st := s.Stats(); st.Bytes != 0 || st.Segments != 0 {
			t.Fatalf("Stats=%+v, want empty", st)
		}
		mustAppend(t, s, recs(bootB, 6, 6)) // and it starts over
		s.Close()
		checkRecovered(t, dir, recs(bootB, 6, 6))
	})
}

func TestSpool_Save(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "outbox")
		s := mustOpen(t, dir, Options{})
		mustAppend(t, s, recs(bootA, 1, 4))
		want := Resume{Device: "pi", Boot: bootA, NextSeq: 5}
		if err := s.Save(map[string]uint64{bootA: 2}, want); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = checkRecovered(t, dir, recs(bootA, 3, 4))
		if got, ok := s.Resume(); !ok || got != want {
			t.Fatalf("Resume=%+v %v, want %+v true", got, ok, want)
		}
		if err := s.ClearResume(); err != nil {
			t.Fatal(err)
		}
		if got, ok := s.Resume(); !ok || got != want {
			t.Fatalf("Resume after ClearResume=%+v %v, want what Open read", got, ok)
		}
		s.Close()
		s = checkRecovered(t, dir, recs(bootA, 3, 4))
		if _, ok := s.Resume(); ok {
			t.Fatal("Resume ok after ClearResume and reopen, want none")
		}
	})
	t.Run("NothingPendingLeavesOnlyTheResume", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "outbox")
		s := mustOpen(t, dir, Options{})
		if err := s.Save(nil, Resume{Device: "pi", Boot: bootA, NextSeq: 42}); err != nil {
			t.Fatal(err)
		}
		if got, want := files(t, dir), []string{stateName}; !slices.Equal(got, want) {
			t.Fatalf("files %v, want %v", got, want)
		}
		s.Close()
		s = checkRecovered(t, dir, nil)
		if r, ok := s.Resume(); !ok || r.NextSeq != 42 {
			t.Fatalf("Resume=%+v %v, want next seq 42", r, ok)
		}
		if err := s.ClearResume(); err != nil {
			t.Fatal(err)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Fatalf("files %v after ClearResume, want none", got)
		}
	})
	t.Run("DamagedStateIsIgnored", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, Options{})
		mustAppend(t, s, recs(bootA, 1, 2))
		s.Save(map[string]uint64{bootA: 1}, Resume{Device: "pi", Boot: bootA, NextSeq: 3})
		s.Close()
		for _, b := range []string{"{", `{"v":2,"resume":{"boot":"x","next_seq":9}}`, ""} {
			os.WriteFile(filepath.Join(dir, stateName), []byte(b), 0o600)
			s := checkRecovered(t, dir, recs(bootA, 1, 2)) // acked ones come back: duplicates, not losses
			if r, ok := s.Resume(); ok {
				t.Fatalf("state %q: Resume=%+v, want none", b, r)
			}
			s.Close()
		}
	})
}

// segmentBytes appends groups of records to a fresh spool and returns the
// segment file's path and contents, and the offset of each record.
func segmentBytes(t *testing.T, rs []Record) (string, []byte, []int) {
	t.Helper()
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	var offs []int
	off := len(segMagic)
	for _, r := range rs {
		offs = append(offs, off)
		off += len(appendRecord(nil, r))
		mustAppend(t, s, []Record{r})
	}
	s.Close()
	path := filepath.Join(dir, segName(1))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b, offs
}

func TestSpool_OpenAfterCrash(t *testing.T) {
	all := recs(bootA, 1, 5)
	tests := []struct {
		name        string
		damage      func(b []byte, offs []int) []byte
		want        []Record
		wantDamaged uint64
		wantTorn    bool
	}{
		{"TornTail", func(b []byte, offs []int) []byte { return b[:len(b)-3] }, all[:4], 0, true},
		{"TornHeader", func(b []byte, offs []int) []byte { return b[:offs[4]+5] }, all[:4], 0, true},
		{"ZerosAfterPowerCut", func(b []byte, offs []int) []byte { return append(b, make([]byte, 4096)...) }, all, 0, true},
		{"GarbageTail", func(b []byte, offs []int) []byte { return append(b, bytes.Repeat([]byte{0xA5}, 100)...) }, all, 0, true},
		{"BadPayloadInTheMiddle", func(b []byte, offs []int) []byte { b[offs[2]+headerLen+3] ^= 0xFF; return b }, slices.Concat(all[:2], all[3:]), 1, false},
		{"BadLengthInTheMiddle", func(b []byte, offs []int) []byte { b[offs[1]] ^= 0x40; return b }, slices.Concat(all[:1], all[2:]), 1, false},
		{"GarbageInTheMiddle", func(b []byte, offs []int) []byte {
			copy(b[offs[1]:offs[3]], bytes.Repeat([]byte{0}, offs[3]-offs[1]))
			return b
		}, slices.Concat(all[:1], all[3:]), 1, false},
		{"BadLastPayload", func(b []byte, offs []int) []byte { b[len(b)-1] ^= 1; return b }, all[:4], 0, true},
		{"BadMagic", func(b []byte, offs []int) []byte { b[0] = 'X'; return b }, all, 1, false},
		{"TruncatedToMagic", func(b []byte, offs []int) []byte { return b[:len(segMagic)] }, nil, 0, false},
		{"Empty", func(b []byte, offs []int) []byte { return nil }, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, b, offs := segmentBytes(t, all)
			b = tt.damage(b, offs)
			os.WriteFile(path, b, 0o600)
			s := checkRecovered(t, filepath.Dir(path), tt.want)
			st := s.Stats()
			if st.Damaged != tt.wantDamaged || (st.TornBytes > 0) != tt.wantTorn {
				t.Fatalf("Stats=%+v, want Damaged %d, torn bytes %v", st, tt.wantDamaged, tt.wantTorn)
			}
			fi, err := os.Stat(path)
			if len(tt.want) == 0 {
				if !os.IsNotExist(err) {
					t.Fatalf("Stat(segment) err=%v, want it deleted: nothing in it to send", err)
				}
				return
			}
			if err != nil || fi.Size() != st.Bytes || fi.Size() != int64(len(b))-st.TornBytes {
				t.Fatalf("segment size %d (err %v), want %d = %d - torn %d", fi.Size(), err, st.Bytes, len(b), st.TornBytes)
			}
			// Appending after recovery continues cleanly.
			mustAppend(t, s, recs(bootA, 6, 6))
			s.Close()
			s = checkRecovered(t, filepath.Dir(path), append(slices.Clone(tt.want), rec(bootA, 6)))
			if got := s.Stats(); got.TornBytes != 0 {
				t.Fatalf("second Open cut %d torn bytes, want 0", got.TornBytes)
			}
		})
	}
}

func FuzzScanSegment(f *testing.F) {
	var b []byte
	b = append(b, segMagic...)
	for _, r := range recs(bootA, 1, 3) {
		b = appendRecord(b, r)
	}
	f.Add(b)
	f.Add(b[:len(b)-7])
	f.Add([]byte(segMagic + "\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := scanSegment(b, map[string]string{})
		if s.good < 0 || s.good > int64(len(b)) {
			t.Fatalf("good=%d outside [0, %d]", s.good, len(b))
		}
		sp := &Spool{intern: map[string]string{}}
		for _, e := range s.entries {
			if int64(e.Loc.Off)+int64(e.Loc.Len) > s.good {
				t.Fatalf("entry %+v beyond the intact part, %d bytes", e, s.good)
			}
			m, err := sp.decode(b[e.Loc.Off:e.Loc.Off+e.Loc.Len], e)
			if err != nil {
				t.Fatalf("indexed entry %+v does not decode: %v", e, err)
			}
			env := telemetry.Envelope{V: 1, Device: "d", Boot: e.Boot, Readings: []telemetry.Reading{{Seq: e.Seq, TS: e.TS, Metrics: m}}}
			if err := env.Validate("d"); err != nil {
				t.Fatalf("recovered a reading the hub would reject: %v", err)
			}
		}
	})
}
