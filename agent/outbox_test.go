package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

var t0 = time.Date(2025, 11, 28, 22, 20, 0, 0, time.UTC)

// newOutbox returns an outbox of max holding n readings, seq 1..n, whose
// ts is the seq so that each reading is recognisable.
func newOutbox(max, n int) *Outbox {
	o := NewOutbox(max)
	for i := range n {
		o.Add(telemetry.Reading{Seq: 999, TS: int64(i + 1), Metrics: telemetry.Metrics{"a": float64(i + 1)}})
	}
	return o
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

func checkDue(t *testing.T, o *Outbox, now time.Time, n int, wantSeqs []uint64, wantFirst uint64) []telemetry.Reading {
	t.Helper()
	got, first := o.Due(now, time.Minute, n)
	if !slices.Equal(seqs(got), wantSeqs) {
		t.Fatalf("Due seqs=%v, want %v", seqs(got), wantSeqs)
	}
	if first != wantFirst {
		t.Fatalf("Due first=%d, want %d", first, wantFirst)
	}
	return got
}

func checkOutboxStats(t *testing.T, o *Outbox, want Stats) {
	t.Helper()
	if got := o.Stats(); got != want {
		t.Fatalf("Stats=%+v, want %+v", got, want)
	}
}

func TestOutbox_Add(t *testing.T) {
	t.Run("NumbersFrom1", func(t *testing.T) {
		o := NewOutbox(10)
		checkOutboxStats(t, o, Stats{NextSeq: 1})
		for want := uint64(1); want <= 3; want++ {
			o.Add(telemetry.Reading{Seq: 42, TS: int64(want), Metrics: telemetry.Metrics{"a": 1}})
			if got := o.Stats().NextSeq; got != want+1 {
				t.Fatalf("NextSeq=%d, want %d", got, want+1)
			}
		}
		got := checkDue(t, o, t0, 10, []uint64{3, 2, 1}, 0)
		for _, r := range got {
			if r.TS != int64(r.Seq) {
				t.Errorf("reading seq %d has TS=%d, want %d", r.Seq, r.TS, r.Seq)
			}
		}
		checkOutboxStats(t, o, Stats{Pending: 3, NextSeq: 4})
	})
	t.Run("BoundedDropsOldest", func(t *testing.T) {
		o := newOutbox(3, 5)
		checkOutboxStats(t, o, Stats{Pending: 3, Dropped: 2, NextSeq: 6})
		got := checkDue(t, o, t0, 10, []uint64{5, 4, 3}, 3)
		if got[2].TS != 3 {
			t.Errorf("oldest held reading TS=%d, want 3", got[2].TS)
		}
		o.Add(telemetry.Reading{TS: 6, Metrics: telemetry.Metrics{"a": 6}})
		checkOutboxStats(t, o, Stats{Pending: 3, Dropped: 3, NextSeq: 7})
		checkDue(t, o, t0, 10, []uint64{6}, 4)
	})
	t.Run("FirstAfterAcks", func(t *testing.T) {
		o := newOutbox(3, 5) // holds 3..5
		o.Ack(3)
		checkDue(t, o, t0, 10, []uint64{5, 4}, 4)
		o.Ack(5)
		checkDue(t, o, t0, 10, nil, 0)
	})
}

func TestOutbox_Due(t *testing.T) {
	t.Run("NewestFirstInBatches", func(t *testing.T) {
		o := newOutbox(100, 7)
		checkDue(t, o, t0, 3, []uint64{7, 6, 5}, 0)
		checkDue(t, o, t0, 3, []uint64{4, 3, 2}, 0)
		checkDue(t, o, t0, 3, []uint64{1}, 0)
		checkDue(t, o, t0, 3, nil, 0)
		o.Add(telemetry.Reading{TS: 8, Metrics: telemetry.Metrics{"a": 8}})
		checkDue(t, o, t0, 3, []uint64{8}, 0)
	})
	t.Run("ZeroBatch", func(t *testing.T) {
		o := newOutbox(100, 2)
		checkDue(t, o, t0, 0, nil, 0)
		checkDue(t, o, t0, 5, []uint64{2, 1}, 0)
	})
	t.Run("ResendAfter", func(t *testing.T) {
		const resend = 30 * time.Second
		o := newOutbox(100, 2)
		if got, _ := o.Due(t0, resend, 10); !slices.Equal(seqs(got), []uint64{2, 1}) {
			t.Fatalf("Due seqs=%v, want [2 1]", seqs(got))
		}
		o.Add(telemetry.Reading{TS: 3, Metrics: telemetry.Metrics{"a": 3}})
		if got, _ := o.Due(t0.Add(10*time.Second), resend, 10); !slices.Equal(seqs(got), []uint64{3}) {
			t.Fatalf("Due seqs=%v, want [3]", seqs(got))
		}
		if got, _ := o.Due(t0.Add(resend-time.Nanosecond), resend, 10); len(got) != 0 {
			t.Fatalf("Due before ResendAfter = %v, want none", seqs(got))
		}
		if got, _ := o.Due(t0.Add(resend), resend, 10); !slices.Equal(seqs(got), []uint64{2, 1}) {
			t.Fatalf("Due at ResendAfter = %v, want [2 1]", seqs(got))
		}
		// 3 was sent 10 s later and comes due 10 s later.
		if got, _ := o.Due(t0.Add(resend+10*time.Second), resend, 10); !slices.Equal(seqs(got), []uint64{3}) {
			t.Fatalf("Due seqs=%v, want [3]", seqs(got))
		}
	})
}

func TestOutbox_Unsend(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		o := newOutbox(100, 5)
		sent := checkDue(t, o, t0, 10, []uint64{5, 4, 3, 2, 1}, 0)
		o.Unsend(sent[1:3]) // 4, 3
		checkDue(t, o, t0, 10, []uint64{4, 3}, 0)
		checkDue(t, o, t0, 10, nil, 0)
	})
	t.Run("AckedAndUnknownSeqs", func(t *testing.T) {
		o := newOutbox(100, 5)
		sent := checkDue(t, o, t0, 10, []uint64{5, 4, 3, 2, 1}, 0)
		o.Ack(2)
		o.Unsend(append(sent, telemetry.Reading{Seq: 99}, telemetry.Reading{Seq: 0}))
		checkDue(t, o, t0, 10, []uint64{5, 4, 3}, 0)
	})
	t.Run("Empty", func(t *testing.T) {
		o := NewOutbox(10)
		o.Unsend([]telemetry.Reading{{Seq: 1}})
		checkOutboxStats(t, o, Stats{NextSeq: 1})
	})
	t.Run("All", func(t *testing.T) {
		o := newOutbox(100, 4)
		checkDue(t, o, t0, 10, []uint64{4, 3, 2, 1}, 0)
		o.Ack(1)
		o.UnsendAll()
		checkDue(t, o, t0, 10, []uint64{4, 3, 2}, 0)
		checkDue(t, o, t0, 10, nil, 0)
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
		{"none", nil, seqRange(5, 1), 0, 5},
		{"zero", []uint64{0}, seqRange(5, 1), 0, 5},
		{"some", []uint64{3}, []uint64{5, 4}, 3, 2},
		{"all", []uint64{5}, nil, 5, 0},
		{"beyond next seq", []uint64{9}, nil, 9, 0},
		{"step by step", []uint64{1, 2, 3}, []uint64{5, 4}, 3, 2},
		{"duplicate", []uint64{3, 3}, []uint64{5, 4}, 3, 2},
		{"stale after newer", []uint64{4, 2}, []uint64{5}, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutbox(100, 5)
			for _, a := range tt.acks {
				o.Ack(a)
			}
			checkOutboxStats(t, o, Stats{Pending: tt.wantRemain, Acked: tt.wantAcked, NextSeq: 6})
			checkDue(t, o, t0, 10, tt.wantDue, 0)
		})
	}
	t.Run("ThenAdd", func(t *testing.T) {
		o := newOutbox(100, 3)
		o.Ack(3)
		o.Add(telemetry.Reading{TS: 4, Metrics: telemetry.Metrics{"a": 4}})
		checkDue(t, o, t0, 10, []uint64{4}, 0)
		checkOutboxStats(t, o, Stats{Pending: 1, Acked: 3, NextSeq: 5})
	})
}
