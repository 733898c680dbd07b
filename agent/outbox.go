package agent

import (
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Outbox holds readings until the hub's ack covers them. Seqs start at 1 and
// grow by one per reading. It is bounded: past max it drops the oldest and
// reports the lowest seq it still holds as "first", so the hub settles the
// dropped ones as a gap instead of waiting for them.
//
// Outbox is not safe for concurrent use; Agent guards it.
type Outbox struct {
	max     int
	items   []outboxItem // ascending seq, unacked only
	nextSeq uint64
	acked   uint64
	dropped uint64
}

type outboxItem struct {
	r      telemetry.Reading
	sentAt time.Time // zero: not sent on the current connection
}

// NewOutbox returns an empty outbox holding at most max readings.
func NewOutbox(max int) *Outbox {
	return &Outbox{max: max, nextSeq: 1}
}

// Add numbers r and keeps it.
func (o *Outbox) Add(r telemetry.Reading) {
	r.Seq = o.nextSeq
	o.nextSeq++
	o.items = append(o.items, outboxItem{r: r})
	if over := len(o.items) - o.max; over > 0 {
		o.dropped += uint64(over)
		o.items = append(o.items[:0], o.items[over:]...)
	}
}

// Due returns up to n readings to send now, newest first so that live data
// wins over backfill, and the "first" seq to announce (0 when nothing was
// dropped). The returned readings are marked sent at now.
func (o *Outbox) Due(now time.Time, resendAfter time.Duration, n int) ([]telemetry.Reading, uint64) {
	var out []telemetry.Reading
	for i := len(o.items) - 1; i >= 0 && len(out) < n; i-- {
		it := &o.items[i]
		if !it.sentAt.IsZero() && now.Sub(it.sentAt) < resendAfter {
			continue
		}
		it.sentAt = now
		out = append(out, it.r)
	}
	var first uint64
	if o.dropped > 0 && len(o.items) > 0 {
		first = o.items[0].r.Seq
	}
	return out, first
}

// Unsend marks rs as not sent, after a failed publish.
func (o *Outbox) Unsend(rs []telemetry.Reading) {
	for _, r := range rs {
		if i, ok := o.find(r.Seq); ok {
			o.items[i].sentAt = time.Time{}
		}
	}
}

// UnsendAll marks every held reading as not sent.
func (o *Outbox) UnsendAll() {
	for i := range o.items {
		o.items[i].sentAt = time.Time{}
	}
}

// Ack forgets every reading with seq ≤ seq.
func (o *Outbox) Ack(seq uint64) {
	if seq > o.acked {
		o.acked = seq
	}
	i := 0
	for i < len(o.items) && o.items[i].r.Seq <= seq {
		i++
	}
	o.items = append(o.items[:0], o.items[i:]...)
}

func (o *Outbox) find(seq uint64) (int, bool) {
	if len(o.items) == 0 {
		return 0, false
	}
	i := int(seq - o.items[0].r.Seq)
	if seq < o.items[0].r.Seq || i >= len(o.items) {
		return 0, false
	}
	return i, true
}

// Stats returns the outbox counters.
func (o *Outbox) Stats() Stats {
	return Stats{Pending: uint64(len(o.items)), Dropped: o.dropped, Acked: o.acked, NextSeq: o.nextSeq}
}
