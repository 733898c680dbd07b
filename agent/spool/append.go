package spool

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Append writes recs, which must come oldest first and, within a boot, in
// seq order, with one write and one fsync (plus an fsync of the directory
// when it starts a segment).
//
// It returns where each record went, for Read: locs[i] is recs[i]'s, and
// zero for a record it dropped. Once Append returns, the caller need not
// keep the metrics in memory.
//
// To stay within MaxBytes it first drops the oldest segments, and if recs
// alone are more than that, their oldest records. It returns the highest
// seq per boot that it dropped: the caller must forget those readings too
// and count them. On error nothing of recs is durable and the spool stays
// usable: the caller keeps the readings and tries again later.
func (s *Spool) Append(recs []Record) (dropped map[string]uint64, locs []Loc, err error) {
	if len(recs) == 0 {
		return nil, nil, nil
	}
	buf := s.buf[:0]
	offs := make([]int, len(recs)+1) // offs[i]: where recs[i] starts in buf
	for i, r := range recs {
		offs[i] = len(buf)
		buf = appendRecord(buf, r)
	}
	offs[len(recs)] = len(buf)
	if cap(buf) <= 1<<20 { // keep a spill-sized buffer, not a shutdown-sized one
		s.buf = buf
	}

	fresh := s.active == nil || s.segs[len(s.segs)-1].size+int64(len(buf)) > s.opts.SegmentBytes
	if int64(len(segMagic)+len(buf)) > math.MaxUint32 || s.nextID > math.MaxUint32 {
		// A Loc could not point into the segment. Neither happens in
		// practice: 2^32 segments written, or a 4 GiB group in RAM.
		return nil, nil, fmt.Errorf("append to spool: %d bytes to segment %d: out of range", len(buf), s.nextID)
	}
	dropped = map[string]uint64{}
	removed := false
	for {
		need := int64(len(buf))
		if fresh {
			need += int64(len(segMagic))
		}
		if s.stats.Bytes+need <= s.opts.MaxBytes || len(s.segs) == 0 {
			break
		}
		if !fresh && len(s.segs) == 1 {
			fresh = true // the segment appended to must go too
			continue
		}
		if err := s.dropOldest(dropped); err != nil {
			return dropped, nil, fmt.Errorf("append to spool: %w", err)
		}
		removed = true
	}
	first := 0
	for first < len(recs) && s.stats.Bytes+int64(len(segMagic)+offs[len(recs)]-offs[first]) > s.opts.MaxBytes {
		r := recs[first]
		dropped[r.Boot] = max(dropped[r.Boot], r.Reading.Seq)
		first++
	}
	if first == len(recs) {
		if removed {
			if err := syncDir(s.dir); err != nil {
				return dropped, nil, fmt.Errorf("append to spool: %w", err)
			}
		}
		return dropped, make([]Loc, len(recs)), nil
	}
	if err := s.write(recs[first:], buf[offs[first]:], fresh); err != nil {
		return dropped, nil, fmt.Errorf("append to spool: %w", err)
	}
	if removed && !fresh { // a fresh segment has synced the directory already
		if err := syncDir(s.dir); err != nil {
			return dropped, nil, fmt.Errorf("append to spool: %w", err)
		}
	}
	// The group ends the last segment.
	seg := s.segs[len(s.segs)-1]
	base := seg.size - int64(offs[len(recs)]-offs[first]) - int64(offs[first])
	locs = make([]Loc, len(recs))
	for i := first; i < len(recs); i++ {
		locs[i] = Loc{Seg: uint32(seg.id), Off: uint32(base + int64(offs[i])), Len: uint32(offs[i+1] - offs[i])}
	}
	return dropped, locs, nil
}

// dropOldest deletes the oldest segment and raises dropped to its records.
func (s *Spool) dropOldest(dropped map[string]uint64) error {
	seg := s.segs[0]
	if err := s.removeSeg(seg); err != nil {
		return err
	}
	s.segs[0] = nil
	s.segs = s.segs[1:]
	for boot, seq := range seg.live {
		dropped[boot] = max(dropped[boot], seq)
		if _, ok := s.floors[boot]; ok || s.holds(boot) {
			s.floors[boot] = max(s.floors[boot], seq)
		}
	}
	return nil
}

// write appends data, the encoding of recs, to the last segment or, with
// fresh, to a new one.
func (s *Spool) write(recs []Record, data []byte, fresh bool) error {
	if fresh {
		if err := s.mkdir(); err != nil {
			return err
		}
		if s.active != nil {
			s.active.Close() //nolint:errcheck // every write to it was synced
			s.active = nil
		}
		path := filepath.Join(s.dir, segName(s.nextID))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, &segment{id: s.nextID, live: map[string]uint64{}})
		s.nextID++
		s.active = f
		data = append([]byte(segMagic), data...)
	}
	seg := s.segs[len(s.segs)-1]
	_, err := s.active.Write(data)
	if err == nil {
		err = s.active.Sync()
	}
	if err == nil && fresh {
		err = syncDir(s.dir)
	}
	if err != nil {
		s.rollback(seg)
		return err
	}
	seg.size += int64(len(data))
	s.stats.Bytes += int64(len(data))
	s.stats.Writes++
	s.stats.WrittenBytes += uint64(len(data))
	for _, r := range recs {
		seg.live[r.Boot] = max(seg.live[r.Boot], r.Reading.Seq)
	}
	if fresh && len(s.segs) == 1 {
		s.log.Info("outbox spilling to disk: readings stay unacked", "dir", s.dir)
	}
	s.log.Debug("outbox spilled", "readings", len(recs), "from_seq", recs[0].Reading.Seq, "to_seq", recs[len(recs)-1].Reading.Seq)
	return nil
}

// rollback undoes a failed write to seg: it cuts the segment back to what
// was synced (or deletes a new one) and closes it, so that the next Append
// starts a clean segment rather than write after garbage.
func (s *Spool) rollback(seg *segment) {
	path := filepath.Join(s.dir, segName(seg.id))
	s.active.Truncate(seg.size) //nolint:errcheck // best effort: recovery cuts torn tails anyway
	s.active.Close()            //nolint:errcheck // the write failed already
	s.active = nil
	if seg.size == 0 {
		os.Remove(path) //nolint:errcheck // best effort: an empty segment is deleted at Open
		s.segs = s.segs[:len(s.segs)-1]
	}
}
