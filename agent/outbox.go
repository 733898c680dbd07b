package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/spool"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Outbox holds readings until the hub's ack covers them.
//
// New readings are numbered in the outbox's boot, from 1 or from where a
// clean stop left off. Readings of earlier boots, read back from the spool
// after a restart, are held beside them under their own boot: an envelope
// carries one boot, and each boot's ack trims only its own readings.
//
// Readings leave the outbox from the front of each boot only (acked, or
// dropped when a bound is hit), so "every seq of boot B up to its floor is
// acked or will never be sent" always holds. Once a boot may have lost a
// reading (dropped, or lost in a crash before it was spilled), its envelopes
// announce the lowest seq it still holds as "first", and the hub settles the
// ones below as a gap instead of waiting for them.
//
// Sending order: live readings (taken since the last send, and the newest
// one after a reconnect) go first, newest first, so the dashboard stays
// current; the backlog follows oldest first, so that the hub's contiguous
// watermark, and with it the acks that free the outbox, advance as it
// arrives.
//
// Outbox is not safe for concurrent use; Agent guards it.
type Outbox struct {
	max     int
	boot    string       // the boot Add numbers readings in
	items   []outboxItem // oldest first; each boot's readings in seq order
	nextSeq uint64
	boots   map[string]*bootState
	live    int // items with live set

	dropped, droppedAge, spilled, recovered uint64
}

type bootState struct {
	floor uint64 // every seq ≤ floor is acked or will never be sent
	acked uint64 // highest ack
	gap   bool   // something below the lowest held seq may never come
}

type outboxItem struct {
	boot    string
	r       telemetry.Reading
	added   time.Time // when Add took it; zero for readings read back from disk
	sentAt  time.Time // zero: not sent on the current connection
	live    bool      // not tried yet: goes out before the backlog, unpaced
	spilled bool      // on disk
}

// Batch is readings of one boot for one envelope, and its "first" (0 when
// there is nothing to announce).
type Batch struct {
	Boot     string
	First    uint64
	Readings []telemetry.Reading
}

// NewOutbox returns an empty outbox numbering readings of boot from 1 and
// holding at most max readings.
func NewOutbox(boot string, max int) *Outbox {
	return &Outbox{max: max, boot: boot, nextSeq: 1, boots: map[string]*bootState{boot: {}}}
}

// Add numbers r and keeps it; now is when it was taken, for spilling.
func (o *Outbox) Add(r telemetry.Reading, now time.Time) {
	r.Seq = o.nextSeq
	o.nextSeq++
	o.items = append(o.items, outboxItem{boot: o.boot, r: r, added: now, live: true})
	o.live++
	o.bound()
}

// bound drops the oldest readings past max.
func (o *Outbox) bound() {
	if over := len(o.items) - o.max; over > 0 {
		o.dropped += uint64(o.dropFront(over, true))
	}
}

// Restore adds readings read back from the spool, oldest first, before any
// Add. nextSeq continues the outbox's boot when a clean stop saved it (0:
// it did not).
func (o *Outbox) Restore(recs []spool.Record, nextSeq uint64) {
	last := map[string]uint64{}
	for _, rec := range recs {
		bs := o.state(rec.Boot)
		seq := rec.Reading.Seq
		if seq <= bs.floor || seq <= last[rec.Boot] {
			continue
		}
		if prev, ok := last[rec.Boot]; !ok {
			// Everything below the first reading on disk was acked or
			// dropped before the spill; it will not be sent again.
			bs.floor = seq - 1
		} else if seq != prev+1 {
			bs.gap = true // a damaged record: that reading is gone
		}
		if rec.Boot != o.boot {
			// A crash may have lost this boot's readings that were not
			// spilled yet, and the hub may be waiting for them.
			bs.gap = true
		}
		last[rec.Boot] = seq
		o.items = append(o.items, outboxItem{boot: rec.Boot, r: rec.Reading, spilled: true})
		o.recovered++
	}
	o.nextSeq = max(o.nextSeq, nextSeq, last[o.boot]+1)
	o.bound()
}

func (o *Outbox) state(boot string) *bootState {
	bs, ok := o.boots[boot]
	if !ok {
		bs = &bootState{}
		o.boots[boot] = bs
	}
	return bs
}

// Live returns up to n live readings, newest first, and marks them sent at
// now. Live readings are the newest of the outbox's boot.
func (o *Outbox) Live(now time.Time, n int) Batch {
	b := Batch{Boot: o.boot}
	// Live readings are the newest, so the scan ends soon after them.
	for i := len(o.items) - 1; i >= 0 && len(b.Readings) < n && o.live > 0; i-- {
		if it := &o.items[i]; it.live {
			it.live, it.sentAt = false, now
			o.live--
			b.Readings = append(b.Readings, it.r)
		}
	}
	if len(b.Readings) > 0 {
		b.First = o.first(o.boot)
	}
	return b
}

// Backlog returns up to n readings of one boot that are due, oldest first,
// and marks them sent at now: never sent on this connection, or sent more
// than resendAfter ago without an ack.
func (o *Outbox) Backlog(now time.Time, resendAfter time.Duration, n int) Batch {
	var b Batch
	for i := range o.items {
		if len(b.Readings) >= n {
			break
		}
		it := &o.items[i]
		if !due(it, now, resendAfter) || (b.Readings != nil && it.boot != b.Boot) {
			continue
		}
		b.Boot = it.boot
		it.sentAt = now
		b.Readings = append(b.Readings, it.r)
	}
	if len(b.Readings) > 0 {
		b.First = o.first(b.Boot)
	}
	return b
}

// HasBacklog reports whether Backlog would return anything.
func (o *Outbox) HasBacklog(now time.Time, resendAfter time.Duration) bool {
	for i := range o.items {
		if due(&o.items[i], now, resendAfter) {
			return true
		}
	}
	return false
}

func due(it *outboxItem, now time.Time, resendAfter time.Duration) bool {
	return !it.live && (it.sentAt.IsZero() || now.Sub(it.sentAt) >= resendAfter)
}

// first returns the "first" to announce for boot: its lowest held seq once
// it may have lost readings below that, else 0.
func (o *Outbox) first(boot string) uint64 {
	if bs := o.boots[boot]; bs == nil || !bs.gap {
		return 0
	}
	for i := range o.items {
		if o.items[i].boot == boot {
			if seq := o.items[i].r.Seq; seq > 1 {
				return seq
			}
			return 0 // nothing below seq 1
		}
	}
	return 0
}

// Unsend marks b's readings as not sent, after a failed publish. They are
// backlog from now on.
func (o *Outbox) Unsend(b Batch) {
	seqs := make(map[uint64]bool, len(b.Readings))
	for _, r := range b.Readings {
		seqs[r.Seq] = true
	}
	for i := len(o.items) - 1; i >= 0 && len(seqs) > 0; i-- {
		if it := &o.items[i]; it.boot == b.Boot && seqs[it.r.Seq] {
			if it.live {
				o.live--
			}
			it.sentAt, it.live = time.Time{}, false
			delete(seqs, it.r.Seq)
		}
	}
}

// UnsendAll marks every held reading as not sent, after a reconnect, and
// the newest one as live, so that the dashboard catches up at once.
func (o *Outbox) UnsendAll() {
	for i := range o.items {
		o.items[i].sentAt, o.items[i].live = time.Time{}, false
	}
	o.live = 0
	if n := len(o.items); n > 0 && o.items[n-1].boot == o.boot {
		o.items[n-1].live = true
		o.live = 1
	}
}

// Ack forgets every reading of boot with seq ≤ seq. Acks of a boot the
// outbox never held, and stale acks, change nothing.
func (o *Outbox) Ack(boot string, seq uint64) {
	bs := o.boots[boot]
	if bs == nil || seq <= bs.acked {
		return
	}
	bs.acked, bs.floor = seq, max(bs.floor, seq)
	o.remove(func(it *outboxItem) bool { return it.boot == boot && it.r.Seq <= seq })
	for i := range o.items {
		if it := &o.items[i]; it.boot == boot {
			if it.r.Seq > seq+1 {
				// The hub has everything up to seq and this boot holds
				// nothing just above it: those readings are gone. Send
				// the lowest held now, announcing it as first, or the
				// hub's watermark would wait for them.
				bs.gap, it.sentAt = true, time.Time{}
			}
			break
		}
	}
}

// Spill returns the readings to write to disk: not spilled yet and taken at
// or before before (all of them when before is zero). It marks nothing:
// MarkSpilled does, once the write succeeded.
func (o *Outbox) Spill(before time.Time) []spool.Record {
	var out []spool.Record
	for i := range o.items {
		it := &o.items[i]
		if it.spilled {
			continue
		}
		if !before.IsZero() && it.added.After(before) {
			break // the rest are younger still
		}
		out = append(out, spool.Record{Boot: it.boot, Reading: it.r})
	}
	return out
}

// MarkSpilled marks recs, written to disk, as spilled.
func (o *Outbox) MarkSpilled(recs []spool.Record) {
	type key struct {
		boot string
		seq  uint64
	}
	written := make(map[key]bool, len(recs))
	for _, r := range recs {
		written[key{r.Boot, r.Reading.Seq}] = true
	}
	for i := range o.items {
		if it := &o.items[i]; !it.spilled && written[key{it.boot, it.r.Seq}] {
			it.spilled = true
			o.spilled++
		}
	}
}

// DropThrough drops, as the outbox being full, every reading at or below
// the given seq of its boot: the spool had to drop them to stay in bounds.
func (o *Outbox) DropThrough(floors map[string]uint64) {
	for boot, seq := range floors {
		bs := o.state(boot)
		bs.floor, bs.gap = max(bs.floor, seq), true
	}
	o.dropped += uint64(o.remove(func(it *outboxItem) bool { return it.r.Seq <= floors[it.boot] }))
}

// DropOlder drops the oldest readings while their ts is before cutoff (Unix
// ms). It stops at the first younger one, so that drops stay at the front.
func (o *Outbox) DropOlder(cutoff int64) {
	n := 0
	for n < len(o.items) && o.items[n].r.TS < cutoff {
		n++
	}
	o.droppedAge += uint64(o.dropFront(n, true))
}

// dropFront forgets the n oldest readings and returns n. lost: they were
// not acked, so their boots have a gap.
func (o *Outbox) dropFront(n int, lost bool) int {
	for _, it := range o.items[:n] {
		bs := o.state(it.boot)
		bs.floor = max(bs.floor, it.r.Seq)
		bs.gap = bs.gap || lost
		if it.live {
			o.live--
		}
	}
	clear(o.items[:n]) // let the metrics go
	o.items = o.items[n:]
	return n
}

// remove deletes the readings for which drop is true and returns how many.
func (o *Outbox) remove(drop func(*outboxItem) bool) int {
	// Usually they are the oldest (an ack of the oldest boot): then
	// re-slicing saves moving a large backlog on every ack.
	n := 0
	for n < len(o.items) && drop(&o.items[n]) {
		n++
	}
	rest := false
	for i := n; i < len(o.items) && !rest; i++ {
		rest = drop(&o.items[i])
	}
	if !rest {
		return o.dropFront(n, false)
	}
	keep := o.items[:0]
	for i := range o.items {
		if !drop(&o.items[i]) {
			keep = append(keep, o.items[i])
		} else if o.items[i].live {
			o.live--
		}
	}
	n = len(o.items) - len(keep)
	clear(o.items[len(keep):])
	o.items = keep
	return n
}

// Floors returns, per boot, the seq up to which everything is acked or
// dropped: the spool deletes what they cover.
func (o *Outbox) Floors() map[string]uint64 {
	m := make(map[string]uint64, len(o.boots))
	for boot, bs := range o.boots {
		if bs.floor > 0 {
			m[boot] = bs.floor
		}
	}
	return m
}

// Stats returns the outbox counters.
func (o *Outbox) Stats() Stats {
	return Stats{
		Pending: uint64(len(o.items)), Dropped: o.dropped, Acked: o.boots[o.boot].acked, NextSeq: o.nextSeq,
		DroppedAge: o.droppedAge, Spilled: o.spilled, Recovered: o.recovered,
	}
}

// The rest is the Agent's side of the spool: what Run does at start, on
// each spill check and before it returns.

// diskState is what Run remembers between spill checks.
type diskState struct {
	checkpointed time.Time // when the spool last recorded the floors
	holding      bool      // the spool held readings at the last check
	drops        uint64    // drops counted when last logged
	dropsAt      time.Time // when drops were last logged
	errAt        time.Time // when a spool error was last logged
}

// restore loads what the spool recovered. a.mu is held.
func (a *Agent) restore() {
	var next uint64
	if r, ok := a.Spool.Resume(); ok && r.Boot == a.Boot {
		next = r.NextSeq
	}
	recs := a.Spool.Recovered()
	a.outbox.Restore(recs, next)
	a.spoolStats = a.Spool.Stats()
	a.disk.holding = a.spoolStats.Segments > 0
	if len(recs) > 0 || a.spoolStats.Damaged > 0 {
		st := a.outbox.Stats()
		a.Logger.Info("outbox recovered from disk", "dir", a.Spool.Dir(), "readings", st.Recovered,
			"dropped", st.Dropped+st.DroppedAge, "damaged", a.spoolStats.Damaged, "torn_bytes", a.spoolStats.TornBytes,
			"boot", a.Boot, "next_seq", st.NextSeq)
	}
}

// spill writes to the spool the readings that stayed unacked for half the
// spill interval (with all, every unacked reading) and trims what the acks
// and drops cover. On error the readings stay in memory for the next try.
func (a *Agent) spill(now time.Time, all bool) error {
	before := now.Add(-a.SpillInterval / 2)
	if all {
		before = time.Time{}
	}
	a.mu.Lock()
	a.dropOld(now)
	recs := a.outbox.Spill(before)
	a.mu.Unlock()
	var err error
	if len(recs) > 0 {
		var dropped map[string]uint64
		dropped, err = a.Spool.Append(recs)
		a.mu.Lock()
		if err == nil {
			a.outbox.MarkSpilled(recs)
		}
		if len(dropped) > 0 {
			a.outbox.DropThrough(dropped)
		}
		a.mu.Unlock()
		if err != nil {
			a.logErr(now, "outbox spill failed; the readings stay in memory", "readings", len(recs), "err", err)
		} else {
			a.Logger.Debug("outbox spilled", "readings", len(recs), "from_seq", recs[0].Reading.Seq, "to_seq", recs[len(recs)-1].Reading.Seq)
		}
	}
	a.mu.Lock()
	floors := a.outbox.Floors()
	a.mu.Unlock()
	// The floors only save resending acked readings after a crash: write
	// them once per spill interval at most (and not now if Save follows).
	checkpoint := !all && now.Sub(a.disk.checkpointed) >= a.SpillInterval
	if terr := a.Spool.Trim(floors, checkpoint); terr != nil {
		a.logErr(now, "outbox trim failed", "err", terr)
		err = errors.Join(err, terr)
	} else if checkpoint {
		a.disk.checkpointed = now
	}
	st := a.Spool.Stats()
	a.mu.Lock()
	a.spoolStats = st
	pending := a.outbox.Stats().Pending
	a.mu.Unlock()
	switch holding := st.Segments > 0; {
	case holding && !a.disk.holding:
		a.Logger.Info("outbox spilling to disk: readings stay unacked", "dir", a.Spool.Dir(), "pending", pending, "bytes", st.Bytes)
	case !holding && a.disk.holding:
		a.Logger.Info("outbox drained from disk", "dir", a.Spool.Dir(), "pending", pending)
	}
	a.disk.holding = st.Segments > 0
	a.logDrops(now)
	return err
}

// save writes every unacked reading and the resume point to the spool.
func (a *Agent) save() error {
	if a.Spool == nil {
		return nil
	}
	now := a.Now()
	err := a.spill(now, true)
	// Even if the spill failed, the resume point holds: it only promises
	// that the next run takes no seq this one took.
	a.mu.Lock()
	floors, st := a.outbox.Floors(), a.outbox.Stats()
	a.mu.Unlock()
	r := spool.Resume{Device: a.Device, Boot: a.Boot, NextSeq: st.NextSeq}
	if serr := a.Spool.Save(floors, r); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		a.Logger.Error("outbox not saved", "err", err, "pending", st.Pending)
		return fmt.Errorf("save outbox: %w", err)
	}
	a.Logger.Info("outbox saved", "dir", a.Spool.Dir(), "pending", st.Pending, "boot", a.Boot, "next_seq", st.NextSeq)
	return nil
}
