package agent

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/fleetwatch/fleetwatch/agent/spool"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func checkFloors(t *testing.T, o *Outbox, want map[string]uint64) {
	t.Helper()
	if got := o.Floors(); !maps.Equal(got, want) {
		t.Fatalf("Floors=%v, want %v", got, want)
	}
}

func TestOutbox_OnDisk(t *testing.T) {
	t.Run("ItemIsSmall", func(t *testing.T) {
		if got := unsafe.Sizeof(outboxItem{}); got > 56 {
			t.Fatalf("an index entry is %d bytes, want at most 56", got)
		}
	})
	t.Run("BatchesNameWhatIsOnDisk", func(t *testing.T) {
		o := newOutbox(100, 3)
		recs := o.Spill(t0.Add(time.Second)) // 1 and 2
		locs := fakeLocs(recs)
		locs[0] = spool.Loc{} // the spool dropped 1: it stays in memory
		o.MarkSpilled(recs, locs)
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 4, Spilled: 1})
		o.UnsendAll()
		b := o.Backlog(t0, time.Minute, 10)
		checkBatch(t, b, bootNow, []uint64{1, 2}, 0)
		if want := []spool.Loc{{}, locs[1]}; !slices.Equal(b.locs, want) || b.Readings[0].Metrics == nil || b.Readings[1].Metrics != nil {
			t.Fatalf("locs %v, metrics %v; want %v and only 1's metrics in memory", b.locs, b.Readings, want)
		}
		if b := o.Live(t0, 10); b.locs != nil || b.Readings[0].Metrics == nil {
			t.Fatalf("live batch %+v, want it in memory", b)
		}
	})
	t.Run("MemoryBoundDropsOldestInMemory", func(t *testing.T) {
		o := newOutbox(2, 2)
		recs := o.Spill(time.Time{})
		o.MarkSpilled(recs, fakeLocs(recs))
		for i := 3; i <= 5; i++ {
			o.Add(reading(i), t0)
		}
		// 1 and 2 are on disk and cost no metrics: 3 goes, from the middle.
		checkOutboxStats(t, o, Stats{Pending: 4, Dropped: 1, NextSeq: 6, Spilled: 2})
		o.UnsendAll()
		checkBacklog(t, o, 10, bootNow, []uint64{1, 2, 4}, 0)
		o.Ack(bootNow, 2) // the hub's watermark stops below the hole
		checkBacklog(t, o, 10, bootNow, []uint64{4}, 4)
		checkFloors(t, o, map[string]uint64{bootNow: 3})
	})
	t.Run("LostAtTheFrontAnnouncesFirst", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootNow, 1, 2, 3, 4), 5)
		if got := o.Lost(bootNow, []uint64{1}); got != 2 {
			t.Fatalf("Lost: first=%d, want 2", got)
		}
		checkBacklog(t, o, 10, bootNow, []uint64{2, 3, 4}, 2)
		checkFloors(t, o, map[string]uint64{bootNow: 1})
	})
	t.Run("LostInTheMiddleIsRevealedByAck", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootNow, 1, 2, 3, 4, 5), 6)
		checkBacklog(t, o, 10, bootNow, []uint64{1, 2, 3, 4, 5}, 0)
		if got := o.Lost(bootNow, []uint64{4, 3}); got != 0 {
			t.Fatalf("Lost: first=%d, want 0: nothing below 1", got)
		}
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 6, Recovered: 5})
		o.Ack(bootNow, 2)
		checkBacklog(t, o, 10, bootNow, []uint64{5}, 5)
		checkFloors(t, o, map[string]uint64{bootNow: 4})
	})
	t.Run("LostLastLetsTheSpoolDeleteIt", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootOld, 1, 2, 3), 0)
		o.Lost(bootOld, []uint64{3})
		o.Ack(bootOld, 2)
		checkOutboxStats(t, o, Stats{NextSeq: 1, Recovered: 3})
		checkFloors(t, o, map[string]uint64{bootOld: 3})
	})
}

// corrupt flips a byte in the payload of each given seq's record in the
// spool at dir, found through a second spool opened on a copy.
func corrupt(t *testing.T, dir string, seqs ...uint64) {
	t.Helper()
	sp := openSpool(t, copyDir(t, dir), spool.Options{})
	for _, e := range sp.Recovered() {
		if !slices.Contains(seqs, e.Seq) {
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("seg-%016x.log", e.Loc.Seg))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[e.Loc.Off+e.Loc.Len-3] ^= 0x40
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAgent_ReadBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "outbox")
		h := newHub(t)
		h.setDown(true)
		a := newSpoolAgent(t, h, dir, testBoot)
		a.Batch = 4
		a.Collectors = append(a.Collectors, a.OutboxMetrics())
		ackLikeTheHub(h, a)
		stop := start(t, a)
		defer stop()
		time.Sleep(30500 * time.Millisecond) // 31 readings, 1..23 on disk
		st := a.Stats()
		if st.Spilled < 20 || st.Pending != 31 {
			t.Fatalf("Stats=%+v, want 31 pending, most of them spilled", st)
		}
		// The front of the backlog and one in the middle rot on disk.
		corrupt(t, dir, 1, 6)

		h.setDown(false)
		a.Reconnected()
		synctest.Wait()
		// 7 goes twice: after the hole, and again once the ack reveals it.
		if got, want := slices.Sorted(slices.Values(deliveredOf(h, testBoot))), slices.Concat(seqRange(2, 5), seqRange(7, 7), seqRange(7, 31)); !slices.Equal(got, want) {
			t.Fatalf("delivered %v, want %v: all but the damaged", got, want)
		}
		for _, r := range h.readings() {
			if r.Metrics["test.value"] != 1 || r.Metrics["agent.outbox_pending"] == 0 {
				t.Fatalf("seq %d read back with metrics %v", r.Seq, r.Metrics)
			}
		}
		firsts := map[uint64]uint64{} // first announced with a batch's lowest seq
		for _, e := range h.envelopes() {
			if e.First != nil {
				firsts[slices.Min(seqsOf(e.Readings))] = *e.First
			}
		}
		if firsts[2] != 2 || firsts[7] != 7 {
			t.Fatalf("firsts %v, want 2 with seq 2 and 7 with the resent 7", firsts)
		}
		st = a.Stats()
		if st.Damaged != 2 || st.Pending != 0 || st.Acked != 31 {
			t.Fatalf("Stats=%+v, want 2 damaged and everything else acked", st)
		}
		time.Sleep(3 * time.Second) // the next spill check trims
		if got := files(t, dir); len(got) != 0 {
			t.Fatalf("spool files %v, want none: the damaged records are settled too", got)
		}
		if st := a.Stats(); st.SpoolBytes != 0 || st.Dropped+st.DroppedAge != 0 {
			t.Fatalf("Stats=%+v, want an empty spool and no drops but the damaged", st)
		}
	})
}

// heldSpilled fills an outbox with n readings of 45 metrics, as Collect
// makes them, spilling them to a real spool as Run does, and returns the
// heap bytes per held reading, measured after a GC. The spool's buffers
// (at most a MiB or two, however long the outage) are not counted.
func heldSpilled(tb testing.TB, n int) float64 {
	names := make([]string, 45)
	for i := range names {
		names[i] = fmt.Sprintf("test.family%d.metric_%02d", i%6, i)
	}
	sp, err := spool.Open(tb.TempDir(), spool.Options{MaxBytes: 1 << 30})
	if err != nil {
		tb.Fatal(err)
	}
	o := NewOutbox(testBoot, n)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := range n {
		m := make(telemetry.Metrics, 64)
		for j, name := range names {
			m[name] = float64(i*j) / 7
		}
		o.Add(telemetry.Reading{TS: start.UnixMilli() + int64(i), Metrics: m}, start)
		if i%1000 == 999 || i == n-1 {
			recs := o.Spill(time.Time{})
			_, locs, err := sp.Append(recs)
			if err != nil {
				tb.Fatal(err)
			}
			o.MarkSpilled(recs, locs)
		}
	}
	sp.Close()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if st := o.Stats(); st.Pending != uint64(n) || st.Spilled != uint64(n) {
		tb.Fatalf("Stats=%+v, want all %d held and spilled", st, n)
	}
	runtime.KeepAlive(o)
	return float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n)
}

// TestOutbox_MemoryPerSpilledReading: once on disk a reading costs its
// index entry, not its metrics (some 3.6 KB each before).
func TestOutbox_MemoryPerSpilledReading(t *testing.T) {
	per := heldSpilled(t, 5000)
	t.Logf("%.0f heap bytes per held spilled reading", per)
	if per > 100 {
		t.Fatalf("%.0f heap bytes per held spilled reading, want at most 100", per)
	}
}

// BenchmarkOutbox_HeldSpilled reports the heap per held reading with
// 50,000 spilled readings of 45 metrics: go test -bench HeldSpilled -run ^$
func BenchmarkOutbox_HeldSpilled(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(heldSpilled(b, 50_000), "heapB/held")
	}
}
