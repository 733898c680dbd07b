package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSpool_Read(t *testing.T) {
	// setup spools three groups in two segments, one of bootB among bootA's.
	setup := func(t *testing.T) (string, *Spool, []Entry, []Record) {
		dir := t.TempDir()
		one := int64(len(appendRecord(nil, rec(bootA, 1))))
		s := mustOpen(t, dir, Options{SegmentBytes: 8 + 7*one + 10})
		rs := slices.Concat(recs(bootA, 1, 3), recs(bootB, 1, 1), recs(bootA, 4, 6), recs(bootA, 7, 9))
		es := slices.Concat(mustAppend(t, s, rs[:4]), mustAppend(t, s, rs[4:7]), mustAppend(t, s, rs[7:]))
		if es[6].Loc.Seg != 1 || es[7].Loc.Seg != 2 {
			t.Fatalf("locs %v, want two segments", es)
		}
		return dir, s, es, rs
	}
	t.Run("OK", func(t *testing.T) {
		_, s, es, rs := setup(t)
		checkRead(t, s, es, rs)
		// A replay batch: one boot, oldest first, some acked in between.
		pick := []int{0, 2, 4, 6, 7, 9}
		var pes []Entry
		var prs []Record
		for _, i := range pick {
			pes, prs = append(pes, es[i]), append(prs, rs[i])
		}
		checkRead(t, s, pes, prs)
	})
	t.Run("AfterReopen", func(t *testing.T) {
		dir, s, es, rs := setup(t)
		s.Close()
		s = checkRecovered(t, dir, rs)
		if got := s.Stats().Segments; got != 2 {
			t.Fatalf("Segments=%d, want 2", got)
		}
		checkRead(t, s, es, rs) // what Append said is what Open found
	})
	t.Run("ErrDamaged", func(t *testing.T) {
		dir, s, es, rs := setup(t)
		path := filepath.Join(dir, segName(1))
		b, _ := os.ReadFile(path)
		b[es[1].Loc.Off+headerLen+5] ^= 0x10 // bootA/2's payload
		os.WriteFile(path, b, 0o600)
		wrong := es[3]
		wrong.Seq = 2 // bootB/1's record is intact, but not this reading
		want := []Entry{es[0], es[1], es[2], wrong, es[9]}
		ms, err := s.Read(want)
		if err == nil || !strings.HasPrefix(err.Error(), "read spool: "+segName(1)) || !errors.Is(err, errChecksum) {
			t.Fatalf("err=%v, want a read spool checksum error naming the segment", err)
		}
		for i, intact := range []bool{true, false, true, false, true} {
			if (ms[i] != nil) != intact {
				t.Fatalf("entry %d read back %v, want intact %v", i, ms[i], intact)
			}
		}
		if !equalMetrics(ms[4], rs[9].Reading.Metrics) {
			t.Fatalf("metrics %v, want %v", ms[4], rs[9].Reading.Metrics)
		}
		if got := s.Stats().Damaged; got != 2 {
			t.Fatalf("Damaged=%d, want 2", got)
		}
	})
	t.Run("ErrSegmentGoneOrShort", func(t *testing.T) {
		dir, s, es, _ := setup(t)
		os.Truncate(filepath.Join(dir, segName(2)), int64(es[9].Loc.Off)+3)
		if err := s.Trim(map[string]uint64{bootA: 6, bootB: 1}, false); err != nil {
			t.Fatal(err)
		}
		// Segment 1 is deleted, and 2 cut short in its last record.
		ms, err := s.Read([]Entry{es[0], es[7], es[8], es[9]})
		if err == nil || ms[0] != nil || ms[1] == nil || ms[2] == nil || ms[3] != nil || s.Stats().Damaged != 2 {
			t.Fatalf("Read=%v, err %v, Damaged %d; want the first and last lost and counted", ms, err, s.Stats().Damaged)
		}
	})
}

// checkRead reads entries back and checks that they are want's readings.
func checkRead(t *testing.T, s *Spool, entries []Entry, want []Record) {
	t.Helper()
	damaged := s.Stats().Damaged
	ms, err := s.Read(entries)
	if err != nil || len(ms) != len(want) {
		t.Fatalf("Read: %d of %d, err %v", len(ms), len(want), err)
	}
	for i := range want {
		if !equalMetrics(ms[i], want[i].Reading.Metrics) {
			t.Fatalf("record %d read back with metrics %v, want %v", i, ms[i], want[i].Reading.Metrics)
		}
	}
	if got := s.Stats().Damaged; got != damaged {
		t.Fatalf("Damaged went from %d to %d reading intact records", damaged, got)
	}
}

func entryKeys(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s/%d", e.Boot[:8], e.Seq)
	}
	return out
}
