// Package watermark tracks which readings of one agent boot the hub has
// settled (stored, or declared lost by the agent), by sequence number: the
// contiguous watermark an ack reports, the out-of-order ranges above it, and
// the holes between them that the gap ledger records.
package watermark

import (
	"encoding/binary"
	"errors"
)

// Mark tracks which seqs of one (device, boot) are settled: every seq
// ≤ w, plus the disjoint, sorted ranges above it that arrived out of order.
type Mark struct {
	w      uint64
	ranges [][2]uint64 // inclusive [lo, hi], lo > w+1, ascending, disjoint
}

// has reports whether seq is already settled.
func (m *Mark) Has(seq uint64) bool {
	if seq <= m.w {
		return true
	}
	for _, r := range m.ranges {
		if seq < r[0] {
			return false
		}
		if seq <= r[1] {
			return true
		}
	}
	return false
}

// add settles seq (which must not be settled yet) and advances w.
func (m *Mark) Add(seq uint64) {
	m.addRange(seq, seq)
}

func (m *Mark) addRange(lo, hi uint64) {
	if hi <= m.w {
		return
	}
	if lo <= m.w {
		lo = m.w + 1
	}
	out := make([][2]uint64, 0, len(m.ranges)+1)
	placed := false
	for _, r := range m.ranges {
		switch {
		case r[1]+1 < lo: // entirely before
			out = append(out, r)
		case hi+1 < r[0]: // entirely after
			if !placed {
				out = append(out, [2]uint64{lo, hi})
				placed = true
			}
			out = append(out, r)
		default: // overlaps or touches: merge
			lo, hi = min(lo, r[0]), max(hi, r[1])
		}
	}
	if !placed {
		out = append(out, [2]uint64{lo, hi})
	}
	m.ranges = out
	m.advance()
}

func (m *Mark) advance() {
	for len(m.ranges) > 0 && m.ranges[0][0] <= m.w+1 {
		m.w = max(m.w, m.ranges[0][1])
		m.ranges = m.ranges[1:]
	}
}

// settleBelow settles every seq below first as a gap and returns how many
// seqs had not arrived.
func (m *Mark) SettleBelow(first uint64) (gaps uint64) {
	if first == 0 || first-1 <= m.w {
		return 0
	}
	top := first - 1
	gaps = top - m.w
	for _, r := range m.ranges {
		if r[0] > top {
			break
		}
		gaps -= min(r[1], top) - r[0] + 1
	}
	m.addRange(m.w+1, top)
	return gaps
}

func (m *Mark) Clone() *Mark {
	c := &Mark{w: m.w, ranges: make([][2]uint64, len(m.ranges))}
	copy(c.ranges, m.ranges)
	return c
}

// encode: w, count, then each range as (lo-prev, hi-lo) uvarints.
func (m *Mark) Encode() []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(m.ranges)*4)
	b = binary.AppendUvarint(b, m.w)
	b = binary.AppendUvarint(b, uint64(len(m.ranges)))
	prev := m.w
	for _, r := range m.ranges {
		b = binary.AppendUvarint(b, r[0]-prev)
		b = binary.AppendUvarint(b, r[1]-r[0])
		prev = r[1]
	}
	return b
}

// ErrCorrupt reports a stored mark that cannot be decoded.
var ErrCorrupt = errors.New("corrupt watermark record")

func Decode(b []byte) (*Mark, error) {
	w, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, ErrCorrupt
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, ErrCorrupt
	}
	b = b[n:]
	m := &Mark{w: w, ranges: make([][2]uint64, 0, count)}
	prev := w
	for i := uint64(0); i < count; i++ {
		d, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return nil, ErrCorrupt
		}
		l, n2 := binary.Uvarint(b[n1:])
		if n2 <= 0 {
			return nil, ErrCorrupt
		}
		b = b[n1+n2:]
		lo := prev + d
		// Ranges lie above w+1, ascending, disjoint and not touching:
		// anything else (or an overflow) is corruption, not a watermark.
		if d < 2 || lo < prev || lo+l < lo {
			return nil, ErrCorrupt
		}
		m.ranges = append(m.ranges, [2]uint64{lo, lo + l})
		prev = lo + l
	}
	if len(b) != 0 {
		return nil, ErrCorrupt
	}
	return m, nil
}

// top returns the highest settled seq.
func (m *Mark) Top() uint64 {
	if n := len(m.ranges); n > 0 {
		return m.ranges[n-1][1]
	}
	return m.w
}

// holes returns the unsettled ranges in [w+1, limit].
func (m *Mark) Holes(limit uint64) [][2]uint64 {
	var out [][2]uint64
	next := m.w + 1
	for _, r := range m.ranges {
		if next > limit {
			break
		}
		if r[0] > next {
			out = append(out, [2]uint64{next, min(r[0]-1, limit)})
		}
		next = r[1] + 1
	}
	if next <= limit {
		out = append(out, [2]uint64{next, limit})
	}
	return out
}

// Contiguous returns the highest seq below which every seq is settled: what
// an ack reports.
func (m *Mark) Contiguous() uint64 { return m.w }

// Overlap counts the seqs of r inside the ranges rs.
func Overlap(r [2]uint64, rs [][2]uint64) uint64 {
	var n uint64
	for _, x := range rs {
		lo, hi := max(r[0], x[0]), min(r[1], x[1])
		if lo <= hi {
			n += hi - lo + 1
		}
	}
	return n
}

// Subtract returns the parts of r outside every range of rs.
func Subtract(r [2]uint64, rs [][2]uint64) [][2]uint64 {
	out := [][2]uint64{r}
	for _, x := range rs {
		var next [][2]uint64
		for _, o := range out {
			if x[1] < o[0] || x[0] > o[1] {
				next = append(next, o)
				continue
			}
			if x[0] > o[0] {
				next = append(next, [2]uint64{o[0], x[0] - 1})
			}
			if x[1] < o[1] {
				next = append(next, [2]uint64{x[1] + 1, o[1]})
			}
		}
		out = next
	}
	return out
}
