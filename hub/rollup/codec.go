package rollup

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// version is the chunk's first byte; any other value is corrupt, which
// leaves room for a future format.
const version = 1

// maxCount is the largest Count that float64 (the chunk codec's value type)
// holds exactly.
const maxCount = 1 << 53

// columns are the five sections of a rollup chunk, in order.
var columns = [...]string{"count", "min", "max", "avg", "last"}

func column(p *Point, c int) float64 {
	switch c {
	case 0:
		return float64(p.Count)
	case 1:
		return p.Min
	case 2:
		return p.Max
	case 3:
		return RoundAvg(p.Avg)
	}
	return p.Last
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: rollup: %s", chunk.ErrCorrupt, fmt.Sprintf(format, args...))
}

// Encode appends a rollup chunk of pts (strictly increasing TS,
// 1..chunk.MaxPoints) to dst. Avg is stored rounded to 6 significant digits
// (RoundAvg) so it compresses as a scaled integer; TS, Count, Min, Max, Last
// are exact. Each point must have 1 ≤ Count ≤ 2^53 and
// Min ≤ Avg, Last ≤ Max (what Of and Coarsen produce). On error dst is
// returned unchanged.
func Encode(dst []byte, pts []Point) ([]byte, error) {
	if len(pts) == 0 {
		return dst, fmt.Errorf("rollup: %w", chunk.ErrEmpty)
	}
	if len(pts) > chunk.MaxPoints {
		return dst, fmt.Errorf("rollup: %d points exceed chunk.MaxPoints", len(pts))
	}
	for i := range pts {
		p := &pts[i]
		if i > 0 && p.TS <= pts[i-1].TS {
			return dst, fmt.Errorf("rollup: %w: point %d ts %d after %d", chunk.ErrOrder, i, p.TS, pts[i-1].TS)
		}
		if p.Count < 1 || p.Count > maxCount {
			return dst, fmt.Errorf("rollup: point %d: count %d outside 1..2^53", i, p.Count)
		}
		// Written negated so that NaN fails too.
		if !(p.Min <= p.Max && p.Min <= p.Avg && p.Avg <= p.Max && p.Min <= p.Last && p.Last <= p.Max) {
			return dst, fmt.Errorf("rollup: point %d: want min ≤ avg, last ≤ max, got %+v", i, *p)
		}
	}
	cp := make([]chunk.Point, len(pts))
	for i := range pts {
		cp[i].TS = pts[i].TS
	}
	base := len(dst)
	dst = append(dst, version)
	var sec []byte
	for c := range columns {
		for i := range pts {
			cp[i].V = column(&pts[i], c)
		}
		var err error
		if sec, err = chunk.Encode(sec[:0], cp); err != nil {
			return dst[:base], fmt.Errorf("rollup: %s column: %w", columns[c], err)
		}
		dst = binary.AppendUvarint(dst, uint64(len(sec)))
		dst = append(dst, sec...)
	}
	return dst, nil
}

// Decode appends the points of a rollup chunk to dst. Corrupt input returns
// an error wrapping chunk.ErrCorrupt and dst unchanged; it never panics and
// never allocates more than chunk.MaxPoints points. The decoded Avg is the
// stored (rounded) one clamped to [Min, Max], so a single-sample or constant
// bucket gets its exact value back.
func Decode(dst []Point, b []byte) ([]Point, error) {
	if len(b) == 0 {
		return dst, corrupt("empty")
	}
	if b[0] != version {
		return dst, corrupt("unknown version %d", b[0])
	}
	// Check framing and counts before allocating anything.
	var secs [len(columns)][]byte
	rest, n := b[1:], 0
	for c := range secs {
		l, m := binary.Uvarint(rest)
		if m <= 0 || l > uint64(len(rest)-m) {
			return dst, corrupt("%s column length", columns[c])
		}
		secs[c], rest = rest[m:m+int(l)], rest[m+int(l):]
		_, _, k, _, err := chunk.Header(secs[c])
		if err != nil {
			return dst, fmt.Errorf("rollup: %s column: %w", columns[c], err)
		}
		if c == 0 {
			n = k
		} else if k != n {
			return dst, corrupt("%s column has %d points, count column %d", columns[c], k, n)
		}
	}
	if len(rest) != 0 {
		return dst, corrupt("%d trailing bytes", len(rest))
	}

	orig, base := dst, len(dst)
	dst = slices.Grow(dst, n)[:base+n]
	out := dst[base:]
	cp := make([]chunk.Point, 0, n)
	for c, sec := range secs {
		var err error
		if cp, err = chunk.DecodeAppend(cp[:0], sec); err != nil {
			return orig, fmt.Errorf("rollup: %s column: %w", columns[c], err)
		}
		if len(cp) != n {
			return orig, corrupt("%s column has %d points, want %d", columns[c], len(cp), n)
		}
		for i, q := range cp {
			p := &out[i]
			if c == 0 {
				if !(q.V >= 1 && q.V <= maxCount && q.V == math.Trunc(q.V)) {
					return orig, corrupt("point %d: count %v", i, q.V)
				}
				p.TS, p.Count = q.TS, int64(q.V)
				continue
			}
			if q.TS != p.TS {
				return orig, corrupt("point %d: %s column ts %d, count column %d", i, columns[c], q.TS, p.TS)
			}
			switch c {
			case 1:
				p.Min = q.V
			case 2:
				p.Max = q.V
			case 3:
				p.Avg = q.V
			default:
				p.Last = q.V
			}
		}
	}
	for i := range out {
		p := &out[i]
		if !(p.Min <= p.Max && p.Min <= p.Last && p.Last <= p.Max) || math.IsNaN(p.Avg) {
			return orig, corrupt("point %d: inconsistent %+v", i, *p)
		}
		p.Avg = clamp(p.Avg, p.Min, p.Max)
	}
	return dst, nil
}
