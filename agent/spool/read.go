package spool

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Reading back: Open indexes the segments it finds (recover), and Read
// fetches the metrics of indexed readings when the agent sends them. The
// agent keeps only the index in memory, so a long outage costs disk, not
// RAM.
const (
	// maxRead bounds one read, and maxSkip the gap between two wanted
	// records that a read spans rather than split in two (acked or other
	// boots' readings in between).
	maxRead = 1 << 20
	maxSkip = 16 << 10
	// maxIntern bounds the names Read shares between readings: past it
	// (names that keep changing) the map starts over.
	maxIntern = 1 << 14
)

var (
	errBadFrame   = errors.New("bad record frame")
	errChecksum   = errors.New("record checksum mismatch")
	errNotIndexed = errors.New("record is not the indexed reading")
	errShort      = errors.New("segment ends before the record")
)

// recover scans the segments ids, cuts torn tails and deletes segments with
// nothing left to send. It reports whether it removed any file.
func (s *Spool) recover(ids []uint64, floors map[string]uint64) (removed bool, err error) {
	last := map[string]uint64{} // records of a boot are appended in seq order
	var buf []byte
	for _, id := range ids {
		path := filepath.Join(s.dir, segName(id))
		if buf, err = readFile(path, buf); err != nil {
			return removed, fmt.Errorf("open spool: %w", err)
		}
		sc := scanSegment(buf, s.intern)
		seg := &segment{id: id, size: sc.good, live: map[string]uint64{}}
		for _, e := range sc.entries {
			if e.Seq <= floors[e.Boot] || e.Seq <= last[e.Boot] {
				continue
			}
			last[e.Boot], seg.live[e.Boot] = e.Seq, e.Seq
			e.Loc.Seg = uint32(id)
			s.recovered = append(s.recovered, e)
		}
		if sc.damaged > 0 {
			s.stats.Damaged += uint64(sc.damaged)
			s.log.Warn("spool segment damaged; skipped what could not be read", "file", path, "damaged", sc.damaged)
		}
		if len(seg.live) == 0 {
			if err := os.Remove(path); err != nil {
				return removed, fmt.Errorf("open spool: %w", err)
			}
			removed = true
			continue
		}
		if torn := int64(len(buf)) - sc.good; torn > 0 {
			s.stats.TornBytes += torn
			s.log.Warn("spool segment has a torn tail; cutting it off", "file", path, "bytes", torn)
			if err := truncate(path, sc.good); err != nil {
				return removed, fmt.Errorf("open spool: %w", err)
			}
		}
		s.segs = append(s.segs, seg)
		s.stats.Bytes += seg.size
	}
	for boot := range last {
		if f := floors[boot]; f > 0 {
			s.floors[boot] = f
		}
	}
	return removed, nil
}

// Recovered returns, once, the index of the readings Open found above their
// boot's floor: oldest first, and in seq order within a boot. Read reads
// their metrics back.
func (s *Spool) Recovered() []Entry {
	r := s.recovered
	s.recovered = nil
	return r
}

// Read reads back the metrics of the readings want names, as Open or Append
// indexed them. Records adjacent in a segment come in one read, so a replay
// batch (a stretch of one boot, oldest first) costs a read or two.
//
// ms[i] is nil when want[i] cannot be read back intact: its segment is gone
// or unreadable, its checksum fails, or it is not the reading the entry
// names. Each such record is counted in Stats.Damaged, as at Open: the
// reading is lost. err describes the first, for the log.
func (s *Spool) Read(want []Entry) (ms []telemetry.Metrics, err error) {
	ms = make([]telemetry.Metrics, len(want))
	if len(s.intern) > maxIntern {
		s.intern = map[string]string{}
	}
	var f *os.File // the segment last opened, kept for the next run in it
	defer func() {
		if f != nil {
			f.Close() //nolint:errcheck // read-only
		}
	}()
	for i := 0; i < len(want); {
		from := want[i].Loc
		end := int64(from.Off) + int64(from.Len)
		j := i + 1
		for ; j < len(want); j++ {
			l := want[j].Loc
			if l.Seg != from.Seg || int64(l.Off) < end || int64(l.Off) > end+maxSkip ||
				int64(l.Off)+int64(l.Len)-int64(from.Off) > maxRead {
				break
			}
			end = int64(l.Off) + int64(l.Len)
		}
		buf, rerr := s.readAt(&f, from.Seg, int64(from.Off), end)
		for k := i; k < j; k++ {
			l, derr := want[k].Loc, rerr
			lo := int64(l.Off - from.Off)
			if derr == nil && lo+int64(l.Len) > int64(len(buf)) {
				derr = errShort
			} else if derr == nil {
				ms[k], derr = s.decode(buf[lo:lo+int64(l.Len)], want[k])
			}
			if derr != nil {
				s.stats.Damaged++
				if err == nil {
					err = fmt.Errorf("read spool: %s offset %d: %w", segName(uint64(from.Seg)), want[k].Loc.Off, derr)
				}
			}
		}
		i = j
	}
	return ms, err
}

// Fill reads back the metrics of rs, readings of boot, whose locs[i] is
// not zero (the others are in memory), as Read does. It returns rs without
// the readings it could not read back, and their seqs: those are lost.
func (s *Spool) Fill(boot string, rs []telemetry.Reading, locs []Loc) (kept []telemetry.Reading, lost []uint64, err error) {
	var want []Entry
	for i, r := range rs {
		if locs[i] != (Loc{}) {
			want = append(want, Entry{Boot: boot, Seq: r.Seq, TS: r.TS, Loc: locs[i]})
		}
	}
	ms, err := s.Read(want)
	kept = rs[:0]
	for i, r := range rs {
		if locs[i] != (Loc{}) {
			if r.Metrics, ms = ms[0], ms[1:]; r.Metrics == nil {
				lost = append(lost, r.Seq)
				continue
			}
		}
		kept = append(kept, r)
	}
	return kept, lost, err
}

// readAt reads bytes [off, end) of segment seg, reusing *f when it is that
// segment's file.
func (s *Spool) readAt(f **os.File, seg uint32, off, end int64) ([]byte, error) {
	path := filepath.Join(s.dir, segName(uint64(seg)))
	if *f != nil && (*f).Name() != path {
		(*f).Close() //nolint:errcheck // read-only
		*f = nil
	}
	if *f == nil {
		nf, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		*f = nf
	}
	buf := slices.Grow(s.rbuf[:0], int(end-off))[:end-off]
	if cap(buf) <= maxRead { // keep a batch-sized buffer, not an odd huge record's
		s.rbuf = buf
	}
	n, err := (*f).ReadAt(buf, off)
	if errors.Is(err, io.EOF) {
		err = nil // shorter than the index says: what lies beyond is lost
	}
	return buf[:n], err
}

// decode checks and decodes the framed record b, which must be the reading
// want names.
func (s *Spool) decode(b []byte, want Entry) (telemetry.Metrics, error) {
	n, sum, ok := parseHeader(b)
	if !ok || headerLen+n != len(b) {
		return nil, errBadFrame
	}
	if crc32.Checksum(b[headerLen:], castagnoli) != sum {
		return nil, errChecksum
	}
	r, err := decodePayload(b[headerLen:], s.intern, nil)
	if err != nil {
		return nil, err
	}
	if r.Boot != want.Boot || r.Reading.Seq != want.Seq || r.Reading.TS != want.TS {
		return nil, errNotIndexed
	}
	return r.Reading.Metrics, nil
}

// readFile reads the file at path into buf, grown as needed: recovery reads
// segment after segment into one buffer.
func readFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close() //nolint:errcheck // read-only
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	buf = slices.Grow(buf[:0], int(fi.Size()))[:fi.Size()]
	_, err = io.ReadFull(f, buf)
	return buf, err
}
