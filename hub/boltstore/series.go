package boltstore

import (
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// noSealed marks a series with nothing sealed on disk yet.
const noSealed = math.MinInt64

// headState is what a series keeps in memory: its open chunk and where its
// sealed history ends.
type headState struct {
	// pts is the open chunk, timestamps strictly increasing, all after
	// sealed. A commit may append past len(pts) into the same array
	// (readers copy only [:len]), but never changes pts[:len] in place.
	pts []chunk.Point
	// sealed is the newest timestamp on disk (noSealed if none): samples
	// at or before it go straight to disk as backfill.
	sealed int64
	// wal is the WAL record holding the head's oldest sample (0: empty).
	wal uint64
	// since is the hub time (ms) the head's first sample arrived.
	since int64
}

// series is one (device, metric).
type series struct {
	sid            uint32
	device, metric string

	head headState // committed; guarded by Store.mu

	// Writer-only: this commit's state, valid while pendGen is the
	// Store's current generation.
	pend    headState
	pendGen uint64
}

// device indexes the series of one device by metric name.
type device struct {
	metrics map[string]*series
}

// lookupSealed finds the newest timestamp on disk of a series by reading
// its last chunk in the newest raw partition that has one.
func (s *Store) lookupSealed(tx *bolt.Tx, sid uint32) (int64, error) {
	t := &s.tiers[tierRaw]
	tb := tx.Bucket(t.name)
	parts := tb.Cursor()
	name := sidKey(sid)
	for pk, _ := parts.Last(); pk != nil; pk, _ = parts.Prev() {
		pb := tb.Bucket(pk)
		if pb == nil {
			continue
		}
		sb := pb.Bucket(name)
		if sb == nil {
			continue
		}
		k, v := sb.Cursor().Last()
		if k == nil {
			continue
		}
		pts, err := chunk.Decode(v)
		if err != nil {
			return 0, err
		}
		return pts[len(pts)-1].TS, nil
	}
	return noSealed, nil
}

// copyRange appends the head's points in [from, to] to dst.
func (h *headState) copyRange(dst []chunk.Point, from, to int64) []chunk.Point {
	i, _ := slices.BinarySearchFunc(h.pts, from, func(p chunk.Point, t int64) int { return cmp64(p.TS, t) })
	for _, p := range h.pts[i:] {
		if p.TS > to {
			break
		}
		dst = append(dst, p)
	}
	return dst
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
