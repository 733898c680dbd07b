package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// A WAL record is what one commit added to open chunks, so Open can rebuild
// them. It is a few bytes per sample (the chunks it stands for are written
// once, when sealed) which keeps a Pi's SD card from rewriting open chunks
// twice a second:
//
//	record = uvarint(n) n×sample  uvarint(m) m×seal
//	sample = uvarint(sid) varint(ts − previous sample's ts) float64 bits LE
//	seal   = uvarint(sid) varint(ts): the series' samples ≤ ts are sealed
//
// Replay applies a record's samples, then its seals.
type walRecord struct {
	samples []byte
	n       int
	prevTS  int64
	seals   []byte
	m       int
}

func (w *walRecord) sample(sid uint32, ts int64, v float64) {
	w.samples = binary.AppendUvarint(w.samples, uint64(sid))
	w.samples = binary.AppendVarint(w.samples, ts-w.prevTS)
	w.samples = binary.LittleEndian.AppendUint64(w.samples, math.Float64bits(v))
	w.prevTS = ts
	w.n++
}

func (w *walRecord) seal(sid uint32, ts int64) {
	w.seals = binary.AppendUvarint(w.seals, uint64(sid))
	w.seals = binary.AppendVarint(w.seals, ts)
	w.m++
}

func (w *walRecord) empty() bool { return w.n == 0 && w.m == 0 }

func (w *walRecord) encode() []byte {
	b := make([]byte, 0, len(w.samples)+len(w.seals)+2*binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(w.n))
	b = append(b, w.samples...)
	b = binary.AppendUvarint(b, uint64(w.m))
	return append(b, w.seals...)
}

var errCorruptWAL = errors.New("corrupt WAL record")

type walSample struct {
	sid uint32
	p   chunk.Point
}

type walSeal struct {
	sid uint32
	ts  int64
}

func decodeWAL(b []byte) (samples []walSample, seals []walSeal, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errCorruptWAL
	}
	b = b[k:]
	samples = make([]walSample, 0, n)
	var ts int64
	for range n {
		sid, k1 := binary.Uvarint(b)
		if k1 <= 0 || sid == 0 || sid > math.MaxUint32 {
			return nil, nil, errCorruptWAL
		}
		d, k2 := binary.Varint(b[k1:])
		if k2 <= 0 || len(b) < k1+k2+8 {
			return nil, nil, errCorruptWAL
		}
		ts += d
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[k1+k2:]))
		samples = append(samples, walSample{uint32(sid), chunk.Point{TS: ts, V: v}})
		b = b[k1+k2+8:]
	}
	m, k := binary.Uvarint(b)
	if k <= 0 || m > uint64(len(b)) {
		return nil, nil, errCorruptWAL
	}
	b = b[k:]
	for range m {
		sid, k1 := binary.Uvarint(b)
		if k1 <= 0 || sid == 0 || sid > math.MaxUint32 {
			return nil, nil, errCorruptWAL
		}
		t, k2 := binary.Varint(b[k1:])
		if k2 <= 0 {
			return nil, nil, errCorruptWAL
		}
		seals = append(seals, walSeal{uint32(sid), t})
		b = b[k1+k2:]
	}
	if len(b) != 0 {
		return nil, nil, errCorruptWAL
	}
	return samples, seals, nil
}

// walSegment is the most bytes of a WAL record under one key.
const walSegment = 2000

// walKey is the record number (8 bytes) then the segment number (4 bytes).
func walKey(rec uint64, seg uint32) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, rec)
	binary.BigEndian.PutUint32(k[8:], seg)
	return k
}

// writeWAL stores this commit's record and deletes the records no open head
// needs any more.
func (c *commit) writeWAL() error {
	wb := c.tx.Bucket(bucketWAL)
	wb.FillPercent = 1.0 // keys only ever append
	if !c.wal.empty() {
		// Stored in segments smaller than a page: a larger value needs a
		// contiguous run of free pages, which a fragmented file lacks, so
		// the file would grow instead of reusing its free pages.
		rec := c.wal.encode()
		for seg := uint32(0); len(rec) > 0; seg++ {
			n := min(len(rec), walSegment)
			if err := wb.Put(walKey(c.walKey, seg), rec[:n]); err != nil {
				return fmt.Errorf("put WAL record %d: %w", c.walKey, err)
			}
			rec = rec[n:]
		}
	}
	cur := wb.Cursor()
	for k, _ := cur.First(); len(k) == 12 && binary.BigEndian.Uint64(k) < c.s.walFloor; k, _ = cur.First() {
		if err := cur.Delete(); err != nil {
			return fmt.Errorf("delete WAL record: %w", err)
		}
	}
	return nil
}

// replayWAL rebuilds the open chunks from the WAL after Open.
func (s *Store) replayWAL() error {
	now := s.opt.Now().UnixMilli()
	s.nextWAL = 1
	err := s.db.View(func(tx *bolt.Tx) error {
		var rec []byte
		var key uint64
		var segs uint32
		flush := func() error {
			if segs == 0 {
				return nil
			}
			err := s.replayRecord(key, rec, now)
			rec, segs = rec[:0], 0
			return err
		}
		err := tx.Bucket(bucketWAL).ForEach(func(k, v []byte) error {
			if len(k) != 12 {
				return fmt.Errorf("WAL key %x: %w", k, errCorruptWAL)
			}
			r, seg := binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(k[8:])
			if segs > 0 && r != key {
				if err := flush(); err != nil {
					return err
				}
			}
			if seg != segs {
				return fmt.Errorf("WAL record %d: segment %d, want %d: %w", r, seg, segs, errCorruptWAL)
			}
			key, segs = r, segs+1
			rec = append(rec, v...)
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return fmt.Errorf("replay WAL: %w", err)
	}
	s.walFloor = s.nextWAL
	for _, sr := range s.bySID {
		if sr != nil && sr.head.wal != 0 {
			s.walFloor = min(s.walFloor, sr.head.wal)
		}
	}
	return nil
}

// replayRecord applies one WAL record to the heads: its samples, then its
// seals, as the commit that wrote it did.
func (s *Store) replayRecord(key uint64, rec []byte, now int64) error {
	samples, seals, err := decodeWAL(rec)
	if err != nil {
		return fmt.Errorf("WAL record %d: %w", key, err)
	}
	for _, smp := range samples {
		sr := s.series(smp.sid)
		if sr == nil {
			return fmt.Errorf("WAL record %d: unknown series %d: %w", key, smp.sid, errCorruptWAL)
		}
		h := &sr.head
		if smp.p.TS <= h.sealed {
			continue
		}
		i, found := slices.BinarySearchFunc(h.pts, smp.p.TS, func(q chunk.Point, t int64) int { return cmp64(q.TS, t) })
		if found {
			continue
		}
		if len(h.pts) == 0 {
			h.wal, h.since = key, now
		}
		h.pts = slices.Insert(h.pts, i, smp.p)
	}
	for _, sl := range seals {
		sr := s.series(sl.sid)
		if sr == nil {
			return fmt.Errorf("WAL record %d: unknown series %d: %w", key, sl.sid, errCorruptWAL)
		}
		h := &sr.head
		i, _ := slices.BinarySearchFunc(h.pts, sl.ts+1, func(q chunk.Point, t int64) int { return cmp64(q.TS, t) })
		h.pts = slices.Clone(h.pts[i:])
		h.sealed = max(h.sealed, sl.ts)
		if len(h.pts) == 0 {
			h.wal, h.since = 0, 0
		} else {
			h.wal = key
		}
	}
	s.nextWAL = key + 1
	return nil
}

// series returns the series with id sid, or nil.
func (s *Store) series(sid uint32) *series {
	if sid == 0 || int(sid) > len(s.bySID) {
		return nil
	}
	return s.bySID[sid-1]
}
