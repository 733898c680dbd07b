package boltstore

import (
	"fmt"
	"slices"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
	"github.com/fleetwatch/fleetwatch/hub/rollup"
)

const (
	minuteMS = int64(60_000)
	hourMS   = int64(3_600_000)
)

// flushRollups recomputes the 1-minute rollups of every minute this commit
// changed from the raw chunks on disk, then the hours those minutes belong
// to from the 1-minute tier. Recomputing (rather than adding to a running
// total) keeps them exact when backfill lands in an old minute.
func (c *commit) flushRollups() error {
	var raw []chunk.Point
	var mins []rollup.Point
	for sr, spans := range c.dirty {
		for _, sp := range mergeSpans(spans, minuteMS) {
			a, e := sp[0], sp[1] // minute-aligned, end exclusive
			var err error
			if raw, err = readRange(c.tx, &c.s.tiers[tierRaw], sr.sid, a, e-1, rawCodec, raw[:0]); err != nil {
				return err
			}
			mins = rollup.Of(mins[:0], raw, minuteMS)
			if err := c.putRollups(tierMinute, sr.sid, mins); err != nil {
				return err
			}
			ha, he := floorDiv(a, hourMS)*hourMS, floorDiv(e-1, hourMS)*hourMS+hourMS
			if mins, err = readRange(c.tx, &c.s.tiers[tierMinute], sr.sid, ha, he-1, rollupCodec, mins[:0]); err != nil {
				return err
			}
			if err := c.putRollups(tierHour, sr.sid, rollup.Coarsen(nil, mins, hourMS)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeSpans aligns [from, to] spans outward to width and unites those that
// overlap or touch; results are [start, end) pairs.
func mergeSpans(spans [][2]int64, width int64) [][2]int64 {
	out := make([][2]int64, 0, len(spans))
	for _, sp := range spans {
		out = append(out, [2]int64{floorDiv(sp[0], width) * width, floorDiv(sp[1], width)*width + width})
	}
	slices.SortFunc(out, func(a, b [2]int64) int { return cmp64(a[0], b[0]) })
	merged := out[:0]
	for _, sp := range out {
		if n := len(merged); n > 0 && sp[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], sp[1])
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// putRollups replaces sid's rollups in tier t at pts' timestamps, skipping
// those already past the tier's retention.
func (c *commit) putRollups(t int, sid uint32, pts []rollup.Point) error {
	tr := &c.s.tiers[t]
	floor := c.now - tr.retention
	for len(pts) > 0 && pts[0].TS+tr.width <= floor {
		pts = pts[1:]
	}
	for len(pts) > 0 {
		start := tr.partOf(pts[0].TS)
		n := 1
		for n < len(pts) && tr.partOf(pts[n].TS) == start {
			n++
		}
		b, err := c.bucket(t, start, sid)
		if err != nil {
			return err
		}
		if _, err := mergeChunks(b, pts[:n], rollupCodec, maxRollupPoints); err != nil {
			return fmt.Errorf("rollups %s of series %d: %w", tr.name, sid, err)
		}
		pts = pts[n:]
	}
	return nil
}
