package agent

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/spool"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

var t0 = time.Date(2025, 11, 28, 22, 20, 0, 0, time.UTC)

const (
	bootNow = "b-now" // the outbox's own boot
	bootOld = "b-old" // an earlier run's, read back from disk
)

// reading returns a reading whose ts and metric are n, so that each is
// recognisable.
func reading(n int) telemetry.Reading {
	return telemetry.Reading{Seq: 999, TS: int64(n), Metrics: telemetry.Metrics{"a": float64(n)}}
}

// newOutbox returns an outbox of max holding n readings, seq 1..n, whose
// ts is the seq, taken one second apart from t0.
func newOutbox(max, n int) *Outbox {
	o := NewOutbox(bootNow, max)
	for i := range n {
		o.Add(reading(i+1), t0.Add(time.Duration(i)*time.Second))
	}
	return o
}

// sent returns an outbox holding seq 1..n, all sent once and unacked, with
// only the newest still live after a reconnect.
func sent(n int) *Outbox {
	o := newOutbox(100, n)
	o.Live(t0, n)
	o.UnsendAll()
	return o
}

// records returns the index of readings of boot on disk, as a spool
// recovers it: ts is the seq, and each has a made-up place on disk.
func records(boot string, seqs ...uint64) []spool.Entry {
	var out []spool.Entry
	for _, s := range seqs {
		out = append(out, spool.Entry{Boot: boot, Seq: s, TS: int64(s), Loc: spool.Loc{Seg: 1, Off: uint32(s) * 100, Len: 100}})
	}
	return out
}

// fakeLocs returns a made-up place on disk for each of recs.
func fakeLocs(recs []spool.Record) []spool.Loc {
	locs := make([]spool.Loc, len(recs))
	for i, r := range recs {
		locs[i] = spool.Loc{Seg: 1, Off: uint32(r.Reading.Seq) * 100, Len: 100}
	}
	return locs
}

func seqs(rs []telemetry.Reading) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// seqRange returns from, from±1, ..., to.
func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; ; {
		out = append(out, s)
		if s == to {
			return out
		}
		if from < to {
			s++
		} else {
			s--
		}
	}
}

func checkBatch(t *testing.T, b Batch, wantBoot string, wantSeqs []uint64, wantFirst uint64) {
	t.Helper()
	if !slices.Equal(seqs(b.Readings), wantSeqs) {
		t.Fatalf("batch seqs=%v, want %v", seqs(b.Readings), wantSeqs)
	}
	if len(wantSeqs) > 0 && b.Boot != wantBoot {
		t.Fatalf("batch boot=%q, want %q", b.Boot, wantBoot)
	}
	if b.First != wantFirst {
		t.Fatalf("batch first=%d, want %d", b.First, wantFirst)
	}
}

func checkLive(t *testing.T, o *Outbox, n int, wantSeqs []uint64, wantFirst uint64) {
	t.Helper()
	checkBatch(t, o.Live(t0, n), bootNow, wantSeqs, wantFirst)
}

func checkBacklog(t *testing.T, o *Outbox, n int, wantBoot string, wantSeqs []uint64, wantFirst uint64) {
	t.Helper()
	checkBatch(t, o.Backlog(t0, time.Minute, n), wantBoot, wantSeqs, wantFirst)
}

func checkOutboxStats(t *testing.T, o *Outbox, want Stats) {
	t.Helper()
	if got := o.Stats(); got != want {
		t.Fatalf("Stats=%+v, want %+v", got, want)
	}
}

func TestOutbox_Add(t *testing.T) {
	t.Run("NumbersFrom1", func(t *testing.T) {
		o := NewOutbox(bootNow, 10)
		checkOutboxStats(t, o, Stats{NextSeq: 1})
		for want := uint64(1); want <= 3; want++ {
			o.Add(reading(int(want)), t0)
			if got := o.Stats().NextSeq; got != want+1 {
				t.Fatalf("NextSeq=%d, want %d", got, want+1)
			}
		}
		b := o.Live(t0, 10)
		checkBatch(t, b, bootNow, []uint64{3, 2, 1}, 0)
		for _, r := range b.Readings {
			if r.TS != int64(r.Seq) {
				t.Errorf("reading seq %d has TS=%d, want %d", r.Seq, r.TS, r.Seq)
			}
		}
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 4})
	})
	t.Run("BoundedDropsOldest", func(t *testing.T) {
		o := newOutbox(3, 5)
		checkOutboxStats(t, o, Stats{Pending: 3, Dropped: 2, NextSeq: 6})
		checkLive(t, o, 10, []uint64{5, 4, 3}, 3)
		o.Add(reading(6), t0)
		checkOutboxStats(t, o, Stats{Pending: 3, Dropped: 3, NextSeq: 7})
		checkLive(t, o, 10, []uint64{6}, 4)
		if got, want := o.Floors(), map[string]uint64{bootNow: 3}; !maps.Equal(got, want) {
			t.Fatalf("Floors=%v, want %v", got, want)
		}
	})
	t.Run("FirstAfterAcks", func(t *testing.T) {
		o := newOutbox(3, 5) // holds 3..5
		o.Ack(bootNow, 3)
		checkLive(t, o, 10, []uint64{5, 4}, 4)
		o.Ack(bootNow, 5)
		checkLive(t, o, 10, nil, 0)
	})
}

func TestOutbox_Live(t *testing.T) {
	t.Run("NewestFirstInBatches", func(t *testing.T) {
		o := newOutbox(100, 7)
		checkLive(t, o, 3, []uint64{7, 6, 5}, 0)
		checkLive(t, o, 3, []uint64{4, 3, 2}, 0)
		checkLive(t, o, 3, []uint64{1}, 0)
		checkLive(t, o, 3, nil, 0)
		o.Add(reading(8), t0)
		checkLive(t, o, 3, []uint64{8}, 0)
	})
	t.Run("ZeroBatch", func(t *testing.T) {
		o := newOutbox(100, 2)
		checkLive(t, o, 0, nil, 0)
		checkLive(t, o, 5, []uint64{2, 1}, 0)
	})
	t.Run("FailedIsBacklog", func(t *testing.T) {
		o := newOutbox(100, 3)
		o.Unsend(o.Live(t0, 10))
		checkLive(t, o, 10, nil, 0)
		checkBacklog(t, o, 10, bootNow, []uint64{1, 2, 3}, 0)
	})
}

func TestOutbox_Backlog(t *testing.T) {
	t.Run("OldestFirstInBatches", func(t *testing.T) {
		o := sent(7)
		checkBacklog(t, o, 3, bootNow, []uint64{1, 2, 3}, 0)
		checkBacklog(t, o, 3, bootNow, []uint64{4, 5, 6}, 0)
		checkBacklog(t, o, 3, bootNow, nil, 0) // 7 is live
		checkLive(t, o, 3, []uint64{7}, 0)
		if o.HasBacklog(t0, time.Minute) {
			t.Fatal("HasBacklog=true with everything sent, want false")
		}
	})
	t.Run("ResendAfter", func(t *testing.T) {
		const resend = 30 * time.Second
		o := newOutbox(100, 2)
		o.Live(t0, 10)
		o.Add(reading(3), t0)
		o.Live(t0.Add(10*time.Second), 10)
		at := func(d time.Duration) []uint64 { return seqs(o.Backlog(t0.Add(d), resend, 10).Readings) }
		if got := at(resend - time.Nanosecond); len(got) != 0 {
			t.Fatalf("Backlog before ResendAfter = %v, want none", got)
		}
		if o.HasBacklog(t0.Add(resend-time.Nanosecond), resend) || !o.HasBacklog(t0.Add(resend), resend) {
			t.Fatal("HasBacklog does not turn true at ResendAfter")
		}
		if got, want := at(resend), []uint64{1, 2}; !slices.Equal(got, want) {
			t.Fatalf("Backlog at ResendAfter = %v, want %v", got, want)
		}
		// 3 was sent 10 s later and comes due 10 s later.
		if got, want := at(resend+10*time.Second), []uint64{3}; !slices.Equal(got, want) {
			t.Fatalf("Backlog = %v, want %v", got, want)
		}
	})
	t.Run("OneBootPerBatchOldestBootFirst", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(append(records(bootOld, 4, 5), records(bootNow, 1)...), 2)
		o.Add(reading(2), t0)
		checkLive(t, o, 10, []uint64{2}, 0)
		checkBacklog(t, o, 10, bootOld, []uint64{4, 5}, 4)
		checkBacklog(t, o, 10, bootNow, []uint64{1}, 0)
		checkBacklog(t, o, 10, "", nil, 0)
	})
}

func TestOutbox_Unsend(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		o := sent(5)
		b := o.Backlog(t0, time.Minute, 10)
		b.Readings = b.Readings[1:3] // 2, 3
		o.Unsend(b)
		checkBacklog(t, o, 10, bootNow, []uint64{2, 3}, 0)
		checkBacklog(t, o, 10, bootNow, nil, 0)
	})
	t.Run("AckedAndUnknownSeqs", func(t *testing.T) {
		o := sent(5)
		b := o.Backlog(t0, time.Minute, 10)
		o.Ack(bootNow, 2)
		b.Readings = append(b.Readings, telemetry.Reading{Seq: 99}, telemetry.Reading{Seq: 0})
		o.Unsend(b)
		checkBacklog(t, o, 10, bootNow, []uint64{3, 4}, 0)
	})
	t.Run("OtherBoot", func(t *testing.T) {
		o := sent(3)
		o.Backlog(t0, time.Minute, 10)
		o.Unsend(Batch{Boot: bootOld, Readings: []telemetry.Reading{{Seq: 1}}})
		checkBacklog(t, o, 10, bootNow, nil, 0)
	})
	t.Run("Empty", func(t *testing.T) {
		o := NewOutbox(bootNow, 10)
		o.Unsend(Batch{Boot: bootNow, Readings: []telemetry.Reading{{Seq: 1}}})
		checkOutboxStats(t, o, Stats{NextSeq: 1})
	})
	t.Run("AllMakesTheNewestLive", func(t *testing.T) {
		o := newOutbox(100, 4)
		o.Live(t0, 10)
		o.Ack(bootNow, 1)
		o.UnsendAll()
		checkLive(t, o, 10, []uint64{4}, 0)
		checkBacklog(t, o, 10, bootNow, []uint64{2, 3}, 0)
		checkBacklog(t, o, 10, bootNow, nil, 0)
	})
}

func TestOutbox_Ack(t *testing.T) {
	tests := []struct {
		name       string
		acks       []uint64
		wantDue    []uint64
		wantAcked  uint64
		wantRemain uint64
	}{
		{"none", nil, seqRange(1, 5), 0, 5},
		{"zero", []uint64{0}, seqRange(1, 5), 0, 5},
		{"some", []uint64{3}, []uint64{4, 5}, 3, 2},
		{"all", []uint64{5}, nil, 5, 0},
		{"beyond next seq", []uint64{9}, nil, 9, 0},
		{"step by step", []uint64{1, 2, 3}, []uint64{4, 5}, 3, 2},
		{"duplicate", []uint64{3, 3}, []uint64{4, 5}, 3, 2},
		{"stale after newer", []uint64{4, 2}, []uint64{5}, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutbox(100, 5)
			o.Unsend(o.Live(t0, 10))
			for _, a := range tt.acks {
				o.Ack(bootNow, a)
			}
			checkOutboxStats(t, o, Stats{Pending: tt.wantRemain, Acked: tt.wantAcked, NextSeq: 6})
			checkBacklog(t, o, 10, bootNow, tt.wantDue, 0)
		})
	}
	t.Run("ThenAdd", func(t *testing.T) {
		o := newOutbox(100, 3)
		o.Ack(bootNow, 3)
		o.Add(reading(4), t0)
		checkLive(t, o, 10, []uint64{4}, 0)
		checkOutboxStats(t, o, Stats{Pending: 1, Acked: 3, NextSeq: 5})
	})
	t.Run("EachBootItsOwn", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootOld, 7, 8, 9), 0)
		o.Add(reading(1), t0)
		o.Add(reading(2), t0)
		o.Ack(bootOld, 8)
		o.Ack("b-unknown", 100)
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 3, Recovered: 3})
		o.Ack(bootNow, 1)
		checkOutboxStats(t, o, Stats{Pending: 2, Acked: 1, NextSeq: 3, Recovered: 3})
		if got, want := o.Floors(), map[string]uint64{bootOld: 8, bootNow: 1}; !maps.Equal(got, want) {
			t.Fatalf("Floors=%v, want %v", got, want)
		}
		checkBacklog(t, o, 10, bootOld, []uint64{9}, 9)
	})
	t.Run("RevealsAHoleAndResendsAboveIt", func(t *testing.T) {
		// seq 3 of the old boot was damaged on disk: the hub's watermark
		// stops at 2 until an envelope announces first=4.
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootOld, 1, 2, 4, 5), 0)
		checkBacklog(t, o, 10, bootOld, []uint64{1, 2, 4, 5}, 0)
		o.Ack(bootOld, 2)
		checkBacklog(t, o, 10, bootOld, []uint64{4}, 4)
		o.Ack(bootOld, 5)
		checkOutboxStats(t, o, Stats{NextSeq: 1, Recovered: 4})
	})
}

func TestOutbox_Restore(t *testing.T) {
	t.Run("ContinuesTheResumedBoot", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootNow, 5, 6, 7), 8)
		o.Add(reading(8), t0)
		checkOutboxStats(t, o, Stats{Pending: 4, NextSeq: 9, Recovered: 3})
		checkLive(t, o, 10, []uint64{8}, 0)
		checkBacklog(t, o, 10, bootNow, []uint64{5, 6, 7}, 0) // a clean stop lost nothing
		if got, want := o.Floors(), map[string]uint64{bootNow: 4}; !maps.Equal(got, want) {
			t.Fatalf("Floors=%v, want %v", got, want)
		}
		if got := o.Spill(time.Time{}); len(got) != 1 || got[0].Reading.Seq != 8 {
			t.Fatalf("Spill=%v, want only the new seq 8: the rest is on disk", got)
		}
	})
	t.Run("NextSeqBeyondTheRecords", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootNow, 5, 6, 7), 3)
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 8, Recovered: 3})
	})
	t.Run("HoleInTheResumedBootAnnouncesFirst", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootNow, 5, 7), 8)
		checkBacklog(t, o, 10, bootNow, []uint64{5, 7}, 5)
	})
	t.Run("SkipsDuplicatesAndMemoryBoundDoesNotApply", func(t *testing.T) {
		// On disk a reading costs memory only for its index entry: the
		// spool's MaxBytes bounds those, not max.
		o := NewOutbox(bootNow, 3)
		o.Restore(records(bootOld, 1, 2, 2, 1, 3, 4, 5), 0)
		checkOutboxStats(t, o, Stats{Pending: 5, NextSeq: 1, Recovered: 5})
		checkBacklog(t, o, 10, bootOld, []uint64{1, 2, 3, 4, 5}, 0)
	})
}

func TestOutbox_Spill(t *testing.T) {
	t.Run("ByAge", func(t *testing.T) {
		o := newOutbox(100, 3) // taken at t0, t0+1s, t0+2s
		got := o.Spill(t0.Add(time.Second))
		if !slices.Equal(seqsOfRecords(got), []uint64{1, 2}) {
			t.Fatalf("Spill=%v, want [1 2]", seqsOfRecords(got))
		}
		o.MarkSpilled(got, fakeLocs(got))
		if got := o.Spill(t0.Add(time.Second)); len(got) != 0 {
			t.Fatalf("Spill again=%v, want none", seqsOfRecords(got))
		}
		if got := o.Spill(time.Time{}); !slices.Equal(seqsOfRecords(got), []uint64{3}) {
			t.Fatalf("Spill(all)=%v, want [3]", seqsOfRecords(got))
		}
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 4, Spilled: 2})
	})
	t.Run("AckedMeanwhile", func(t *testing.T) {
		o := newOutbox(100, 3)
		got := o.Spill(time.Time{})
		o.Ack(bootNow, 1)
		o.MarkSpilled(got, fakeLocs(got))
		checkOutboxStats(t, o, Stats{Pending: 2, Acked: 1, NextSeq: 4, Spilled: 2})
	})
}

func seqsOfRecords(rs []spool.Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Reading.Seq
	}
	return out
}

func TestOutbox_Drop(t *testing.T) {
	t.Run("OlderThan", func(t *testing.T) {
		o := newOutbox(100, 5)
		o.DropOlder(3)
		checkOutboxStats(t, o, Stats{Pending: 3, DroppedAge: 2, NextSeq: 6})
		checkLive(t, o, 10, []uint64{5, 4, 3}, 3)
	})
	t.Run("OlderThanStopsAtAYoungerOne", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		for _, ts := range []int{1, 10, 2} { // the clock stepped back
			o.Add(reading(ts), t0)
		}
		o.DropOlder(5)
		checkLive(t, o, 10, []uint64{3, 2}, 2)
	})
	t.Run("Through", func(t *testing.T) {
		o := NewOutbox(bootNow, 100)
		o.Restore(records(bootOld, 1, 2, 3), 0)
		o.Add(reading(1), t0)
		o.Add(reading(2), t0)
		o.DropThrough(map[string]uint64{bootOld: 2, bootNow: 1})
		checkOutboxStats(t, o, Stats{Pending: 2, Dropped: 3, NextSeq: 3, Recovered: 3})
		checkLive(t, o, 10, []uint64{2}, 2)
		checkBacklog(t, o, 10, bootOld, []uint64{3}, 3)
		o.DropThrough(nil)
		checkOutboxStats(t, o, Stats{Pending: 2, Dropped: 3, NextSeq: 3, Recovered: 3})
	})
}
