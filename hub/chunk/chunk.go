package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Point is one sample: a timestamp in Unix milliseconds and a value.
type Point struct {
	TS int64
	V  float64
}

// Value modes, stored in the high nibble of the header byte.
const (
	ModeDelta   = 0 // scaled integers, first-order deltas
	ModeDoD     = 1 // scaled integers, delta-of-delta
	ModeGorilla = 2 // raw float64 bits, Gorilla XOR
)

// Header byte flags: the timestamp / value integer stream uses the packed
// layout (else RLE).
const (
	flagTSPacked  = 0x80
	flagValPacked = 0x40
)

// MaxScale is the largest decimal exponent k tried for scaled integers.
const MaxScale = 6

// DefaultMaxPoints is the chunk size NewAppender(0) uses.
const DefaultMaxPoints = 120

// MaxPoints bounds the points in one chunk, so a corrupt count cannot make
// Decode allocate without limit.
const MaxPoints = 1 << 16

var (
	// ErrOrder reports a timestamp not strictly greater than the previous one.
	ErrOrder = errors.New("chunk: timestamps must be strictly increasing")
	// ErrFull reports an Append to an Appender holding its maximum.
	ErrFull = errors.New("chunk: appender full")
	// ErrCorrupt reports a chunk that cannot be decoded.
	ErrCorrupt = errors.New("chunk: corrupt chunk")
	// ErrEmpty reports an attempt to encode zero points.
	ErrEmpty = errors.New("chunk: no points")
)

var pow10 = [MaxScale + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}

const maxExact = 1 << 53

// scaled reports the integer i with float64(i)/10^k bit-identical to v.
func scaled(v float64, k int) (int64, bool) {
	f := math.Round(v * pow10[k])
	if !(f >= -maxExact && f <= maxExact) { // also rejects NaN
		return 0, false
	}
	i := int64(f)
	return i, math.Float64bits(float64(i)/pow10[k]) == math.Float64bits(v)
}

// chunkScale finds the smallest k ≤ MaxScale at which every value is an exact
// scaled integer.
func chunkScale(pts []Point) (int, bool) {
next:
	for k := 0; k <= MaxScale; k++ {
		for _, p := range pts {
			if _, ok := scaled(p.V, k); !ok {
				continue next
			}
		}
		return k, true
	}
	return 0, false
}

func zigzag(x int64) uint64   { return uint64(x<<1) ^ uint64(x>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendRLE writes xs as zigzag varints, each zero followed by a uvarint
// count of further zeros that repeat it.
func appendRLE(dst []byte, xs []int64) []byte {
	for i := 0; i < len(xs); {
		x := xs[i]
		dst = binary.AppendUvarint(dst, zigzag(x))
		i++
		if x == 0 {
			j := i
			for j < len(xs) && xs[j] == 0 {
				j++
			}
			dst = binary.AppendUvarint(dst, uint64(j-i))
			i = j
		}
	}
	return dst
}

// Encode appends the chunk encoding of pts to dst. Timestamps must be
// strictly increasing.
func Encode(dst []byte, pts []Point) ([]byte, error) {
	if len(pts) == 0 {
		return dst, ErrEmpty
	}
	if len(pts) > MaxPoints {
		return dst, fmt.Errorf("chunk: %d points exceed MaxPoints", len(pts))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].TS <= pts[i-1].TS {
			return dst, fmt.Errorf("%w: point %d ts %d after %d", ErrOrder, i, pts[i].TS, pts[i-1].TS)
		}
		if pts[i].TS-pts[i-1].TS <= 0 { // the gap overflows int64
			return dst, fmt.Errorf("%w: point %d ts %d too far after %d", ErrOrder, i, pts[i].TS, pts[i-1].TS)
		}
	}
	n := len(pts)
	scratch := make([]int64, n)

	// Timestamp section.
	var ts []byte
	var tsPacked bool
	ts = binary.AppendUvarint(ts, zigzag(pts[0].TS))
	if n > 1 {
		ts = binary.AppendUvarint(ts, uint64(pts[1].TS-pts[0].TS))
		for i := 2; i < n; i++ {
			scratch[i-2] = (pts[i].TS - pts[i-1].TS) - (pts[i-1].TS - pts[i-2].TS)
		}
		ts, tsPacked = appendStream(ts, scratch[:n-2])
	}

	// Value section: the smallest of the candidate encodings.
	mode, k, vPacked := ModeGorilla, 0, false
	vals := appendGorilla(nil, pts)
	if sk, ok := chunkScale(pts); ok {
		ints := make([]int64, n)
		for i, p := range pts {
			ints[i], _ = scaled(p.V, sk)
		}
		first := binary.AppendUvarint(nil, zigzag(ints[0]))
		for i := 1; i < n; i++ {
			scratch[i-1] = ints[i] - ints[i-1]
		}
		d, dp := appendStream(slices.Clone(first), scratch[:n-1])
		if len(d) <= len(vals) {
			mode, k, vals, vPacked = ModeDelta, sk, d, dp
		}
		if n > 1 {
			dd := binary.AppendUvarint(first, zigzag(ints[1]-ints[0]))
			for i := 2; i < n; i++ {
				scratch[i-2] = (ints[i] - ints[i-1]) - (ints[i-1] - ints[i-2])
			}
			dd, ddp := appendStream(dd, scratch[:n-2])
			if len(dd) < len(vals) {
				mode, k, vals, vPacked = ModeDoD, sk, dd, ddp
			}
		}
	}

	h := byte(mode<<4 | k)
	if tsPacked {
		h |= flagTSPacked
	}
	if vPacked {
		h |= flagValPacked
	}
	dst = append(dst, h)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	dst = append(dst, ts...)
	return append(dst, vals...), nil
}

// appendGorilla writes the values as in the Gorilla paper: the first value's
// 64 bits, then per value a XOR with its predecessor: '0' if equal; '10' +
// meaningful bits inside the previous window; '11' + 5 bits leading zeros +
// 6 bits (length-1) + meaningful bits.
func appendGorilla(dst []byte, pts []Point) []byte {
	w := bitWriter{buf: dst}
	prev := math.Float64bits(pts[0].V)
	w.write(prev, 64)
	lead, trail := uint(0xff), uint(0)
	for _, p := range pts[1:] {
		cur := math.Float64bits(p.V)
		x := cur ^ prev
		prev = cur
		if x == 0 {
			w.write(0, 1)
			continue
		}
		l, t := uint(bits.LeadingZeros64(x)), uint(bits.TrailingZeros64(x))
		if l > 31 {
			l = 31
		}
		if lead != 0xff && l >= lead && t >= trail {
			w.write(0b10, 2)
			w.write(x>>trail, 64-lead-trail)
			continue
		}
		lead, trail = l, t
		sig := 64 - l - t
		w.write(0b11, 2)
		w.write(uint64(l), 5)
		w.write(uint64(sig-1), 6)
		w.write(x>>t, sig)
	}
	return w.flush()
}

type bitWriter struct {
	buf  []byte
	acc  uint64 // pending bits, left-aligned
	nacc uint
}

func (w *bitWriter) write(v uint64, n uint) {
	for n > 0 {
		take := min(n, 64-w.nacc)
		chunk := (v >> (n - take)) & (1<<take - 1)
		if take == 64 {
			chunk = v
		}
		w.acc |= chunk << (64 - w.nacc - take)
		w.nacc += take
		n -= take
		for w.nacc >= 8 {
			w.buf = append(w.buf, byte(w.acc>>56))
			w.acc <<= 8
			w.nacc -= 8
		}
	}
}

func (w *bitWriter) flush() []byte {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc>>56))
		w.acc, w.nacc = 0, 0
	}
	return w.buf
}

// Appender collects points in time order and encodes them as one chunk.
// The value encoding is chosen per chunk, so points are buffered (16 B each)
// until Bytes is called.
type Appender struct {
	pts []Point
	max int
}

// NewAppender returns an Appender holding at most max points
// (DefaultMaxPoints if max is not in 1..MaxPoints).
func NewAppender(max int) *Appender {
	if max <= 0 || max > MaxPoints {
		max = DefaultMaxPoints
	}
	return &Appender{max: max, pts: make([]Point, 0, max)}
}

// Append adds a point. Its timestamp must exceed the previous one: an equal
// or earlier timestamp returns ErrOrder (use Merge for backfill).
func (a *Appender) Append(ts int64, v float64) error {
	if len(a.pts) >= a.max {
		return ErrFull
	}
	if n := len(a.pts); n > 0 && ts <= a.pts[n-1].TS {
		return fmt.Errorf("%w: ts %d after %d", ErrOrder, ts, a.pts[n-1].TS)
	}
	a.pts = append(a.pts, Point{ts, v})
	return nil
}

// Len returns the number of buffered points.
func (a *Appender) Len() int { return len(a.pts) }

// Full reports whether the appender holds its maximum.
func (a *Appender) Full() bool { return len(a.pts) >= a.max }

// Points returns the buffered points (not a copy).
func (a *Appender) Points() []Point { return a.pts }

// Bytes appends the encoded chunk to dst.
func (a *Appender) Bytes(dst []byte) ([]byte, error) { return Encode(dst, a.pts) }

// Reset empties the appender for reuse.
func (a *Appender) Reset() { a.pts = a.pts[:0] }

// Merge decodes chunk, adds pts (any order), and re-encodes. A point whose
// timestamp is already present is dropped: the existing value wins, so a
// redelivered sample is idempotent. Among pts sharing a timestamp the first
// wins. A nil or empty chunk encodes pts alone. The result is not limited to
// any chunk size; splitting is the caller's choice.
func Merge(chunk []byte, pts []Point) ([]byte, error) {
	var old []Point
	if len(chunk) > 0 {
		var err error
		if old, err = DecodeAppend(nil, chunk); err != nil {
			return nil, err
		}
	}
	add := slices.Clone(pts)
	slices.SortStableFunc(add, func(a, b Point) int {
		switch {
		case a.TS < b.TS:
			return -1
		case a.TS > b.TS:
			return 1
		}
		return 0
	})
	out := make([]Point, 0, len(old)+len(add))
	i, j := 0, 0
	for i < len(old) || j < len(add) {
		var p Point
		switch {
		case j == len(add) || (i < len(old) && old[i].TS <= add[j].TS):
			p = old[i]
			i++
		default:
			p = add[j]
			j++
		}
		if n := len(out); n > 0 && out[n-1].TS == p.TS {
			continue // the earlier one (existing, or first of pts) wins
		}
		out = append(out, p)
	}
	return Encode(nil, out)
}
