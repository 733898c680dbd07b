package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
	"github.com/fleetwatch/fleetwatch/hub/rollup"
)

// codec adapts a chunk format (raw samples or rollups) to the generic
// chunk reading and merging below.
type codec[P any] struct {
	ts     func(*P) int64
	decode func([]P, []byte) ([]P, error)
	encode func([]byte, []P) ([]byte, error)
	// newWins: on equal timestamps a merged point replaces the stored one
	// (rollups are recomputed); otherwise the stored one stays (a
	// redelivered sample is a no-op).
	newWins bool
}

var rawCodec = codec[chunk.Point]{
	ts:     func(p *chunk.Point) int64 { return p.TS },
	decode: chunk.DecodeAppend,
	encode: chunk.Encode,
}

var rollupCodec = codec[rollup.Point]{
	ts:      func(p *rollup.Point) int64 { return p.TS },
	decode:  rollup.Decode,
	encode:  rollup.Encode,
	newWins: true,
}

// maxRollupPoints is the chunk size of the rollup tiers: four hours of
// minutes, ten days of hours.
const maxRollupPoints = 240

// mergeSorted merges two sorted, duplicate-free runs.
func mergeSorted[P any](cd codec[P], old, add []P) []P {
	out := make([]P, 0, len(old)+len(add))
	i, j := 0, 0
	for i < len(old) && j < len(add) {
		a, b := cd.ts(&old[i]), cd.ts(&add[j])
		switch {
		case a < b:
			out = append(out, old[i])
			i++
		case a > b:
			out = append(out, add[j])
			j++
		default:
			if cd.newWins {
				out = append(out, add[j])
			} else {
				out = append(out, old[i])
			}
			i++
			j++
		}
	}
	out = append(out, old[i:]...)
	return append(out, add[j:]...)
}

// findChunk locates the chunk of series bucket b that points at ts belong
// to: the last one starting at or before ts, else the first one. It returns
// copies of its key and value (nil if b is empty) and the start of the
// chunk after it (MaxInt64 if none).
func findChunk(b *bolt.Bucket, ts int64) (key, val []byte, next int64) {
	c := b.Cursor()
	k, v := seekChunk(c, ts)
	if k == nil {
		return nil, nil, math.MaxInt64
	}
	key, val = bytes.Clone(k), bytes.Clone(v)
	c.Seek(key)
	next = math.MaxInt64
	if nk, _ := c.Next(); nk != nil {
		next = int64(bytes2u64(nk))
	}
	return key, val, next
}

// seekChunk positions c on the chunk that can hold ts (keys are first
// timestamps): the last one starting at or before ts, else the first one.
// It returns nil when the bucket is empty.
func seekChunk(c *bolt.Cursor, ts int64) (k, v []byte) {
	k, v = c.Seek(u64Key(uint64(max(ts, 0))))
	if k != nil && int64(bytes2u64(k)) == ts {
		return k, v
	}
	var pk, pv []byte
	if k == nil {
		pk, pv = c.Last()
	} else {
		pk, pv = c.Prev()
	}
	if pk != nil {
		return pk, pv
	}
	if k == nil {
		return nil, nil
	}
	return c.Seek(k) // nothing before ts: the first chunk
}

// mergeChunks folds pts (sorted, unique timestamps, all in b's partition)
// into the chunks of series bucket b, re-splitting any past maxN points.
func mergeChunks[P any](b *bolt.Bucket, pts []P, cd codec[P], maxN int) (added int, err error) {
	for len(pts) > 0 {
		key, val, next := findChunk(b, cd.ts(&pts[0]))
		n := 1
		for n < len(pts) && cd.ts(&pts[n]) < next {
			n++
		}
		merged := pts[:n]
		pts = pts[n:]
		if key != nil {
			old, err := cd.decode(nil, val)
			if err != nil {
				return added, fmt.Errorf("chunk %x: %w", key, err)
			}
			merged = mergeSorted(cd, old, merged)
			added += len(merged) - len(old)
			if err := b.Delete(key); err != nil {
				return added, err
			}
		} else {
			added += len(merged)
		}
		if err := putSplit(b, merged, cd, maxN); err != nil {
			return added, err
		}
	}
	return added, nil
}

// putSplit writes pts as chunks of at most maxN points, evenly sized.
func putSplit[P any](b *bolt.Bucket, pts []P, cd codec[P], maxN int) error {
	pieces := (len(pts) + maxN - 1) / maxN
	for i := range pieces {
		part := pts[i*len(pts)/pieces : (i+1)*len(pts)/pieces]
		enc, err := cd.encode(nil, part)
		if err != nil {
			return err
		}
		if err := b.Put(u64Key(uint64(cd.ts(&part[0]))), enc); err != nil {
			return err
		}
	}
	return nil
}

// seriesBuckets calls fn with each partition of tier t that can hold
// timestamps in [from, to] and has a bucket for sid, oldest first.
func seriesBuckets(tx *bolt.Tx, t *tier, sid uint32, from, to int64, fn func(b *bolt.Bucket) (bool, error)) error {
	tb := tx.Bucket(t.name)
	parts := tb.Cursor()
	name := sidKey(sid)
	for pk, _ := parts.Seek(u64Key(uint64(max(t.partOf(from), 0)))); pk != nil; pk, _ = parts.Next() {
		if int64(bytes2u64(pk)) > to {
			break
		}
		pb := tb.Bucket(pk)
		if pb == nil {
			continue
		}
		if sb := pb.Bucket(name); sb != nil {
			more, err := fn(sb)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// readRange appends to dst the points of sid in tier t with timestamps in
// [from, to], oldest first.
func readRange[P any](tx *bolt.Tx, t *tier, sid uint32, from, to int64, cd codec[P], dst []P) ([]P, error) {
	if from > to {
		return dst, nil
	}
	err := seriesBuckets(tx, t, sid, from, to, func(b *bolt.Bucket) (bool, error) {
		c := b.Cursor()
		for k, v := seekChunk(c, from); k != nil; k, v = c.Next() {
			if int64(bytes2u64(k)) > to {
				return false, nil
			}
			n0 := len(dst)
			var err error
			if dst, err = cd.decode(dst, v); err != nil {
				return false, fmt.Errorf("chunk %x of %s series %d: %w", k, t.name, sid, err)
			}
			if first, last := cd.ts(&dst[n0]), cd.ts(&dst[len(dst)-1]); first < from || last > to {
				keep := dst[:n0]
				for _, p := range dst[n0:] {
					if ts := cd.ts(&p); ts >= from && ts <= to {
						keep = append(keep, p)
					}
				}
				dst = keep
			}
		}
		return true, nil
	})
	return dst, err
}

// bytes2u64 decodes a fixed-width key; a key of another length (nil at a
// cursor's end) sorts last.
func bytes2u64(b []byte) uint64 {
	if len(b) != 8 {
		return math.MaxUint64
	}
	return binary.BigEndian.Uint64(b)
}
