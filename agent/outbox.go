package agent

import (
	"errors"
	"fmt"
	"maps"
	"slices"
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
// Once a reading is spilled to the spool only its index entry stays in
// memory, and the agent reads its metrics back to send it (Batch.locs).
// Readings on disk come before those in memory: Restore runs before any
// Add, and Spill writes the oldest first.
//
// Readings leave from the front of each boot (acked, or dropped past a
// bound), but for a few lost from the middle (damaged on disk, or dropped
// from memory behind readings on disk): Ack reveals those holes. Once a boot
// may have lost a reading (also in a crash, before it was spilled), its
// envelopes announce the lowest seq it still holds as "first", and the hub
// settles the ones below as a gap instead of waiting for them.
//
// Live readings (taken since the last send, and the newest after a
// reconnect) go first, newest first, so the dashboard stays current; the
// backlog follows oldest first, so that the hub's contiguous watermark, and
// with it the acks that free the outbox, advance as it arrives.
//
// Outbox is not safe for concurrent use; Agent guards it.
type Outbox struct {
	max     int        // the most readings held in memory, not on disk
	boot    *bootState // the boot Add numbers readings in
	items   []outboxItem
	nextSeq uint64
	boots   map[string]*bootState
	live    int       // items marked live
	inMem   int       // items whose metrics are in memory
	epoch   time.Time // item times are durations since, on the monotonic clock

	dropped, droppedAge, spilled, recovered uint64
}

type bootState struct {
	name  string
	acked uint64 // highest ack
	top   uint64 // highest seq held so far
	held  int    // readings held
	gap   bool   // something below the lowest held seq may never come
}

// outboxItem is one held reading in 56 bytes, plus its metrics while they
// are in memory. Items are values in one slice: a backlog of 100,000
// readings is one allocation, not 100,000.
type outboxItem struct {
	seq    uint64
	ts     int64
	sentAt time.Duration // since epoch, if sent
	mem    *inMemory     // nil once on disk
	bs     *bootState
	loc    spool.Loc // where it is on disk; zero while in memory
	live   bool      // not tried yet: goes out before the backlog, unpaced
	sent   bool      // sent on the current connection
}

type inMemory struct {
	metrics telemetry.Metrics
	added   time.Duration // when Add took it, since epoch: Spill goes by it
}

// Batch is readings of one boot for one envelope, and its "first" (0 when
// there is nothing to announce).
type Batch struct {
	Boot     string
	First    uint64
	Readings []telemetry.Reading
	// locs, when any reading is on disk, is where each one is (zero: in
	// memory); the agent reads their metrics back (Agent.load).
	locs []spool.Loc
}

// diskBatchBytes bounds the records a backlog batch reads back: their JSON
// is larger still, and what does not fit one envelope is read again.
const diskBatchBytes = telemetry.MaxPayload / 2

// NewOutbox returns an empty outbox numbering readings of boot from 1 and
// holding at most max readings in memory; the spool bounds those on disk.
func NewOutbox(boot string, max int) *Outbox {
	o := &Outbox{max: max, nextSeq: 1, boots: map[string]*bootState{}, epoch: time.Now()}
	o.boot = o.state(boot)
	return o
}

func (o *Outbox) state(boot string) *bootState {
	if o.boots[boot] == nil {
		o.boots[boot] = &bootState{name: boot}
	}
	return o.boots[boot]
}

func (o *Outbox) push(it outboxItem) {
	it.bs.held++
	it.bs.top = max(it.bs.top, it.seq)
	o.items = append(o.items, it)
}

// Add numbers r and keeps it; now is when it was taken, for spilling.
func (o *Outbox) Add(r telemetry.Reading, now time.Time) {
	o.push(outboxItem{seq: o.nextSeq, ts: r.TS, bs: o.boot, live: true, mem: &inMemory{r.Metrics, now.Sub(o.epoch)}})
	o.nextSeq++
	o.live++
	o.inMem++
	if over := o.inMem - o.max; over > 0 {
		// The oldest in memory go; those on disk cost only their index
		// entry, and the spool bounds them. Behind readings on disk (the
		// disk failed) this leaves a hole, which Ack reveals.
		from, i := len(o.items)-o.inMem, -1
		o.dropped += uint64(o.remove(true, func(*outboxItem) bool { i++; return i >= from && i < from+over }))
	}
}

// Restore adds the index of readings on disk (spool.Recovered), oldest
// first, before any Add. nextSeq continues the outbox's boot when a clean
// stop saved it (0: it did not).
func (o *Outbox) Restore(entries []spool.Entry, nextSeq uint64) {
	o.items = append(make([]outboxItem, 0, len(o.items)+len(entries)), o.items...)
	for _, e := range entries {
		bs := o.state(e.Boot)
		if e.Seq <= bs.top {
			continue
		}
		// A seq missing on disk was a damaged record; and a crash may have
		// lost an earlier boot's readings that were not spilled yet, which
		// the hub may be waiting for.
		bs.gap = bs.gap || bs != o.boot || (bs.top > 0 && e.Seq != bs.top+1)
		o.push(outboxItem{seq: e.Seq, ts: e.TS, bs: bs, loc: e.Loc})
		o.recovered++
	}
	o.nextSeq = max(o.nextSeq, nextSeq, o.boot.top+1)
}

// Live returns up to n live readings, newest first, and marks them sent at
// now. Live readings are the newest of the outbox's boot.
func (o *Outbox) Live(now time.Time, n int) Batch {
	b := Batch{Boot: o.boot.name}
	// Live readings are the newest, so the scan ends soon after them.
	for i := len(o.items) - 1; i >= 0 && len(b.Readings) < n && o.live > 0; i-- {
		if it := &o.items[i]; it.live {
			it.live = false
			o.live--
			o.take(&b, it, now)
		}
	}
	if len(b.Readings) > 0 {
		b.First = o.first(o.boot)
	}
	return b
}

// Backlog returns up to n readings of one boot that are due, oldest first,
// and marks them sent at now: never sent on this connection, or sent more
// than resendAfter ago without an ack (fewer past diskBatchBytes on disk).
func (o *Outbox) Backlog(now time.Time, resendAfter time.Duration, n int) Batch {
	var b Batch
	var bs *bootState
	for i, disk := 0, 0; i < len(o.items) && len(b.Readings) < n && disk < diskBatchBytes; i++ {
		it := &o.items[i]
		if !o.due(it, now, resendAfter) || (bs != nil && it.bs != bs) {
			continue
		}
		bs, disk = it.bs, disk+int(it.loc.Len)
		o.take(&b, it, now)
	}
	if bs != nil {
		b.Boot, b.First = bs.name, o.first(bs)
	}
	return b
}

// take adds it to b and marks it sent at now.
func (o *Outbox) take(b *Batch, it *outboxItem, now time.Time) {
	it.sentAt, it.sent = now.Sub(o.epoch), true
	r := telemetry.Reading{Seq: it.seq, TS: it.ts}
	if it.mem != nil {
		r.Metrics = it.mem.metrics
	} else if b.locs == nil {
		b.locs = make([]spool.Loc, len(b.Readings)) // those before are in memory
	}
	if b.locs != nil {
		b.locs = append(b.locs, it.loc)
	}
	b.Readings = append(b.Readings, r)
}

// HasBacklog reports whether Backlog would return anything.
func (o *Outbox) HasBacklog(now time.Time, resendAfter time.Duration) bool {
	return slices.ContainsFunc(o.items, func(it outboxItem) bool { return o.due(&it, now, resendAfter) })
}

func (o *Outbox) due(it *outboxItem, now time.Time, resendAfter time.Duration) bool {
	return !it.live && (!it.sent || now.Sub(o.epoch)-it.sentAt >= resendAfter)
}

// first returns the "first" to announce for bs: its lowest held seq once
// it may have lost readings below that, else 0.
func (o *Outbox) first(bs *bootState) uint64 {
	if !bs.gap {
		return 0
	}
	i := slices.IndexFunc(o.items, func(it outboxItem) bool { return it.bs == bs })
	if i < 0 || o.items[i].seq == 1 { // nothing below seq 1
		return 0
	}
	return o.items[i].seq
}

// Unsend marks b's readings as not sent, after a failed publish. They are
// backlog from now on.
func (o *Outbox) Unsend(b Batch) {
	seqs := make(map[uint64]bool, len(b.Readings))
	for _, r := range b.Readings {
		seqs[r.Seq] = true
	}
	for i := len(o.items) - 1; i >= 0 && len(seqs) > 0; i-- {
		if it := &o.items[i]; it.bs.name == b.Boot && seqs[it.seq] {
			if it.live {
				o.live--
			}
			it.live, it.sent = false, false
			delete(seqs, it.seq)
		}
	}
}

// UnsendAll marks every held reading as not sent, after a reconnect, and
// the newest one as live, so that the dashboard catches up at once.
func (o *Outbox) UnsendAll() {
	for i := range o.items {
		o.items[i].live, o.items[i].sent = false, false
	}
	o.live = 0
	if n := len(o.items); n > 0 && o.items[n-1].bs == o.boot {
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
	bs.acked = seq
	o.remove(false, func(it *outboxItem) bool { return it.bs == bs && it.seq <= seq })
	for i := range o.items {
		if it := &o.items[i]; it.bs == bs {
			if it.seq > seq+1 {
				// The hub has everything up to seq and this boot holds
				// nothing just above it: those readings are gone. Send
				// the lowest held now, announcing it as first, or the
				// hub's watermark would wait for them.
				bs.gap, it.sent = true, false
			}
			break
		}
	}
}

// Lost forgets readings of boot that could not be read back from disk (the
// spool counts them as damaged) and returns the "first" to announce now.
func (o *Outbox) Lost(boot string, seqs []uint64) uint64 {
	slices.Sort(seqs) // a live batch is newest first
	o.remove(true, func(it *outboxItem) bool {
		_, lost := slices.BinarySearch(seqs, it.seq)
		return lost && it.bs.name == boot
	})
	return o.first(o.state(boot))
}

// Spill returns the readings to write to disk: those in memory taken at or
// before before (all of them when before is zero). It marks nothing:
// MarkSpilled does, once the write succeeded.
func (o *Outbox) Spill(before time.Time) []spool.Record {
	var out []spool.Record
	for _, it := range o.items[len(o.items)-o.inMem:] {
		if it.mem == nil {
			continue // not so: see MarkSpilled
		}
		if !before.IsZero() && it.mem.added > before.Sub(o.epoch) {
			break // the rest are younger still
		}
		out = append(out, spool.Record{Boot: it.bs.name, Reading: telemetry.Reading{Seq: it.seq, TS: it.ts, Metrics: it.mem.metrics}})
	}
	return out
}

// MarkSpilled records where recs went on disk (spool.Append's locs) and
// lets their metrics go. A zero loc is a record the spool dropped.
func (o *Outbox) MarkSpilled(recs []spool.Record, locs []spool.Loc) {
	// recs are readings in memory, so of the outbox's boot (only Add keeps
	// readings in memory), in seq order, as the items are; acks and drops
	// may have taken some meanwhile.
	i := len(o.items) - o.inMem
	for j, r := range recs {
		for i < len(o.items) && o.items[i].seq < r.Reading.Seq {
			i++
		}
		if i < len(o.items) && o.items[i].seq == r.Reading.Seq && o.items[i].mem != nil && locs[j] != (spool.Loc{}) {
			o.items[i].mem, o.items[i].loc = nil, locs[j]
			o.inMem--
			o.spilled++
		}
	}
}

// DropThrough drops, as the outbox being full, every reading at or below
// the given seq of its boot: the spool had to drop them to stay in bounds.
func (o *Outbox) DropThrough(floors map[string]uint64) {
	if len(floors) == 0 {
		return
	}
	o.dropped += uint64(o.remove(true, func(it *outboxItem) bool { return it.seq <= floors[it.bs.name] }))
}

// DropOlder drops the oldest readings while their ts is before cutoff (Unix
// ms). It stops at the first younger one, so that drops stay at the front.
func (o *Outbox) DropOlder(cutoff int64) {
	n := 0
	for n < len(o.items) && o.items[n].ts < cutoff {
		n++
	}
	if n > 0 {
		o.droppedAge += uint64(o.remove(true, func(*outboxItem) bool { n--; return n >= 0 }))
	}
}

// remove forgets the readings for which drop, called once for each, oldest
// first, is true, and returns how many. lost: they were not acked, so their
// boots have a gap.
func (o *Outbox) remove(lost bool, drop func(*outboxItem) bool) int {
	// Mostly the oldest go (acks, bounds): re-slicing cuts them off, and
	// only what follows a later hole moves.
	n, front, w := 0, 0, -1
	for i := range o.items {
		it := &o.items[i]
		switch {
		case !drop(it):
			if w >= 0 {
				o.items[w] = *it
				w++
			}
			continue
		case w >= 0:
		case i == front:
			front++
		default:
			w = i
		}
		n++
		it.bs.held--
		it.bs.gap = it.bs.gap || lost
		if it.live {
			o.live--
		}
		if it.mem != nil {
			o.inMem--
		}
	}
	if w >= 0 {
		clear(o.items[w:]) // let the metrics go
		o.items = o.items[:w]
	}
	clear(o.items[:front])
	o.items = o.items[front:]
	return n
}

// Floors returns, per boot, the seq up to which everything is acked or will
// never be sent, for the spool to delete what they cover: what lies below
// the lowest seq held, or all the boot took once it holds nothing.
func (o *Outbox) Floors() map[string]uint64 {
	m := make(map[string]uint64, len(o.boots))
	for boot, bs := range o.boots {
		m[boot] = max(bs.top, bs.acked)
	}
	for i := len(o.items) - 1; i >= 0; i-- {
		if it := &o.items[i]; i == 0 || o.items[i-1].bs != it.bs { // a run of a boot's readings starts
			m[it.bs.name] = it.seq - 1 // backwards, so the lowest wins
		}
	}
	maps.DeleteFunc(m, func(_ string, f uint64) bool { return f == 0 })
	return m
}

// Stats returns the outbox counters.
func (o *Outbox) Stats() Stats {
	return Stats{
		Pending: uint64(len(o.items)), Dropped: o.dropped, Acked: o.boot.acked, NextSeq: o.nextSeq,
		DroppedAge: o.droppedAge, Spilled: o.spilled, Recovered: o.recovered,
	}
}

// The rest is the Agent's side of the spool: what Run does at start, on
// each spill check and before it returns (and load, in agent.go).

// diskState is what Run remembers between spill checks.
type diskState struct {
	checkpointed time.Time // when the spool last recorded the floors
	drops        uint64    // drops counted when last logged
	dropsAt      time.Time // when drops were last logged
	errAt        time.Time // when a spool error was last logged
}

// restore loads the index of what the spool recovered. a.mu is held.
func (a *Agent) restore() {
	var next uint64
	if r, ok := a.Spool.Resume(); ok && r.Boot == a.Boot {
		next = r.NextSeq
	}
	entries := a.Spool.Recovered()
	a.outbox.Restore(entries, next)
	a.spoolStats = a.Spool.Stats()
	if len(entries) > 0 || a.spoolStats.Damaged > 0 {
		st := a.outbox.Stats()
		a.Logger.Info("outbox recovered from disk", "dir", a.Spool.Dir(), "readings", st.Recovered,
			"damaged", a.spoolStats.Damaged, "torn_bytes", a.spoolStats.TornBytes, "boot", a.Boot, "next_seq", st.NextSeq)
	}
}

// spill writes to the spool the readings that stayed unacked for half the
// spill interval (with all, at a clean stop: every unacked reading and the
// resume point) and trims what the acks and drops cover. On error the
// readings stay in memory for the next try.
func (a *Agent) spill(now time.Time, all bool) error {
	before := now.Add(-a.SpillInterval / 2)
	if all {
		before = time.Time{}
	}
	a.mu.Lock()
	a.dropOld(now)
	recs := a.outbox.Spill(before)
	a.mu.Unlock()
	dropped, locs, err := a.Spool.Append(recs)
	a.mu.Lock()
	if err == nil {
		a.outbox.MarkSpilled(recs, locs)
	}
	a.outbox.DropThrough(dropped)
	floors, next := a.outbox.Floors(), a.outbox.Stats().NextSeq
	a.mu.Unlock()
	if err != nil {
		a.logErr(now, "outbox spill failed; the readings stay in memory", "readings", len(recs), "err", err)
	}
	// The floors only save resending acked readings after a crash: write
	// them once per spill interval at most. The resume point is saved even
	// if the spill failed: it only promises that the next run takes no seq
	// this one took.
	var terr error
	checkpoint := now.Sub(a.disk.checkpointed) >= a.SpillInterval
	if all {
		terr = a.Spool.Save(floors, spool.Resume{Device: a.Device, Boot: a.Boot, NextSeq: next})
	} else if terr = a.Spool.Trim(floors, checkpoint); terr == nil && checkpoint {
		a.disk.checkpointed = now
	}
	if terr != nil {
		a.logErr(now, "outbox trim or save failed", "err", terr)
		err = errors.Join(err, terr)
	}
	a.mu.Lock()
	a.spoolStats = a.Spool.Stats() // for Stats, which any goroutine may call
	a.mu.Unlock()
	a.logDrops(now)
	return err
}

// save writes every unacked reading and the resume point to the spool.
func (a *Agent) save() error {
	if a.Spool == nil {
		return nil
	}
	err := a.spill(a.Now(), true)
	st := a.Stats()
	if err != nil {
		a.Logger.Error("outbox not saved", "err", err, "pending", st.Pending)
		return fmt.Errorf("save outbox: %w", err)
	}
	a.Logger.Info("outbox saved", "dir", a.Spool.Dir(), "pending", st.Pending, "boot", a.Boot, "next_seq", st.NextSeq)
	return nil
}
