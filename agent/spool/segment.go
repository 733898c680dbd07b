package spool

import (
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"strings"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// A segment file is the magic and then records, appended and never
// rewritten; it is deleted whole once every record in it is acked or
// dropped.
const (
	segMagic  = "fwspool1"
	segPrefix = "seg-"
	segSuffix = ".log"
)

// segment is what the spool remembers of one segment file.
type segment struct {
	id   uint64
	size int64
	// live is the highest seq per boot of the records still wanted: the
	// segment can go once the floor of every boot reaches it.
	live map[string]uint64
}

func segName(id uint64) string { return fmt.Sprintf("%s%016x%s", segPrefix, id, segSuffix) }

// parseSegName returns the id of a segment file name.
func parseSegName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, segPrefix)
	if !ok {
		return 0, false
	}
	if hex, ok = strings.CutSuffix(hex, segSuffix); !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil && id <= math.MaxUint32 // Append names no other: a Loc could not point into it
}

// scanned is what recovery found in one segment.
type scanned struct {
	// entries index the intact records; their Loc.Seg is left to the
	// caller, which knows the segment.
	entries []Entry
	// good is the length of the file up to the end of its last intact
	// record: what follows is a torn write to cut off.
	good int64
	// damaged counts records skipped in the middle (a damaged stretch
	// between two intact records counts once) and undecodable ones.
	damaged int
}

// scanSegment indexes every intact record of a segment file's contents b.
// Each record is decoded in full, into one scratch map, so that only those
// the hub would accept are indexed, yet no reading stays in memory.
//
// A write that a crash cut short can only be the last one, so damage that
// no intact record follows is a torn tail: recovery cuts it off. Damage with
// intact records after it is a bad stretch of media: recovery skips it and
// counts it. Either way it never refuses a file.
func scanSegment(b []byte, intern map[string]string) scanned {
	var s scanned
	if len(b) < len(segMagic) {
		return s // created, but not even the magic was written
	}
	if string(b[:len(segMagic)]) != segMagic {
		s.damaged++ // read on: the records may be intact
	}
	scratch := telemetry.Metrics{}
	off := len(segMagic)
	s.good = int64(off)
	for off < len(b) {
		n, sum, ok := parseHeader(b[off:])
		if ok && off+headerLen+n <= len(b) {
			end := off + headerLen + n
			p := b[off+headerLen : end]
			if crc32.Checksum(p, castagnoli) == sum {
				if r, err := decodePayload(p, intern, scratch); err == nil {
					s.entries = append(s.entries, Entry{Boot: r.Boot, Seq: r.Reading.Seq, TS: r.Reading.TS,
						Loc: Loc{Off: uint32(off), Len: uint32(end - off)}})
				} else {
					s.damaged++
				}
				off, s.good = end, int64(end)
				continue
			}
			if end == len(b) {
				break // the last record, torn
			}
		}
		next := resync(b, off+1)
		if next < 0 {
			break // nothing intact follows: a torn tail
		}
		s.damaged++
		off = next
	}
	return s
}

// resync returns the first offset from off on where an intact record
// starts, or -1.
func resync(b []byte, off int) int {
	for ; off+headerLen <= len(b); off++ {
		n, sum, ok := parseHeader(b[off:])
		if !ok || off+headerLen+n > len(b) {
			continue
		}
		if crc32.Checksum(b[off+headerLen:off+headerLen+n], castagnoli) == sum {
			return off
		}
	}
	return -1
}
