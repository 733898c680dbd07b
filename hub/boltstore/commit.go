package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// commit is one Commit's working state. Nothing in it reaches the shared
// in-memory state until the transaction has committed (Store.publish).
type commit struct {
	s   *Store
	tx  *bolt.Tx
	gen uint64
	now int64

	rawFloor, future int64 // samples outside [rawFloor, future] are dropped

	res      hub.CommitResult
	touched  []*series
	added    []*series
	newDevs  map[string]*device
	nextSID  uint32
	sids     *bolt.Bucket
	wal      walRecord
	walKey   uint64
	backfill map[*series][]chunk.Point
	dirty    map[*series][][2]int64 // ms spans whose rollups must be recomputed
	marks    map[string]*markState  // by device+"\x00"+boot
	markKeys []string
	parts    map[partRef]*bolt.Bucket
}

type partRef struct {
	tier  int
	start int64
	sid   uint32
}

// newCommit starts the working state of one commit at hub time now.
func (s *Store) newCommit(now int64) *commit {
	s.gen++
	return &commit{
		s: s, gen: s.gen, now: now,
		rawFloor: now - s.tiers[tierRaw].retention,
		future:   now + s.opt.MaxFuture.Milliseconds(),
		nextSID:  uint32(len(s.bySID)) + 1,
		newDevs:  make(map[string]*device),
		backfill: make(map[*series][]chunk.Point),
		dirty:    make(map[*series][][2]int64),
		marks:    make(map[string]*markState),
		parts:    make(map[partRef]*bolt.Bucket),
		walKey:   s.nextWAL,
	}
}

// Commit stores b in one transaction (two fsyncs) and returns the acks it
// allows.
func (s *Store) Commit(b *hub.Batch) (hub.CommitResult, error) {
	now := s.opt.Now().UnixMilli()
	c := s.newCommit(now)
	err := s.db.Update(func(tx *bolt.Tx) error {
		c.tx = tx
		c.sids = tx.Bucket(bucketSIDs)
		return c.run(b)
	})
	if err != nil {
		return hub.CommitResult{}, fmt.Errorf("commit %d envelopes: %w", len(b.Envelopes), err)
	}
	s.publish(c)
	if now-s.lastSweep >= sweepEvery {
		s.lastSweep = now
		if err := s.expire(now); err != nil {
			s.opt.Logger.Error("retention sweep failed; retrying next minute", "err", err)
		}
		if err := s.compact(now); err != nil {
			s.opt.Logger.Error("compaction failed; retrying next minute", "err", err)
		}
	}
	return c.res, nil
}

func (c *commit) run(b *hub.Batch) error {
	for _, env := range b.Envelopes {
		if err := c.envelope(env); err != nil {
			return err
		}
	}
	if err := c.flushBackfill(); err != nil {
		return err
	}
	if c.now-c.s.lastAge >= c.s.opt.MaxHeadAge.Milliseconds()/4 {
		if err := c.sealAged(); err != nil {
			return err
		}
	}
	if err := c.flushRollups(); err != nil {
		return err
	}
	if err := c.writeWAL(); err != nil {
		return err
	}
	if err := c.writeMarks(); err != nil {
		return err
	}
	devices := c.tx.Bucket(bucketDevices)
	for _, rec := range b.Devices {
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode device %q: %w", rec.ID, err)
		}
		if err := devices.Put([]byte(rec.ID), v); err != nil {
			return fmt.Errorf("put device %q: %w", rec.ID, err)
		}
	}
	if err := c.writeAlerts(b.Alerts); err != nil {
		return err
	}
	return c.writeEvents(b.Events)
}

func (c *commit) envelope(env *telemetry.Envelope) error {
	if env.Simple {
		for _, r := range env.Readings {
			if err := c.reading(env.Device, r, false); err != nil {
				return err
			}
		}
		return nil
	}
	ms, err := c.mark(env.Device, env.Boot)
	if err != nil {
		return err
	}
	if env.First != nil {
		c.res.Gaps += int(ms.settle(*env.First))
	}
	for _, r := range env.Readings {
		if ms.m.Has(r.Seq) {
			c.res.Duplicates++
			continue
		}
		if err := c.reading(env.Device, r, true); err != nil {
			return err
		}
		ms.m.Add(r.Seq)
		ms.seen = append(ms.seen, seqTS{r.Seq, r.TS})
	}
	return nil
}

// reading routes one reading's samples to their series.
func (c *commit) reading(dev string, r telemetry.Reading, withSeq bool) error {
	if r.TS < c.rawFloor || r.TS > c.future {
		c.res.Dropped++
		return nil
	}
	c.res.Stored++
	known := c.s.devs[dev] // looked up once per reading, not per sample
	for name, v := range r.Metrics {
		var sr *series
		if known != nil {
			sr = known.metrics[name]
		}
		if sr == nil {
			var err error
			if sr, err = c.seriesFor(dev, name); err != nil {
				return err
			}
		}
		if err := c.add(sr, r.TS, v); err != nil {
			return err
		}
	}
	if !withSeq {
		return nil
	}
	sr, err := c.seriesFor(dev, seqMetric)
	if err != nil {
		return err
	}
	return c.add(sr, r.TS, float64(r.Seq))
}

// seriesFor returns the series of (dev, metric), creating it if new. New
// series are indexed in this commit only, and published with the rest.
func (c *commit) seriesFor(dev, metric string) (*series, error) {
	if d := c.s.devs[dev]; d != nil { // the writer is the only one changing the index
		if sr := d.metrics[metric]; sr != nil {
			return sr, nil
		}
	}
	nd := c.newDevs[dev]
	if nd == nil {
		nd = &device{metrics: make(map[string]*series)}
		c.newDevs[dev] = nd
	}
	if sr := nd.metrics[metric]; sr != nil {
		return sr, nil
	}
	sr := &series{sid: c.nextSID, device: dev, metric: metric, head: headState{sealed: noSealed}}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], sr.sid)
	if err := c.sids.Put([]byte(seriesKey(dev, metric)), v[:]); err != nil {
		return nil, fmt.Errorf("index series %s %s: %w", dev, metric, err)
	}
	c.nextSID++
	nd.metrics[metric] = sr
	c.added = append(c.added, sr)
	return sr, nil
}

// state returns sr's working head state for this commit.
func (c *commit) state(sr *series) *headState {
	if sr.pendGen != c.gen {
		sr.pendGen = c.gen
		sr.pend = sr.head
		c.touched = append(c.touched, sr)
	}
	return &sr.pend
}

// add stores one sample: into the head, or as backfill when it is older
// than what is sealed.
func (c *commit) add(sr *series, ts int64, v float64) error {
	st := c.state(sr)
	if ts <= st.sealed {
		c.backfill[sr] = append(c.backfill[sr], chunk.Point{TS: ts, V: v})
		return nil
	}
	raw := &c.s.tiers[tierRaw]
	if n := len(st.pts); n > 0 {
		hp, tp := raw.partOf(st.pts[0].TS), raw.partOf(ts)
		switch {
		case tp < hp: // belongs to an older partition's sealed chunks
			c.backfill[sr] = append(c.backfill[sr], chunk.Point{TS: ts, V: v})
			return nil
		case tp > hp: // chunks never span partitions
			if err := c.seal(sr, st, n); err != nil {
				return err
			}
		}
	}
	n := len(st.pts)
	p := chunk.Point{TS: ts, V: v}
	switch {
	case n == 0 || ts > st.pts[n-1].TS:
		st.pts = append(st.pts, p)
	default:
		i, found := slices.BinarySearchFunc(st.pts, ts, func(q chunk.Point, t int64) int { return cmp64(q.TS, t) })
		if found {
			return nil // a second sample at the same instant: the first wins
		}
		// Never shift in place: readers may be copying the committed head.
		pts := make([]chunk.Point, 0, max(n+1, c.s.opt.MaxChunkPoints))
		pts = append(append(append(pts, st.pts[:i]...), p), st.pts[i:]...)
		st.pts = pts
	}
	if n == 0 {
		st.since, st.wal = c.now, c.walKey
	}
	c.wal.sample(sr.sid, ts, v)
	if len(st.pts) >= c.s.opt.MaxChunkPoints {
		return c.seal(sr, st, c.s.opt.MaxChunkPoints)
	}
	return nil
}

// seal writes the head's first n samples as a chunk. Samples left in the
// head are logged again in this commit's WAL record, so the head never pins
// older records.
func (c *commit) seal(sr *series, st *headState, n int) error {
	pts := st.pts[:n]
	enc, err := chunk.Encode(nil, pts)
	if err != nil {
		return fmt.Errorf("encode chunk of series %d: %w", sr.sid, err)
	}
	b, err := c.bucket(tierRaw, c.s.tiers[tierRaw].partOf(pts[0].TS), sr.sid)
	if err != nil {
		return err
	}
	if err := b.Put(u64Key(uint64(pts[0].TS)), enc); err != nil {
		return fmt.Errorf("put chunk of series %d: %w", sr.sid, err)
	}
	last := pts[n-1].TS
	c.wal.seal(sr.sid, last)
	c.markDirty(sr, pts[0].TS, last)
	st.sealed = last
	rest := make([]chunk.Point, len(st.pts)-n, c.s.opt.MaxChunkPoints)
	copy(rest, st.pts[n:])
	st.pts = rest
	if len(rest) == 0 {
		st.wal, st.since = 0, 0
		return nil
	}
	st.wal = c.walKey
	for _, p := range rest {
		c.wal.sample(sr.sid, p.TS, p.V)
	}
	return nil
}

// sealAged seals heads whose first sample arrived MaxHeadAge ago: a quiet
// or gone device's samples reach their chunk and rollups, and stop pinning
// the WAL.
func (c *commit) sealAged() error {
	c.s.lastAge = c.now
	limit := c.now - c.s.opt.MaxHeadAge.Milliseconds()
	for _, sr := range c.s.bySID {
		if sr == nil {
			continue
		}
		h := &sr.head
		if sr.pendGen == c.gen {
			h = &sr.pend
		}
		if len(h.pts) > 0 && h.since <= limit {
			st := c.state(sr)
			if err := c.seal(sr, st, len(st.pts)); err != nil {
				return err
			}
		}
	}
	return nil
}

// bucket returns the bucket of a series in a tier's partition, creating
// both as needed.
func (c *commit) bucket(t int, start int64, sid uint32) (*bolt.Bucket, error) {
	ref := partRef{t, start, sid}
	if b := c.parts[ref]; b != nil {
		return b, nil
	}
	pref := partRef{t, start, 0}
	pb := c.parts[pref]
	if pb == nil {
		var err error
		pb, err = c.tx.Bucket(c.s.tiers[t].name).CreateBucketIfNotExists(u64Key(uint64(start)))
		if err != nil {
			return nil, fmt.Errorf("create partition %s/%d: %w", c.s.tiers[t].name, start, err)
		}
		// New series arrive in sid order mostly; the partition is written
		// far less than the series buckets in it.
		pb.FillPercent = 1.0
		c.parts[pref] = pb
	}
	b, err := pb.CreateBucketIfNotExists(sidKey(sid))
	if err != nil {
		return nil, fmt.Errorf("create series %d in partition %s/%d: %w", sid, c.s.tiers[t].name, start, err)
	}
	// A series' chunks arrive in time order, so full pages are right: the
	// default (split at half) would leave the file half empty. One bucket
	// per series keeps every write an append; with all series in one
	// bucket, writes land between series and leave pages ~2/3 full.
	b.FillPercent = 1.0
	c.parts[ref] = b
	return b, nil
}

func (c *commit) markDirty(sr *series, from, to int64) {
	if sr.metric == seqMetric {
		return // no rollups of the internal seq series
	}
	c.dirty[sr] = append(c.dirty[sr], [2]int64{from, to})
}

// flushBackfill merges samples older than their series' sealed history
// into the chunks they belong to.
func (c *commit) flushBackfill() error {
	raw := &c.s.tiers[tierRaw]
	for sr, pts := range c.backfill {
		slices.SortStableFunc(pts, func(a, b chunk.Point) int { return cmp64(a.TS, b.TS) })
		pts = slices.CompactFunc(pts, func(a, b chunk.Point) bool { return a.TS == b.TS })
		for len(pts) > 0 {
			start := raw.partOf(pts[0].TS)
			n := 1
			for n < len(pts) && raw.partOf(pts[n].TS) == start {
				n++
			}
			b, err := c.bucket(tierRaw, start, sr.sid)
			if err != nil {
				return err
			}
			if _, err := mergeChunks(b, pts[:n], rawCodec, c.s.opt.MaxChunkPoints); err != nil {
				return fmt.Errorf("backfill series %d: %w", sr.sid, err)
			}
			c.markDirty(sr, pts[0].TS, pts[n-1].TS)
			pts = pts[n:]
		}
	}
	return nil
}

// publish makes a committed commit's state visible to readers.
func (s *Store) publish(c *commit) {
	s.mu.Lock()
	for _, sr := range c.touched {
		sr.head = sr.pend
		sr.pend = headState{}
	}
	for dev, nd := range c.newDevs {
		d := s.devs[dev]
		if d == nil {
			s.devs[dev] = nd
			d = nd
		} else {
			for m, sr := range nd.metrics {
				d.metrics[m] = sr
			}
		}
	}
	for _, sr := range c.added {
		for int(sr.sid) > len(s.bySID) {
			s.bySID = append(s.bySID, nil)
		}
		s.bySID[sr.sid-1] = sr
	}
	s.mu.Unlock()
	for _, sr := range c.touched {
		sr.pendGen = 0
	}
	for _, key := range c.markKeys {
		s.marks[key] = c.marks[key].m
	}
	if !c.wal.empty() {
		s.nextWAL++
	}
	floor := s.nextWAL
	for _, sr := range s.bySID {
		if sr != nil && sr.head.wal != 0 && sr.head.wal < floor {
			floor = sr.head.wal
		}
	}
	s.walFloor = floor
}
