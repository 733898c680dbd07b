package boltstore

import (
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/chunk"
	"github.com/fleetwatch/fleetwatch/hub/rollup"
)

// snapshot is a series' head as a query sees it.
type snapshot struct {
	sid    uint32
	found  bool
	sealed int64
	head   []chunk.Point // head samples in the query range
}

// snap copies what a query needs of a series' head. It must be taken
// before the read transaction opens: a seal committed in between then
// shows up both on disk (filtered out by sealed) and in this copy.
func (s *Store) snap(device, metric string, from, to int64) snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.devs[device]
	if d == nil {
		return snapshot{sealed: noSealed}
	}
	sr := d.metrics[metric]
	if sr == nil {
		return snapshot{sealed: noSealed}
	}
	return snapshot{sid: sr.sid, found: true, sealed: sr.head.sealed, head: sr.head.copyRange(nil, from, to)}
}

// rawPoints returns the samples of sn in [from, to]: sealed ones from disk,
// then the head's.
func (s *Store) rawPoints(tx *bolt.Tx, sn *snapshot, from, to int64, dst []chunk.Point) ([]chunk.Point, error) {
	if !sn.found {
		return dst, nil
	}
	dst, err := readRange(tx, &s.tiers[tierRaw], sn.sid, from, min(to, sn.sealed), rawCodec, dst)
	if err != nil {
		return dst, err
	}
	for _, p := range sn.head {
		if p.TS >= from && p.TS <= to {
			dst = append(dst, p)
		}
	}
	return dst, nil
}

// countRaw counts the samples of sn in [from, to] from chunk headers,
// decoding only the chunks cut by the range's ends.
func (s *Store) countRaw(tx *bolt.Tx, sn *snapshot, from, to int64) (int, error) {
	if !sn.found {
		return 0, nil
	}
	n := 0
	for _, p := range sn.head {
		if p.TS >= from && p.TS <= to {
			n++
		}
	}
	to = min(to, sn.sealed)
	if from > to {
		return n, nil
	}
	var edge []chunk.Point
	err := seriesBuckets(tx, &s.tiers[tierRaw], sn.sid, from, to, func(b *bolt.Bucket) (bool, error) {
		// A chunk lies wholly in the range when it starts at or after from
		// and the next chunk starts at or before to: then its header's
		// count is enough.
		var pk, pv []byte
		c := b.Cursor()
		for k, v := seekChunk(c, from); ; k, v = c.Next() {
			ts := int64(bytes2u64(k))
			if pk != nil {
				if pts := int64(bytes2u64(pk)); pts >= from && k != nil && ts <= to {
					_, _, cnt, _, err := chunk.Header(pv)
					if err != nil {
						return false, fmt.Errorf("chunk %x: %w", pk, err)
					}
					n += cnt
				} else {
					var err error
					if edge, err = chunk.DecodeAppend(edge[:0], pv); err != nil {
						return false, fmt.Errorf("chunk %x: %w", pk, err)
					}
					for _, p := range edge {
						if p.TS >= from && p.TS <= to {
							n++
						}
					}
				}
			}
			if k == nil {
				return true, nil // on to the next partition
			}
			if ts > to {
				return false, nil
			}
			pk, pv = k, v
		}
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// History returns one series per metric of q: raw samples when the range
// holds no more than q.Points, else at most q.Points aligned buckets from
// the coarsest tier fine enough.
func (s *Store) History(q hub.HistoryQuery) ([]hub.Series, error) {
	if q.Points <= 0 {
		q.Points = hub.DefaultHistoryPoints
	}
	now := s.opt.Now().UnixMilli()
	snaps := make([]snapshot, len(q.Metrics))
	for i, m := range q.Metrics {
		snaps[i] = s.snap(q.Device, m, q.From, q.To)
	}
	out := make([]hub.Series, len(q.Metrics))
	err := s.db.View(func(tx *bolt.Tx) error {
		for i, m := range q.Metrics {
			sr, err := s.history(tx, &snaps[i], q, now)
			if err != nil {
				return fmt.Errorf("%s: %w", m, err)
			}
			sr.Metric = m
			out[i] = sr
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", q.Device, err)
	}
	return out, nil
}

func (s *Store) history(tx *bolt.Tx, sn *snapshot, q hub.HistoryQuery, now int64) (hub.Series, error) {
	end := min(q.To, max(now, q.From))
	n, err := s.countRaw(tx, sn, q.From, q.To)
	if err != nil {
		return hub.Series{}, err
	}
	// Raw samples answer only a range the raw tier still wholly holds;
	// older time lives in the rollups.
	if n <= q.Points && (q.From >= now-s.tiers[tierRaw].retention || !s.rolledBefore(tx, sn, q.From, now-s.tiers[tierRaw].retention)) {
		pts, err := s.rawPoints(tx, sn, q.From, q.To, make([]chunk.Point, 0, n))
		if err != nil {
			return hub.Series{}, err
		}
		out := make([]hub.Point, len(pts))
		for i, p := range pts {
			out[i] = hub.Point{TS: p.TS, Value: p.V}
		}
		return hub.Series{Resolution: hub.ResolutionRaw, Points: out, Gaps: rawGaps(pts, q.From, end, q.Interval)}, nil
	}

	step := stepFor(q.From, q.To, q.Points)
	tier := tierRaw
	switch {
	case step >= hourMS:
		tier = tierHour
	case step >= minuteMS:
		tier = tierMinute
	}
	if tier == tierRaw && q.From < now-s.tiers[tierRaw].retention {
		tier = tierMinute
	}
	if tier == tierMinute && q.From < now-s.tiers[tierMinute].retention {
		tier = tierHour
	}
	width := s.tiers[tier].width
	switch {
	case width > 0:
		step = (step + width - 1) / width * width
	case step > 1000:
		step = (step + 999) / 1000 * 1000
	}

	// Sealed time comes from the tiers, the rest from raw samples: rollups
	// exist only up to the minute (hour) holding the newest sealed sample.
	rawFrom, minFrom := q.From, q.From
	if tier != tierRaw && sn.sealed != noSealed {
		rawFrom = max(q.From, floorDiv(sn.sealed, minuteMS)*minuteMS)
		if tier == tierHour {
			minFrom = min(rawFrom, max(q.From, floorDiv(sn.sealed, hourMS)*hourMS))
		}
	}
	var parts []rollup.Point
	if tier == tierHour && minFrom > q.From {
		if parts, err = readRange(tx, &s.tiers[tierHour], sn.sid, floorDiv(q.From, hourMS)*hourMS, minFrom-1, rollupCodec, parts); err != nil {
			return hub.Series{}, err
		}
	}
	if tier != tierRaw && rawFrom > minFrom {
		if parts, err = readRange(tx, &s.tiers[tierMinute], sn.sid, floorDiv(minFrom, minuteMS)*minuteMS, rawFrom-1, rollupCodec, parts); err != nil {
			return hub.Series{}, err
		}
	}
	pts, err := s.rawPoints(tx, sn, rawFrom, q.To, nil)
	if err != nil {
		return hub.Series{}, err
	}
	rw := step
	if width > 0 {
		rw = width
	}
	parts = rollup.Of(parts, pts, rw)
	rolled := rollup.Coarsen(nil, parts, step)
	buckets := make([]hub.Bucket, len(rolled))
	for i, r := range rolled {
		buckets[i] = hub.Bucket{TS: r.TS, Avg: r.Avg, Min: r.Min, Max: r.Max, Count: r.Count}
	}
	res := hub.Resolution1h
	switch tier {
	case tierRaw:
		res = hub.ResolutionRaw
	case tierMinute:
		res = hub.Resolution1m
	}
	return hub.Series{Resolution: res, Step: step, Buckets: buckets, Gaps: emptyBucketGaps(buckets, step, q.From, end, q.Interval)}, nil
}

// rolledBefore reports whether the minute tier holds rollups of sn in
// [from, before): time the raw tier no longer has.
func (s *Store) rolledBefore(tx *bolt.Tx, sn *snapshot, from, before int64) bool {
	if !sn.found {
		return false
	}
	found := false
	_ = seriesBuckets(tx, &s.tiers[tierMinute], sn.sid, from, before-1, func(b *bolt.Bucket) (bool, error) {
		k, _ := b.Cursor().First()
		found = k != nil && int64(bytes2u64(k)) < before
		return !found, nil
	})
	return found
}

// stepFor returns the smallest bucket width in ms whose epoch-aligned
// buckets cover [from, to] in at most n buckets.
func stepFor(from, to int64, n int) int64 {
	span := to - from + 1
	if n <= 1 {
		w := max(span, 1)
		for floorDiv(to, w) != floorDiv(from, w) {
			w *= 2
		}
		return w
	}
	// With w ≥ span/(n−1), (to−from)/w < n−1, so at most n buckets.
	return max((span+int64(n)-2)/int64(n-1), 1)
}

// rawGaps lists the pauses between samples longer than two intervals,
// including at the ends of [from, end]. interval 0 means the median step.
func rawGaps(pts []chunk.Point, from, end, interval int64) []hub.Gap {
	gaps := []hub.Gap{}
	if len(pts) == 0 {
		if end > from {
			gaps = append(gaps, hub.Gap{From: from, To: end})
		}
		return gaps
	}
	if interval <= 0 {
		interval = medianStep(pts)
	}
	if interval <= 0 {
		return gaps
	}
	limit := 2 * interval
	if pts[0].TS-from > limit {
		gaps = append(gaps, hub.Gap{From: from, To: pts[0].TS})
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].TS-pts[i-1].TS > limit {
			gaps = append(gaps, hub.Gap{From: pts[i-1].TS, To: pts[i].TS})
		}
	}
	if last := pts[len(pts)-1].TS; end-last > limit {
		gaps = append(gaps, hub.Gap{From: last, To: end})
	}
	return gaps
}

func medianStep(pts []chunk.Point) int64 {
	if len(pts) < 2 {
		return 0
	}
	steps := make([]int64, 0, min(len(pts)-1, 1001))
	stride := max((len(pts)-1)/1000, 1) // a sample of steps is enough
	for i := 1; i < len(pts); i += stride {
		steps = append(steps, pts[i].TS-pts[i-1].TS)
	}
	slices.Sort(steps)
	return steps[len(steps)/2]
}

// emptyBucketGaps lists runs of empty buckets (longer than two intervals when
// the interval is known), including at the ends of [from, end].
func emptyBucketGaps(bs []hub.Bucket, step, from, end, interval int64) []hub.Gap {
	gaps := []hub.Gap{}
	limit := max(step, 2*interval)
	if len(bs) == 0 {
		if end > from {
			gaps = append(gaps, hub.Gap{From: from, To: end})
		}
		return gaps
	}
	if bs[0].TS-max(from, 0) >= limit {
		gaps = append(gaps, hub.Gap{From: from, To: bs[0].TS})
	}
	for i := 1; i < len(bs); i++ {
		if empty := bs[i].TS - (bs[i-1].TS + step); empty >= limit {
			gaps = append(gaps, hub.Gap{From: bs[i-1].TS + step, To: bs[i].TS})
		}
	}
	if last := bs[len(bs)-1].TS + step; end-last >= limit {
		gaps = append(gaps, hub.Gap{From: last, To: end})
	}
	return gaps
}

// Completeness compares the readings device produced in [from, to] (from
// the seqs of those stored) with those stored, and lists its gap ledger.
func (s *Store) Completeness(device string, from, to int64) (hub.Completeness, error) {
	out := hub.Completeness{Device: device, From: from, To: to, Gaps: []hub.GapRecord{}}
	sn := s.snap(device, seqMetric, from, to)
	err := s.db.View(func(tx *bolt.Tx) error {
		pts, err := s.rawPoints(tx, &sn, from, to, nil)
		if err != nil {
			return err
		}
		// A run is one boot: seqs rise by one per reading; a seq not above
		// the previous one starts a new boot.
		var first, prev float64 = 0, math.Inf(-1)
		for i, p := range pts {
			if i == 0 || p.V <= prev {
				if i > 0 {
					out.Expected += uint64(prev-first) + 1
				}
				first = p.V
			}
			prev = p.V
		}
		if len(pts) > 0 {
			out.Expected += uint64(prev-first) + 1
		}
		out.Stored = uint64(len(pts))
		out.Gaps, err = ledgerRange(tx, device, from, to)
		return err
	})
	if err != nil {
		return hub.Completeness{}, fmt.Errorf("completeness of %s: %w", device, err)
	}
	out.Missing = out.Expected - min(out.Stored, out.Expected)
	out.Ratio = 1
	if out.Expected > 0 {
		out.Ratio = float64(out.Stored) / float64(out.Expected)
	}
	return out, nil
}
