package boltstore

import (
	"bytes"
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

// findChunk locates the chunk of sid in b that points at ts belong to: the
// last one starting at or before ts, else the first one after it. It
// returns copies of its key and value (nil if sid has no chunk in b) and
// the start of the chunk after it (MaxInt64 if none).
func findChunk(b *bolt.Bucket, sid uint32, ts int64) (key, val []byte, next int64) {
	c := b.Cursor()
	k, v := c.Seek(chunkKey(sid, ts))
	if s, t, ok := parseChunkKey(k); !ok || s != sid || t != ts {
		var pk, pv []byte
		if k == nil {
			pk, pv = c.Last()
		} else {
			pk, pv = c.Prev()
		}
		if s, _, ok := parseChunkKey(pk); ok && s == sid {
			k, v = pk, pv
		} else if s, _, ok := parseChunkKey(k); !ok || s != sid {
			return nil, nil, math.MaxInt64
		}
	}
	key, val = bytes.Clone(k), bytes.Clone(v)
	c.Seek(key)
	next = math.MaxInt64
	if nk, _ := c.Next(); nk != nil {
		if s, t, ok := parseChunkKey(nk); ok && s == sid {
			next = t
		}
	}
	return key, val, next
}

// mergeChunks folds pts (sorted, unique timestamps, all in b's partition)
// into sid's chunks in b, re-splitting any that grow past maxN.
func mergeChunks[P any](b *bolt.Bucket, sid uint32, pts []P, cd codec[P], maxN int) (added int, err error) {
	for len(pts) > 0 {
		key, val, next := findChunk(b, sid, cd.ts(&pts[0]))
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
		if err := putSplit(b, sid, merged, cd, maxN); err != nil {
			return added, err
		}
	}
	return added, nil
}

// putSplit writes pts as chunks of at most maxN points, evenly sized.
func putSplit[P any](b *bolt.Bucket, sid uint32, pts []P, cd codec[P], maxN int) error {
	pieces := (len(pts) + maxN - 1) / maxN
	for i := range pieces {
		part := pts[i*len(pts)/pieces : (i+1)*len(pts)/pieces]
		enc, err := cd.encode(nil, part)
		if err != nil {
			return err
		}
		if err := b.Put(chunkKey(sid, cd.ts(&part[0])), enc); err != nil {
			return err
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
	parts := tx.Bucket(t.name).Cursor()
	for pk, _ := parts.Seek(u64Key(uint64(max(t.partOf(from), 0)))); pk != nil; pk, _ = parts.Next() {
		if int64(bytes2u64(pk)) > to {
			break
		}
		b := tx.Bucket(t.name).Bucket(pk)
		if b == nil {
			continue
		}
		c := b.Cursor()
		k, v := c.Seek(chunkKey(sid, from))
		if s, ts, ok := parseChunkKey(k); !ok || s != sid || ts != from {
			// The chunk before may hold from.
			var pk, pv []byte
			if k == nil {
				pk, pv = c.Last()
			} else {
				pk, pv = c.Prev()
			}
			if s, _, ok := parseChunkKey(pk); ok && s == sid {
				k, v = pk, pv
			} else if k != nil {
				k, v = c.Seek(k)
			}
		}
		for ; k != nil; k, v = c.Next() {
			s, start, ok := parseChunkKey(k)
			if !ok || s != sid || start > to {
				break
			}
			n0 := len(dst)
			var err error
			if dst, err = cd.decode(dst, v); err != nil {
				return dst[:n0], fmt.Errorf("chunk %x of %s: %w", k, t.name, err)
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
	}
	return dst, nil
}

func bytes2u64(b []byte) uint64 {
	if len(b) != 8 {
		return math.MaxUint64
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
